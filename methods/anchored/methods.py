"""Anchored regression on the K-SVD dictionaries: GR, ANR (Timofte et al. 2013) and A+ (2014)."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from ..sparse.family import ZeydeFamily

log = logging.getLogger(__name__)


class _Anchored(ZeydeFamily):
    """Shared test time: anchor = most correlated atom, residual = its regressor times y."""

    def prepare(self, scale: int) -> None:
        super().prepare(scale)
        from . import regressors  # noqa: F401 - imported here, not in the first timed call

    def _residuals(self, model: dict[str, np.ndarray], y: np.ndarray) -> np.ndarray:
        from .regressors import anchor_atoms, grouped_regressors

        anchors = anchor_atoms(y, model["Dl"])
        # Left grouped by anchor: assemble reads them there (no copy back into patch order).
        return grouped_regressors(y, anchors, model["P"])


class GR(ZeydeFamily):
    """Global Regression (Timofte et al., ICCV 2013): one ridge map for every patch.

    ``P = (1 + lambda) Dh (Dl^T Dl + lambda I)^-1 Dl^T`` maps a PCA feature to its residual
    HR patch (METHODS.md section 5, ``scaleup_GR``).

    Parameters
    ----------
    lam : float
        Ridge parameter (0.1, the reference value for a 1024-atom dictionary).
    dictionary_dir : str, optional
        Folder of ``x{s}.safetensors`` dictionaries to train from instead of the ``ksvd``
        method's (training only).
    """

    name = "gr"
    label = "GR"
    version = "1"
    citation = (
        "R. Timofte, V. De Smet, L. Van Gool, Anchored neighborhood regression for fast "
        "example-based super-resolution, ICCV 2013"
    )

    def __init__(self, *, lam: float = 0.1, dictionary_dir: str | None = None) -> None:
        self.lam = lam
        self.dictionary_dir = dictionary_dir

    def _fit_from_dictionary(
        self, images: list[np.ndarray], scale: int, tensors: dict[str, np.ndarray]
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        from .regressors import global_regressor

        p = global_regressor(tensors["Dl"].astype(np.float64), tensors["Dh"].astype(np.float64), self.lam)
        return {"P": p.astype(np.float32)}, {}

    def _residuals(self, model: dict[str, np.ndarray], y: np.ndarray) -> np.ndarray:
        from srbench.threads import blas_in_threads, in_threads

        # Bands of patches on threads of our own, one BLAS thread each (OpenBLAS's own two
        # threads made this one product slower than one thread: 8.0 against 3.2-7.1 ms per
        # T91 image); each row is the same product of its feature with P.
        P_t = model["P"].T
        out = np.empty((y.shape[0], P_t.shape[1]), dtype=np.result_type(y, P_t))
        with blas_in_threads() as threads:
            bounds = [y.shape[0] * t // threads for t in range(threads + 1)]

            def band(t: int) -> None:
                np.matmul(y[bounds[t] : bounds[t + 1]], P_t, out=out[bounds[t] : bounds[t + 1]])

            in_threads(band, threads)
        return out


class ANR(_Anchored):
    """Anchored Neighborhood Regression (Timofte et al., ICCV 2013).

    Every atom of the 1024-atom dictionary is an anchor with its own ridge regressor,
    fitted on its ``neighborhood`` most correlated atoms:
    ``P_i = (1 + lambda) Dh_N (Dl_N^T Dl_N + lambda I)^-1 Dl_N^T``. A patch uses the
    regressor of the atom most correlated with its feature (METHODS.md section 5).

    Parameters
    ----------
    neighborhood : int
        Atoms per anchored neighbourhood (40).
    lam : float
        Ridge parameter (0.01, hard-coded in the reference code).
    dictionary_dir : str, optional
        Folder of ``x{s}.safetensors`` dictionaries to train from instead of the ``ksvd``
        method's (training only).
    """

    name = "anr"
    label = "ANR"
    version = "1"
    citation = (
        "R. Timofte, V. De Smet, L. Van Gool, Anchored neighborhood regression for fast "
        "example-based super-resolution, ICCV 2013"
    )

    # The projections are built from the dictionary on first use, so these stay free.
    inference_params = frozenset({"neighborhood", "lam"})

    def __init__(
        self, *, neighborhood: int = 40, lam: float = 0.01, dictionary_dir: str | None = None
    ) -> None:
        self.neighborhood = neighborhood
        self.lam = lam
        self.dictionary_dir = dictionary_dir

    # The artifact holds only the dictionary: the 1024 projections follow from it in a
    # fraction of a second, and storing them would put 34 MB more into the repository.
    # They are built on first use of a scale, outside the timed call (``prepare``).

    def _fit_from_dictionary(
        self, images: list[np.ndarray], scale: int, tensors: dict[str, np.ndarray]
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {}, {}

    def prepare(self, scale: int) -> None:
        super().prepare(scale)
        model = self.models_[scale]
        if "P" not in model:
            from .regressors import anr_regressors

            p, neighbours = anr_regressors(
                model["Dl"], model["Dh"], neighbourhood=self.neighborhood, lam=self.lam
            )
            model["P"] = np.ascontiguousarray(p, dtype=np.float32)
            model["neighbors"] = neighbours.astype(np.int32)

    def _residuals(self, model: dict[str, np.ndarray], y: np.ndarray) -> np.ndarray:
        if "P" not in model:
            self.prepare(next(s for s, m in self.models_.items() if m is model))
        return super()._residuals(model, y)


class APlus(_Anchored):
    """A+ (Timofte et al., ACCV 2014): anchored regressors fitted on training samples.

    The anchors are the atoms of the 1024-atom dictionary; each one's ridge regressor
    ``P_i = Hi (Lo^T Lo + lambda I)^-1 Lo^T`` is fitted on the ``neighborhood`` training
    samples nearest to it (Euclidean, L2-normalised LR features). The samples are the first
    ``samples`` of a ``levels``-level, ``factor``-ratio pyramid of the training images
    (METHODS.md section 6).

    Parameters
    ----------
    neighborhood : int
        Training samples per anchor (2048).
    lam : float
        Ridge parameter (0.1).
    levels : int
        Pyramid levels (12).
    factor : float
        Ratio between pyramid levels (0.98).
    samples : int
        Samples kept, in collection order (5 000 000).
    dictionary_dir : str, optional
        Folder of ``x{s}.safetensors`` dictionaries to train from instead of the ``ksvd``
        method's (training only).
    """

    name = "aplus"
    label = "A+"
    version = "1"
    citation = (
        "R. Timofte, V. De Smet, L. Van Gool, A+: Adjusted anchored neighborhood regression "
        "for fast super-resolution, ACCV 2014"
    )

    def __init__(
        self,
        *,
        neighborhood: int = 2048,
        lam: float = 0.1,
        levels: int = 12,
        factor: float = 0.98,
        samples: int = 5_000_000,
        dictionary_dir: str | None = None,
    ) -> None:
        self.neighborhood = neighborhood
        self.lam = lam
        self.levels = levels
        self.factor = factor
        self.samples = samples
        self.dictionary_dir = dictionary_dir

    def _fit_from_dictionary(
        self, images: list[np.ndarray], scale: int, tensors: dict[str, np.ndarray]
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        from .regressors import aplus_regressors, collect_pyramid, normalise_samples

        callback = self.progress_callback

        def stage(start: int, stop: int, what: str):
            """Map a stage's completed fraction onto a 0-100 bar (collection is ~20%)."""
            if callback is None:
                return None
            return lambda fraction: callback(int(start + (stop - start) * fraction), 100, what)

        t0 = time.perf_counter()
        lo, hi = collect_pyramid(
            images,
            scale,
            tensors["V_pca"],
            levels=self.levels,
            factor=self.factor,
            max_samples=self.samples,
            progress=stage(0, 20, "collecting samples"),
        )
        t1 = time.perf_counter()
        log.info("A+ x%d: %d samples collected in %.1f s", scale, lo.shape[0], t1 - t0)
        normalise_samples(lo, hi)
        p = aplus_regressors(
            lo,
            hi,
            tensors["Dl"],
            neighbourhood=self.neighborhood,
            lam=self.lam,
            progress=stage(20, 100, f"nearest samples of {lo.shape[0]}"),
        )
        t2 = time.perf_counter()
        log.info("A+ x%d: regressors in %.1f s", scale, t2 - t1)
        info = {
            "n_samples": int(lo.shape[0]),
            "collect_seconds": round(t1 - t0, 3),
            "regress_seconds": round(t2 - t1, 3),
        }
        return {"P": p.astype(np.float32)}, info
