"""Building blocks of Yang et al.'s coupled-dictionary sparse-coding super-resolution.

This is the CVPR'08 variant ("L1SR") that the ANR, A+ and SRCNN comparison tables ran as
"Yang et al." / "SC" (METHODS.md section 3.1):

* features are four gradient maps (first and second derivative, both directions) of a
  **2x** bicubic up-sampling of the LR image, whatever the final scale;
* the image is cut into ``patch x patch`` LR windows (3 x 3, overlap 2, i.e. a step of one
  LR pixel), each described by its ``2*patch`` square window of the four maps and
  reconstructed as a ``scale*patch`` square HR patch;
* a feature ``y`` is divided by its norm when that norm exceeds 1, coded by a
  non-negative lasso ``min lam * 1'w + 1/2 ||y - Dl w||^2, w >= 0`` (solved by a LARS
  homotopy with SparseLab's stopping rule, :func:`nonneg_lars`) and the HR patch is
  ``Dh w`` times the same norm, plus the mean of the mid-resolution patch;
* overlapping HR patches are averaged; the uncovered frame is filled by bicubic.

The dictionaries ``Dh``/``Dl`` are learned jointly on ``[Xh/sqrt(dh); Xl/sqrt(dl)]``,
column-normalised, with the L1 dictionary-learning objective
``1/2 ||X - D S||^2 + (lam/2) |S|_1`` (``||d_k|| <= 1``) and normalised separately
afterwards, as Yang's ``coupled_dic_train``.

The module only holds numpy/scipy code at import time; scikit-learn is imported inside the
functions that need it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from srbench.protocol import imresize

__all__ = [
    "MID_FACTOR",
    "REFERENCE_SCALE",
    "SCREEN_ROUNDS",
    "Geometry",
    "PatchSample",
    "feature_maps",
    "learn_coupled_dictionary",
    "nonneg_lars",
    "nonneg_lasso",
    "overlap_add",
    "patch_starts",
    "sample_training_patches",
    "window_features",
]

#: L1SR computes its features on ``imresize(lr, 2)`` at every scale (Yang's ``lz = 2``).
MID_FACTOR = 2
#: The scale Yang's code was built and published for; other scales are calibrated to it.
REFERENCE_SCALE = 3
#: Candidate atoms per signal in the successive rounds of the screened homotopy
#: (:func:`nonneg_lars`); signals left after the last round run on every atom.
SCREEN_ROUNDS = (48, 64, 128)

# MATLAB conv2(X, f, 'same') with these kernels is a correlation with the reversed kernel;
# for odd lengths MATLAB's and scipy's centring agree, and zero padding is conv2's.
_GRADIENT = np.array([1.0, 0.0, -1.0])  # conv2 with [-1 0 1]: out[i] = x[i-1] - x[i+1]
_LAPLACIAN = np.array([1.0, 0.0, -2.0, 0.0, 1.0])  # symmetric: out[i] = x[i-2]-2x[i]+x[i+2]


@dataclass(frozen=True)
class Geometry:
    """Patch sizes of the L1SR pipeline at one scale.

    Parameters
    ----------
    scale : int
        Up-scaling factor.
    patch : int
        LR patch side (3 in Yang's code).
    """

    scale: int
    patch: int = 3

    @property
    def mid_size(self) -> int:
        """Side of a feature window on the 2x mid-resolution image."""
        return MID_FACTOR * self.patch

    @property
    def hr_size(self) -> int:
        """Side of a reconstructed HR patch."""
        return self.scale * self.patch

    @property
    def feature_dim(self) -> int:
        """Length of a feature vector: four maps of ``mid_size**2`` values."""
        return 4 * self.mid_size**2

    @property
    def hr_dim(self) -> int:
        return self.hr_size**2

    @property
    def hr_gain(self) -> float:
        """Factor on ``Dh w`` that keeps the x3 reconstruction gain at other scales.

        Because ``Dh`` and ``Dl`` are normalised separately after joint training, ``Dh w``
        comes out scaled by about ``||x_l|| / ||x_h||`` (feature norm over HR-patch norm)
        of the training pairs. The features do not depend on the scale, while a
        mean-removed HR patch covering the same 3 x 3 LR pixels has ``9 s^2`` pixels, so
        its norm grows like ``s``: on T91 the median ratio is 1.78 / 1.20 / 0.90 and the
        pooled one 1.99 / 1.34 / 1.00 at x2 / x3 / x4, i.e. ``4 / s``. The published x3
        results are that gain combined with the lasso's shrinkage on [0, 1] features;
        multiplying by ``s / 3`` gives every scale the x3 gain (exactly 1 at x3). Without
        it both x2 (gain 2: overshoot, values far outside [0, 1]) and x4 (too little
        detail) come out below bicubic.
        """
        return self.scale / REFERENCE_SCALE


def patch_starts(length: int, patch: int = 3, overlap: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """0-based LR start positions of the test patch grid along one axis, with weights.

    L1SR's grid is ``2:patch-overlap:len-patch`` (1-based) followed by ``len-patch`` once
    more: it skips one LR pixel at the start and end, and makes sure the last position is
    present. When the step already lands on that position (always with overlap 2) it is
    listed twice, so the last row and column of patches count twice in the average. We keep
    that weighting (as a weight of 2, not a second solve) to stay on the reference's output.

    Parameters
    ----------
    length : int
        LR image size along the axis.
    patch, overlap : int
        LR patch side and overlap between neighbouring patches (``overlap < patch``).

    Returns
    -------
    starts : ndarray of int
        Unique, increasing 0-based start positions (empty when the image is too small).
    weights : ndarray of float
        How many times each start occurs in the reference grid.
    """
    if not 0 <= overlap < patch:
        raise ValueError(f"overlap must be in [0, {patch}), got {overlap}")
    last = length - patch - 1  # 0-based form of MATLAB's len - patch (1-based)
    if last < 1:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    grid = np.append(np.arange(1, last + 1, patch - overlap), last)
    starts, counts = np.unique(grid, return_counts=True)
    return starts.astype(np.int64), counts.astype(np.float64)


def feature_maps(mid: np.ndarray) -> np.ndarray:
    """The four gradient maps of a mid-resolution image, shape ``(4, H, W)``.

    Order: horizontal first derivative, vertical first derivative, horizontal second
    derivative, vertical second derivative (L1SR's ``lImfea``).
    """
    # scipy.ndimage costs 0.35 s to import, which the benchmark's driver paid for nothing when
    # it restored SC's dictionaries to hash them; SC's prepare imports it in the worker.
    from scipy.ndimage import correlate1d

    mid = np.asarray(mid, dtype=np.float64)
    return np.stack(
        [
            correlate1d(mid, _GRADIENT, axis=1, mode="constant"),
            correlate1d(mid, _GRADIENT, axis=0, mode="constant"),
            correlate1d(mid, _LAPLACIAN, axis=1, mode="constant"),
            correlate1d(mid, _LAPLACIAN, axis=0, mode="constant"),
        ]
    )


def _axis_index(positions: np.ndarray) -> slice | np.ndarray:
    """``positions`` as a slice when they are evenly spaced (indexing then gives a view)."""
    if positions.size == 1:
        return slice(int(positions[0]), int(positions[0]) + 1)
    if positions.size > 1:
        step = int(positions[1] - positions[0])
        if step > 0 and (np.diff(positions) == step).all():
            return slice(int(positions[0]), int(positions[-1]) + 1, step)
    return positions


def _windows(image: np.ndarray, rows: np.ndarray, cols: np.ndarray, size: int) -> np.ndarray:
    """Square windows of ``image`` (last two axes) at every (row, col) of the grid.

    Returns a view (evenly spaced grids) or a copy, shape
    ``(len(rows), len(cols), *leading, size, size)``.
    """
    view = np.lib.stride_tricks.sliding_window_view(image, (size, size), axis=(-2, -1))
    picked = view[..., _axis_index(rows), :, :, :][..., _axis_index(cols), :, :]
    lead = image.ndim - 2
    order = (lead, lead + 1, *range(lead), lead + 2, lead + 3)
    return np.transpose(picked, order)


def _windows_at(image: np.ndarray, rows: np.ndarray, cols: np.ndarray, size: int) -> np.ndarray:
    """Square windows of ``image`` (last two axes) at the paired points ``(rows[i], cols[i])``.

    Returns shape ``(len(rows), *leading, size, size)``, a copy.
    """
    view = np.lib.stride_tricks.sliding_window_view(image, (size, size), axis=(-2, -1))
    picked = view[..., rows, cols, :, :]  # (*leading, n, size, size)
    return np.ascontiguousarray(np.moveaxis(picked, -3, 0))


def window_features(
    maps: np.ndarray, mid: np.ndarray, rows: np.ndarray, cols: np.ndarray, geometry: Geometry
) -> tuple[np.ndarray, np.ndarray]:
    """Feature vectors and mid-patch means for LR starts ``rows x cols``.

    Parameters
    ----------
    maps : ndarray, shape (4, H, W)
        :func:`feature_maps` of ``mid``.
    mid : ndarray, shape (H, W)
        The 2x bicubic up-sampling of the LR image.
    rows, cols : ndarray of int
        0-based LR start positions; the windows start at ``MID_FACTOR`` times them.

    Returns
    -------
    features : ndarray, shape (len(rows) * len(cols), feature_dim)
        Row-major over the grid; each vector is the four windows one after the other.
    means : ndarray, shape (len(rows) * len(cols),)
        Mean of each mid-resolution window (L1SR adds it back to the HR patch).
    """
    size = geometry.mid_size
    mrows, mcols = MID_FACTOR * rows, MID_FACTOR * cols
    feats = _windows(maps, mrows, mcols, size).reshape(len(rows) * len(cols), -1)
    means = _windows(mid, mrows, mcols, size).mean(axis=(-2, -1)).reshape(-1)
    return feats, means


def overlap_add(
    patches: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    row_weights: np.ndarray,
    col_weights: np.ndarray,
    geometry: Geometry,
    shape: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted sum of HR patches on the grid and the per-pixel weight.

    Parameters
    ----------
    patches : ndarray, shape (len(rows) * len(cols), hr_size**2)
        Row-major HR patches, in grid order.
    rows, cols, row_weights, col_weights : ndarray
        The grid from :func:`patch_starts` for each axis.
    shape : (int, int)
        HR image shape.

    Returns
    -------
    total, weight : ndarray, shape ``shape``
        Divide the first by the second where the second is positive.
    """
    size, scale = geometry.hr_size, geometry.scale
    grid = patches.reshape(len(rows), len(cols), size, size)
    weights = np.outer(row_weights, col_weights)
    grid = grid * weights[:, :, None, None]
    total = np.zeros(shape)
    count = np.zeros(shape)
    hr_rows, hr_cols = scale * rows, scale * cols
    # Loop over the offsets inside a patch, not over patches: within one offset the target
    # pixels of different patches are distinct, so plain (slice or fancy-index) addition is
    # exact.
    for i in range(size):
        r = _axis_index(hr_rows + i)
        for j in range(size):
            index = (r, _axis_index(hr_cols + j))
            if not all(isinstance(a, slice) for a in index):
                index = np.ix_(hr_rows + i, hr_cols + j)
            total[index] += grid[:, :, i, j]
            count[index] += weights
    return total, count


# ---------------------------------------------------------------------------------- coding
def nonneg_lasso(
    dictionary: np.ndarray,
    signals: np.ndarray,
    lam: float,
    *,
    max_iter: int = 1000,
    gram: np.ndarray | None = None,
    chunk: int = 4096,
) -> np.ndarray:
    """Solve ``min_w lam * 1'w + 1/2 ||y - D' w||^2`` s.t. ``w >= 0`` with scikit-learn.

    All signals of a chunk are coded in one call to ``sparse_encode(algorithm="lasso_cd",
    positive=True)``. Its ``alpha`` is exactly ``lam`` here: ``sparse_encode`` divides it
    by the signal dimension to undo ``Lasso``'s ``1/(2 n_samples)`` scaling of the data
    term. Signals whose largest correlation with the atoms is at most ``lam`` are not sent
    to the solver: for them ``w = 0`` satisfies the optimality conditions exactly (the
    gradient at 0 is ``lam - D y >= 0``).

    ``lasso_lars`` is deliberately not offered: scikit-learn's positive LARS path can end
    early (its documentation says only coefficients down to the smallest alpha the path
    reached are reliable), and below that point it returns codes that violate the
    optimality conditions. :func:`nonneg_lars` is the homotopy to use instead.

    Parameters
    ----------
    dictionary : ndarray, shape (n_atoms, dim)
        Atoms as rows (scikit-learn's layout).
    signals : ndarray, shape (n, dim)
    lam : float
        Weight of the L1 term.
    max_iter : int
        Coordinate-descent sweeps per signal.
    gram : ndarray, optional
        ``dictionary @ dictionary.T`` if already computed.
    chunk : int
        Signals coded per call (bounds the ``chunk x n_atoms`` correlation matrix).

    Returns
    -------
    ndarray, shape (n, n_atoms), non-negative codes.
    """
    from sklearn.decomposition import sparse_encode
    from sklearn.exceptions import ConvergenceWarning

    dictionary = np.asarray(dictionary, dtype=np.float64)
    signals = np.atleast_2d(np.asarray(signals, dtype=np.float64))
    codes = np.zeros((signals.shape[0], dictionary.shape[0]))
    if gram is None:
        gram = dictionary @ dictionary.T
    for start in range(0, signals.shape[0], chunk):
        block = signals[start : start + chunk]
        corr = block @ dictionary.T
        active = np.flatnonzero(corr.max(axis=1) > lam)
        if active.size == 0:
            continue
        with warnings.catch_warnings():
            # sparse_encode's coordinate descent asks for a 1e-8 duality gap and warns when
            # a hard signal stops short of it; the codes are still usable, and a warning per
            # image would drown the benchmark's output.
            warnings.simplefilter("ignore", ConvergenceWarning)
            solved = sparse_encode(
                block[active],
                dictionary,
                gram=gram,
                cov=np.ascontiguousarray(corr[active].T),
                algorithm="lasso_cd",
                alpha=lam,
                max_iter=max_iter,
                positive=True,
                check_input=False,
            )
        # Coordinate descent stops at a tolerance; keep the constraint exact.
        codes[start + active] = np.maximum(solved, 0.0)
    return codes


def nonneg_lars(
    dictionary: np.ndarray,
    signals: np.ndarray,
    lam: float,
    *,
    stop: str = "reference",
    gram: np.ndarray | None = None,
    zero_tol: float = 1e-5,
    opt_tol: float = 1e-5,
    max_steps: int | None = None,
    chunk: int = 4096,
    screen: Sequence[int] | None = SCREEN_ROUNDS,
    sparse: bool = False,
    compiled: bool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative LARS-lasso homotopy, run on all signals at once.

    Follows the path of ``min lam' * 1'w + 1/2 ||y - D' w||^2, w >= 0`` from ``lam' =
    max(D y)`` downwards, adding the atom whose correlation catches up with the active ones
    and dropping an active atom whose coefficient reaches zero, as SparseLab's
    ``SolveLasso(D, y, N, 'nnlasso', [], lambdaStop)`` does (the solver of Yang's L1SR).
    Every step is taken by all unfinished signals together (batched linear algebra); there
    is no loop over signals.

    Parameters
    ----------
    dictionary : ndarray, shape (n_atoms, dim)
        Unit-norm atoms as rows.
    signals : ndarray, shape (n, dim)
    lam : float
        ``lambdaStop``.
    stop : {"reference", "exact"}
        ``"exact"`` stops on the path exactly at ``lam``: the lasso solution for ``lam``,
        the same as :func:`nonneg_lasso`. ``"reference"`` reproduces SparseLab's test:
        it checks the multiplier *before* each step, so it stops only after the step that
        starts at the first breakpoint at or below ``lam``, i.e. at the second breakpoint
        below ``lam``. That is what produced the published SC numbers (a less shrunk
        code).
        Signals with ``max(D y) < lam`` get ``w = 0`` in both modes.
    gram : ndarray, optional
        ``dictionary @ dictionary.T`` if already computed.
    zero_tol, opt_tol : float
        SparseLab's tolerances: step lengths below ``zero_tol`` are ignored, and the path
        ends when the multiplier falls below ``opt_tol``.
    max_steps : int, optional
        Safety cap on path steps per signal (default ``10 * dim``; SparseLab has none here).
    chunk : int
        Signals processed together (bounds memory to a few ``chunk x n_atoms`` arrays).
    screen : sequence of int, optional
        Candidate atoms per signal in the successive rounds of the screened homotopy
        (default :data:`SCREEN_ROUNDS`, see Notes); ``None`` runs every path on the whole
        dictionary. Both give the same codes.
    sparse : bool
        Return the codes as a ``scipy.sparse.csr_matrix``.
    compiled : bool, optional
        Run the screened rounds' local homotopies with the numba kernel
        (:mod:`.lars_kernel`, same steps, codes equal to round-off) or with numpy. The default
        uses the kernel when numba is installed.

    Returns
    -------
    codes : ndarray or csr_matrix, shape (n, n_atoms)
        Non-negative codes.
    lam_end : ndarray, shape (n,)
        Multiplier where each path stopped (``max(D y)`` for the zero codes): the codes
        are the exact lasso solution for this value.

    Notes
    -----
    Atoms that join at the same step (within ``zero_tol``) all join, as in SparseLab; of
    several coefficients reaching zero at once only one leaves (exact ties there do not
    occur with real-valued data). As in SparseLab, events closer than ``zero_tol`` to the
    previous one are ignored, so an atom that should join right after another event may
    join late or not at all; the result is then slightly off the exact lasso path. This is
    rare and it is the reference's behaviour.

    Each step of a path costs a pass over all atoms (their correlations move), while a
    code has about a dozen atoms out of 1024. By default (``screen``) each path therefore
    runs on a few dozen candidate atoms (those most correlated with the signal) and the
    result is certified against the whole dictionary (:func:`_certify`): the lasso
    solution at ``lam`` is unique, so a restricted one that meets the full optimality
    conditions there is it, and if no other atom reaches the multiplier between ``lam``
    and the stop (by SparseLab's tie tolerance where an atom joins), the full path takes
    the same last steps. A signal that fails is solved again on the atoms most correlated
    with its residual at ``lam``, in a larger round, and after the last round on the
    whole dictionary. The certificate is exact, so the codes are those of ``screen=None``
    to round-off (on SC's x3 dictionary and the 27,556 patches of Set5's baby: 4e-12),
    except where an atom outside the candidates is on the full path only above ``lam``
    and SparseLab's event tolerance bends the full path there (one of those patches, by
    2e-6).
    """
    if stop not in ("reference", "exact"):
        raise ValueError(f"stop must be 'reference' or 'exact', got {stop!r}")
    dictionary = np.asarray(dictionary, dtype=np.float64)
    signals = np.atleast_2d(np.asarray(signals, dtype=np.float64))
    if gram is None:
        gram = dictionary @ dictionary.T
    if max_steps is None:
        max_steps = 10 * dictionary.shape[1]
    from scipy.sparse import csr_matrix

    from . import lars_kernel

    if compiled is None:
        compiled = lars_kernel.available()
    local = lars_kernel.lars_local if compiled else _lars_local
    n, n_atoms = signals.shape[0], dictionary.shape[0]
    lam_end = np.zeros(n)
    rows, atoms, values = [], [], []
    for start in range(0, n, chunk):
        block = slice(start, min(start + chunk, n))
        if screen is None:
            codes, lam_end[block] = _lars_block(
                dictionary, gram, signals[block], lam, stop == "exact", zero_tol, opt_tol,
                max_steps,
            )
            r, a = np.nonzero(codes)
            v = codes[r, a]
        else:
            corr = signals[block] @ dictionary.T
            lam_end[block] = corr.max(axis=1) if corr.size else 0.0
            go = np.flatnonzero(lam_end[block] >= lam)
            r, a, v, lam_end[start + go] = _lars_screened(
                dictionary, gram, signals[block][go], corr[go], lam, stop == "exact",
                zero_tol, opt_tol, max_steps, screen, local,
            )
            r = go[r]
        rows.append(start + r)
        atoms.append(a)
        values.append(v)
    index = (np.concatenate(rows), np.concatenate(atoms)) if rows else ([], [])
    data = np.concatenate(values) if values else []
    codes = csr_matrix((data, index), shape=(n, n_atoms))
    return (codes if sparse else codes.toarray()), lam_end


def _lars_block(dictionary, gram, signals, lam, exact, zero_tol, opt_tol, max_steps):
    """One chunk of :func:`nonneg_lars` (state arrays hold only unfinished signals)."""
    n, n_atoms = signals.shape[0], dictionary.shape[0]
    codes = np.zeros((n, n_atoms))
    corr_all = signals @ dictionary.T
    lam_end = corr_all.max(axis=1) if n else np.zeros(0)
    # SparseLab returns no solution when the first multiplier is below lambdaStop.
    ids = np.flatnonzero(lam_end >= lam)
    corr = corr_all[ids]
    m = ids.size
    active = corr.argmax(axis=1)[:, None] if m else np.zeros((0, 1), dtype=np.int64)
    count = np.ones(m, dtype=np.int64)
    coef = np.zeros((m, 1))  # coefficients of the active atoms, aligned with ``active``
    excluded = np.zeros((m, n_atoms), dtype=bool)  # collinear atoms, as SparseLab's list
    # Atoms tied with the first one within zero_tol start active too.
    pending = np.abs(corr - lam_end[ids, None]) < zero_tol
    pending[np.arange(m), active[:, 0]] = False
    active, coef, count = _join(gram, active, coef, count, excluded, pending, zero_tol)
    steps = 0
    while m:
        steps += 1
        width = active.shape[1]
        rows = np.arange(m)
        slot = np.arange(width)[None, :] < count[:, None]
        act = np.where(slot, active, 0)
        # The multiplier is the correlation of the first active atom (all active ones share
        # it up to round-off).
        level = corr[rows, act[:, 0]]
        # Equiangular direction: G_AA dx = sign(corr_A); padding slots solve to 0.
        g_aa = gram[act[:, :, None], act[:, None, :]]
        both = slot[:, :, None] & slot[:, None, :]
        g_aa = np.where(both, g_aa, np.eye(width)[None])
        rhs = np.where(slot, np.sign(corr[rows[:, None], act]), 0.0)
        direction = np.linalg.solve(g_aa, rhs[..., None])[..., 0]
        # How the correlations move along it: G[:, A] dx, one gathered row block per slot.
        moves = np.zeros((m, n_atoms))
        for j in range(width):
            moves += gram[act[:, j]] * direction[:, j, None]
        # First active coefficient to hit zero (the lasso modification).
        moving = slot & (np.abs(direction) > zero_tol)
        with np.errstate(divide="ignore", invalid="ignore"):
            cross = np.where(moving, -coef / np.where(moving, direction, 1.0), np.inf)
        cross = np.where(cross > zero_tol, cross, np.inf)
        drop_slot = cross.argmin(axis=1)
        gamma_drop = cross[rows, drop_slot]
        # First inactive atom whose correlation reaches the multiplier (positive side only).
        free = ~excluded
        free[np.broadcast_to(rows[:, None], slot.shape)[slot], active[slot]] = False
        with np.errstate(divide="ignore", invalid="ignore"):
            join = (level[:, None] - corr) / (1.0 - moves + 1e-12)
        join = np.where(free & (join >= zero_tol), join, np.inf)
        newcomer = join.argmin(axis=1)
        gamma_join = join[rows, newcomer]
        gamma = np.minimum(gamma_join, gamma_drop)
        # Nothing left to join or drop: the path ends at the least-squares fit (lam' = 0).
        gamma = np.where(np.isfinite(gamma), gamma, level)
        if exact:
            cut = level - gamma < lam
            gamma = np.where(cut, level - lam, gamma)
        coef = coef + gamma[:, None] * np.where(slot, direction, 0.0)
        corr = corr - gamma[:, None] * moves
        # SparseLab tests the multiplier from before the step ("reference"); "exact" has cut
        # the step at lam instead.
        finished = (level - gamma < opt_tol) | (steps >= max_steps)
        finished |= cut if exact else (level <= lam)
        if finished.any():
            done = np.flatnonzero(finished)
            target = ids[done]
            for j in range(width):
                valid = slot[done, j]
                codes[target[valid], active[done[valid], j]] = coef[done[valid], j]
            lam_end[target] = level[done] - gamma[done]
        keep = ~finished
        adding = keep & (gamma_join <= gamma_drop)
        dropping = keep & (gamma_drop <= gamma_join)
        if adding.any():
            # Every atom that reaches the multiplier at this step joins (ties within
            # zero_tol, as SparseLab's newIndices), in the order of their indices.
            pending = np.zeros((m, n_atoms), dtype=bool)
            add = np.flatnonzero(adding)
            pending[add] = np.abs(join[add] - gamma_join[add, None]) < zero_tol
            active, coef, count = _join(gram, active, coef, count, excluded, pending, zero_tol)
        if dropping.any():
            drop = np.flatnonzero(dropping)
            # Remove the slot and close the gap, keeping the order of the others.
            order = np.arange(active.shape[1])[None, :].repeat(drop.size, axis=0)
            key = np.where(order == drop_slot[drop, None], active.shape[1], order)
            perm = np.argsort(key, axis=1, kind="stable")
            active[drop] = np.take_along_axis(active[drop], perm, axis=1)
            coef[drop] = np.take_along_axis(coef[drop], perm, axis=1)
            count[drop] -= 1
            coef[drop, count[drop]] = 0.0
            excluded[drop] = False  # SparseLab resets its collinear list on a removal
        ids, corr, active, coef, count, excluded = (
            ids[keep], corr[keep], active[keep], coef[keep], count[keep], excluded[keep]
        )
        m = ids.size
    return codes, lam_end


def _join(gram, active, coef, count, excluded, pending, zero_tol):
    """Append the ``pending`` atoms of each row to its active set, lowest index first.

    An atom in the span of the active ones (SparseLab's Cholesky-update test: residual
    ``1 - g' G_AA^-1 g <= zero_tol``) is marked in ``excluded`` instead (in place).
    Returns the updated ``active``, ``coef`` and ``count``.
    """
    pending = pending.copy()
    while pending.any():
        rows = np.flatnonzero(pending.any(axis=1))
        atom = pending[rows].argmax(axis=1)
        pending[rows, atom] = False
        width = active.shape[1]
        slot = np.arange(width)[None, :] < count[rows, None]
        act = np.where(slot, active[rows], 0)
        g_aa = gram[act[:, :, None], act[:, None, :]]
        g_aa = np.where(slot[:, :, None] & slot[:, None, :], g_aa, np.eye(width)[None])
        g_new = np.where(slot, gram[act, atom[:, None]], 0.0)
        proj = np.linalg.solve(g_aa, g_new[..., None])[..., 0]
        residual = gram[atom, atom] - np.einsum("ij,ij->i", g_new, proj)
        collinear = residual <= zero_tol
        excluded[rows[collinear], atom[collinear]] = True
        rows, atom = rows[~collinear], atom[~collinear]
        if rows.size == 0:
            continue
        if (count[rows] >= width).any():
            active = np.pad(active, ((0, 0), (0, 1)))
            coef = np.pad(coef, ((0, 0), (0, 1)))
        active[rows, count[rows]] = atom
        coef[rows, count[rows]] = 0.0
        count[rows] += 1
    return active, coef, count


# ------------------------------------------------------------------ screened homotopy
#: Signals x candidates solved together by :func:`_lars_local` (bounds its working set).
_LOCAL_BUDGET = 1 << 19


def _lars_screened(dictionary, gram, signals, corr, lam, exact, zero_tol, opt_tol, max_steps,
                   rounds, local=None):
    """Codes of signals whose paths start (``max(corr) >= lam``), by screened homotopies.

    Each round runs the homotopy of every unfinished signal on ``K`` candidate atoms only
    (:func:`_lars_local`) and then certifies the result against the whole dictionary
    (:func:`_certify`). The non-negative lasso solution at ``lam`` is unique, so a
    restricted solution that satisfies the full optimality conditions at ``lam`` is the
    solution, whatever path led to it; and a restricted path on which no other atom
    reaches the multiplier from ``lam`` down to its stop takes the same last steps as the
    full one. The first round's candidates are the atoms most correlated with the signal;
    a signal that fails takes the atoms most correlated with its residual at ``lam`` into
    the next, larger round; what is left after the last round runs the full homotopy
    (:func:`_lars_block`).

    ``local`` is the local homotopy (:func:`_lars_local` or its compiled twin).

    Returns ``(rows, atoms, values, lam_end)``: the non-zero codes as triplets.
    """
    local = local or _lars_local
    n, n_atoms = corr.shape
    lam_end = np.zeros(n)
    found = []
    todo = np.arange(n)
    score = corr
    dict32 = np.ascontiguousarray(dictionary.T, dtype=np.float32)
    for k in rounds:
        if todo.size == 0:
            break
        k = min(int(k), n_atoms)
        # Candidates in atom order, so tied atoms join in the full homotopy's order.
        cand = _top_candidates(score, k)
        step = max(256, _LOCAL_BUDGET // k)
        passed = np.zeros(todo.size, dtype=bool)
        scores = np.empty((todo.size, n_atoms), dtype=np.float32)
        for start in range(0, todo.size, step):
            part = slice(start, start + step)
            rows, sub = todo[part], cand[part]
            path = local(gram, sub, np.take_along_axis(corr[rows], sub, axis=1), lam,
                         exact, zero_tol, opt_tol, max_steps)
            ok, scores[part] = _certify(dictionary, dict32, signals[rows], sub, path, lam,
                                        exact, zero_tol)
            passed[part] = ok
            r, c = np.nonzero(path["codes"] * ok[:, None])
            found.append((rows[r], sub[r, c], path["codes"][r, c]))
            lam_end[rows[ok]] = path["lam_end"][ok]
        todo, score = todo[~passed], scores[~passed]
    if todo.size:
        codes, lam_end[todo] = _lars_block(dictionary, gram, signals[todo], lam, exact,
                                           zero_tol, opt_tol, max_steps)
        r, a = np.nonzero(codes)
        found.append((todo[r], a, codes[r, a]))
    if not found:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0), lam_end
    rows, atoms, values = (np.concatenate(parts) for parts in zip(*found))
    return rows, atoms, values, lam_end


def _top_candidates(score, k):
    """The ``k`` largest entries of each row of ``score``, as column indices in increasing order."""
    n = score.shape[1]
    if k >= n:
        return np.broadcast_to(np.arange(n), score.shape).copy()
    threshold = np.partition(score, n - k, axis=1)[:, n - k]
    mask = score >= threshold[:, None]
    counts = np.count_nonzero(mask, axis=1)
    cand = np.empty((score.shape[0], k), dtype=np.int64)
    plain = counts == k
    cand[plain] = np.nonzero(mask[plain])[1].reshape(-1, k)
    if not plain.all():  # ties at the threshold: any k of them will do
        tied = np.flatnonzero(~plain)
        cand[tied] = np.sort(np.argpartition(-score[tied], k - 1, axis=1)[:, :k], axis=1)
    return cand


def _residual(dictionary, signals, cand, codes):
    """``y - D' w`` for local codes ``codes`` on candidates ``cand``."""
    from scipy.sparse import csr_matrix

    r, c = np.nonzero(codes)
    sparse = csr_matrix((codes[r, c], (r, cand[r, c])),
                        shape=(signals.shape[0], dictionary.shape[0]))
    return signals - sparse @ dictionary


def _certify(dictionary, dict32, signals, cand, path, lam, exact, zero_tol):
    """Whether each restricted path is the full path, and the correlations at ``lam``.

    An atom outside the candidates must stay strictly below the multiplier at ``lam`` and,
    for SparseLab's stop, at the start and the end of the last step (the correlations are
    affine in the multiplier between these points, so checking them covers the segments).
    At the start of the last step, where atoms join, "below" means by more than
    SparseLab's tie tolerance (``zero_tol`` in step length, i.e. ``zero_tol (1 + ||u||)``
    in correlation, ``u`` the equiangular vector), since the full homotopy would let an
    atom that close join there too.

    Every atom's correlation ``c_j = d_j' r`` with the residual at ``lam`` comes from one
    float32 product, whose error is below ``eps = 2e-5 ||r||`` (144-term dot products with
    unit-norm atoms, about 1e-5 relative). At the other points ``b``,
    ``|c_j(b) - c_j(lam)| <= ||r(b) - r(lam)||``; the atoms this bound does not clear are
    multiplied out (in float64 when few, else all of them in float32 with its ``eps``).
    The float32 error can only fail a certificate, never pass a wrong one.

    Returns ``ok`` (bool per signal) and the float32 correlations at ``lam`` (the next
    round's scores).
    """
    r_lam = _residual(dictionary, signals, cand, path["codes"] if exact else path["w_lam"])
    corr = r_lam.astype(np.float32) @ dict32
    inside = np.take_along_axis(corr, cand, axis=1)
    np.put_along_axis(corr, cand, -np.inf, axis=1)
    eps = 2e-5 * np.linalg.norm(r_lam, axis=1) + 1e-9
    top = corr.max(axis=1)
    ok = top + eps < lam
    if not exact:
        tie = zero_tol * (1.0 + path["unorm"])
        for local, level, margin in ((path["w_start"], path["level_start"], tie),
                                     (path["codes"], path["lam_end"], 1e-9)):
            check = np.flatnonzero(ok)
            res = _residual(dictionary, signals[check], cand[check], local[check])
            shift = np.linalg.norm(res - r_lam[check], axis=1) * (1.0 + 1e-6)
            limit = (level - margin)[check]
            clear = limit - shift - eps[check]  # float32 correlations below this are fine
            unsure = np.flatnonzero(top[check] >= clear)
            if unsure.size == 0:
                continue
            near = corr[check[unsure]] >= clear[unsure, None]
            counts = np.count_nonzero(near, axis=1)
            few = counts <= 32
            rows, atoms = np.nonzero(near[few])
            if rows.size:
                rows = unsure[np.flatnonzero(few)[rows]]
                value = np.einsum("pd,pd->p", dictionary[atoms], res[rows])
                ok[check[rows[value >= limit[rows]]]] = False
            many = unsure[~few]
            if many.size:
                far = res[many].astype(np.float32) @ dict32
                np.put_along_axis(far, cand[check[many]], -np.inf, axis=1)
                eps_b = 2e-5 * np.linalg.norm(res[many], axis=1) + 1e-9
                ok[check[many]] = far.max(axis=1) + eps_b < limit[many]
    np.put_along_axis(corr, cand, inside, axis=1)
    return ok, corr


def _lars_local(gram, cand, corr, lam, exact, zero_tol, opt_tol, max_steps):
    """The homotopy of :func:`_lars_block` on each signal's own candidate atoms.

    ``cand`` ``(n, K)`` are each signal's candidate atoms (increasing) and ``corr``
    ``(n, K)`` their correlations with it; every signal has ``max(corr) >= lam``. The
    steps, tolerances, tie and stopping rules are those of :func:`_lars_block`. The Gram
    rows of the active atoms (over the candidates) are gathered when an atom joins, and
    the equiangular direction comes from the inverse of the active Gram block, bordered
    when an atom joins and downdated when one leaves (on the real dictionaries the codes
    agree with :func:`_lars_block`'s fresh solve at every step to 1e-11). The active
    correlations all equal the multiplier, which stays above ``opt_tol > 0`` while a path
    runs, so their signs (the right-hand side) are all +1.

    Returns a dict of ``(n, K)`` local codes: ``codes`` at the stop, and for the reference
    stop ``w_lam`` (on the path at ``lam``) and ``w_start`` (the start of the last step, at
    multiplier ``level_start``), with ``unorm`` (the norm of the equiangular vector on the
    segment through ``lam``) and ``lam_end``.
    """
    n, k = corr.shape
    out = {"codes": np.zeros((n, k)), "lam_end": np.zeros(n)}
    if not exact:
        out.update(w_lam=np.zeros((n, k)), w_start=np.zeros((n, k)),
                   level_start=np.zeros(n), unorm=np.zeros(n))
    flat = gram.reshape(-1)
    n_atoms = gram.shape[0]
    ids = np.arange(n)
    first = corr.argmax(axis=1)
    lam0 = corr[ids, first]
    rows_g = np.take(flat, (cand[ids, first] * n_atoms)[:, None] + cand)[:, None, :]
    state = _State(active=first[:, None].copy(), used=np.ones((n, 1), dtype=bool),
                   coef=np.zeros((n, 1)), rows_g=rows_g,
                   inverse=1.0 / rows_g[ids, :, first][:, :, None])
    excluded = np.zeros((n, k), dtype=bool)
    # Atoms tied with the first one within zero_tol start active too.
    pending = np.abs(corr - lam0[:, None]) < zero_tol
    pending[ids, first] = False
    tied = np.flatnonzero(pending.any(axis=1))
    any_excluded = bool(tied.size) and _grow(flat, n_atoms, cand, state, excluded, tied,
                                              pending[tied], zero_tol)
    recorded = np.zeros(n, dtype=bool)
    steps = 0
    while ids.size:
        steps += 1
        m = ids.size
        rows = np.arange(m)
        active = state.active
        slot = state.used
        direction = state.direction()
        moves = np.einsum("mw,mwk->mk", direction, state.rows_g)
        level = corr[rows, active[rows, slot.argmax(axis=1)]]
        moving = slot & (np.abs(direction) > zero_tol)
        with np.errstate(divide="ignore", invalid="ignore"):
            cross = np.where(moving, -state.coef / np.where(moving, direction, 1.0), np.inf)
            join = (level[:, None] - corr) / (1.0 - moves + 1e-12)
        cross[~(cross > zero_tol)] = np.inf
        drop_slot = cross.argmin(axis=1)
        gamma_drop = cross[rows, drop_slot]
        join[~(join >= zero_tol)] = np.inf
        r_act, s_act = np.nonzero(slot)
        join[r_act, active[r_act, s_act]] = np.inf
        if any_excluded:
            join[excluded] = np.inf
        newcomer = join.argmin(axis=1)
        gamma_join = join[rows, newcomer]
        gamma = np.minimum(gamma_join, gamma_drop)
        # Nothing left to join or drop: the path ends at the least-squares fit (lam' = 0).
        gamma = np.where(np.isfinite(gamma), gamma, level)
        if exact:
            cut = level - gamma < lam
            gamma = np.where(cut, level - lam, gamma)
        else:
            crossing = ~recorded & (level - gamma <= lam)
            if crossing.any():
                c = np.flatnonzero(crossing)
                to_lam = np.clip(level[c] - lam, 0.0, gamma[c])
                _scatter(out["w_lam"], ids[c], active[c], slot[c],
                         state.coef[c] + to_lam[:, None] * direction[c])
                out["unorm"][ids[c]] = np.sqrt(np.maximum(direction[c].sum(axis=1), 0.0))
                recorded |= crossing
        new_coef = state.coef + gamma[:, None] * direction
        corr -= gamma[:, None] * moves
        # SparseLab tests the multiplier from before the step ("reference"); "exact" has cut
        # the step at lam instead.
        finished = (level - gamma < opt_tol) | (steps >= max_steps)
        finished |= cut if exact else (level <= lam)
        if finished.any():
            done = np.flatnonzero(finished)
            _scatter(out["codes"], ids[done], active[done], slot[done], new_coef[done])
            out["lam_end"][ids[done]] = level[done] - gamma[done]
            if not exact:
                _scatter(out["w_start"], ids[done], active[done], slot[done],
                         state.coef[done])
                out["level_start"][ids[done]] = level[done]
        state.coef = new_coef
        keep = ~finished
        if not keep.all():
            state.keep(keep)
            ids, corr, cand, recorded = ids[keep], corr[keep], cand[keep], recorded[keep]
            if any_excluded:
                excluded = excluded[keep]
            join, gamma_join, gamma_drop, drop_slot = (
                join[keep], gamma_join[keep], gamma_drop[keep], drop_slot[keep])
        adding = np.flatnonzero(gamma_join <= gamma_drop)
        dropping = np.flatnonzero(gamma_drop <= gamma_join)
        if adding.size:
            # Every atom that reaches the multiplier at this step joins (ties within
            # zero_tol, as SparseLab's newIndices), in the order of their indices.
            pending = np.abs(join[adding] - gamma_join[adding, None]) < zero_tol
            any_excluded |= _grow(flat, n_atoms, cand, state, excluded, adding, pending,
                                  zero_tol)
        if dropping.size:
            state.drop(dropping, drop_slot[dropping])
            if any_excluded:
                excluded[dropping] = False  # SparseLab resets its collinear list on removal
    return out


class _State:
    """Active sets of a stack of local homotopies, in slots of a common width.

    ``used`` marks the occupied slots, ``active`` maps a slot to its candidate index and
    ``coef`` holds the coefficients; ``rows_g`` the Gram rows of the active atoms over the
    candidates and ``inverse`` the inverse of the active Gram block, zero outside the used
    slots. A leaving atom frees its slot (no reordering); a joining one takes the first
    free slot. Slot order only decides which active correlation stands for the multiplier
    (all are equal to round-off).
    """

    def __init__(self, active, used, coef, rows_g, inverse):
        self.active, self.used, self.coef = active, used, coef
        self.rows_g, self.inverse = rows_g, inverse

    def direction(self):
        """``G_AA^-1 1`` on the used slots (zero on the others)."""
        return self.inverse.sum(axis=2)

    def keep(self, keep):
        for name in ("active", "used", "coef", "rows_g", "inverse"):
            setattr(self, name, getattr(self, name)[keep])

    def widen(self, more):
        self.active = np.pad(self.active, ((0, 0), (0, more)))
        self.used = np.pad(self.used, ((0, 0), (0, more)))
        self.coef = np.pad(self.coef, ((0, 0), (0, more)))
        self.rows_g = np.pad(self.rows_g, ((0, 0), (0, more), (0, 0)))
        self.inverse = np.pad(self.inverse, ((0, 0), (0, more), (0, more)))

    def drop(self, rows, drop_slot):
        """Free slot ``drop_slot`` of each of ``rows``.

        The inverse of the remaining block is the Schur-complement downdate
        ``B - B[:, p] B[p, :] / B[p, p]`` of the current one, with row and column ``p``
        zeroed.
        """
        r = np.arange(rows.size)
        inv = self.inverse[rows]
        column = inv[r, :, drop_slot]
        inv -= column[:, :, None] * (inv[r, drop_slot, :] / column[r, drop_slot, None])[:, None]
        inv[r, drop_slot, :] = 0.0
        inv[r, :, drop_slot] = 0.0
        self.inverse[rows] = inv
        self.used[rows, drop_slot] = False
        self.coef[rows, drop_slot] = 0.0


def _scatter(target, rows, active, slot, values):
    """``target[rows, active] = values`` on the used slots (local dense codes)."""
    r, s = np.nonzero(slot)
    target[rows[r], active[r, s]] = values[r, s]


def _grow(flat, n_atoms, cand, state, excluded, rows, pending, zero_tol):
    """:func:`_join` on local candidates: append the ``pending`` atoms of ``rows``.

    ``pending`` ``(len(rows), K)`` marks the atoms joining each of ``rows``; they are
    appended lowest index first, with their Gram rows over the candidates, the active
    block and its inverse bordered. An atom with ``g_jj - g_Aj' G_AA^-1 g_Aj <= zero_tol``
    (in the span of the active ones; SparseLab's Cholesky-update test) is marked in
    ``excluded`` instead (in place). Returns whether any atom was excluded.
    """
    hit = False
    while rows.size:
        atom = pending.argmax(axis=1)
        slot = state.used[rows]
        g_new = np.take(flat, (cand[rows, atom] * n_atoms)[:, None] + cand[rows])  # (r, K)
        r = np.arange(rows.size)
        g_aj = np.where(slot, g_new[r[:, None], state.active[rows]], 0.0)
        u = np.einsum("rij,rj->ri", state.inverse[rows], g_aj)
        s = g_new[r, atom] - np.einsum("ri,ri->r", g_aj, u)
        collinear = s <= zero_tol
        if collinear.any():
            hit = True
            excluded[rows[collinear], atom[collinear]] = True
        fine = np.flatnonzero(~collinear)
        joining = rows[fine]
        if joining.size:
            if state.used[joining].all(axis=1).any():
                more = 4  # a few slots at once: each widening copies the state
                state.widen(more)
                u, g_aj = (np.pad(a, ((0, 0), (0, more))) for a in (u, g_aj))
            at = (~state.used[joining]).argmax(axis=1)  # the first free slot
            u, s, g_aj = u[fine], s[fine], g_aj[fine]
            # Bordering: [[B + u u'/s, -u/s], [-u'/s, 1/s]] with the newcomer in slot ``at``
            # (u is zero there: the inverse is zero on unused slots).
            v = u / s[:, None]
            if joining.size * 2 >= state.used.shape[0]:  # most rows: update all in place
                u_all = np.zeros((state.used.shape[0], u.shape[1]))
                v_all = np.zeros_like(u_all)
                u_all[joining], v_all[joining] = u, v
                state.inverse += u_all[:, :, None] * v_all[:, None, :]
            else:
                state.inverse[joining] += u[:, :, None] * v[:, None, :]
            state.inverse[joining, at, :] = -v
            state.inverse[joining, :, at] = -v
            state.inverse[joining, at, at] = 1.0 / s
            state.rows_g[joining, at] = g_new[fine]
            state.active[joining, at] = atom[fine]
            state.coef[joining, at] = 0.0
            state.used[joining, at] = True
        pending[r, atom] = False
        more_left = pending.any(axis=1)
        rows, pending = rows[more_left], pending[more_left]
    return hit


# -------------------------------------------------------------------------------- training
@dataclass
class PatchSample:
    """Training pairs: HR targets (mean removed) and LR features, one row per patch."""

    hr: np.ndarray
    lr: np.ndarray


def _allocate(sizes: Sequence[int], total: int) -> np.ndarray:
    """Patches per image, proportional to its pixel count (``rnd_smp_dictionary``)."""
    sizes = np.asarray(sizes, dtype=np.float64)
    return np.floor(sizes * total / sizes.sum()).astype(np.int64)


def sample_training_patches(
    images: Sequence[np.ndarray], scale: int, n_samples: int, *, patch: int = 3, seed: int = 0
) -> PatchSample:
    """Random coupled training patches from HR luminance images, plus their transposes.

    Follows Yang's ``rnd_smp_dictionary``: every image is modcropped, made LR by bicubic
    ``1/scale`` and mid-resolution by a 2x bicubic up-sampling of that; ``n_samples``
    positions are drawn over all images in proportion to their size, and each gives the
    mean-removed ``scale*patch`` HR patch and the four gradient windows of the mid image.
    Each pair is also added transposed, so there are ``2 * n`` rows.

    Deliberate differences from the MATLAB code (documented in ``methods/sc.py``):
    images stay in float [0, 1] (the reference rounds LR and mid to uint8 on 0-255; the
    dictionaries are scale-invariant through the normalisation); positions are drawn
    uniformly without replacement (the reference takes all columns of a few random rows);
    the transposed feature swaps the horizontal and vertical maps so it is the true feature
    of the transposed patch (the reference transposes each map in place).

    Parameters
    ----------
    images : sequence of ndarray
        HR luminance, uint8 (or float in [0, 1]).
    scale : int
    n_samples : int
        Number of positions before the transposition doubling.
    patch : int
        LR patch side.
    seed : int
        Seed of the position draw.
    """
    from srbench.protocol import modcrop

    geometry = Geometry(scale, patch)
    rng = np.random.default_rng(seed)
    prepared = []
    for image in images:
        hr = modcrop(np.asarray(image), scale)
        hr = hr.astype(np.float64) / 255.0 if hr.dtype == np.uint8 else hr.astype(np.float64)
        prepared.append(hr)
    counts = _allocate([im.size for im in prepared], n_samples)
    hr_rows, lr_rows = [], []
    for hr, count in zip(prepared, counts):
        lr = imresize(hr, 1.0 / scale)
        # Start positions 0 .. len-patch-lz-1: the mid window and the HR patch stay inside
        # the image with a margin (the reference's randperm range is one position shorter).
        n_r = lr.shape[0] - patch - MID_FACTOR
        n_c = lr.shape[1] - patch - MID_FACTOR
        if count == 0 or n_r < 1 or n_c < 1:
            continue
        count = min(int(count), n_r * n_c)
        flat = rng.choice(n_r * n_c, size=count, replace=False)
        r, c = np.divmod(flat, n_c)
        mid = imresize(lr, MID_FACTOR)
        maps = feature_maps(mid)
        size = geometry.mid_size
        feats = _windows_at(maps, MID_FACTOR * r, MID_FACTOR * c, size)  # (count, 4, s, s)
        hsize = geometry.hr_size
        hpatches = _windows_at(hr, scale * r, scale * c, hsize)  # (count, hs, hs)
        hpatches = hpatches - hpatches.mean(axis=(1, 2), keepdims=True)
        flipped_feats = feats[:, [1, 0, 3, 2]].transpose(0, 1, 3, 2)
        flipped_hr = hpatches.transpose(0, 2, 1)
        hr_rows += [hpatches.reshape(count, -1), flipped_hr.reshape(count, -1)]
        lr_rows += [feats.reshape(count, -1), flipped_feats.reshape(count, -1)]
    if not hr_rows:
        raise ValueError("no training patches: images too small for this scale")
    return PatchSample(hr=np.concatenate(hr_rows), lr=np.concatenate(lr_rows))


def _joint_matrix(sample: PatchSample, min_norm: float) -> np.ndarray:
    """Rows ``[xh/sqrt(dh), xl/sqrt(dl)]`` normalised to unit length (near-zero rows dropped)."""
    joint = np.hstack(
        [sample.hr / np.sqrt(sample.hr.shape[1]), sample.lr / np.sqrt(sample.lr.shape[1])]
    )
    norms = np.linalg.norm(joint, axis=1)
    keep = norms > min_norm
    return joint[keep] / norms[keep, None]


def learn_coupled_dictionary(
    sample: PatchSample,
    *,
    n_atoms: int = 1024,
    lam: float = 0.1,
    epochs: int = 2,
    batch_size: int = 256,
    seed: int = 0,
    algorithm: str = "cd",
    code_max_iter: int = 1000,
    callback: Callable[[int, int, str], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Learn the coupled dictionaries ``Dh`` and ``Dl`` as Yang's ``coupled_dic_train``.

    The joint, unit-norm rows are fitted by scikit-learn's
    ``MiniBatchDictionaryLearning`` with ``alpha = lam / 2`` (the reference passes
    ``lambda/2`` to Lee et al.'s solver, whose objective ``1/2||X-BS||^2 + beta|S|_1`` with
    ``||b_k|| <= 1`` is scikit-learn's), initialised from ``n_atoms`` random rows. Codes are
    signed during training, as in the reference; only inference is non-negative.

    Parameters
    ----------
    sample : PatchSample
        Training pairs from :func:`sample_training_patches`.
    n_atoms : int
        Dictionary size.
    lam : float
        Inference sparsity weight; training uses ``lam / 2`` like the reference.
    epochs : int
        Passes over the rows (the online algorithm needs far fewer than the reference's
        50 batch iterations).
    batch_size : int
        Rows per mini-batch.
    seed : int
        Seed of the initial atoms and of the shuffling.
    algorithm : {"cd", "lars"}
        scikit-learn's lasso solver for the training codes. ``"cd"`` is several times
        faster here.
    code_max_iter : int
        Iteration cap of each training lasso solve.
    callback : callable, optional
        Called as ``callback(done, total, info)`` after every mini-batch (progress bars).

    Returns
    -------
    dh : ndarray, shape (hr_dim, n_atoms)
    dl : ndarray, shape (feature_dim, n_atoms)
        Columns normalised to unit length separately.
    info : dict
        Training statistics for the manifest.
    """
    from sklearn.decomposition import MiniBatchDictionaryLearning

    # Near-zero rows carry no direction; the reference drops norm <= 1e-5 on 0-255 data.
    joint = _joint_matrix(sample, min_norm=1e-5 / 255.0)
    rng = np.random.default_rng(seed)
    if joint.shape[0] < n_atoms:
        raise ValueError(f"need at least {n_atoms} training rows, got {joint.shape[0]}")
    init = joint[rng.choice(joint.shape[0], size=n_atoms, replace=False)].copy()
    total = epochs * int(np.ceil(joint.shape[0] / batch_size))
    done = 0

    def on_step(_locals: dict) -> None:
        nonlocal done
        done += 1
        callback(done, total, f"{joint.shape[0]} rows, {n_atoms} atoms")

    learner = MiniBatchDictionaryLearning(
        n_components=n_atoms,
        alpha=lam / 2.0,
        max_iter=epochs,
        fit_algorithm=algorithm,
        transform_max_iter=code_max_iter,
        batch_size=batch_size,
        shuffle=True,
        dict_init=init,
        random_state=seed,
        callback=on_step if callback is not None else None,
        # Run the requested epochs: the early-stopping heuristics would make the result
        # depend on noisy mini-batch costs.
        tol=0.0,
        max_no_improvement=None,
    )
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        # The per-batch lasso solves warn when they stop at code_max_iter; that bound is a
        # deliberate speed/accuracy trade-off of the training, not a fault.
        warnings.simplefilter("ignore", ConvergenceWarning)
        learner.fit(joint)
    atoms = learner.components_.T  # (dh + dl, n_atoms)
    dh_dim = sample.hr.shape[1]
    dh, dl = atoms[:dh_dim], atoms[dh_dim:]
    dh = dh / np.maximum(np.linalg.norm(dh, axis=0, keepdims=True), 1e-12)
    dl = dl / np.maximum(np.linalg.norm(dl, axis=0, keepdims=True), 1e-12)
    info = {"training_rows": int(joint.shape[0]), "steps": int(learner.n_steps_)}
    return dh, dl, info

