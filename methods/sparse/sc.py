"""SC: Yang et al.'s sparse-coding super-resolution, as the SRCNN/ANR/A+ tables ran it.

The tables' "SC" / "Yang et al." column is Yang's simplified CVPR'08 code (``L1SR``), not
the TIP'10 ScSR package (METHODS.md sections 3.1 and 12.13): a coupled dictionary of 1024
atoms, 3 x 3 LR patches with overlap 2, features from a 2x bicubic up-sampling, one
non-negative lasso (lambda = 0.1) per patch, overlap averaging, no back-projection, run on
[0, 1] luminance the way Timofte's driver feeds it. The building blocks live in
:mod:`srbench._methods.sparse.coding`.

Choices beyond the x3 reference
-------------------------------
* **x2 and x4** follow what Yang's ``yima`` does for a scale other than 3 (train a
  dictionary for that scale with the same code): LR patches stay 3 x 3 with overlap 2,
  features stay on the **2x** mid image (6 x 6 windows, 144 values), and the HR patch is
  ``3*scale`` square (6 x 6 at x2, 12 x 12 at x4), at HR position ``scale * start``. The
  uncovered frame (one LR pixel = ``scale`` HR pixels, shaved by the protocol) is filled
  by bicubic; L1SR hard-codes 3 rows, which equals the frame only at x3.
* One addition at x2 and x4: the HR patch ``Dh w`` is multiplied by ``scale / 3``
  (:attr:`srbench._methods.sparse.coding.Geometry.hr_gain`, 1 at x3). Yang's separate
  normalisation of ``Dh`` and ``Dl`` leaves a reconstruction gain of about
  ``||features|| / ||HR patch||``, which is ``4 / scale`` on T91; the x3 code and its
  published numbers live at gain 4/3. Taken literally, ``yima`` at x2 (gain 2) overshoots
  to values far outside [0, 1] and x4 (gain 1) loses detail; both end up below bicubic
  (Set5 x2 31.25 dB, x4 27.92 dB, against bicubic 33.66 / 28.42). The factor keeps every
  scale at the x3 operating point; it was derived from the training data, not tuned on
  test images.
* **Training** is ``rnd_smp_dictionary`` + ``coupled_dic_train`` with scikit-learn's
  online dictionary learning in place of Lee et al.'s batch solver (the same objective),
  on ``n_samples`` random positions of T91 plus their transposes (40,000 x 2 = the
  80,000 columns the reference trains on); see
  :func:`srbench._methods.sparse.coding.sample_training_patches` for the sampling details.

The per-patch solver
--------------------
L1SR calls SparseLab's ``SolveLasso(Dl, y, 1024, 'nnlasso', [], 0.1)``. That homotopy
compares the multiplier *from before* each step with ``lambdaStop``, so it returns the
second breakpoint of the path below 0.1 rather than the lasso solution at 0.1: a less
shrunk code.
On the same dictionary this is worth about +0.17 dB on Set5 x3 and +0.10 dB on Set14
x3, and the published numbers are only reached with it. ``solver="reference"``
(default) reproduces that rule with a homotopy batched over all patches of an image
(:func:`srbench._methods.sparse.coding.nonneg_lars`), each path run on a few dozen
candidate atoms and certified against the whole dictionary (the same codes as the full
homotopy, several times faster); ``solver="exact"`` stops the same homotopy at ``lam``, and
``solver="lasso_cd"`` gets that exact solution from scikit-learn's
``sparse_encode(positive=True)``. scikit-learn's positive ``lasso_lars`` is not used: its
path can end early, and its codes below that point are not optimal.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from srbench import Method, MethodError
from srbench.protocol import imresize


class SC(Method):
    """Yang et al. (CVPR 2008) coupled-dictionary sparse coding, L1SR inference.

    Parameters
    ----------
    n_atoms : int
        Dictionary size (1024 in the reference).
    lam : float
        Weight of the L1 term of the non-negative lasso at inference; the dictionary is
        learned with ``lam / 2`` as the reference does.
    patch : int
        LR patch side.
    overlap : int
        Overlap of neighbouring LR patches (``patch - overlap`` is the grid step).
    n_samples : int
        Random training positions per scale (each also used transposed).
    epochs : int
        Passes of the online dictionary learning over the training rows.
    batch_size : int
        Mini-batch size of the dictionary learning.
    train_algorithm : {"cd", "lars"}
        scikit-learn lasso solver inside dictionary learning.
    train_max_iter : int
        Iteration cap of each lasso solve inside dictionary learning.
    solver : {"reference", "exact", "lasso_cd"}
        How each patch's non-negative lasso is solved. ``"reference"`` (default) is the
        batched LARS homotopy with SparseLab's stopping test, which ends one breakpoint
        past ``lam``: this is what produced the published numbers.
        ``"exact"`` is the same homotopy stopped exactly at ``lam``, and ``"lasso_cd"``
        the same exact solution from scikit-learn's ``sparse_encode`` (slower).
    seed : int
        Seed of the patch sampling and of the dictionary learning.
    """

    name = "sc"
    label = "SC"
    scales = frozenset({2, 3, 4})
    trainable = True
    version = "1"
    citation = (
        "J. Yang, J. Wright, T. Huang, Y. Ma, Image super-resolution as sparse "
        "representation of raw image patches, CVPR 2008"
    )

    def __init__(
        self,
        *,
        n_atoms: int = 1024,
        lam: float = 0.1,
        patch: int = 3,
        overlap: int = 2,
        n_samples: int = 40_000,
        epochs: int = 1,
        batch_size: int = 256,
        train_algorithm: str = "cd",
        train_max_iter: int = 1000,
        solver: str = "reference",
        seed: int = 0,
    ) -> None:
        self.n_atoms = n_atoms
        self.lam = lam
        self.patch = patch
        self.overlap = overlap
        self.n_samples = n_samples
        self.epochs = epochs
        self.batch_size = batch_size
        self.train_algorithm = train_algorithm
        self.train_max_iter = train_max_iter
        self.solver = solver
        self.seed = seed

    # ------------------------------------------------------------------ training
    def _fit_scale(self, images, scale):
        from .coding import learn_coupled_dictionary, sample_training_patches

        sample = sample_training_patches(
            images, scale, self.n_samples, patch=self.patch, seed=self.seed
        )
        dh, dl, info = learn_coupled_dictionary(
            sample,
            n_atoms=self.n_atoms,
            lam=self.lam,
            epochs=self.epochs,
            batch_size=self.batch_size,
            seed=self.seed,
            algorithm=self.train_algorithm,
            code_max_iter=self.train_max_iter,
            # The front end's hook (srbench train's progress bar), if it set one.
            callback=self.progress_callback,
        )
        tensors = {"dh": dh.astype(np.float32), "dl": dl.astype(np.float32)}
        return tensors, {"training_patches": int(sample.hr.shape[0]), **info}

    def _restore(self, scale: int, tensors: Mapping[str, np.ndarray]) -> None:
        from .coding import Geometry

        geometry = Geometry(scale, self.patch)
        dh, dl = tensors.get("dh"), tensors.get("dl")
        if dh is None or dl is None:
            raise MethodError(f"sc x{scale}: artifacts need 'dh' and 'dl'")
        if dh.shape[0] != geometry.hr_dim or dl.shape[0] != geometry.feature_dim:
            raise MethodError(
                f"sc x{scale}: dictionaries of shape {dh.shape}/{dl.shape} do not fit "
                f"patch={self.patch} (expected {geometry.hr_dim}/{geometry.feature_dim} rows)"
            )
        if dh.shape[1] != dl.shape[1]:
            raise MethodError(f"sc x{scale}: Dh and Dl have different atom counts")
        if not hasattr(self, "coders_"):
            self.coders_ = {}
        # Inference works in float64 (as MATLAB did); the Gram matrix is reused by every
        # image, so it is computed once here rather than per upscale call.
        dl64 = dl.astype(np.float64).T.copy()  # atoms as rows: scikit-learn's layout
        self.coders_[scale] = {
            "dh": dh.astype(np.float64),
            "dl": dl64,
            "gram": dl64 @ dl64.T,
        }

    # ------------------------------------------------------------------ inference
    def prepare(self, scale: int) -> None:
        """Compile (or load from numba's cache) the homotopy kernel, and import the feature
        filters' scipy.ndimage and the codes' scipy.sparse, outside the timed call."""
        import scipy.ndimage  # noqa: F401
        import scipy.sparse  # noqa: F401

        from . import lars_kernel

        lars_kernel.warm_up()

    def _upscale(self, lr: np.ndarray, scale: int) -> np.ndarray:
        from .coding import (
            MID_FACTOR,
            Geometry,
            feature_maps,
            nonneg_lars,
            nonneg_lasso,
            overlap_add,
            patch_starts,
            window_features,
        )

        if self.solver not in ("reference", "exact", "lasso_cd"):
            raise MethodError(
                f"sc: solver must be 'reference', 'exact' or 'lasso_cd', got {self.solver!r}"
            )
        coder = self.coders_[scale]
        geometry = Geometry(scale, self.patch)
        lr = np.asarray(lr, dtype=np.float64)
        bicubic = imresize(lr, scale)
        rows, row_w = patch_starts(lr.shape[0], self.patch, self.overlap)
        cols, col_w = patch_starts(lr.shape[1], self.patch, self.overlap)
        if rows.size == 0 or cols.size == 0:
            return bicubic  # too small for a single patch: bicubic is L1SR's fill
        mid = imresize(lr, MID_FACTOR)
        feats, means = window_features(feature_maps(mid), mid, rows, cols, geometry)
        # L1SR normalises a feature only when its norm exceeds 1 and rescales the HR patch
        # by the same norm; on [0, 1] data most features stay unnormalised.
        norms = np.linalg.norm(feats, axis=1)
        factor = np.where(norms > 1.0, norms, 1.0)
        feats /= factor[:, None]
        if self.solver == "lasso_cd":
            patches = np.empty((feats.shape[0], geometry.hr_dim))
            # Blocks of patches bound the memory of the dense codes (block x n_atoms).
            block = 4096
            for start in range(0, feats.shape[0], block):
                part = slice(start, start + block)
                codes = nonneg_lasso(coder["dl"], feats[part], self.lam, gram=coder["gram"])
                patches[part] = codes @ coder["dh"].T
        else:
            codes, _ = nonneg_lars(coder["dl"], feats, self.lam, stop=self.solver,
                                   gram=coder["gram"], sparse=True)
            patches = codes @ coder["dh"].T  # sparse codes: about a dozen atoms per patch
        patches *= (factor * geometry.hr_gain)[:, None]
        patches += means[:, None]
        total, weight = overlap_add(patches, rows, cols, row_w, col_w, geometry, bicubic.shape)
        covered = weight > 0
        out = bicubic.copy()
        out[covered] = total[covered] / weight[covered]
        return out
