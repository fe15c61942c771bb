"""Whole-image helpers for real networks: tiled inference and the x8 self-ensemble (imports torch).

Both wrap a forward function ``fn`` that maps an ``(N, C, h, w)`` LR tensor to its
``(N, C', h * scale, w * scale)`` output, so they compose: ``self_ensemble(lambda t:
tiled(fn, t, ...), x)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["dihedral", "self_ensemble", "tiled"]

Forward = Callable[[torch.Tensor], torch.Tensor]


def tiled(fn: Forward, x: torch.Tensor, scale: int, *, tile: int | None, overlap: int = 0) -> torch.Tensor:
    """Run ``fn`` on ``tile`` x ``tile`` LR pieces of ``x`` and stitch their outputs.

    Each piece is cut with ``overlap`` extra LR pixels of context on every side that has
    image there, and only the output of its core is kept. When ``overlap`` covers the
    network's receptive-field radius (in LR pixels), every kept output pixel sees exactly
    what it would see in the whole image, so the result equals the untiled one up to float
    rounding; the image border is the image border in both.

    Parameters
    ----------
    fn : callable
        ``(N, C, h, w)`` -> ``(N, C', h * scale, w * scale)``.
    x : Tensor, shape (N, C, H, W)
    scale : int
    tile : int or None
        Core size in LR pixels; None (or a tile covering the image) runs ``fn`` once.
    overlap : int
        LR pixels of context around each core.
    """
    height, width = x.shape[-2:]
    if tile is None or (height <= tile and width <= tile):
        return fn(x)
    if tile < 1 or overlap < 0:
        raise ValueError(f"tile must be positive and overlap non-negative; got {tile}, {overlap}")
    out: torch.Tensor | None = None
    for top in range(0, height, tile):
        bottom = min(top + tile, height)
        for left in range(0, width, tile):
            right = min(left + tile, width)
            y0, y1 = max(top - overlap, 0), min(bottom + overlap, height)
            x0, x1 = max(left - overlap, 0), min(right + overlap, width)
            piece = fn(x[..., y0:y1, x0:x1])
            if out is None:
                out = piece.new_empty(piece.shape[:-2] + (height * scale, width * scale))
            core = piece[
                ..., (top - y0) * scale : (bottom - y0) * scale, (left - x0) * scale : (right - x0) * scale
            ]
            out[..., top * scale : bottom * scale, left * scale : right * scale] = core
    assert out is not None
    return out


def dihedral(x: torch.Tensor, k: int, *, inverse: bool = False) -> torch.Tensor:
    """The ``k``-th of the 8 flips/rotations of the image plane (0 is the identity)."""
    if inverse:
        if k >= 4:
            x = x.flip(-1)
        return torch.rot90(x, -(k % 4), dims=(-2, -1))
    x = torch.rot90(x, k % 4, dims=(-2, -1))
    return x.flip(-1) if k >= 4 else x


def self_ensemble(fn: Forward, x: torch.Tensor) -> torch.Tensor:
    """The mean of ``fn`` over the 8 flips/rotations of ``x``, each turned back (the "+" rows).

    EDSR-era tables mark results computed this way with "+"; it costs eight forward passes.
    """
    total: torch.Tensor | None = None
    for k in range(8):
        out = dihedral(fn(dihedral(x, k)), k, inverse=True)
        total = out if total is None else total + out
    assert total is not None
    return total / 8
