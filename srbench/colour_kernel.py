"""uint8 images in one compiled pass: YCbCr back to RGB for ``srbench upscale``, and floats
in [0, 1] quantised as :func:`srbench.protocol.to_uint8` does (every scored output).

:func:`srbench.colour.upscale_image` puts the method's luminance and the enlarged chroma
together and converts them with :func:`srbench.protocol.ycbcr2rgb` then
:func:`srbench.protocol.to_uint8`: about ten numpy passes over float64 temporaries, 0.32 s of
a 4000x3200 output. This kernel computes each pixel's three values in registers, in the
same arithmetic: the YCbCr values scaled to [0, 255] in float64, the offset taken off, the
inverse BT.601 matrix applied, the result rounded to float32 (the dtype ``ycbcr2rgb`` returns
for float32 input) and then quantised as ``to_uint8`` does (times 255 in float64, clipped,
rounded half up).

numpy's 3x3 product goes through BLAS, whose summation order (and use of fused multiply-add)
is its own, so a float64 sum here may differ from it in its last bit; that can change the
output only where the float32 value sits on a rounding boundary of uint8, which the tests
and a 12.8-megapixel photograph never met. The rows are split over threads (the kernel
releases the GIL).
"""

from __future__ import annotations

import numpy as np

from srbench import memory
from srbench.jit import available, jit
from srbench.protocol import _RGB_MATRIX, _YCBCR_OFFSET

__all__ = ["available", "to_uint8", "ycbcr_to_rgb8"]

#: Output values from which the rows are split over threads (below, one thread: a few ms).
_THREADED_FROM = 1 << 20


def ycbcr_to_rgb8(
    y: np.ndarray, chroma: np.ndarray, *, threads: int | None = None, out: np.ndarray | None = None
) -> np.ndarray:
    """RGB uint8 of luminance ``y`` (H, W) and chroma (H, W, 2), both float in [0, 1] units.

    Parameters
    ----------
    y : ndarray, float32, shape (H, W)
    chroma : ndarray, float32, shape (H, W, 2)
        Cb and Cr.
    threads : int, optional
        Threads converting bands of rows; by default every core for large images, one for
        small ones.
    out : ndarray, uint8, shape (H, W, 3), optional
        Where to write the result (C-contiguous); a new array by default.
    """
    import os

    from srbench.threads import in_threads

    y = np.ascontiguousarray(y, dtype=np.float32)
    chroma = np.ascontiguousarray(chroma, dtype=np.float32)
    if y.ndim != 2 or chroma.shape != y.shape + (2,):
        raise ValueError(f"need y (H, W) and chroma (H, W, 2); got {y.shape} and {chroma.shape}")
    if out is None:
        out = memory.empty(y.shape + (3,), dtype=np.uint8)
    elif out.shape != y.shape + (3,) or out.dtype != np.uint8 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous uint8 array of shape {y.shape + (3,)}")
    height = y.shape[0]
    if threads is None:
        threads = (os.cpu_count() or 1) if out.size >= _THREADED_FROM else 1
    threads = max(1, min(threads, height))
    matrix = np.ascontiguousarray(_RGB_MATRIX)
    offset = np.ascontiguousarray(_YCBCR_OFFSET)

    def band(t: int) -> None:
        _convert_rows(y, chroma, matrix, offset, out, t * height // threads, (t + 1) * height // threads)

    in_threads(band, threads)
    return out


def to_uint8(image: np.ndarray) -> np.ndarray:
    """A float32 or float64 image in [0, 1] as uint8, exactly as :func:`srbench.protocol.to_uint8`
    rounds it (times 255 in float64, clipped to [0, 255], rounded half up), in one pass
    instead of four over float64 temporaries. Values must be finite."""
    image = np.ascontiguousarray(image)
    if image.dtype not in (np.float32, np.float64):
        raise ValueError(f"to_uint8 takes float32 or float64 images, got {image.dtype}")
    out = np.empty(image.shape, dtype=np.uint8)
    _quantise_all(image.reshape(-1), out.reshape(-1))
    return out


def warm_up() -> None:
    """Compile (or load) the kernels for the types this module passes them."""
    ycbcr_to_rgb8(np.zeros((2, 2), np.float32), np.zeros((2, 2, 2), np.float32))
    to_uint8(np.zeros(2, np.float32))
    to_uint8(np.zeros(2, np.float64))


@jit()
def _quantise_all(values, out):
    for k in range(values.size):
        out[k] = _quantise(values[k])


@jit()
def _quantise(value):
    """A float ``value`` in [0, 1] units to uint8 as ``to_uint8`` rounds it."""
    scaled = np.float64(value) * 255.0
    if scaled < 0.0:
        scaled = 0.0
    elif scaled > 255.0:
        scaled = 255.0
    return np.uint8(np.floor(scaled + 0.5))


@jit()
def _convert_rows(y, chroma, matrix, offset, out, first, last):
    """Rows ``first .. last - 1`` of ``out`` (H, W, 3) from ``y`` and ``chroma``."""
    width = y.shape[1]
    m00, m01, m02 = matrix[0, 0], matrix[0, 1], matrix[0, 2]
    m10, m11, m12 = matrix[1, 0], matrix[1, 1], matrix[1, 2]
    m20, m21, m22 = matrix[2, 0], matrix[2, 1], matrix[2, 2]
    for i in range(first, last):
        for j in range(width):
            v0 = np.float64(y[i, j]) * 255.0 - offset[0]
            v1 = np.float64(chroma[i, j, 0]) * 255.0 - offset[1]
            v2 = np.float64(chroma[i, j, 1]) * 255.0 - offset[2]
            out[i, j, 0] = _quantise(np.float32(v0 * m00 + v1 * m01 + v2 * m02))
            out[i, j, 1] = _quantise(np.float32(v0 * m10 + v1 * m11 + v2 * m12))
            out[i, j, 2] = _quantise(np.float32(v0 * m20 + v1 * m21 + v2 * m22))
