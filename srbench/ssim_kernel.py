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

import numpy as np

from srbench.jit import available, jit

__all__ = ["available", "reference_statistics", "ssim_map", "sum_squared_differences"]

#: Map values from which the rows are split over threads (a smaller map takes under 1 ms).
THREADED_FROM = 1 << 16


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
        threads = min(2, os.cpu_count() or 1) if out.size >= THREADED_FROM else 1
    return a, b, window, out, max(1, min(threads, out.shape[0]))


@jit()
def _horizontal(line, w, row):
    """One row of a 'valid' horizontal pass in scipy's order, along the row so that it vectorises."""
    r = w.size // 2
    n = row.size
    centre = w[r]
    for c in range(n):
        row[c] = line[c + r] * centre
    for jj in range(-r, 0):
        weight = w[r + jj]
        for c in range(n):
            row[c] += (line[c + r + jj] + line[c + r - jj]) * weight


@jit()
def _ssim_rows(a, b, w, c1, c2, out, first, last):
    """Rows ``first .. last - 1`` of the map ``out``."""
    width = a.shape[1]
    r = w.size // 2
    cols = width - 2 * r
    centre = w[r]
    lines = np.empty((5, width))
    means = np.empty((5, cols))
    for i in range(r + first, r + last):
        # Vertical pass of a, b, a*a, b*b, a*b (formed per pixel exactly as numpy forms them).
        for c in range(width):
            x, y = np.float64(a[i, c]), np.float64(b[i, c])
            lines[0, c] = x * centre
            lines[1, c] = y * centre
            lines[2, c] = (x * x) * centre
            lines[3, c] = (y * y) * centre
            lines[4, c] = (x * y) * centre
        for jj in range(-r, 0):
            weight = w[r + jj]
            for c in range(width):
                xu, yu = np.float64(a[i + jj, c]), np.float64(b[i + jj, c])
                xd, yd = np.float64(a[i - jj, c]), np.float64(b[i - jj, c])
                lines[0, c] += (xu + xd) * weight
                lines[1, c] += (yu + yd) * weight
                lines[2, c] += (xu * xu + xd * xd) * weight
                lines[3, c] += (yu * yu + yd * yd) * weight
                lines[4, c] += (xu * yu + xd * yd) * weight
        for m in range(5):
            _horizontal(lines[m], w, means[m])
        _map_row(means[0], means[2], means[4], means[1], means[3], c1, c2, out[i - r])


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


@jit()
def _reference_rows(b, w, stats, first, last):
    """Rows ``first .. last - 1`` of ``b``'s local mean and mean square, as :func:`_ssim_rows`
    forms its ``means[1]`` and ``means[3]``."""
    width = b.shape[1]
    r = w.size // 2
    centre = w[r]
    lines = np.empty((2, width))
    for i in range(r + first, r + last):
        for c in range(width):
            y = np.float64(b[i, c])
            lines[0, c] = y * centre
            lines[1, c] = (y * y) * centre
        for jj in range(-r, 0):
            weight = w[r + jj]
            for c in range(width):
                yu, yd = np.float64(b[i + jj, c]), np.float64(b[i - jj, c])
                lines[0, c] += (yu + yd) * weight
                lines[1, c] += (yu * yu + yd * yd) * weight
        _horizontal(lines[0], w, stats[0, i - r])
        _horizontal(lines[1], w, stats[1, i - r])


@jit()
def _ssim_rows_against(a, b, stats, w, c1, c2, out, first, last):
    """:func:`_ssim_rows` with ``b``'s local mean and mean square given (``stats``)."""
    width = a.shape[1]
    r = w.size // 2
    cols = width - 2 * r
    centre = w[r]
    lines = np.empty((3, width))
    means = np.empty((3, cols))
    for i in range(r + first, r + last):
        for c in range(width):
            x, y = np.float64(a[i, c]), np.float64(b[i, c])
            lines[0, c] = x * centre
            lines[1, c] = (x * x) * centre
            lines[2, c] = (x * y) * centre
        for jj in range(-r, 0):
            weight = w[r + jj]
            for c in range(width):
                xu, yu = np.float64(a[i + jj, c]), np.float64(b[i + jj, c])
                xd, yd = np.float64(a[i - jj, c]), np.float64(b[i - jj, c])
                lines[0, c] += (xu + xd) * weight
                lines[1, c] += (xu * xu + xd * xd) * weight
                lines[2, c] += (xu * yu + xd * yd) * weight
        for m in range(3):
            _horizontal(lines[m], w, means[m])
        _map_row(means[0], means[1], means[2], stats[0, i - r], stats[1, i - r], c1, c2, out[i - r])


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
