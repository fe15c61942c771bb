"""Device choice and whole-image inference for the CNN methods (imports torch)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["resolve_device", "run_model"]


def resolve_device(device: str | None = "auto") -> torch.device:
    """``"auto"`` (or None) means CUDA when available, else CPU; anything else is explicit."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but no CUDA GPU is available")
    return dev


def run_model(model: nn.Module, image: np.ndarray, device: torch.device) -> np.ndarray:
    """Run a test-mode network (replicate padding) on one whole 2-D image.

    The whole image goes through in one piece: the benchmark images are small, and tiling
    would only add seams. On CUDA the work is synchronised before returning, so a caller's
    clock measures the computation, not just its launch.
    """
    with torch.inference_mode():
        # A private copy: the input may be a read-only view, which torch must not alias.
        x = torch.from_numpy(np.array(image, dtype=np.float32, copy=True))[None, None]
        y = model(x.to(device), pad=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return y[0, 0].float().cpu().numpy()
