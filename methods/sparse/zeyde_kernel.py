"""The Zeyde family's test-time front and back end, compiled.

Every Zeyde-family method (``ksvd``, ``ne_lle``, ``ne_nnls``, ``gr``, ``anr``, ``aplus``)
computes four filter responses of the bicubic image, copies 4 (3s)^2 of their values per
patch into the rows BLAS projects on the PCA basis, and averages the predicted residual
patches back into the image. In numpy those are four whole-image temporaries, fancy-indexed
copies read across rows, and 9 s^2 strided adds of whole planes (144 at x4) into a float64
image; here each is one pass, split over the cores. The BLAS products themselves (PCA
projection, correlations with the dictionary, regressors) stay numpy's, called on the same
blocks as before.

Every kernel does exactly the arithmetic of its numpy twin in :mod:`.zeyde` and
:mod:`srbench._methods.anchored.regressors`, which stay the reference and the fallback where
numba is not installed, so the outputs are bit-identical (tested):

- :func:`patch_features`: the filter responses as ``feature_maps`` forms them (the taps
  added in filter order in float64, rounded to float32 after each, as numpy's
  ``out += tap * x`` with a float64 tap does), then ``extract_patches``' copy;
- :func:`assemble_lattice`: every pixel's covering patches summed in float64 in the order of
  the numpy strided adds (patch column offset outer, row offset inner, both ascending: patch
  index descending), divided by the coverage count, added to the bicubic value in float64;
- :func:`stable_order`: ``np.argsort(labels, kind="stable")`` by counting;
- :func:`gather_rows` / :func:`scatter_rows`: ``x[index]`` and ``out[index] = x``.

The BLAS products are many small calls, which OpenBLAS's own threads handle badly; the
callers split them over threads of their own instead, with BLAS at one thread per call
(:func:`blas_in_threads`, :func:`in_threads`): the same calls on the same blocks.
"""

from __future__ import annotations

import numpy as np

from srbench import memory
from srbench.jit import available, jit, limit_threads, prange
from srbench.threads import (  # the family's callers use them from here
    blas_in_threads,
    in_threads,
)

__all__ = [
    "assemble_lattice",
    "available",
    "blas_in_threads",
    "filter_taps",
    "gather_rows",
    "in_threads",
    "patch_features",
    "scatter_rows",
    "stable_order",
    "warm_up",
]

#: Output columns one thread assembles at a time: its float64 sums (``128 x height``, 3.3 MB
#: for a 3200-row image) stay in its L2 while the patches stream through.
_STRIP = 128


# ----------------------------------------------------------------------------- front end
def filter_taps(filters: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    """The non-zero taps of :func:`~srbench._methods.sparse.zeyde.gradient_filters` as the
    kernels take them: ``(taps, shifts, counts, along_rows)``, filter ``f``'s ``t``-th tap adding
    ``taps[f, t] * x[i + shifts[f, t]]`` along the rows (column kernels) or the columns (row
    kernels), in the numpy twin's order (MATLAB ``conv2(..., 'same')``, zero taps skipped)."""
    width = max(k.size for k in filters)
    taps = np.zeros((len(filters), width))
    shifts = np.zeros((len(filters), width), dtype=np.int64)
    counts = np.zeros(len(filters), dtype=np.int64)
    along_rows = np.zeros(len(filters), dtype=np.bool_)
    for f, kernel in enumerate(filters):
        along_rows[f] = kernel.shape[0] != 1
        flat = kernel.ravel()
        for j, tap in enumerate(flat):
            if tap == 0:
                continue
            taps[f, counts[f]] = tap
            shifts[f, counts[f]] = flat.size // 2 - j
            counts[f] += 1
    return taps, shifts, counts, along_rows


def patch_features(
    mid: np.ndarray,
    taps: tuple[np.ndarray, ...],
    rows: np.ndarray,
    cols: np.ndarray,
    size: int,
    out: np.ndarray,
) -> np.ndarray:
    """``extract_patches(feature_maps(mid, scale), (rows, cols), size)`` into ``out``.

    ``mid`` is the float32 image, ``taps`` from :func:`filter_taps`, ``out`` is ``(n, C
    size^2)`` float32. Only the image columns the patches reach are filtered, into transposed
    responses (a patch column is then one contiguous run) that stay in cache: for a band of
    patches of the full-overlap grid, a few dozen columns instead of four whole-image maps.
    Every response is formed as :func:`.zeyde.feature_maps` forms it: the taps added in order
    in float64, rounded to float32 after each (numpy's ``out += tap * x`` with a float64 tap),
    pixels outside the image skipped.

    One thread, without the GIL: callers run bands in threads of their own (:func:`in_threads`),
    each with its BLAS product.
    """
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    cols = np.ascontiguousarray(cols, dtype=np.int64)
    if rows.size == 0:
        return out
    h, w = mid.shape
    x0, x1 = int(cols.min()), int(cols.max()) + int(size)  # columns the patches cover
    weights, shifts, counts, along_rows = taps
    reach = int(np.abs(shifts).max())  # a row kernel reads this many columns either side
    a0, a1 = max(0, x0 - reach), min(w, x1 + reach)
    _features(np.ascontiguousarray(mid, dtype=np.float32), weights, shifts, counts, along_rows,
              rows, cols, int(size), x0, x1, a0, a1, np.empty((a1 - a0, h), dtype=np.float32),
              np.empty((weights.shape[0], x1 - x0, h), dtype=np.float32), out)
    return out


@jit()
def _features(mid, taps, shifts, counts, along_rows, rows, cols, size, x0, x1, a0, a1, mid_t,
              maps_t, out):
    h, w = mid.shape
    # 1. The columns a0..a1 of the image, transposed, in tiles.
    tile = 64
    for ty in range((h + tile - 1) // tile):
        y0 = ty * tile
        y1 = min(h, y0 + tile)
        for x in range(a0, a1):
            for y in range(y0, y1):
                mid_t[x - a0, y] = mid[y, x]
    # 2. The filter responses on columns x0..x1, transposed.
    for x in range(x0, x1):
        for f in range(taps.shape[0]):
            dst = maps_t[f, x - x0]
            dst[:] = 0.0
            for t in range(counts[f]):
                tap = taps[f, t]
                shift = shifts[f, t]
                if along_rows[f]:
                    # Column kernel: image rows y + shift, along the transposed row.
                    lo, hi = max(0, -shift), min(h, h - shift)
                    if lo >= hi:
                        continue
                    src = mid_t[x - a0, lo + shift : hi + shift]
                else:
                    if x + shift < 0 or x + shift >= w:
                        continue
                    lo, hi = 0, h
                    src = mid_t[x + shift - a0]
                part = dst[lo:hi]
                for y in range(hi - lo):
                    part[y] = np.float32(np.float64(part[y]) + tap * np.float64(src[y]))
    # 3. Each patch's blocks, column-major, map after map.
    block = size * size
    for p in range(rows.size):
        r, c = rows[p], cols[p] - x0
        dst = out[p]
        for f in range(maps_t.shape[0]):
            for dc in range(size):
                seg = dst[f * block + dc * size : f * block + (dc + 1) * size]
                src = maps_t[f, c + dc, r : r + size]
                for dr in range(size):
                    seg[dr] = src[dr]


# ----------------------------------------------------------------------------- back end
def assemble_lattice(
    mid: np.ndarray,
    patches: np.ndarray,
    lattice: tuple[np.ndarray, np.ndarray],
    size: int,
    at: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`~srbench._methods.sparse.zeyde.assemble` on a lattice of corners, compiled.

    ``lattice`` is ``(r, c)``, the evenly spaced corner rows and columns (patch ``j len(r) +
    i`` at ``(r[i], c[j])``), all patches inside the image. Patch ``p`` is ``patches[at[p]]``
    (``patches[p]`` without ``at``): patches kept in another order need no reordering copy.
    Returns the float32 image: the bicubic value plus the average of the covering patches, in
    float64, as the numpy twin.
    """
    limit_threads()
    r, c = lattice
    h, w = mid.shape
    step_r = int(r[1] - r[0]) if r.size > 1 else 1
    step_c = int(c[1] - c[0]) if c.size > 1 else 1
    # Coverage depends on geometry only: patches covering a row times those covering a column
    # (an exact integer, equal to the numpy twin's sum of ones).
    cover_r = np.zeros(h)
    cover_c = np.zeros(w)
    for d in range(size):
        cover_r[int(r[0]) + d : int(r[-1]) + d + 1 : step_r] += 1.0
        cover_c[int(c[0]) + d : int(c[-1]) + d + 1 : step_c] += 1.0
    out = memory.empty((h, w), dtype=np.float32)
    at = np.arange(len(patches)) if at is None else _check_index(at, len(patches))
    if at.size != r.size * c.size:
        raise ValueError(f"{at.size} patches for a {r.size} x {c.size} lattice")
    _assemble(
        np.ascontiguousarray(mid),
        np.ascontiguousarray(patches),
        np.ascontiguousarray(at, dtype=np.int64),
        int(r[0]), step_r, int(r.size),
        int(c[0]), step_c, int(c.size),
        int(size), cover_r, cover_c, _STRIP, out,
    )
    return out


@jit(parallel=True)
def _assemble(mid, patches, at, r0, step_r, n_r, c0, step_c, n_c, size, cover_r, cover_c, strip, out):
    h, w = mid.shape
    n_strips = (w + strip - 1) // strip
    for s in prange(n_strips):
        x0 = s * strip
        x1 = min(w, x0 + strip)
        # The strip's float64 sums, transposed so that a patch column (row offset fastest, as
        # the patches are stored) adds to one contiguous run.
        total = np.zeros((x1 - x0, h))
        # Patch columns reaching the strip, last first: the numpy twin adds a pixel's covering
        # patches by increasing column offset (decreasing j), then increasing row offset
        # (decreasing i); within one patch every pixel gets a single value.
        j_hi = min(n_c - 1, (x1 - 1 - c0) // step_c)
        for j in range(j_hi, -1, -1):
            c = c0 + j * step_c
            if c + size <= x0:
                break
            d0 = max(0, x0 - c)
            d1 = min(size, x1 - c)
            for i in range(n_r - 1, -1, -1):
                r = r0 + i * step_r
                patch = patches[at[j * n_r + i]]
                for dc in range(d0, d1):
                    dst = total[c + dc - x0, r : r + size]
                    src = patch[dc * size : (dc + 1) * size]
                    for dr in range(size):
                        dst[dr] += src[dr]
        for y in range(h):
            for x in range(x0, x1):
                count = cover_r[y] * cover_c[x]
                if count > 0.0:
                    out[y, x] = np.float32(np.float64(mid[y, x]) + total[x - x0, y] / count)
                else:
                    out[y, x] = mid[y, x]


# ----------------------------------------------------------------------------- regressors
def stable_order(labels: np.ndarray, n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.argsort(labels, kind="stable")`` of labels in ``[0, n_labels)`` by counting, and
    the bounds of each label's run in it (``starts``, ``n_labels + 1`` long)."""
    labels = np.ascontiguousarray(labels, dtype=np.int64).ravel()
    if labels.size and (labels.min() < 0 or labels.max() >= n_labels):
        raise IndexError(f"labels outside [0, {n_labels})")
    order = np.empty(labels.size, dtype=np.int64)
    starts = np.zeros(int(n_labels) + 1, dtype=np.int64)
    _stable_order(labels, order, starts)
    return order, starts


@jit()
def _stable_order(labels, order, starts):
    for i in range(labels.size):
        starts[labels[i] + 1] += 1
    for a in range(1, starts.size):
        starts[a] += starts[a - 1]
    fill = starts[:-1].copy()
    for i in range(labels.size):
        a = labels[i]
        order[fill[a]] = i
        fill[a] += 1


def _check_index(index: np.ndarray, n: int) -> np.ndarray:
    """``index`` as int64, every entry a row of an ``n``-row array (the kernels do not check)."""
    index = np.ascontiguousarray(index, dtype=np.int64)
    if index.size and (index.min() < 0 or index.max() >= n):
        raise IndexError(f"row index outside [0, {n})")
    return index


def gather_rows(x: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``x[index]`` for a 2-D C-contiguous ``x``, rows copied in parallel."""
    limit_threads()
    index = _check_index(index, x.shape[0])
    out = memory.empty((index.size, x.shape[1]), dtype=x.dtype)
    _gather(x, index, out)
    return out


@jit(parallel=True)
def _gather(x, index, out):
    m = x.shape[1]
    for p in prange(index.size):
        src = x[index[p]]
        dst = out[p]
        for j in range(m):
            dst[j] = src[j]


def scatter_rows(x: np.ndarray, index: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out[index] = x`` (``index`` a permutation: no row written twice), in parallel."""
    limit_threads()
    index = _check_index(index, out.shape[0])
    _scatter(x, index, out)
    return out


@jit(parallel=True)
def _scatter(x, index, out):
    m = x.shape[1]
    for p in prange(index.size):
        src = x[p]
        dst = out[index[p]]
        for j in range(m):
            dst[j] = src[j]


# ----------------------------------------------------------------------------- warm-up
def warm_up() -> None:
    """Compile (or load from numba's cache) every kernel for the dtypes the methods use."""
    if not available():
        return
    from .zeyde import gradient_filters

    mid = np.linspace(0.0, 1.0, 20 * 20, dtype=np.float32).reshape(20, 20)
    rows = np.array([2, 4, 2, 4], dtype=np.int64)
    cols = np.array([2, 2, 4, 4], dtype=np.int64)
    feats = np.empty((4, 4 * 36), dtype=np.float32)
    patch_features(mid, filter_taps(gradient_filters(2)), rows, cols, 6, feats)
    assemble_lattice(mid, feats[:, :36].copy(), (rows[:2], cols[::2]), 6)
    order = stable_order(np.array([1, 0, 1, 0], dtype=np.int64), 2)[0]
    scatter_rows(gather_rows(feats, order), order, np.empty_like(feats))
    with blas_in_threads():  # finds the BLAS libraries once
        pass
