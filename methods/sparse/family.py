"""The base of every method built on Zeyde's features and K-SVD dictionary.

K-SVD itself, NE+LLE, NE+NNLS, GR, ANR and A+ share Zeyde's test-time front end (bicubic
mid-res image, gradient/Laplacian features on the full-overlap grid, uncentred PCA) and back
end (predicted residual HR patches plus the bicubic image, overlap-averaged).
:class:`ZeydeFamily` gets the dictionary of the ``ksvd`` method and runs that front and back
end; a subclass supplies only the map from a PCA feature to its residual patch.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from srbench.method import ArtifactError, Method

__all__ = ["ZeydeFamily", "load_dictionaries"]

log = logging.getLogger(__name__)


def load_dictionaries(
    images: Sequence[np.ndarray], scale: int, source: str | Path | None = None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Zeyde's PCA basis and dictionaries for ``scale``, with provenance for the manifest.

    Parameters
    ----------
    images : sequence of ndarray
        HR training images; used only if the dictionaries have to be learned.
    scale : int
    source : str or Path, optional
        A folder holding ``x{scale}.safetensors`` with ``V_pca``, ``Dl`` and ``Dh``. By
        default the shipped artifacts of the registered ``ksvd`` method are used, and if it
        has none for ``scale`` it is fitted on ``images`` here (as slow as training it).

    Returns
    -------
    tensors : dict
        ``V_pca`` ``(4 (3s)^2, k)``, ``Dl`` ``(k, n_atoms)``, ``Dh`` ``((3s)^2, n_atoms)``,
        float32.
    info : dict
        Where they came from: method, artifact hash, training-data hash.
    """
    from srbench.method import file_hash

    if source is not None:
        from safetensors.numpy import load_file

        path = Path(source) / f"x{scale}.safetensors"
        if not path.is_file():
            raise ArtifactError(f"no dictionary for x{scale} in {source}")
        tensors = load_file(str(path))
        # A file path would make the manifest machine-specific: record its hash only.
        info: dict[str, Any] = {"dictionary": {"method": "file", "sha256": file_hash(path)}}
    else:
        from .ksvd import KSVD

        ksvd = KSVD()
        try:
            ksvd.load(scales=[scale])
        except ArtifactError:
            log.warning("no shipped ksvd dictionary for x%d: learning one now", scale)
            ksvd.fit(images, scale)
        tensors = ksvd.artifacts_[scale]
        manifest = ksvd.manifests_.get(scale, {})
        info = {
            "dictionary": {
                "method": ksvd.name,
                "version": ksvd.version,
                "artifact_hash": ksvd.artifact_hash(scale),
                "training_data_sha256": manifest.get("training_data_sha256"),
            }
        }
    missing = [k for k in ("V_pca", "Dl", "Dh") if k not in tensors]
    if missing:
        raise ArtifactError(f"dictionary for x{scale} lacks {', '.join(missing)}")
    out = {k: np.ascontiguousarray(tensors[k], dtype=np.float32) for k in ("V_pca", "Dl", "Dh")}
    k, n_atoms = out["Dl"].shape
    if out["V_pca"].shape[1] != k or out["Dh"].shape[1] != n_atoms:
        raise ArtifactError(
            f"inconsistent dictionary shapes V_pca {out['V_pca'].shape}, Dl {out['Dl'].shape}, "
            f"Dh {out['Dh'].shape}"
        )
    info["pca_dim"] = int(k)
    info["n_atoms"] = int(n_atoms)
    return out, info


class ZeydeFamily(Method):
    """Shared plumbing of the methods built on Zeyde's features and dictionaries.

    Subclasses implement :meth:`_fit_from_dictionary` (the method's own artifacts from the
    dictionaries) and :meth:`_residuals` (predicted residual HR patches from the PCA
    features). Each subclass's artifact holds ``V_pca``, ``Dl`` and ``Dh`` itself, so it
    upscales without the ``ksvd`` artifact.

    Subclasses take a keyword ``dictionary_dir`` (default None: the ``ksvd`` method's
    artifacts): a folder of ``x{s}.safetensors`` to train from instead. It only matters at
    training time, so it is a runtime parameter (not part of result keys).
    """

    trainable = True
    scales = frozenset({2, 3, 4})
    runtime_params = frozenset({"dictionary_dir"})
    dictionary_dir: str | None

    # -------------------------------------------------------------- training
    def _fit_scale(
        self, images: list[np.ndarray], scale: int
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        tensors, info = load_dictionaries(images, scale, self.dictionary_dir)
        extra, extra_info = self._fit_from_dictionary(images, scale, tensors)
        tensors.update(extra)
        info.update(extra_info)
        return tensors, info

    def _fit_from_dictionary(
        self, images: list[np.ndarray], scale: int, tensors: dict[str, np.ndarray]
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {}, {}

    # -------------------------------------------------------------- inference
    def prepare(self, scale: int) -> None:
        """Compile (or load from numba's cache) the front- and back-end kernels
        (:mod:`.zeyde_kernel`) outside the timed call."""
        super().prepare(scale)
        from . import zeyde_kernel

        zeyde_kernel.warm_up()

    def _restore(self, scale: int, tensors: Mapping[str, np.ndarray]) -> None:
        if not hasattr(self, "models_"):
            self.models_ = {}
        model = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
        self.models_[scale] = self._prepare_model(model)

    def _prepare_model(self, model: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Derived arrays computed once per load (e.g. Gram matrices)."""
        return model

    def _upscale(self, lr: np.ndarray, scale: int) -> np.ndarray:
        from .zeyde import WINDOW, assemble, patch_size, upscale_features

        model = self.models_[scale]
        if min(lr.shape) < WINDOW + 2:
            # No 3x3 window fits inside the 1-pixel border: there is nothing to regress,
            # and the result is the bicubic image (the reference would leave zeros).
            from srbench.protocol import imresize

            return imresize(lr, scale)
        mid, grid, y = upscale_features(lr, scale, model["V_pca"])
        residual = self._residuals(model, y)
        return assemble(mid, grid, residual, patch_size(scale))

    def _residuals(self, model: dict[str, np.ndarray], y: np.ndarray) -> np.ndarray:
        """Predicted residual HR patches ``(n, (3s)^2)`` of the PCA features ``y``, in patch
        order or as a :class:`~.zeyde.GroupedRows` (which :func:`~.zeyde.assemble` takes)."""
        raise NotImplementedError
