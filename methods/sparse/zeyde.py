"""Zeyde et al.'s features, PCA and K-SVD dictionaries, shared by the whole family.

Zeyde, Elad and Protter (2010) as run in Timofte's ANR/A+ framework (METHODS.md section 2):
every method of the family (``ksvd``, ``ne_lle``, ``ne_nnls``, ``gr``, ``anr``, ``aplus``)
works on 3x3-LR-pixel windows of the bicubic ("mid-res") image, described by the responses
of four gradient/Laplacian filters, projected on an uncentred PCA basis, and coded on a
1024-atom low-resolution dictionary ``Dl`` learned by K-SVD, with a high-resolution
dictionary ``Dh`` (residual HR patches) fitted by least squares on the final codes.

Conventions
-----------
- Images are float arrays in [0, 1] (the protocol's single-precision pipeline).
- Patches are vectorised column-major (row index fastest), as MATLAB's ``X(grid)``; a
  feature vector stacks the patches of the four filter responses in the order
  G, G^T, L, L^T.
- Patch grids enumerate top-left corners column-major (row index fastest), 0-based.
- Signals are stored one per row (``(n, d)``) for C-contiguous speed; dictionaries keep the
  MATLAB orientation, one atom per column (``(d, n_atoms)``).
- Artifact names every method of the family uses in its safetensors: ``"V_pca"`` (PCA
  basis, ``(4 (3s)^2, k)``), ``"Dl"`` (``(k, n_atoms)``, unit-norm atoms) and ``"Dh"``
  (``((3s)^2, n_atoms)``), all float32.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from srbench import memory
from srbench.protocol import imresize, modcrop

__all__ = [
    "ARTIFACT_NAMES",
    "BORDER",
    "WINDOW",
    "GroupedRows",
    "assemble",
    "codes_to_sparse",
    "collect",
    "extract_patches",
    "feature_maps",
    "fit_pca",
    "gradient_filters",
    "ksvd",
    "learn_dictionaries",
    "omp",
    "overlap_add",
    "patch_size",
    "sampling_grid",
    "upscale_features",
]

log = logging.getLogger(__name__)

#: LR window side (pixels) and ignored LR border, identical for every scale.
WINDOW = 3
BORDER = 1
#: Names of the float32 tensors every Zeyde-family artifact holds.
ARTIFACT_NAMES = ("V_pca", "Dl", "Dh")
#: Signals sparse-coded at once. The (chunk, n_atoms) correlation matrices then stay in
#: cache (4-8 MB at 1024 atoms): measured 2x faster than 8192, and memory stays bounded.
_OMP_CHUNK = 1024


def _compiled():
    """The compiled twins of the test-time passes (:mod:`.zeyde_kernel`), or None without numba.

    They do the numpy code's arithmetic in the same order, so the outputs are the same either
    way (tested bit for bit); numpy stays the reference and the fallback.
    """
    from . import zeyde_kernel

    return zeyde_kernel if zeyde_kernel.available() else None


def patch_size(scale: int) -> int:
    """Side of a patch on the mid-res / HR grid: the 3x3 LR window times the scale."""
    return WINDOW * int(scale)


# ----------------------------------------------------------------------------- features
def gradient_filters(scale: int) -> list[np.ndarray]:
    """The four feature filters for ``scale``: G, G^T, L, L^T.

    G = [1, 0 x (s-1), -1] and L = [1, 0 x (s-1), -2, 0 x (s-1), 1] / 2, as 2-D kernels:
    G and L are rows ``(1, m)``, their transposes columns ``(m, 1)``.

    Parameters
    ----------
    scale : int
        Up-scaling factor s; the filter taps are s mid-res pixels (one LR pixel) apart.

    Returns
    -------
    list of ndarray
        ``[G, G.T, L, L.T]``, float64.
    """
    s = int(scale)
    g = np.zeros(s + 1)
    g[0], g[-1] = 1.0, -1.0
    lap = np.zeros(2 * s + 1)
    lap[0], lap[s], lap[-1] = 0.5, -1.0, 0.5
    g, lap = g[None, :], lap[None, :]
    return [g, g.T.copy(), lap, lap.T.copy()]


def _conv2_same_1d(image: np.ndarray, kernel: np.ndarray, axis: int) -> np.ndarray:
    """MATLAB ``conv2(image, kernel, 'same')`` for a 1-D kernel along ``axis``.

    True convolution with zero padding; 'same' keeps the full result from index
    ``m // 2`` (0-based), so ``out[i] = sum_j k[j] * x[i + m // 2 - j]``. For even m this is
    one sample right of scipy's ``convolve2d(mode='same')``; the x3 gradient [1 0 0 -1]
    gives ``out[i] = x[i + 2] - x[i - 1]`` as in MATLAB.
    """
    m = kernel.size
    n = image.shape[axis]
    out = np.zeros_like(image)
    for j, tap in enumerate(kernel.ravel()):
        if tap == 0:
            continue  # the filters are mostly zeros: skip them instead of convolving
        shift = m // 2 - j  # out[i] += tap * x[i + shift]
        lo, hi = max(0, -shift), min(n, n - shift)
        if lo >= hi:
            continue
        dst = [slice(None)] * image.ndim
        src = [slice(None)] * image.ndim
        dst[axis] = slice(lo, hi)
        src[axis] = slice(lo + shift, hi + shift)
        out[tuple(dst)] += tap * image[tuple(src)]
    return out


def feature_maps(mid: np.ndarray, scale: int) -> np.ndarray:
    """Responses of the four feature filters on the mid-res image.

    Parameters
    ----------
    mid : ndarray, shape (H, W)
        Bicubic up-sampled LR image (float, [0, 1]).
    scale : int
        Up-scaling factor.

    Returns
    -------
    ndarray, shape (4, H, W)
        G, G^T, L, L^T responses with MATLAB ``conv2(..., 'same')`` semantics, in the dtype
        of ``mid`` (float32 for float32 input, otherwise float64).
    """
    mid = np.asarray(mid)
    dtype = np.float32 if mid.dtype == np.float32 else np.float64
    mid = mid.astype(dtype, copy=False)
    maps = np.empty((4, *mid.shape), dtype=dtype)
    for i, kernel in enumerate(gradient_filters(scale)):
        axis = 1 if kernel.shape[0] == 1 else 0  # row kernels run along columns (axis 1)
        maps[i] = _conv2_same_1d(mid, kernel.ravel(), axis)
    return maps


# ----------------------------------------------------------------------------- patch grid
def sampling_grid(
    shape: tuple[int, int], scale: int, overlap: int
) -> tuple[np.ndarray, np.ndarray]:
    """Top-left corners of the patch grid (``sampling_grid.m``), 0-based.

    Window 3s, border s and step (3 - overlap) s in both directions: corners run from s to
    N - 4s (0-based, inclusive), i.e. 1-based s + 1 .. N - 4s + 1.

    Parameters
    ----------
    shape : (int, int)
        (H, W) of the mid-res / HR image.
    scale : int
        Up-scaling factor s.
    overlap : int
        Overlap in LR pixels: 1 for training (step 2 LR pixels), 2 for testing (full
        overlap, step 1 LR pixel).

    Returns
    -------
    rows, cols : ndarray of int64, shape (n,)
        Corner of every patch, enumerated column-major (row index fastest), as MATLAB's
        ``index(...)`` matrix flattened.
    """
    s = int(scale)
    window, border = WINDOW * s, BORDER * s
    step = (WINDOW - int(overlap)) * s
    if step <= 0:
        raise ValueError(f"overlap {overlap} must be smaller than the window ({WINDOW})")
    h, w = (int(v) for v in shape[:2])
    r = np.arange(border, h - window - border + 1, step, dtype=np.int64)
    c = np.arange(border, w - window - border + 1, step, dtype=np.int64)
    # Column-major enumeration: the row index varies fastest.
    rows = np.tile(r, c.size)
    cols = np.repeat(c, r.size)
    return rows, cols


def extract_patches(
    maps: np.ndarray, grid: tuple[np.ndarray, np.ndarray], size: int
) -> np.ndarray:
    """Patches of one or several maps at the grid corners, vectorised column-major.

    Parameters
    ----------
    maps : ndarray, shape (C, H, W) or (H, W)
    grid : (rows, cols)
        Corners from :func:`sampling_grid`.
    size : int
        Patch side.

    Returns
    -------
    ndarray, shape (n, C * size * size)
        For each patch the ``size x size`` block of map 0 column-major, then map 1, ...
        (MATLAB's ``X(grid)`` stacked in filter order). Same dtype as ``maps``.
    """
    maps = np.asarray(maps)
    if maps.ndim == 2:
        maps = maps[None]
    rows, cols = grid
    # A strided view of every size x size window: (C, H-size+1, W-size+1, size, size);
    # fancy indexing then copies only the windows on the grid (no per-patch Python loop).
    windows = np.lib.stride_tricks.sliding_window_view(maps, (size, size), axis=(1, 2))
    picked = windows[:, rows, cols]  # (C, n, size_r, size_c)
    # Column-major within a patch = the column index outermost, rows fastest.
    return np.ascontiguousarray(picked.transpose(1, 0, 3, 2)).reshape(
        len(rows), maps.shape[0] * size * size
    )


def overlap_add(
    patches: np.ndarray,
    grid: tuple[np.ndarray, np.ndarray],
    shape: tuple[int, int],
    size: int,
) -> np.ndarray:
    """Average overlapping column-major patches into an image (``overlap_add.m``).

    Parameters
    ----------
    patches : ndarray, shape (n, size * size)
    grid : (rows, cols)
        Corners the patches came from.
    shape : (int, int)
        (H, W) of the output.
    size : int
        Patch side.

    Returns
    -------
    ndarray, shape (H, W), float64
        Sum of the patches over each pixel divided by the number covering it; pixels no
        patch covers stay 0.
    """
    total, count = _accumulate(patches, grid, shape, size)
    covered = count > 0
    out = np.zeros(total.shape, dtype=np.float64)
    out[covered] = total[covered] / count[covered]
    return out


def _accumulate(
    patches: np.ndarray, grid: tuple[np.ndarray, np.ndarray], shape: tuple[int, int], size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel sum of the patches and number of patches covering each pixel."""
    h, w = (int(v) for v in shape[:2])
    rows, cols = grid
    patches = np.asarray(patches)
    if patches.shape != (len(rows), size * size):
        raise ValueError(f"patches of shape {patches.shape} do not match {len(rows)} x {size}^2")
    lattice = _lattice(rows, cols)
    if lattice is not None:
        return _accumulate_lattice(patches, lattice, (h, w), size)
    # Linear pixel index of every patch element, in the patches' column-major order.
    dr = np.tile(np.arange(size), size)  # row offset: fastest
    dc = np.repeat(np.arange(size), size)
    offsets = dr * w + dc
    index = (rows * w + cols)[:, None] + offsets[None, :]
    total = np.bincount(index.ravel(), weights=patches.ravel(), minlength=h * w)
    # Coverage does not depend on the values: count corners once, spread by the offsets.
    corner_count = np.bincount(rows * w + cols, minlength=h * w).astype(np.float64)
    count = np.zeros(h * w)
    for off in offsets:  # size^2 vectorised shifts, not a loop over patches
        count[off:] += corner_count[: h * w - off]
    return total.reshape(h, w), count.reshape(h, w)


def _lattice(rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(r, c)`` when the corners are :func:`sampling_grid`'s full lattice of ``r`` x ``c``
    (column-major, evenly spaced both ways), else None."""
    rows, cols = np.asarray(rows), np.asarray(cols)
    if rows.size < 2 or rows.shape != cols.shape:
        return None
    n_r = int(np.argmax(cols != cols[0])) or rows.size
    if rows.size % n_r:
        return None
    r, c = rows[:n_r], cols[::n_r]
    for axis in (r, c):
        if axis.size > 1:
            step = axis[1] - axis[0]
            if step <= 0 or (np.diff(axis) != step).any():
                return None
    if not (np.array_equal(rows, np.tile(r, c.size)) and np.array_equal(cols, np.repeat(c, n_r))):
        return None
    return r, c


def _accumulate_lattice(
    patches: np.ndarray, lattice: tuple[np.ndarray, np.ndarray], shape: tuple[int, int], size: int
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_accumulate` on a regular lattice: one strided add per patch element offset.

    The general path scatters every patch element through a pixel index (``n * size^2``
    int64s: gigabytes for a large image at x4); on a lattice each of the ``size^2`` offsets
    adds a whole ``len(r) x len(c)`` plane to a strided view of the image instead.
    """
    r, c = lattice
    h, w = shape
    step_r = int(r[1] - r[0]) if r.size > 1 else 1
    step_c = int(c[1] - c[0]) if c.size > 1 else 1
    # patches[j * n_r + i, dc * size + dr]: corner (r[i], c[j]), offset (dr, dc).
    planes = np.asarray(patches).reshape(c.size, r.size, size, size)
    total = np.zeros((h, w))
    count = np.zeros((h, w))
    rows = slice(int(r[0]), int(r[0]) + step_r * (r.size - 1) + 1, step_r)
    cols = slice(int(c[0]), int(c[0]) + step_c * (c.size - 1) + 1, step_c)
    for dc in range(size):
        for dr in range(size):
            view = (slice(rows.start + dr, rows.stop + dr, step_r),
                    slice(cols.start + dc, cols.stop + dc, step_c))
            total[view] += planes[:, :, dc, dr].T
            count[view] += 1.0
    return total, count


class GroupedRows(NamedTuple):
    """Patches kept in another order: patch ``order[k]`` is ``values[k]``.

    :func:`~srbench._methods.anchored.regressors.apply_regressors` computes the patches
    grouped by anchor; :func:`assemble` reads them where they are instead of copying them
    back into patch order first (hundreds of MB for a large image).
    """

    values: np.ndarray
    order: np.ndarray

    def toarray(self) -> np.ndarray:
        """The patches in patch order."""
        out = np.empty_like(self.values)
        kernel = _compiled()
        if kernel is None or self.values.ndim != 2:
            out[self.order] = self.values
            return out
        return kernel.scatter_rows(np.ascontiguousarray(self.values), self.order, out)


def _inside_lattice(
    grid: tuple[np.ndarray, np.ndarray], patches: np.ndarray, mid: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """The lattice of ``grid`` where the compiled :func:`assemble` applies: float32 or float64
    arrays, patches matching the grid, every patch inside the image; else None."""
    rows, cols = grid
    floats = (np.float32, np.float64)
    if not (isinstance(mid, np.ndarray) and isinstance(patches, np.ndarray)):
        return None
    if mid.ndim != 2 or mid.dtype not in floats or patches.dtype not in floats:
        return None
    if patches.shape != (len(rows), size * size):
        return None
    lattice = _lattice(rows, cols)
    if lattice is None:
        return None
    r, c = lattice
    if r[0] < 0 or c[0] < 0 or r[-1] + size > mid.shape[0] or c[-1] + size > mid.shape[1]:
        return None
    return lattice


def assemble(
    mid: np.ndarray,
    grid: tuple[np.ndarray, np.ndarray],
    residual: np.ndarray | GroupedRows,
    size: int,
) -> np.ndarray:
    """Bicubic image plus the overlap-averaged residual patches.

    Equals ``overlap_add(residual + bicubic patches)`` wherever a patch reached (the
    average of identical bicubic values is the value itself), and keeps the bicubic
    image where none did, instead of the reference code's zero frame, which the
    evaluation shaves off anyway.

    Parameters
    ----------
    mid : ndarray, shape (H, W)
        Bicubic up-sampled LR image.
    grid : (rows, cols)
    residual : ndarray, shape (n, size * size), or GroupedRows of one
        Predicted HR - bicubic patches, column-major.
    size : int

    Returns
    -------
    ndarray, shape (H, W), float32
    """
    kernel = _compiled()
    values, at = residual, None
    if isinstance(residual, GroupedRows):
        values = residual.values
        if kernel is not None:
            at = np.empty(len(residual.order), dtype=np.int64)  # patch p is values[at[p]]
            at[residual.order] = np.arange(len(residual.order))
    if kernel is not None:
        lattice = _inside_lattice(grid, values, mid, size)
        if lattice is not None:
            return kernel.assemble_lattice(mid, values, lattice, size, at)
    if isinstance(residual, GroupedRows):
        residual = residual.toarray()
    total, count = _accumulate(residual, grid, mid.shape, size)
    out = np.asarray(mid, dtype=np.float64).copy()
    covered = count > 0
    out[covered] += total[covered] / count[covered]
    return out.astype(np.float32)


# ----------------------------------------------------------------------------- data
def collect(
    images: Sequence[np.ndarray], scale: int, overlap: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Training features and residual HR patches of a set of images (``learn_dict.m``).

    Per image: modcrop, LR = imresize(HR / 255, 1/s), mid = imresize(LR, s); features on
    mid, residual HR - mid, both on the same grid.

    Parameters
    ----------
    images : sequence of ndarray, shape (H, W)
        uint8 luminance (or float in [0, 1]).
    scale : int
    overlap : int
        Grid overlap in LR pixels (1 = the ANR/A+ training setting).

    Returns
    -------
    features : ndarray, shape (n, 4 (3s)^2), float32
    residuals : ndarray, shape (n, (3s)^2), float32
    """
    size = patch_size(scale)
    feats, resid = [], []
    for image in images:
        image = np.asarray(image)
        hr = modcrop(image, scale)
        hr = hr.astype(np.float32) / 255.0 if hr.dtype == np.uint8 else hr.astype(np.float32)
        lr = imresize(hr, 1.0 / scale)
        mid = imresize(lr, scale)
        grid = sampling_grid(hr.shape, scale, overlap)
        if len(grid[0]) == 0:
            continue  # image too small for one window: contributes nothing
        feats.append(extract_patches(feature_maps(mid, scale), grid, size))
        resid.append(extract_patches(hr - mid, grid, size))
    if not feats:
        raise ValueError(f"no training patches at x{scale}: images are too small")
    return (
        np.concatenate(feats).astype(np.float32, copy=False),
        np.concatenate(resid).astype(np.float32, copy=False),
    )


def fit_pca(features: np.ndarray, energy: float = 0.999, *, dims: int | None = None) -> np.ndarray:
    """Uncentred PCA basis keeping ``energy`` of the features' second moment.

    C = F^T F (no mean subtraction); eigen-directions are sorted by ascending eigenvalue,
    and the smallest ones whose cumulative share of the trace stays below ``1 - energy``
    are dropped (``learn_dict.m``: ``find(cumsum(D)/sum(D) >= 1e-3, 1)``).

    Parameters
    ----------
    features : ndarray, shape (n, d)
    energy : float
        Fraction of the energy to keep.
    dims : int, optional
        Keep exactly this many leading directions instead (overrides ``energy``).

    Returns
    -------
    ndarray, shape (d, k), float64
        Orthonormal eigenvectors, ascending eigenvalue order (as MATLAB ``eig``).
    """
    f = np.asarray(features)
    cov = np.zeros((f.shape[1], f.shape[1]))
    # Accumulate in float64 over chunks: exact enough and no float64 copy of all features.
    for start in range(0, f.shape[0], 65536):
        block = f[start : start + 65536].astype(np.float64)
        cov += block.T @ block
    evals, evecs = np.linalg.eigh(cov)
    if dims is not None:
        if not 1 <= int(dims) <= len(evals):
            raise ValueError(f"PCA dimension must be in 1..{len(evals)}, got {dims}")
        return evecs[:, len(evals) - int(dims):]
    share = np.cumsum(evals) / evals.sum()
    # Round the threshold so 1 - 0.999 compares like MATLAB's literal 1e-3.
    first = int(np.argmax(share >= round(1.0 - energy, 12)))
    return evecs[:, first:]


# ----------------------------------------------------------------------------- sparse coding
def omp(
    D: np.ndarray, X: np.ndarray, sparsity: int, *, chunk: int = _OMP_CHUNK
) -> tuple[np.ndarray, np.ndarray]:
    """Orthogonal matching pursuit with a fixed number of atoms, for many signals at once.

    Same result as ompbox ``omp(D, X, [], T)`` and scikit-learn's ``orthogonal_mp_gram``
    (which loops over signals in Python and is ~100x slower here): at each step pick the
    atom most correlated (in absolute value) with the residual, then re-fit all selected
    coefficients by least squares. Every step is a batched matrix product or a batched
    T x T solve over a chunk of signals.

    Parameters
    ----------
    D : ndarray, shape (d, n_atoms)
        Dictionary with unit-norm atoms.
    X : ndarray, shape (n, d)
        Signals, one per row.
    sparsity : int
        Number of atoms per signal.
    chunk : int
        Signals coded per batch (bounds memory).

    Returns
    -------
    idx : ndarray of int64, shape (n, sparsity)
        Selected atoms, in selection order.
    coef : ndarray, shape (n, sparsity)
        Their coefficients (0 where the residual vanished before ``sparsity`` atoms,
        e.g. for a zero signal), in the dtype of ``D`` / ``X``.
    """
    D = np.asarray(D)
    X = np.asarray(X)
    dtype = np.result_type(D.dtype, X.dtype, np.float32)
    D = D.astype(dtype, copy=False)
    X = X.astype(dtype, copy=False)
    n = X.shape[0]
    T = int(sparsity)
    if T > D.shape[1]:
        raise ValueError(f"sparsity {T} exceeds the {D.shape[1]} atoms")
    gram = D.T @ D
    DT = np.ascontiguousarray(D.T)
    idx = np.zeros((n, T), dtype=np.int64)
    coef = np.zeros((n, T), dtype=dtype)
    starts = range(0, n, chunk)
    # The chunks are shared out to threads of our own, one BLAS thread each: each chunk is
    # coded as before (the same products on the same blocks, so the same numbers). With
    # OpenBLAS's own two threads, each of the many small products of a chunk woke and
    # synchronised them: K-SVD took 40-48 ms per T91 image in one process, 107 ms in a
    # worker (whose BLAS threads sleep sooner between calls), against 34 ms on one thread.
    from srbench.threads import blas_in_threads, in_threads

    with blas_in_threads() as threads:
        threads = max(1, min(threads, len(starts)))

        def code(t: int) -> None:
            for start in starts[t::threads]:
                stop = min(n, start + chunk)
                idx[start:stop], coef[start:stop] = _omp_chunk(D, DT, gram, X[start:stop], T)

        in_threads(code, threads)
    return idx, coef


def _omp_chunk(
    D: np.ndarray, DT: np.ndarray, gram: np.ndarray, X: np.ndarray, T: int
) -> tuple[np.ndarray, np.ndarray]:
    m = X.shape[0]
    ar = np.arange(m)
    alpha0 = X @ D  # (m, n_atoms): correlations of the signals with every atom
    idx = np.zeros((m, T), dtype=np.int64)
    coef = np.zeros((m, T), dtype=X.dtype)
    valid = np.zeros((m, T), dtype=bool)
    a = np.empty_like(alpha0)  # |correlations|, reused: allocation costs as much as abs
    corr = alpha0
    tol = None
    for k in range(T):
        np.abs(corr, out=a)
        if k:
            a[ar[:, None], idx[:, :k]] = -1.0  # never pick an atom twice
        j = np.argmax(a, axis=1)
        best = a[ar, j]
        if tol is None:
            # Residual correlations below this are round-off: the signal is represented.
            tol = 1e-10 * np.maximum(best, np.finfo(np.float64).tiny)
        valid[:, k] = best > tol
        idx[:, k] = j
        sel = idx[:, : k + 1]
        sub = gram[sel[:, :, None], sel[:, None, :]].astype(np.float64)  # (m, k+1, k+1)
        rhs = alpha0[ar[:, None], sel].astype(np.float64)
        # Slots whose atom added nothing get an identity row and a zero target: their
        # coefficient is exactly 0 and they do not disturb the other coefficients.
        bad = ~valid[:, : k + 1]
        if bad.any():
            sub[bad, :] = 0.0
            sub.transpose(0, 2, 1)[bad, :] = 0.0
            bm, bk = np.nonzero(bad)
            sub[bm, bk, bk] = 1.0
            rhs[bad] = 0.0
        c = np.linalg.solve(sub, rhs[:, :, None])[:, :, 0]
        coef[:, : k + 1] = c
        if k + 1 < T:
            resid = X - np.einsum("mk,mkd->md", coef[:, : k + 1], DT[sel])
            corr = resid @ D
    return idx, coef


def codes_to_sparse(idx: np.ndarray, coef: np.ndarray, n_atoms: int):
    """Codes as a ``scipy.sparse.csc_matrix`` of shape (n_atoms, n): MATLAB's Gamma."""
    from scipy.sparse import csc_matrix

    n, T = idx.shape
    indptr = np.arange(0, n * T + 1, T)
    gamma = csc_matrix((coef.ravel(), idx.ravel(), indptr), shape=(n_atoms, n))
    gamma.eliminate_zeros()
    return gamma


def _reconstruct(DT: np.ndarray, idx: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """D @ codes for codes given as (idx, coef) rows: (n, d)."""
    return np.einsum("nk,nkd->nd", coef, DT[idx])


def _rmse(X: np.ndarray, DT: np.ndarray, idx: np.ndarray, coef: np.ndarray) -> float:
    """Root-mean-square representation error, in chunks: the (n, T, d) gather of all
    signals at once would take ~1 GB at x2."""
    total = 0.0
    for start in range(0, X.shape[0], 65536):
        sl = slice(start, start + 65536)
        err = X[sl] - _reconstruct(DT, idx[sl], coef[sl])
        total += float(np.einsum("nd,nd->", err, err))
    return float(np.sqrt(total / X.size))


def ksvd(
    signals: np.ndarray,
    n_atoms: int = 1024,
    sparsity: int = 3,
    n_iter: int = 20,
    seed: int = 0,
    progress: Callable[[int, int, float], Any] | None = None,
    *,
    muthresh: float = 0.99,
    use_thresh: int = 4,
    codes: str = "final",
):
    """Learn a dictionary with K-SVD (Rubinstein's ksvdbox, approximate atom update).

    Each iteration: code all signals with OMP (``sparsity`` atoms); update the atoms one by
    one in random order with one step of alternating optimisation (``exact = 0``), each
    atom's coefficients re-fitted right after it; an atom no signal uses is replaced by the
    worst-represented of up to 5000 random signals. Then "clear" the dictionary: atoms with
    mutual coherence above ``muthresh`` with another atom, or used by fewer than
    ``use_thresh`` signals, are replaced by the worst-represented signals. The initial
    dictionary is ``n_atoms`` random training signals of squared norm > 1e-6, normalised.

    Two deliberate departures from ksvdbox, both about which signal replaces an atom:
    the clearing step takes the worst-represented signals in decreasing error order, each
    once (ksvdbox's index bookkeeping picks neighbours of the first one after the first
    replacement); and the returned codes are an OMP coding with the final dictionary
    (ksvdbox returns the codes of the last iteration, which no longer match atoms the
    clearing step replaced).

    Parameters
    ----------
    signals : ndarray, shape (d, n)
        Training signals, one per column (MATLAB orientation).
    n_atoms : int
    sparsity : int
        Atoms per signal in OMP (Tdata).
    n_iter : int
    seed : int
        Seeds the initial dictionary, the atom order and the replacement sampling.
    progress : callable, optional
        ``progress(iteration, n_iter, rmse)`` after every iteration.
    muthresh : float
        Mutual coherence above which an atom is replaced.
    use_thresh : int
        Atoms used by fewer signals are replaced.
    codes : {"final", "last_iteration"}
        Which codes to return: an OMP coding with the final dictionary, or (as ksvdbox
        does) the last iteration's codes after its atom updates, which predate that
        iteration's clearing step.

    Returns
    -------
    D : ndarray, shape (d, n_atoms), float64
        Unit-norm atoms.
    codes : scipy.sparse.csc_matrix, shape (n_atoms, n)
        OMP codes of the signals on ``D``.
    """
    X = np.ascontiguousarray(np.asarray(signals, dtype=np.float64).T)  # (n, d)
    n = X.shape[0]
    if n < n_atoms:
        raise ValueError(f"{n} training signals are fewer than the {n_atoms} atoms to learn")
    rng = np.random.default_rng(seed)
    candidates = np.flatnonzero(np.einsum("nd,nd->n", X, X) > 1e-6)
    if candidates.size < n_atoms:
        raise ValueError(f"only {candidates.size} non-zero signals for {n_atoms} atoms")
    DT = X[rng.permutation(candidates)[:n_atoms]].copy()  # atoms as rows while learning
    DT /= np.linalg.norm(DT, axis=1, keepdims=True)

    if codes not in ("final", "last_iteration"):
        raise ValueError(f"codes must be 'final' or 'last_iteration', not {codes!r}")
    for it in range(n_iter):
        idx, coef = omp(DT.T, X, sparsity)
        unused = np.ones(n, dtype=bool)  # signals not yet used to replace an atom
        replaced = _update_atoms(X, DT, idx, coef, unused, rng)
        rmse = _rmse(X, DT, idx, coef)
        if codes == "last_iteration" and it == n_iter - 1:
            last = codes_to_sparse(idx, coef, n_atoms)
        cleared = _clear_dictionary(X, DT, idx, coef, unused, replaced, rng, muthresh, use_thresh)
        log.debug(
            "K-SVD iteration %d/%d: RMSE %.6g, replaced %d atoms",
            it + 1, n_iter, rmse, int(replaced.sum()) + cleared,
        )
        if progress is not None:
            progress(it + 1, n_iter, rmse)

    if codes == "last_iteration" and n_iter > 0:
        return np.ascontiguousarray(DT.T), last
    idx, coef = omp(DT.T, X, sparsity)
    return np.ascontiguousarray(DT.T), codes_to_sparse(idx, coef, n_atoms)


def _update_atoms(
    X: np.ndarray,
    DT: np.ndarray,
    idx: np.ndarray,
    coef: np.ndarray,
    unused: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """One sweep of approximate K-SVD atom updates, in place on ``DT`` and ``coef``.

    Atom updates are sequential by nature (each sees the atoms and coefficients updated
    before it), so this loops over atoms; the work per atom is vectorised over the signals
    that use it.
    """
    n_atoms = DT.shape[0]
    T = idx.shape[1]
    # Inverted index: for every atom, the (signal, slot) pairs that use it. The support
    # (idx) does not change during the sweep, only the coefficient values.
    used = coef.ravel() != 0
    flat = np.flatnonzero(used)
    atom_of = idx.ravel()[flat]
    order = np.argsort(atom_of, kind="stable")
    flat = flat[order]
    bounds = np.searchsorted(atom_of[order], np.arange(n_atoms + 1))
    replaced = np.zeros(n_atoms, dtype=bool)
    for j in rng.permutation(n_atoms):
        entries = flat[bounds[j] : bounds[j + 1]]
        if entries.size == 0:
            # Unused atom: the worst-represented of up to 5000 random unused signals.
            pool = np.flatnonzero(unused)
            pool = pool[rng.permutation(pool.size)[:5000]]
            err = X[pool] - _reconstruct(DT, idx[pool], coef[pool])
            pick = pool[int(np.argmax(np.einsum("nd,nd->n", err, err)))]
            DT[j] = X[pick] / np.linalg.norm(X[pick])
            unused[pick] = False
            replaced[j] = True
            continue
        sig, slot = np.divmod(entries, T)
        g = coef[sig, slot]
        # E + d_j g: the signals' residual with atom j's contribution added back.
        e = X[sig] - _reconstruct(DT, idx[sig], coef[sig]) + np.outer(g, DT[j])
        atom = g @ e
        norm = np.linalg.norm(atom)
        if norm == 0:
            continue  # cannot happen for non-zero coefficients; keep the old atom
        atom /= norm
        DT[j] = atom
        coef[sig, slot] = e @ atom
    return replaced


def _clear_dictionary(
    X: np.ndarray,
    DT: np.ndarray,
    idx: np.ndarray,
    coef: np.ndarray,
    unused: np.ndarray,
    replaced: np.ndarray,
    rng: np.random.Generator,
    muthresh: float,
    use_thresh: int,
) -> int:
    """Replace coherent and rarely used atoms by badly represented signals (in place)."""
    n_atoms = DT.shape[0]
    pool = np.flatnonzero(unused)
    pool = pool[rng.permutation(pool.size)[:5000]]
    err = X[pool] - _reconstruct(DT, idx[pool], coef[pool])
    worst = pool[np.argsort(-np.einsum("nd,nd->n", err, err), kind="stable")]
    usecount = np.bincount(idx[np.abs(coef) > 1e-7], minlength=n_atoms)
    cleared = 0
    for j in range(n_atoms):
        # Coherence against the current atoms (earlier replacements included), sequential
        # like ksvdbox so two coherent atoms are not both replaced.
        gj = DT @ DT[j]
        gj[j] = 0.0
        if np.max(gj * gj) > muthresh**2 or (not replaced[j] and usecount[j] < use_thresh):
            if cleared >= worst.size:
                break
            pick = worst[cleared]
            DT[j] = X[pick] / np.linalg.norm(X[pick])
            unused[pick] = False
            cleared += 1
    return cleared


# ----------------------------------------------------------------------------- training
def learn_dictionaries(
    images: Sequence[np.ndarray],
    scale: int,
    n_atoms: int = 1024,
    sparsity: int = 3,
    n_iter: int = 20,
    seed: int = 0,
    progress: Callable[[int, int, float], Any] | None = None,
    info: dict[str, Any] | None = None,
    overlap: int = 1,
    codes: str = "final",
    pca_dim: int | None = None,
) -> dict[str, np.ndarray]:
    """Zeyde's training (``learn_dict.m``): features, PCA, K-SVD ``Dl``, least-squares ``Dh``.

    Parameters
    ----------
    images : sequence of ndarray
        HR training luminance (uint8), e.g. T91.
    scale : int
    n_atoms, sparsity, n_iter, seed
        K-SVD settings (ANR/A+: 1024 atoms, 3, 20).
    progress : callable, optional
        Passed to :func:`ksvd`.
    info : dict, optional
        Filled with training statistics for a manifest (sample count, PCA dimension,
        K-SVD RMSE, timings).
    overlap : int
        Training grid overlap in LR pixels (:func:`sampling_grid`): 1 in the A+ drivers;
        the ANR ICCV'13 drivers, whose dictionaries gave the published Zeyde/ANR numbers,
        use 2 (step one LR pixel, ~4x the samples) at x2 and 1 above.
    codes : {"final", "last_iteration"}
        The codes ``Dh`` is fitted to (see :func:`ksvd`).
    pca_dim : int, optional
        PCA dimensions to keep instead of the 0.1%-energy rule (:func:`fit_pca`).

    Returns
    -------
    dict
        ``V_pca`` ((4 (3s)^2, k)), ``Dl`` ((k, n_atoms)), ``Dh`` (((3s)^2, n_atoms)), all
        float32: the artifact of every Zeyde-family method.
    """
    t0 = time.perf_counter()
    features, residuals = collect(images, scale, overlap=overlap)
    V = fit_pca(features, dims=pca_dim)
    y = features @ V.astype(np.float32)  # (n, k) PCA features
    # The share of the features' energy the PCA drops (the rule keeps it under 0.1%).
    dropped = 1.0 - float(np.einsum("nk,nk->", y, y, dtype=np.float64)) / float(
        np.einsum("nd,nd->", features, features, dtype=np.float64)
    )
    del features
    t1 = time.perf_counter()
    Dl, gamma = ksvd(y.T, n_atoms=n_atoms, sparsity=sparsity, n_iter=n_iter, seed=seed,
                     progress=progress, codes=codes)
    t2 = time.perf_counter()
    # Dh = P Gamma^T (Gamma Gamma^T)^-1, solved with lstsq so an atom no signal uses gets a
    # zero HR atom instead of a singular inverse.
    gg = (gamma @ gamma.T).toarray()
    pg = np.asarray(gamma @ residuals.astype(np.float64))  # (n_atoms, (3s)^2) = (P Gamma^T)^T
    Dh = np.linalg.lstsq(gg, pg, rcond=None)[0].T
    rmse_lr = _rmse(y, np.ascontiguousarray(Dl.T), *_sparse_rows(gamma, sparsity))
    stats = {
        "train_overlap": int(overlap),
        "n_samples": int(y.shape[0]),
        "feature_dim": int(V.shape[0]),
        "pca_dim": int(V.shape[1]),
        "pca_dropped_energy": round(dropped, 7),
        "ksvd_rmse": rmse_lr,
        "ksvd_seconds": round(t2 - t1, 3),
        "collect_seconds": round(t1 - t0, 3),
    }
    if info is not None:
        info.update(stats)
    return {
        "V_pca": V.astype(np.float32),
        "Dl": Dl.astype(np.float32),
        "Dh": Dh.astype(np.float32),
    }


def _sparse_rows(gamma, sparsity: int) -> tuple[np.ndarray, np.ndarray]:
    """(idx, coef) rows of a CSC code matrix with at most ``sparsity`` atoms per column."""
    n = gamma.shape[1]
    idx = np.zeros((n, sparsity), dtype=np.int64)
    coef = np.zeros((n, sparsity))
    counts = np.diff(gamma.indptr)
    slot = np.arange(gamma.nnz) - np.repeat(gamma.indptr[:-1], counts)
    col = np.repeat(np.arange(n), counts)
    idx[col, slot] = gamma.indices
    coef[col, slot] = gamma.data
    return idx, coef


# ----------------------------------------------------------------------------- test time
#: Raw feature values extracted at a time by :func:`upscale_features` (16 MB of float32).
#: Bands of 4 MB made the front end alone 1.3-1.6x faster on T91-sized images, but whole
#: methods were no faster or slower with them (NE+NNLS 0.83-0.98x, alternating on held-out
#: T91 images), so the bands stayed as they were.
_FEATURE_BAND = 1 << 22


def upscale_features(
    lr: np.ndarray, scale: int, V_pca: np.ndarray | None = None
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], np.ndarray]:
    """Test-time front end of every Zeyde-family method.

    Parameters
    ----------
    lr : ndarray, shape (h, w)
        LR luminance in [0, 1].
    scale : int
    V_pca : ndarray, shape (4 (3s)^2, k), optional
        PCA basis; without it the raw features are returned.

    Returns
    -------
    mid : ndarray, shape (h s, w s), float32
        Bicubic up-sampled image.
    grid : (rows, cols)
        Full-overlap grid (step one LR pixel).
    y : ndarray, shape (n, k) (or (n, 4 (3s)^2) without ``V_pca``), float32
        Features, not normalised.
    """
    lr = np.asarray(lr, dtype=np.float32)
    mid = imresize(lr, scale)
    grid = sampling_grid(mid.shape, scale, overlap=WINDOW - 1)
    size = patch_size(scale)
    rows, cols = grid
    width = len(gradient_filters(scale)) * size * size
    kernel = _compiled() if mid.dtype == np.float32 else None
    if kernel is None:
        maps = feature_maps(mid, scale)
        if V_pca is None:
            return mid, grid, extract_patches(maps, grid, size)
    else:
        # Compiled: a band's raw features straight from the image columns it covers (the
        # values of the numpy path, without its four whole-image responses).
        taps = kernel.filter_taps(gradient_filters(scale))
        if V_pca is None:
            out = np.empty((rows.size, width), dtype=np.float32)
            return mid, grid, kernel.patch_features(mid, taps, rows, cols, size, out)
    # Raw features are 4 (3s)^2 floats per patch (1.8 GB for a 1000x800 LR image at x4);
    # projecting them band by band keeps only the k PCA coordinates of every patch.
    V_pca = np.asarray(V_pca, dtype=np.float32)
    feats = memory.empty((rows.size, V_pca.shape[1]), dtype=np.float32)
    band = max(1, _FEATURE_BAND // width)
    starts = range(0, rows.size, band)
    if kernel is None:
        for start in starts:
            part = slice(start, start + band)
            feats[part] = extract_patches(maps, (rows[part], cols[part]), size) @ V_pca
        return mid, grid, feats

    def project(t: int) -> None:
        buffer = np.empty((min(band, rows.size), width), dtype=np.float32)
        for start in starts[t::threads]:
            part = slice(start, start + band)
            block = buffer[: rows[part].size]
            kernel.patch_features(mid, taps, rows[part], cols[part], size, block)
            # The same BLAS product on the same band as the numpy path.
            feats[part] = block @ V_pca

    with kernel.blas_in_threads() as threads:
        threads = max(1, min(threads, len(starts)))
        kernel.in_threads(project, threads)
    return mid, grid, feats
