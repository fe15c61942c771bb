"""SSIM's map compiled: the five local statistics and the map in one pass over the rows.

:func:`srbench.metrics.ssim_255` filters five maps (the two images, their squares and their
product) with an 11x11 Gaussian, 'valid', and combines them into the SSIM map. With
``scipy.ndimage.correlate1d`` and numpy that is ten single-threaded filter passes and a dozen
whole-image temporaries per cell, the largest per-cell cost of the harness. This kernel works
one output row at a time: the vertical pass of the five statistics (squares and product
formed on the fly, as numpy forms them) into five row buffers, the horizontal pass, then the
map's formula. It uses scipy's own arithmetic for a symmetric window (the centre tap, then
the pairs of taps from the outside in, each pair summed before it is weighted) and numpy's
operation order for the formula, so the map holds the same numbers and SSIM is unchanged
(tested bit for bit against the scipy path). A large map is cut into bands of rows computed
on Python threads (the kernel releases the GIL); not numba's parallel loops, whose OpenMP
threads keep spinning after the call, into the next timed call of a worker (measured: such a
version made the run slower). The rows do not depend on the cut. PSNR's sum of squared
differences of two uint8 images (:func:`sum_squared_differences`) is here too: the other
per-cell score.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from srbench.jit import available, jit

__all__ = ["available", "one_thread", "reference_statistics", "ssim_map", "sum_squared_differences"]

#: Map values from which the rows are split over threads (a smaller map takes under 1 ms).
THREADED_FROM = 1 << 16

_HERE = threading.local()  # this thread's maps: one thread each (see one_thread)


@contextmanager
def one_thread() -> Iterator[None]:
    """Maps made in this thread meanwhile use one thread, whatever their size.

    For a caller that keeps the other core busy itself: the runner writes each output's PNG
    on another thread while it scores the output. There, a map split over both cores only
    contended with the PNG: a Set5/Set14 cell took 2.5 ms to score and save, 2.2 ms with a
    one-thread map.
    """
    before = getattr(_HERE, "one", False)
    _HERE.one = True
    try:
        yield
    finally:
        _HERE.one = before


def ssim_map(
    a: np.ndarray,
    b: np.ndarray,
    window: np.ndarray,
    c1: float,
    c2: float,
    *,
    threads: int | None = None,
    reference: np.ndarray | None = None,
) -> np.ndarray:
    """Wang et al.'s SSIM map ('valid') of two float64 images, as :mod:`srbench.metrics` forms it.

    ``threads`` bands of rows are computed side by side (default: two from
    :data:`THREADED_FROM` values on, where the machine has two cores, else one).
    ``reference``: :func:`reference_statistics` of ``b`` with this window, kept from an
    earlier map against the same ``b`` (a benchmark scores every method's output against
    one ground truth); the map is then the same, from three local statistics instead of five.
    """
    a, b, window, out, threads = _operands(a, b, window, threads)
    rows = out.shape[0]
    if reference is not None and reference.shape != (2, *out.shape):
        raise ValueError(f"reference statistics of shape {reference.shape} for a map of shape {out.shape}")

    def band(t: int) -> None:
        first, last = t * rows // threads, (t + 1) * rows // threads
        if reference is None:
            _ssim_rows(a, b, window, float(c1), float(c2), out, first, last)
        else:
            _ssim_rows_against(a, b, reference, window, float(c1), float(c2), out, first, last)

    from srbench.threads import in_threads

    in_threads(band, threads)
    return out


def reference_statistics(b: np.ndarray, window: np.ndarray, *, threads: int | None = None) -> np.ndarray:
    """The local mean of ``b`` and of its square, (2, rows, cols): :func:`ssim_map`'s ``reference``.

    Each is computed as the map computes it (the same operations in the same order), so a
    map from them holds the same numbers to the bit.
    """
    b, _, window, out, threads = _operands(b, b, window, threads)
    stats = np.empty((2, *out.shape))
    rows = out.shape[0]

    def band(t: int) -> None:
        _reference_rows(b, window, stats, t * rows // threads, (t + 1) * rows // threads)

    from srbench.threads import in_threads

    in_threads(band, threads)
    return stats


def _operands(a, b, window, threads):
    """The images as the kernels read them, the window, an empty map and the thread count."""
    import os

    r = window.size // 2
    # uint8 images are read as they are: each value, square and product is formed exactly as
    # from their float64 copies (integers far below 2**53), without making those copies.
    dtype = np.uint8 if a.dtype == b.dtype == np.uint8 else np.float64
    a = np.ascontiguousarray(a, dtype=dtype)
    b = np.ascontiguousarray(b, dtype=dtype)
    out = np.empty((a.shape[0] - 2 * r, a.shape[1] - 2 * r))
    window = np.ascontiguousarray(window, dtype=np.float64)
    if threads is None:
        several = out.size >= THREADED_FROM and not getattr(_HERE, "one", False)
        threads = min(2, os.cpu_count() or 1) if several else 1
    return a, b, window, out, max(1, min(threads, out.shape[0]))


# ------------------------------------------------------------------- the passes of one row
# Each local sum starts from the centre tap, then adds the pairs of taps from the outside in,
# each pair summed before it is weighted (scipy's order for a symmetric window); squares and
# products are formed per pixel as numpy forms them. For SSIM's own 11-tap window (Wang et
# al.'s and every paper's) the passes form each sum in a register, tap pair by tap pair, and
# store it once, instead of adding each pair into a row buffer in memory: the same operations
# in the same order, so the same numbers, and loops along the row that the compiler turns
# into vector instructions (2.5x faster on a 480x500 map: 1.23 against 3.07 ms, one thread).


@jit(inline="always")
def _pair_sums(sx, sxx, xu, xd, weight):
    """A tap pair added into the local sums of x and of x * x."""
    return sx + (xu + xd) * weight, sxx + (xu * xu + xd * xd) * weight


@jit(inline="always")
def _pair_product(sxy, xu, xd, yu, yd, weight):
    """A tap pair added into the local sum of x * y."""
    return sxy + (xu * yu + xd * yd) * weight


@jit()
def _vertical(a, i, w, line_x, line_xx):
    """The vertical pass of ``a`` and ``a * a`` at row ``i``."""
    if w.size == 11:
        _vertical_11(a, i, w, line_x, line_xx)
        return
    r = w.size // 2
    centre = w[r]
    for c in range(a.shape[1]):
        x = np.float64(a[i, c])
        line_x[c], line_xx[c] = x * centre, (x * x) * centre
    for jj in range(-r, 0):
        weight = w[r + jj]
        for c in range(a.shape[1]):
            line_x[c], line_xx[c] = _pair_sums(line_x[c], line_xx[c], np.float64(a[i + jj, c]), np.float64(a[i - jj, c]), weight)


@jit()
def _vertical_product(a, b, i, w, line_x, line_xx, line_xy):
    """:func:`_vertical` of ``a`` and, in the same sweep, of ``a * b``."""
    if w.size == 11:
        _vertical_product_11(a, b, i, w, line_x, line_xx, line_xy)
        return
    r = w.size // 2
    centre = w[r]
    for c in range(a.shape[1]):
        x, y = np.float64(a[i, c]), np.float64(b[i, c])
        line_x[c], line_xx[c], line_xy[c] = x * centre, (x * x) * centre, (x * y) * centre
    for jj in range(-r, 0):
        weight = w[r + jj]
        for c in range(a.shape[1]):
            xu, yu = np.float64(a[i + jj, c]), np.float64(b[i + jj, c])
            xd, yd = np.float64(a[i - jj, c]), np.float64(b[i - jj, c])
            line_x[c], line_xx[c] = _pair_sums(line_x[c], line_xx[c], xu, xd, weight)
            line_xy[c] = _pair_product(line_xy[c], xu, xd, yu, yd, weight)


@jit()
def _horizontal(line, w, row):
    """One row of a 'valid' horizontal pass, along the row so that it vectorises."""
    if w.size == 11:
        _horizontal_11(line, w, row)
        return
    r = w.size // 2
    centre = w[r]
    for c in range(row.size):
        row[c] = line[c + r] * centre
    for jj in range(-r, 0):
        weight = w[r + jj]
        for c in range(row.size):
            row[c] += (line[c + r + jj] + line[c + r - jj]) * weight


@jit()
def _vertical_11(a, i, w, line_x, line_xx):
    """:func:`_vertical` for an 11-tap window."""
    centre, w0, w1, w2, w3, w4 = w[5], w[0], w[1], w[2], w[3], w[4]
    a0, a1, a2, a3, a4, a5 = a[i - 5], a[i - 4], a[i - 3], a[i - 2], a[i - 1], a[i]
    a6, a7, a8, a9, a10 = a[i + 1], a[i + 2], a[i + 3], a[i + 4], a[i + 5]
    for c in range(a.shape[1]):
        x = np.float64(a5[c])
        sx, sxx = x * centre, (x * x) * centre
        sx, sxx = _pair_sums(sx, sxx, np.float64(a0[c]), np.float64(a10[c]), w0)
        sx, sxx = _pair_sums(sx, sxx, np.float64(a1[c]), np.float64(a9[c]), w1)
        sx, sxx = _pair_sums(sx, sxx, np.float64(a2[c]), np.float64(a8[c]), w2)
        sx, sxx = _pair_sums(sx, sxx, np.float64(a3[c]), np.float64(a7[c]), w3)
        sx, sxx = _pair_sums(sx, sxx, np.float64(a4[c]), np.float64(a6[c]), w4)
        line_x[c], line_xx[c] = sx, sxx


@jit()
def _vertical_product_11(a, b, i, w, line_x, line_xx, line_xy):
    """:func:`_vertical_product` for an 11-tap window (the five pairs written out: it is
    what lets the compiler keep the sums in registers)."""
    centre, w0, w1, w2, w3, w4 = w[5], w[0], w[1], w[2], w[3], w[4]
    a0, a1, a2, a3, a4, a5 = a[i - 5], a[i - 4], a[i - 3], a[i - 2], a[i - 1], a[i]
    a6, a7, a8, a9, a10 = a[i + 1], a[i + 2], a[i + 3], a[i + 4], a[i + 5]
    b0, b1, b2, b3, b4, b5 = b[i - 5], b[i - 4], b[i - 3], b[i - 2], b[i - 1], b[i]
    b6, b7, b8, b9, b10 = b[i + 1], b[i + 2], b[i + 3], b[i + 4], b[i + 5]
    for c in range(a.shape[1]):
        x, y = np.float64(a5[c]), np.float64(b5[c])
        sx, sxx, sxy = x * centre, (x * x) * centre, (x * y) * centre
        xu, xd, yu, yd = np.float64(a0[c]), np.float64(a10[c]), np.float64(b0[c]), np.float64(b10[c])
        sx, sxx = _pair_sums(sx, sxx, xu, xd, w0)
        sxy = _pair_product(sxy, xu, xd, yu, yd, w0)
        xu, xd, yu, yd = np.float64(a1[c]), np.float64(a9[c]), np.float64(b1[c]), np.float64(b9[c])
        sx, sxx = _pair_sums(sx, sxx, xu, xd, w1)
        sxy = _pair_product(sxy, xu, xd, yu, yd, w1)
        xu, xd, yu, yd = np.float64(a2[c]), np.float64(a8[c]), np.float64(b2[c]), np.float64(b8[c])
        sx, sxx = _pair_sums(sx, sxx, xu, xd, w2)
        sxy = _pair_product(sxy, xu, xd, yu, yd, w2)
        xu, xd, yu, yd = np.float64(a3[c]), np.float64(a7[c]), np.float64(b3[c]), np.float64(b7[c])
        sx, sxx = _pair_sums(sx, sxx, xu, xd, w3)
        sxy = _pair_product(sxy, xu, xd, yu, yd, w3)
        xu, xd, yu, yd = np.float64(a4[c]), np.float64(a6[c]), np.float64(b4[c]), np.float64(b6[c])
        sx, sxx = _pair_sums(sx, sxx, xu, xd, w4)
        sxy = _pair_product(sxy, xu, xd, yu, yd, w4)
        line_x[c], line_xx[c], line_xy[c] = sx, sxx, sxy


@jit()
def _horizontal_11(line, w, row):
    """:func:`_horizontal` for an 11-tap window."""
    centre, w0, w1, w2, w3, w4 = w[5], w[0], w[1], w[2], w[3], w[4]
    for c in range(row.size):
        s = line[c + 5] * centre
        s += (line[c] + line[c + 10]) * w0
        s += (line[c + 1] + line[c + 9]) * w1
        s += (line[c + 2] + line[c + 8]) * w2
        s += (line[c + 3] + line[c + 7]) * w3
        s += (line[c + 4] + line[c + 6]) * w4
        row[c] = s


@jit()
def _map_row(mean_a, square_a, product, mean_b, square_b, c1, c2, row):
    """One row of the map from the five local statistics, in numpy's operation order."""
    for c in range(row.size):
        mu_a, mu_b = mean_a[c], mean_b[c]
        mu_a2, mu_b2, mu_ab = mu_a * mu_a, mu_b * mu_b, mu_a * mu_b
        var_a = square_a[c] - mu_a2
        var_b = square_b[c] - mu_b2
        cov = product[c] - mu_ab
        row[c] = ((2 * mu_ab + c1) * (2 * cov + c2)) / ((mu_a2 + mu_b2 + c1) * (var_a + var_b + c2))


# ------------------------------------------------------------------------------ whole rows
@jit()
def _ssim_rows(a, b, w, c1, c2, out, first, last):
    """Rows ``first .. last - 1`` of the map ``out``."""
    r = w.size // 2
    lines = np.empty((5, a.shape[1]))
    means = np.empty((5, a.shape[1] - 2 * r))
    for i in range(r + first, r + last):
        _vertical_product(a, b, i, w, lines[0], lines[2], lines[4])
        _vertical(b, i, w, lines[1], lines[3])
        for m in range(5):
            _horizontal(lines[m], w, means[m])
        _map_row(means[0], means[2], means[4], means[1], means[3], c1, c2, out[i - r])


@jit()
def _ssim_rows_against(a, b, stats, w, c1, c2, out, first, last):
    """:func:`_ssim_rows` with ``b``'s local mean and mean square given (``stats``)."""
    r = w.size // 2
    lines = np.empty((3, a.shape[1]))
    means = np.empty((3, a.shape[1] - 2 * r))
    for i in range(r + first, r + last):
        _vertical_product(a, b, i, w, lines[0], lines[1], lines[2])
        for m in range(3):
            _horizontal(lines[m], w, means[m])
        _map_row(means[0], means[1], means[2], stats[0, i - r], stats[1, i - r], c1, c2, out[i - r])


@jit()
def _reference_rows(b, w, stats, first, last):
    """Rows ``first .. last - 1`` of ``b``'s local mean and mean square, as :func:`_ssim_rows`
    forms its ``means[1]`` and ``means[3]``."""
    r = w.size // 2
    lines = np.empty((2, b.shape[1]))
    for i in range(r + first, r + last):
        _vertical(b, i, w, lines[0], lines[1])
        _horizontal(lines[0], w, stats[0, i - r])
        _horizontal(lines[1], w, stats[1, i - r])


def sum_squared_differences(a: np.ndarray, b: np.ndarray) -> int:
    """The sum of ``(a - b) ** 2`` over two uint8 images of one shape, in exact integers.

    PSNR's mean squared error is this sum over the pixel count: the float64 mean numpy takes
    of the squared differences adds integers exactly too, so the two agree to the bit.
    """
    a = np.ascontiguousarray(a, dtype=np.uint8)
    b = np.ascontiguousarray(b, dtype=np.uint8)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    return int(_sum_squared_differences(a.reshape(-1), b.reshape(-1)))


@jit()
def _sum_squared_differences(a, b):
    total = 0
    for k in range(a.size):
        d = np.int64(a[k]) - np.int64(b[k])
        total += d * d
    return total
