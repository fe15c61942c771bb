"""Bicubic interpolation: the baseline every table starts from."""

from __future__ import annotations

import numpy as np

from srbench import Method
from srbench.protocol import imresize


class Bicubic(Method):
    """MATLAB ``imresize(lr, scale, 'bicubic')`` of the LR luminance."""

    name = "bicubic"
    label = "Bicubic"
    scales = frozenset({2, 3, 4, 5, 6, 8})
    version = "1"
    citation = "R. Keys, Cubic convolution interpolation for digital image processing, 1981"

    def __init__(self) -> None:
        pass

    def _upscale(self, lr: np.ndarray, scale: int) -> np.ndarray:
        return imresize(lr, scale)
