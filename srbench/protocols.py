"""The evaluation protocols: how an image becomes an LR input and how an output is scored.

A protocol owns the whole path of one image through a cell, in the order the runner uses:
:meth:`~Protocol.ground_truth` (what is compared against, from the stored uint8 image),
:meth:`~Protocol.degrade` (the LR image), :meth:`~Protocol.method_input` (what a method of
a given kind receives: the method never sees the ground truth) and :meth:`~Protocol.score`
(PSNR and SSIM of the method's output). Its name is part of every stored result.

``matlab`` (the default) is the pipeline of the SRCNN, ANR and A+ papers. ``matlab-rgb``
is the pipeline of the EDSR/RCAN MATLAB scripts that every RGB network since has been
scored with; the steps and where those scripts do them are written beside the code.
"""

from __future__ import annotations

import numpy as np

from srbench.imageio import luminance
from srbench.metrics import evaluate, psnr_255, ssim_255
from srbench.protocol import degrade, imresize, modcrop, rgb2ycbcr, shave, to_uint8, ycbcr2rgb

__all__ = ["DEFAULT_PROTOCOL", "PROTOCOLS", "MatlabProtocol", "MatlabRGBProtocol", "Protocol", "get_protocol"]


class ProtocolError(ValueError):
    """A method cannot be scored under a protocol (e.g. an RGB method under ``matlab``)."""


class Protocol:
    """A named evaluation protocol."""

    name = ""
    description = ""

    #: The kinds of method (their ``channels``) this protocol can score.
    channels: tuple[str, ...] = ("y",)

    def accepts(self, channels: str) -> bool:
        return channels in self.channels

    def ground_truth(self, image: np.ndarray, scale: int) -> np.ndarray:
        """The HR reference for ``scale`` from a uint8 image (grayscale or RGB)."""
        raise NotImplementedError

    def prepare_image(self, image: np.ndarray) -> np.ndarray:
        """What :meth:`ground_truth` makes of ``image`` at any scale, made once for all scales.

        ``ground_truth(prepare_image(image), scale)`` equals ``ground_truth(image, scale)``
        (a benchmark makes the ground truth of each image at several scales). Default: the
        image itself.
        """
        return image

    def degrade(self, hr: np.ndarray, scale: int) -> np.ndarray:
        """The LR image made from the ground truth."""
        raise NotImplementedError

    def method_input(self, lr: np.ndarray, channels: str) -> np.ndarray:
        """What a method whose ``channels`` is "y" or "rgb" receives (float32 in [0, 1])."""
        raise NotImplementedError

    def output_image(self, sr: np.ndarray, lr: np.ndarray) -> np.ndarray:
        """The uint8 image that is scored for a method's output (what a figure shows)."""
        raise NotImplementedError

    def score(self, sr: np.ndarray, hr: np.ndarray, lr: np.ndarray, scale: int) -> tuple[float, float]:
        """PSNR and SSIM of a method's output (as ``method_input`` implied) against ``hr``."""
        raise NotImplementedError


class MatlabProtocol(Protocol):
    """The SRCNN/ANR/A+ pipeline (DESIGN.md section 1): uint8 luminance, float LR, uint8 scoring.

    1. Y of MATLAB ``rgb2ycbcr`` on the uint8 image, rounded to uint8 (a grayscale image
       is its own Y).
    2. ``modcrop`` to the scale.
    3. LR = MATLAB ``imresize(Y/255, 1/scale, 'bicubic')`` in float, not rounded.
    4. The method maps LR luminance to HR luminance; an RGB method has no place here.
    5. PSNR and SSIM on ``uint8(255*SR)`` against the HR Y, ``scale`` pixels shaved.
    """

    name = "matlab"
    description = (
        "Y of MATLAB rgb2ycbcr (uint8), modcrop(scale), LR = float MATLAB bicubic imresize "
        "by 1/scale; PSNR/SSIM on uint8 Y, scale pixels shaved per border"
    )

    def ground_truth(self, image: np.ndarray, scale: int) -> np.ndarray:
        return modcrop(luminance(image), scale)

    def prepare_image(self, image: np.ndarray) -> np.ndarray:
        return luminance(image)  # its own luminance: the same ground truth

    def degrade(self, hr: np.ndarray, scale: int) -> np.ndarray:
        return degrade(hr, scale)

    def method_input(self, lr: np.ndarray, channels: str) -> np.ndarray:
        if channels != "y":
            raise ProtocolError(f"an RGB method is scored under -p matlab-rgb, not under {self.name}")
        return lr

    def output_image(self, sr, lr):
        return to_uint8(sr)

    def score(self, sr, hr, lr, scale):
        return evaluate(sr, hr, scale)


class MatlabRGBProtocol(Protocol):
    """The EDSR/RCAN pipeline, step by step as their MATLAB scripts do it.

    From RCAN's ``Prepare_TestData_HR_LR.m`` (the LR PNGs of the public benchmark packages)
    and ``Evaluate_PSNR_SSIM.m`` (EDSR's evaluation script is the same):

    1. ``im_ori = imread(...)``; a grayscale image is made RGB, ``cat(3, im, im, im)``
       (so its Y below is the studio-range ``16 + 219 * gray``, not the gray value).
    2. ``im_HR = modcrop(im_ori, scale)`` on uint8 RGB.
    3. ``im_LR = imresize(im_HR, 1/scale, 'bicubic')`` on uint8: every channel resized,
       then rounded and saturated to uint8 (then written as PNG: lossless).
    4. The network maps the LR RGB to SR RGB; EDSR's ``quantize`` and ``imwrite`` leave
       uint8 RGB (``round``). A luminance method gets ``rgb2ycbcr(im2double(LR))``'s Y
       (float, unrounded) and its output is joined with the bicubic enlargement of the
       LR's Cb and Cr, turned back to RGB and rounded the same way.
    5. ``rgb2ycbcr(im2double(im))`` of HR and SR, Y only, not rounded (the script keeps it
       in single precision; float64 here, a difference far below 0.001 dB).
    6. ``Cal_Y_PSNRSSIM(Y_HR*255, Y_SR*255, scale, scale)``: ``scale`` pixels shaved from
       every border, PSNR with peak 255, Wang et al.'s ``ssim_index`` (L = 255).
    """

    name = "matlab-rgb"
    channels = ("rgb", "y")
    description = (
        "RGB uint8 (grayscale made RGB), modcrop(scale), LR = MATLAB bicubic imresize of "
        "the uint8 RGB, rounded to uint8; SR rounded to uint8 RGB; PSNR/SSIM on unrounded "
        "Y of rgb2ycbcr(im2double(.)), scale pixels shaved per border (EDSR/RCAN scripts)"
    )

    def ground_truth(self, image: np.ndarray, scale: int) -> np.ndarray:
        return modcrop(self.prepare_image(image), scale)

    def prepare_image(self, image: np.ndarray) -> np.ndarray:
        return image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)

    def degrade(self, hr: np.ndarray, scale: int) -> np.ndarray:
        if hr.dtype != np.uint8 or hr.ndim != 3:
            raise ValueError(f"matlab-rgb degrades uint8 RGB images, got {hr.dtype} {hr.shape}")
        return imresize(hr, 1.0 / scale)  # uint8 in, rounded uint8 out, as MATLAB

    def method_input(self, lr: np.ndarray, channels: str) -> np.ndarray:
        unit = lr.astype(np.float32) / 255.0
        if channels == "rgb":
            return unit
        return rgb2ycbcr(unit.astype(np.float64))[..., 0].astype(np.float32)

    def output_image(self, sr, lr):
        if sr.ndim == 2:  # a luminance method: its Y with the LR's bicubic Cb/Cr
            chroma = rgb2ycbcr(lr.astype(np.float64) / 255.0)[..., 1:]
            chroma = imresize(chroma, output_shape=sr.shape)
            ycc = np.concatenate([sr.astype(np.float64)[..., None], chroma], axis=2)
            sr = ycbcr2rgb(ycc)
        return to_uint8(np.clip(sr, 0.0, 1.0))

    def score(self, sr, hr, lr, scale):
        sr8 = sr if sr.dtype == np.uint8 else self.output_image(sr, lr)
        y_sr = shave(_luma_255(sr8), scale)
        y_hr = shave(_luma_255(hr), scale)
        return psnr_255(y_sr, y_hr), ssim_255(y_sr, y_hr)


def _luma_255(rgb8: np.ndarray) -> np.ndarray:
    """``rgb2ycbcr(im2double(rgb8))(:,:,1) * 255``: unrounded studio-range luminance."""
    return rgb2ycbcr(rgb8.astype(np.float64) / 255.0)[..., 0] * 255.0


DEFAULT_PROTOCOL = MatlabProtocol()
PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (DEFAULT_PROTOCOL, MatlabRGBProtocol())}


def get_protocol(name: str) -> Protocol:
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ValueError(f"unknown protocol {name!r}; known: {', '.join(PROTOCOLS)}") from None
