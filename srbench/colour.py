"""Colour output for ``srbench upscale``: the method on Y, bicubic on Cb and Cr.

The chroma half does not depend on the method, so for a large image and a torch method it
is done by a forked process while the network runs: the enlarged Cb and Cr, then, once the
luminance is handed over through shared memory, the conversion back to RGB. In ``srbench
upscale`` the network's process spends its first second on one core importing torch, which
is when the other core loads numba's kernels and enlarges the chroma; the network's process
then never loads numba at all. The numbers are those of the same steps in one process.
Classical methods load numba themselves and use every core: beside them, such a process
made A+ slower (2.8 s against 2.4 s on the 2-core development machine), so they do not get
one.
"""

from __future__ import annotations

import mmap
import os
import sys

import numpy as np

from srbench.method import Method
from srbench.protocol import imresize, rgb2ycbcr, to_uint8, ycbcr2rgb

__all__ = ["upscale_image"]

#: Output rows converted back to RGB at a time: the float64 temporaries of a whole 4000x3200
#: image are 300 MB each; a band of rows stays in cache and computes the same values.
_BAND_ROWS = 64

#: Output pixels from which the chroma is done by a forked process (below, starting one
#: costs about what it saves).
FORK_FROM = 1 << 20


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
    chroma = ycc[..., 1:]
    alongside = _ChromaProcess.start(chroma, scale) if "cuda" in method.devices else None
    try:
        y = method.upscale(ycc[..., 0], scale)
        if alongside is not None:
            out = alongside.finish(y)
            if out is not None:
                return out
    finally:
        if alongside is not None:
            alongside.close()
    # Small images, no fork, or the process failed: the same steps here.
    return _to_rgb8(y, imresize(chroma, scale))


def _to_rgb8(y: np.ndarray, chroma: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """RGB uint8 of the method's luminance and the enlarged chroma (into ``out`` if given)."""
    from srbench import colour_kernel

    if out is None:
        out = np.empty(y.shape + (3,), dtype=np.uint8)
    if colour_kernel.available() and y.dtype == chroma.dtype == np.float32:
        return colour_kernel.ycbcr_to_rgb8(y, chroma, out=out)
    band = np.empty((min(_BAND_ROWS, y.shape[0]), y.shape[1], 3), dtype=np.float32)
    for top in range(0, y.shape[0], _BAND_ROWS):
        rows = slice(top, top + _BAND_ROWS)
        part = band[: y[rows].shape[0]]
        part[..., 0] = y[rows]
        part[..., 1:] = chroma[rows]
        out[rows] = to_uint8(ycbcr2rgb(part))
    return out


def _fork_is_safe() -> bool:
    """Whether this process can fork a child that runs numba's kernels.

    The worker pool's rules (:func:`srbench.isolation._fork_supported`, one thread only:
    :func:`srbench.isolation._fork_hazard`), and neither numba nor torch imported yet: GNU
    OpenMP kills a child whose parent had started its threads. ``srbench upscale`` is such a
    process when it gets here; a long-lived caller usually is not, and does the chroma
    itself.
    """
    from srbench.isolation import _fork_hazard, _fork_supported

    return (
        _fork_supported()
        and not _fork_hazard()
        and "numba" not in sys.modules
        and "torch" not in sys.modules
    )


class _ChromaProcess:
    """A forked process enlarging the chroma, then converting to RGB the luminance it is sent.

    The luminance goes to it, and the RGB result comes back, through anonymous shared
    memory made before the fork; a byte on a pipe says each is ready. Anything it cannot
    do (an error, a crash, a luminance of another shape or dtype) leaves :meth:`finish`
    returning None, and the caller does the work itself, so errors surface as they would
    without it.
    """

    def __init__(self, pid: int, to_child: int, from_child: int, y: mmap.mmap, rgb: mmap.mmap, shape: tuple[int, int]) -> None:
        self._pid, self._to_child, self._from_child = pid, to_child, from_child
        self._y, self._rgb, self._shape = y, rgb, shape
        self._answered = False

    @classmethod
    def start(cls, chroma: np.ndarray, scale: int) -> _ChromaProcess | None:
        """Fork the process for ``chroma`` (H, W, 2) at ``scale``; None where it is not worth
        it or not safe."""
        shape = (chroma.shape[0] * scale, chroma.shape[1] * scale)
        pixels = shape[0] * shape[1]
        if pixels < FORK_FROM or not _fork_is_safe():
            return None
        opened: list[int] = []
        try:
            y, rgb = mmap.mmap(-1, 4 * pixels), mmap.mmap(-1, 3 * pixels)
            down, up = os.pipe(), os.pipe()
            opened = [*down, *up]
            pid = os.fork()
        except OSError:
            for fd in opened:
                os.close(fd)
            return None
        if pid == 0:
            code = 1
            try:
                os.close(down[1])
                os.close(up[0])
                code = _serve(chroma, scale, down[0], up[1], y, rgb, shape)
            finally:
                os._exit(code)
        os.close(down[0])
        os.close(up[1])
        return cls(pid, down[1], up[0], y, rgb, shape)

    def finish(self, y: np.ndarray) -> np.ndarray | None:
        """The RGB image of luminance ``y`` and the enlarged chroma, or None."""
        if y.shape != self._shape or y.dtype != np.float32:
            return None
        np.frombuffer(self._y, dtype=np.float32).reshape(self._shape)[...] = y
        try:
            os.write(self._to_child, b"Y")
            done = os.read(self._from_child, 1) == b"K"
        except OSError:
            return None
        self._answered = True
        return np.frombuffer(self._rgb, dtype=np.uint8).reshape(self._shape + (3,)) if done else None

    def close(self) -> None:
        """End the process: it exits by itself once it has answered; else it is killed
        (the method failed, or the caller does the work itself)."""
        import signal

        if not self._answered:
            try:
                os.kill(self._pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for fd in (self._to_child, self._from_child):
            os.close(fd)
        try:
            os.waitpid(self._pid, 0)
        except ChildProcessError:
            pass
        self._y.close()


def _serve(chroma: np.ndarray, scale: int, requests: int, answers: int, y: mmap.mmap, rgb: mmap.mmap, shape: tuple[int, int]) -> int:
    """The child's work: enlarge ``chroma``, wait for the luminance, convert, answer."""
    try:
        enlarged = imresize(chroma, scale)
        if os.read(requests, 1) != b"Y":
            return 0  # the parent does not need it (it failed, or does the work itself)
        luminance = np.frombuffer(y, dtype=np.float32).reshape(shape)
        _to_rgb8(luminance, enlarged, out=np.frombuffer(rgb, dtype=np.uint8).reshape(shape + (3,)))
        os.write(answers, b"K")
        return 0
    except BaseException:  # noqa: BLE001 - the parent does the work instead; nothing to report here
        return 1
