"""Colour output for ``srbench upscale``: the method on Y, bicubic on Cb and Cr."""

from __future__ import annotations

import numpy as np

from srbench.method import Method
from srbench.protocol import imresize, rgb2ycbcr, to_uint8, ycbcr2rgb

__all__ = ["upscale_image"]

#: Output rows converted back to RGB at a time: the float64 temporaries of a whole 4000x3200
#: image are 300 MB each; a band of rows stays in cache and computes the same values.
_BAND_ROWS = 64


def upscale_image(method: Method, image: np.ndarray, scale: int) -> np.ndarray:
    """Upscale a uint8 grayscale or RGB image by ``scale``; returns uint8 of the same kind."""
    if method.channels == "rgb":
        # An RGB network sees the colour image itself; a grayscale one as three equal
        # channels, whose outputs are averaged back into one.
        rgb = image if image.ndim == 3 else np.repeat(image[:, :, None], 3, axis=2)
        out = method.upscale(rgb.astype(np.float32) / 255.0, scale)
        return to_uint8(out if image.ndim == 3 else out.mean(axis=2))
    if image.ndim == 2:
        return to_uint8(method.upscale(image.astype(np.float32) / 255.0, scale))
    ycc = rgb2ycbcr(image.astype(np.float32) / 255.0)
    y = method.upscale(ycc[..., 0], scale)
    chroma = imresize(ycc[..., 1:], scale)
    from srbench import colour_kernel

    if colour_kernel.available() and y.dtype == chroma.dtype == np.float32:
        return colour_kernel.ycbcr_to_rgb8(y, chroma)
    out = np.empty(y.shape + (3,), dtype=np.uint8)
    band = np.empty((min(_BAND_ROWS, y.shape[0]), y.shape[1], 3), dtype=np.float32)
    for top in range(0, y.shape[0], _BAND_ROWS):
        rows = slice(top, top + _BAND_ROWS)
        part = band[: y[rows].shape[0]]
        part[..., 0] = y[rows]
        part[..., 1:] = chroma[rows]
        out[rows] = to_uint8(ycbcr2rgb(part))
    return out
