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

__all__ = ["available", "ssim_map", "sum_squared_differences"]

#: Map values from which the rows are split over threads (a smaller map takes under 1 ms).
THREADED_FROM = 1 << 16


def ssim_map(
    a: np.ndarray, b: np.ndarray, window: np.ndarray, c1: float, c2: float, *, threads: int | None = None
) -> np.ndarray:
    """Wang et al.'s SSIM map ('valid') of two float64 images, as :mod:`srbench.metrics` forms it.

    ``threads`` bands of rows are computed side by side (default: two from
    :data:`THREADED_FROM` values on, where the machine has two cores, else one).
    """
    import os

    from srbench.threads import in_threads

    r = window.size // 2
    # uint8 images are read as they are: each value, square and product is formed exactly as
    # from their float64 copies (integers far below 2**53), without making those copies.
    dtype = np.uint8 if a.dtype == b.dtype == np.uint8 else np.float64
    a = np.ascontiguousarray(a, dtype=dtype)
    b = np.ascontiguousarray(b, dtype=dtype)
    out = np.empty((a.shape[0] - 2 * r, a.shape[1] - 2 * r))
    window = np.ascontiguousarray(window, dtype=np.float64)
    rows = out.shape[0]
    if threads is None:
        threads = min(2, os.cpu_count() or 1) if out.size >= THREADED_FROM else 1
    threads = max(1, min(threads, rows))

    def band(t: int) -> None:
        _ssim_rows(a, b, window, float(c1), float(c2), out, t * rows // threads, (t + 1) * rows // threads)

    in_threads(band, threads)
    return out


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
        row = out[i - r]
        for c in range(cols):
            mu_a, mu_b = means[0, c], means[1, c]
            mu_a2, mu_b2, mu_ab = mu_a * mu_a, mu_b * mu_b, mu_a * mu_b
            var_a = means[2, c] - mu_a2
            var_b = means[3, c] - mu_b2
            cov = means[4, c] - mu_ab
            row[c] = ((2 * mu_ab + c1) * (2 * cov + c2)) / ((mu_a2 + mu_b2 + c1) * (var_a + var_b + c2))


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
