"""Colour output for ``srbench upscale``: the method on Y, bicubic on Cb and Cr."""

from __future__ import annotations

import numpy as np

from srbench.method import Method
from srbench.protocol import imresize, rgb2ycbcr, to_uint8, ycbcr2rgb

__all__ = ["upscale_image"]


def upscale_image(method: Method, image: np.ndarray, scale: int) -> np.ndarray:
    """Upscale a uint8 grayscale or RGB image by ``scale``; returns uint8 of the same kind."""
    if image.ndim == 2:
        return to_uint8(method.upscale(image.astype(np.float32) / 255.0, scale))
    ycc = rgb2ycbcr(image.astype(np.float32) / 255.0)
    y = method.upscale(ycc[..., 0], scale)
    chroma = imresize(ycc[..., 1:], scale)
    out = np.concatenate([y[..., None], chroma.astype(np.float32)], axis=2)
    return to_uint8(ycbcr2rgb(out))
