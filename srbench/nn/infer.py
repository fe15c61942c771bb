"""Device choice and whole-image inference for the CNN methods (imports torch)."""

from __future__ import annotations

import ctypes
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import nn

__all__ = ["BORDERS", "prepare_network", "resolve_device", "run_model"]

#: How a test-time pass treats the image border (see :func:`run_model`).
BORDERS = ("layers", "symmetric")

#: A CPU pass is split into horizontal strips, one per torch thread, when the image has at
#: least this many rows per row of the network's reach. Two strips of an image of h rows
#: compute h + 4*reach rows between them, a speed-up of 2h / (h + 4*reach): 1.2x at this
#: threshold, more above it. Below it the pass runs whole, threaded inside each operation;
#: on a busy machine that is the slow way (OpenMP meets at every operation, and a waiting
#: thread spins on the core its partner needs: FSRCNN took 130-170 ms per Set5 image at
#: load 5-9 against 20 ms on one thread), so strips are preferred down to this size.
_MIN_ROWS_PER_REACH = 3

_pools: dict[int, ThreadPoolExecutor] = {}
_threads_lock = threading.Lock()
_heap_kept = False

#: glibc ``mallopt`` settings for CPU inference (see :func:`keep_freed_memory`).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's maximum on 64-bit
_TRIM_THRESHOLD = 512 * 1024 * 1024


def keep_freed_memory() -> bool:
    """Keep freed memory in this process's heap (glibc only; once per process).

    A CPU pass allocates and frees several feature maps of 1-30 MB (and oneDNN its
    scratchpads). glibc serves blocks that size with fresh ``mmap`` pages or trims them off
    the heap when freed, so every pass page-faults its memory in again: 6,600 faults per
    FSRCNN pass on a 170x170 LR image, which doubled its time (35.6 ms -> 17.0 ms with them
    gone, one thread). Fixing the mmap threshold at glibc's maximum (32 MB) and trimming
    only above 512 MB lets freed blocks be reused. It is process-wide, like the
    ``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_`` environment variables it
    stands for; the process keeps up to that much freed memory. Returns whether it applied.
    """
    global _heap_kept
    if _heap_kept or not sys.platform.startswith("linux"):
        return _heap_kept
    try:
        libc = ctypes.CDLL("libc.so.6")
        _heap_kept = bool(
            libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
            and libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
        )
    except (OSError, AttributeError):  # not glibc
        _heap_kept = False
    return _heap_kept


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

    On the CPU with more than one torch thread, the image is cut into one horizontal strip per
    thread, each with the rows of context the network's ``reach`` needs, and the strips run
    side by side, each single-threaded; the outputs are the same (the context rows make every
    kept output's computation that of the whole image). Threads then meet once per image
    instead of at every operation, which keeps both cores busy even when the machine is
    shared. ``torch.set_num_threads`` is set to 1 for the duration and restored.

    Parameters
    ----------
    model : nn.Module
        A network with ``forward(x, pad=True)`` and a ``reach`` attribute. One whose
        ``valid_inference`` attribute is true promises that ``forward(x, pad=False)`` is a
        valid pass whose centre is what ``pad=True`` computes on an image extended by the
        reach; with ``border="symmetric"`` that pass is used (no per-layer padding, and
        feature maps that shrink layer by layer instead of staying extended).
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
    reach = int(model.reach)
    extend = reach if border == "symmetric" else 0
    valid = bool(extend) and bool(getattr(model, "valid_inference", False))
    height, width = image.shape
    if extend:
        image = np.pad(image, extend, mode="symmetric")
    # torch must not alias a read-only or foreign array: copy only when it would.
    image = np.ascontiguousarray(image, dtype=np.float32)
    if not image.flags.writeable:
        image = image.copy()
    if device.type == "cpu":
        keep_freed_memory()
    with torch.inference_mode():
        # channels_last: oneDNN's convolutions run about 1.7x faster on CPU in this layout
        # (the network itself is converted once, in prepare_network).
        x = torch.from_numpy(image)[None, None].to(device)
        strips = _strips(height, reach, device)
        if strips > 1:
            y = _run_strips(model, x, height, width, extend, reach, valid, strips)
        else:
            y = _forward(model, x, height, width, extend, valid)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return y.float().cpu().numpy()


def _strips(height: int, reach: int, device: torch.device) -> int:
    """How many horizontal strips a CPU pass is cut into (1: the whole image at once)."""
    if device.type != "cpu":
        return 1
    threads = torch.get_num_threads()
    if threads < 2 or reach < 1:
        return 1
    return max(1, min(threads, height // (_MIN_ROWS_PER_REACH * reach)))


def _forward(
    model: nn.Module, x: torch.Tensor, height: int, width: int, extend: int, valid: bool
) -> torch.Tensor:
    """The output (h*s, w*s) of a (1, 1, h + 2*extend, w + 2*extend) input, extension cut."""
    x = x.contiguous(memory_format=torch.channels_last)
    y = model(x, pad=not valid)[0, 0]
    # The network's own, where it says (a valid pass's output holds the extension's
    # outputs too, so its width over the image's is not the scale for narrow images);
    # else from the output and the core of the input.
    scale = getattr(model, "scale", None) or round(y.shape[-1] / (width if valid else x.shape[-1]))
    cut_h, cut_w = (y.shape[0] - height * scale) // 2, (y.shape[1] - width * scale) // 2
    return y[cut_h : cut_h + height * scale, cut_w : cut_w + width * scale]


def _run_strips(
    model: nn.Module,
    x: torch.Tensor,
    height: int,
    width: int,
    extend: int,
    reach: int,
    valid: bool,
    strips: int,
) -> torch.Tensor:
    """:func:`_forward` over horizontal strips run side by side, one thread each."""
    bounds = [round(height * i / strips) for i in range(strips + 1)]

    def strip(i: int) -> torch.Tensor:
        top, bottom = bounds[i], bounds[i + 1]
        # Rows top..bottom of the (unextended) image, with `reach` rows of context on each
        # side that exists: in the extended input those are rows top-reach .. bottom+reach
        # shifted by `extend`, clipped to the input.
        first = max(0, top + extend - reach)
        last = min(x.shape[-2], bottom + extend + reach)
        with torch.inference_mode():
            part = x[..., first:last, :]
            if valid:
                # A valid pass over exactly the context rows: its core is rows top..bottom.
                return _forward(model, part, bottom - top, width, reach, True)
            y = model(part.contiguous(memory_format=torch.channels_last), pad=True)[0, 0]
            scale = round(y.shape[-1] / x.shape[-1])
            skip = (top + extend - first) * scale
            y = y[skip : skip + (bottom - top) * scale]
            cut = extend * scale
            return y[:, cut : y.shape[1] - cut] if cut else y

    with _threads_lock:
        previous = torch.get_num_threads()
        pool = _pools.get(strips)
        if pool is None:
            pool = _pools[strips] = ThreadPoolExecutor(strips, thread_name_prefix="srbench-strip")
        torch.set_num_threads(1)
        try:
            parts = list(pool.map(strip, range(strips)))
            # Still one thread: a multi-threaded op here would leave OpenMP's team spinning
            # into the next image's strips (a third of FSRCNN's time on 2 cores).
            return torch.cat(parts, dim=0)
        finally:
            torch.set_num_threads(previous)
