"""Neighbour embedding on the K-SVD dictionary atoms: NE+LLE and NE+NNLS."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..sparse.family import ZeydeFamily


class _NeighbourEmbedding(ZeydeFamily):
    """Shared part: the neighbours of a patch are its K most correlated dictionary atoms."""

    solver = ""
    # The dictionary atoms are the examples; the neighbour count acts only at inference.
    inference_params = frozenset({"neighbors"})

    def _prepare_model(self, model: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        dl = model["Dl"].astype(np.float64)
        model["Dl64_"] = dl
        gram = dl.T @ dl  # neighbours' Gram matrices are sub-blocks of this
        model["gram_"] = gram
        # numpy forms it with syrk (one triangle, copied): the kernel may read one triangle.
        model["gram_symmetric_"] = np.array(np.array_equal(gram, gram.T))
        model["DhT_"] = np.ascontiguousarray(model["Dh"].T)
        return model

    def _residuals(self, model: dict[str, np.ndarray], y: np.ndarray) -> np.ndarray:
        from .embedding import ne_residuals

        return ne_residuals(
            y, model["Dl64_"], model["DhT_"], model["gram_"], self.neighbors, self.solver,
            symmetric=bool(model["gram_symmetric_"]),
        )

    def prepare(self, scale: int) -> None:
        """Compile (or load from numba's cache) the kernels, and import the scipy.sparse of
        the numpy steps some patches take, outside the timed call."""
        super().prepare(scale)
        import scipy.sparse  # noqa: F401

        from . import embedding, nnls  # noqa: F401
        from .embedding_kernel import warm_up

        warm_up()

    def _fit_from_dictionary(
        self, images: list[np.ndarray], scale: int, tensors: dict[str, np.ndarray]
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        # Nothing to learn beyond the dictionaries: the atoms are the examples.
        return {}, {}


class NELLE(_NeighbourEmbedding):
    """NE+LLE (Chang et al. 2004) on the atoms of Zeyde's 1024-atom dictionaries.

    Each patch's PCA feature is reconstructed from its ``neighbors`` most correlated
    low-resolution atoms with locally-linear-embedding weights (sum to one, ridge
    1e-4 trace); the same weights on the high-resolution atoms give the residual patch
    (METHODS.md section 4, Timofte's ``scaleup_NE_LLE``).

    Parameters
    ----------
    neighbors : int
        Atoms per patch (24).
    dictionary_dir : str, optional
        Folder of ``x{s}.safetensors`` dictionaries to train from instead of the ``ksvd``
        method's (training only).
    """

    name = "ne_lle"
    label = "NE+LLE"
    version = "1"
    citation = (
        "H. Chang, D.-Y. Yeung, Y. Xiong, Super-resolution through neighbor embedding, "
        "CVPR 2004 (as in R. Timofte et al., ANR, ICCV 2013)"
    )
    solver = "lle"

    def __init__(self, *, neighbors: int = 24, dictionary_dir: str | None = None) -> None:
        self.neighbors = neighbors
        self.dictionary_dir = dictionary_dir


class NENNLS(_NeighbourEmbedding):
    """NE+NNLS (Bevilacqua et al. 2012) on the atoms of Zeyde's 1024-atom dictionaries.

    Each patch's PCA feature is approximated by a non-negative combination of its
    ``neighbors`` most correlated low-resolution atoms (``lsqnonneg``, no sum-to-one
    constraint); the same weights on the high-resolution atoms give the residual patch
    (METHODS.md section 4, Timofte's ``scaleup_NE_NNLS``).

    Parameters
    ----------
    neighbors : int
        Atoms per patch (24).
    dictionary_dir : str, optional
        Folder of ``x{s}.safetensors`` dictionaries to train from instead of the ``ksvd``
        method's (training only).
    """

    name = "ne_nnls"
    label = "NE+NNLS"
    version = "1"
    citation = (
        "M. Bevilacqua, A. Roumy, C. Guillemot, M.-L. Alberi Morel, Low-complexity "
        "single-image super-resolution based on nonnegative neighbor embedding, BMVC 2012 "
        "(as in R. Timofte et al., ANR, ICCV 2013)"
    )
    solver = "nnls"

    def __init__(self, *, neighbors: int = 24, dictionary_dir: str | None = None) -> None:
        self.neighbors = neighbors
        self.dictionary_dir = dictionary_dir

    def prepare(self, scale: int) -> None:
        """Compile (or load from numba's cache) the kernels outside the timed call (the
        NNLS one solves the rare patches left to the numpy code)."""
        super().prepare(scale)
        from .nnls_kernel import warm_up

        warm_up()
