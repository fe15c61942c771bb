"""Device choice and whole-image inference for the CNN methods (imports torch)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["BORDERS", "prepare_network", "resolve_device", "run_model"]

#: How a test-time pass treats the image border (see :func:`run_model`).
BORDERS = ("layers", "symmetric")


def resolve_device(device: str | None = "auto") -> torch.device:
    """``"auto"`` (or None) means CUDA when available, else CPU; anything else is explicit."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but no CUDA GPU is available")
    return dev


def prepare_network(model: nn.Module, device: torch.device) -> nn.Module:
    """Move a network to ``device`` in evaluation mode and channels-last layout."""
    return model.to(device, memory_format=torch.channels_last).eval()


def run_model(
    model: nn.Module, image: np.ndarray, device: torch.device, *, border: str = "layers"
) -> np.ndarray:
    """Run a test-mode network on one whole 2-D image.

    The whole image goes through in one piece: the benchmark images are small, and tiling
    would only add seams. On CUDA the work is synchronised before returning, so a caller's
    clock measures the computation, not just its launch.

    Parameters
    ----------
    model : nn.Module
        A network with ``forward(x, pad=True)`` and a ``reach`` attribute.
    image : ndarray, 2-D
        The network input (LR, or SRCNN's bicubic enlargement).
    device : torch.device
    border : {"layers", "symmetric"}
        "layers" pads before every convolution by repeating the edge, as the reference
        MATLAB code does (``imfilter(..., 'same', 'replicate')``). "symmetric" instead
        extends the image once, by the network's reach, with a mirror image of itself
        (MATLAB's ``'symmetric'`` padding, the one ``imresize`` uses) and cuts the extension
        off the output: every kept output is then computed from image-like content, as in
        a valid-convolution training pass, never from padded feature maps.

    Returns
    -------
    ndarray, float32
        The network output, the input's size times the network's scale.
    """
    if border not in BORDERS:
        raise ValueError(f"border must be one of {', '.join(BORDERS)}; got {border!r}")
    extend = int(model.reach) if border == "symmetric" else 0
    if extend:
        image = np.pad(image, extend, mode="symmetric")
    with torch.inference_mode():
        # A private copy: the input may be a read-only view, which torch must not alias.
        x = torch.from_numpy(np.array(image, dtype=np.float32, copy=True))[None, None]
        # channels_last: oneDNN's convolutions run about 1.7x faster on CPU in this layout
        # (the network itself is converted once, in prepare_network).
        x = x.to(device).contiguous(memory_format=torch.channels_last)
        y = model(x, pad=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        out = y[0, 0].float().cpu().numpy()
    if extend:
        cut = extend * (out.shape[0] // image.shape[0])
        out = out[cut:-cut, cut:-cut]
    return out
