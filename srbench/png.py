"""A fast lossless PNG encoder for 8-bit grayscale, RGB and RGBA arrays.

Every cell of a benchmark saves its output, and ``srbench upscale`` writes images of tens of
megapixels. PIL's PNG writer chooses a filter per row by trying them, which costs more than
the compression itself at zlib's fastest level: a 512x512 grayscale output took 3.5 ms.
Here every row gets the "Up" filter (the byte-wise difference from the row above, one numpy
subtraction for the whole image), which compresses photographs about as well as PIL's choice
(within a few percent at level 1), and the compressed stream can be cut into pieces
deflated on several threads (zlib releases the GIL) and joined with full flushes, as pigz
does, so a large image is written by every core. At level 1 the deflating is done by Intel's
ISA-L (the ``isal`` package) where it is installed: 3.7x zlib's speed at its level 1 on a
photograph's filtered rows, with a slightly smaller file (0.480 against 0.497 of the raw
bytes). Any PNG reader decodes the result.
"""

from __future__ import annotations

import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

try:
    from isal import isal_zlib as _isal
except ImportError:  # not installed: zlib does it all
    _isal = None
_sums = _isal or zlib  # the same CRC-32 and Adler-32, ISA-L's faster

__all__ = ["encode_png", "write_png"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOUR_TYPES = {1: 0, 3: 2, 4: 6}  # channels -> PNG colour type (gray, RGB, RGBA)
_UP = 2  # PNG filter type "Up"
#: Filtered bytes deflated per piece when several threads compress (a few ms of work each).
_PIECE = 1 << 22


def _chunk(kind: bytes, data: bytes) -> bytes:
    checksum = _sums.crc32(data, _sums.crc32(kind))
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", checksum)


def _filtered(image: np.ndarray) -> bytes:
    """The scanlines, each its filter byte then the "Up" differences (mod 256) of its bytes."""
    rows = image.reshape(image.shape[0], -1)
    out = np.empty((rows.shape[0], rows.shape[1] + 1), dtype=np.uint8)
    out[:, 0] = _UP
    out[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=out[1:, 1:])  # uint8 arithmetic wraps, as PNG's does
    return out.tobytes()


def _deflate(data: bytes, level: int, threads: int) -> bytes:
    """A zlib stream of ``data``; with ``threads > 1`` its pieces are deflated side by side."""
    # ISA-L's levels are its own (0-3); its level 1 stands in for zlib's fastest.
    engine = _isal if level == 1 and _isal is not None else zlib
    if threads <= 1 or len(data) <= _PIECE:
        return engine.compress(data, level)
    pieces = [data[start : start + _PIECE] for start in range(0, len(data), _PIECE)]

    def deflate(index: int) -> bytes:
        # Raw deflate; every piece but the last ends on a full flush (byte-aligned, no
        # history), so the pieces concatenate into one valid stream.
        stream = engine.compressobj(level, engine.DEFLATED, -15)
        last = index == len(pieces) - 1
        return stream.compress(pieces[index]) + stream.flush(engine.Z_FINISH if last else engine.Z_FULL_FLUSH)

    with ThreadPoolExecutor(threads) as pool:
        body = b"".join(pool.map(deflate, range(len(pieces))))
    header = b"\x78\x01"  # deflate, 32K window, no dictionary (the level hint is advisory)
    return header + body + struct.pack(">I", _sums.adler32(data))


def encode_png(image: np.ndarray, *, level: int = 1, threads: int = 1) -> bytes:
    """PNG bytes of a uint8 image of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4).

    Parameters
    ----------
    image : ndarray of uint8
    level : int
        zlib compression level, 0-9 (1: fastest that still compresses; ISA-L's level 1 where
        the ``isal`` package is installed).
    threads : int
        Threads deflating pieces of a large image side by side.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"PNG images here are uint8, got {image.dtype}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in _COLOUR_TYPES or 0 in image.shape:
        raise ValueError(f"cannot write an image of shape {image.shape} as PNG")
    height, width, channels = image.shape
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOUR_TYPES[channels], 0, 0, 0)
    data = _deflate(_filtered(np.ascontiguousarray(image)), level, threads)
    return _SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def write_png(path: str | Path, image: np.ndarray, *, level: int = 1, threads: int = 1) -> None:
    """Write ``image`` (see :func:`encode_png`) to ``path``."""
    Path(path).write_bytes(encode_png(image, level=level, threads=threads))
