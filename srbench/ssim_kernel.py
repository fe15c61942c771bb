"""SSIM's Gaussian filtering compiled: the five local statistics in one pass.

:func:`srbench.metrics.ssim_255` filters five maps (the two images, their squares and their
product) with an 11x11 Gaussian, 'valid'. With ``scipy.ndimage.correlate1d`` that is ten
single-threaded passes over whole images and the largest per-cell cost of the harness (about
16 ms for a 512x512 image). This kernel computes only the valid region, with scipy's own
arithmetic for a symmetric window (the centre tap, then the pairs of taps from the outside
in, each pair summed before it is weighted), so the filtered maps are the same numbers and
SSIM is unchanged (tested bit for bit against the scipy path). It runs in one thread: the
driver scores right after a worker's call, whose threads may still be spinning down, and a
thread pool of the driver's own would spin into the next timed call (measured: the parallel
version made the run slower).
"""

from __future__ import annotations

import numpy as np

from srbench.jit import available, jit

__all__ = ["available", "filter_valid_stack"]


def filter_valid_stack(maps: np.ndarray, window: np.ndarray) -> np.ndarray:
    """``filter2(w*w', maps[k], 'valid')`` for each of ``maps`` (k, H, W), float64."""
    n, height, width = maps.shape
    r = window.size // 2
    out = np.empty((n, height - 2 * r, width - 2 * r))
    _filter(np.ascontiguousarray(maps, dtype=np.float64), np.ascontiguousarray(window, dtype=np.float64), out)
    return out


@jit()
def _filter(maps, w, out):
    n, height, width = maps.shape
    r = w.size // 2
    rows = height - 2 * r
    for index in range(n * rows):
        m = index // rows
        i = index % rows + r
        line = np.empty(width)
        for c in range(width):
            line[c] = maps[m, i, c] * w[r]
        for jj in range(-r, 0):
            weight = w[r + jj]
            for c in range(width):
                line[c] += (maps[m, i + jj, c] + maps[m, i - jj, c]) * weight
        # The same order per output as scipy (centre, then pairs from the outside in), run
        # along the row so that it vectorises.
        row = out[m, i - r]
        for c in range(width - 2 * r):
            row[c] = line[c + r] * w[r]
        for jj in range(-r, 0):
            weight = w[r + jj]
            for c in range(width - 2 * r):
                row[c] += (line[c + r + jj] + line[c + r - jj]) * weight
