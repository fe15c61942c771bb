"""K-SVD: Zeyde, Elad and Protter's sparse-representation up-scaling, as in ANR/A+'s tables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from srbench import Method


class KSVD(Method):
    """Zeyde et al. 2010 in Timofte's framework (METHODS.md section 2).

    Features of the bicubic image (gradients and Laplacians on 3x3-LR-pixel windows,
    uncentred PCA), sparse-coded with OMP on a K-SVD dictionary; the same codes on the
    least-squares HR dictionary give the residual patches, averaged over the full-overlap
    grid and added to the bicubic image.

    Parameters
    ----------
    n_atoms : int
        Dictionary size (1024 as in ANR/A+; Zeyde's own code used 1000).
    sparsity : int
        Atoms per patch in OMP, in training and at test time.
    n_iter : int
        K-SVD iterations (20 as in ANR/A+; Zeyde's own code used 40).
    seed : int
        Seed of K-SVD's random initialisation and atom replacement.
    train_overlap : int or None
        Overlap (LR pixels) of the training patch grid. None follows the ANR ICCV'13
        drivers, whose dictionaries produced the published Zeyde/ANR numbers: 2 (a patch at
        every LR pixel, ~1.25M samples) at x2, 1 (every other LR pixel) at x3 and x4.
    pca_dim : int or None
        PCA dimensions to keep; None applies ``learn_dict.m``'s rule (drop the smallest
        directions holding under 0.1% of the energy). The shipped x2 dictionary was trained
        with ``--set pca_dim=29``: on our T91 copy the rule's cut falls 2% inside its
        threshold (0.0979% dropped), giving 28, while the reference tables' x2 results are
        reproduced image by image only with 29 (see the x2 manifest and README).
    """

    name = "ksvd"
    label = "K-SVD"
    scales = frozenset({2, 3, 4})
    trainable = True
    version = "1"
    citation = (
        "R. Zeyde, M. Elad, M. Protter, On single image scale-up using "
        "sparse-representations, Curves and Surfaces 2010"
    )

    def __init__(
        self,
        *,
        n_atoms: int = 1024,
        sparsity: int = 3,
        n_iter: int = 20,
        seed: int = 0,
        train_overlap: int | None = None,
        pca_dim: int | None = None,
    ):
        self.n_atoms = n_atoms
        self.sparsity = sparsity
        self.n_iter = n_iter
        self.seed = seed
        self.train_overlap = train_overlap
        self.pca_dim = pca_dim

    def _fit_scale(
        self, images: list[np.ndarray], scale: int
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        from .zeyde import learn_dictionaries

        overlap = self.train_overlap
        if overlap is None:
            overlap = 2 if scale <= 2 else 1
        info: dict[str, Any] = {}
        learned = learn_dictionaries(
            images,
            scale,
            n_atoms=self.n_atoms,
            sparsity=self.sparsity,
            n_iter=self.n_iter,
            seed=self.seed,
            # Not a hyperparameter: a front end (the CLI's progress bar) may set
            # ``progress_callback(iteration, n_iter, rmse)`` on the instance before fit.
            progress=getattr(self, "progress_callback", None),
            info=info,
            overlap=overlap,
            pca_dim=self.pca_dim,
        )
        return learned, info

    def prepare(self, scale: int) -> None:
        """Compile (or load from numba's cache) the Zeyde front- and back-end kernels
        outside the timed call."""
        super().prepare(scale)
        from . import zeyde_kernel

        zeyde_kernel.warm_up()

    def _restore(self, scale: int, tensors: Mapping[str, np.ndarray]) -> None:
        if not hasattr(self, "model_"):
            self.model_ = {}
        # Atoms as rows: gathering three HR atoms per patch is then a contiguous take.
        self.model_[scale] = (
            np.asarray(tensors["V_pca"], dtype=np.float32),
            np.asarray(tensors["Dl"], dtype=np.float32),
            np.ascontiguousarray(np.asarray(tensors["Dh"], dtype=np.float32).T),
        )

    def _upscale(self, lr: np.ndarray, scale: int) -> np.ndarray:
        from .zeyde import assemble, omp, patch_size, upscale_features

        V, Dl, DhT = self.model_[scale]
        mid, grid, y = upscale_features(lr, scale, V)
        if y.shape[0] == 0:
            return mid  # too small for one window: bicubic is all there is
        idx, coef = omp(Dl, y, self.sparsity)
        residual = np.einsum("nk,nkd->nd", coef, DhT[idx])
        return assemble(mid, grid, residual, patch_size(scale))
