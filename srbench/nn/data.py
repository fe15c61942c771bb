"""Training pairs for the CNN methods, made with the evaluation protocol's degradation.

Everything here is numpy: the arrays are handed to torch by :mod:`srbench.nn.train`.
Every LR image is ``srbench.protocol.degrade`` of the modcropped HR image (float MATLAB
bicubic, never rounded), so the networks learn exactly the mapping they are tested on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from srbench.protocol import degrade, imresize, modcrop

__all__ = ["bicubic_pairs", "downscaled_copies", "lr_pairs", "split_holdout", "validation_pairs"]


def split_holdout(
    images: Sequence[np.ndarray], holdout: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Split training images into (train, held-out) lists.

    The held-out images are spread evenly over the list (which is in file-name order), so
    the split is deterministic and does not depend on any test set.

    Parameters
    ----------
    images : sequence of ndarray
        HR luminance images (uint8).
    holdout : int
        Number of images to hold out; at most ``len(images) - 1``.

    Returns
    -------
    train, held : list of ndarray
    """
    images = list(images)
    holdout = max(0, min(int(holdout), len(images) - 1))
    if holdout == 0:
        return images, []
    # Centre of each of ``holdout`` equal slices: t1, t10, ... stay spread over the set.
    step = len(images) / holdout
    held_idx = {int(step * (k + 0.5)) for k in range(holdout)}
    train = [im for i, im in enumerate(images) if i not in held_idx]
    held = [im for i, im in enumerate(images) if i in held_idx]
    return train, held


def downscaled_copies(images: Sequence[np.ndarray], factors: Sequence[float]) -> list[np.ndarray]:
    """FSRCNN's scale augmentation: each image downscaled by each factor, after the originals.

    The copies are MATLAB bicubic downscales rounded to uint8, as the FSRCNN training code
    writes them to disk (factors 0.9, 0.8, 0.7 and 0.6 in the paper). They add training
    images with sharper, smaller structures; the degradation is then applied to each copy as
    to any other HR image.

    Parameters
    ----------
    images : sequence of ndarray
        HR luminance images (uint8).
    factors : sequence of float
        Downscaling factors, each in (0, 1).

    Returns
    -------
    list of ndarray
        ``images`` followed by the copies, factor by factor.
    """
    for factor in factors:
        if not 0.0 < float(factor) < 1.0:
            raise ValueError(f"scale augmentation factors must be in (0, 1), got {factor}")
    out = [np.asarray(im) for im in images]
    for factor in factors:
        out.extend(imresize(np.asarray(im), float(factor)) for im in images)
    return out


def _hr_lr(image: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    hr = modcrop(np.asarray(image), scale)
    lr = degrade(hr, scale)
    unit = hr.astype(np.float32) / 255.0 if hr.dtype == np.uint8 else hr.astype(np.float32)
    return unit, lr.astype(np.float32)


def _windows(
    image: np.ndarray, size: int, stride: int, grid: tuple[int, int] | None = None
) -> np.ndarray:
    """``size`` x ``size`` windows at ``stride`` from the top-left (MATLAB's ``1:stride:end``).

    ``grid`` limits the window grid to (rows, columns), to pair it with another grid.
    """
    if image.shape[0] < size or image.shape[1] < size:
        return np.empty((0, size, size), dtype=image.dtype)
    view = sliding_window_view(image, (size, size))[::stride, ::stride]
    if grid is not None:
        view = view[: grid[0], : grid[1]]
    return view.reshape(-1, size, size)


def _grid(shape: tuple[int, ...], size: int, stride: int) -> tuple[int, int]:
    return tuple(max(0, (n - size) // stride + 1) for n in shape[:2])  # type: ignore[return-value]


def bicubic_pairs(
    images: Sequence[np.ndarray], scale: int, *, size: int, stride: int, margin: int
) -> tuple[np.ndarray, np.ndarray]:
    """SRCNN sub-images: bicubic-enlarged LR input windows and their centre HR labels.

    Follows SRCNN's ``generate_train.m``: input = imresize(imresize(hr, 1/s), s), windows of
    ``size`` at ``stride``; the label is the centre ``size - 2 * margin`` crop, because the
    network is trained with valid convolutions.

    Returns
    -------
    inputs : ndarray, shape (N, 1, size, size), float32
    labels : ndarray, shape (N, 1, size - 2 margin, size - 2 margin), float32
    """
    inputs, labels = [], []
    for image in images:
        hr, lr = _hr_lr(image, scale)
        bic = imresize(lr, output_shape=hr.shape)
        grid = _grid(bic.shape, size, stride)
        if 0 in grid:
            continue
        inputs.append(_windows(bic, size, stride))
        labels.append(_windows(hr[margin:, margin:], size - 2 * margin, stride, grid))
    x = np.concatenate(inputs)[:, None]
    y = np.concatenate(labels)[:, None]
    return np.ascontiguousarray(x, np.float32), np.ascontiguousarray(y, np.float32)


def lr_pairs(
    images: Sequence[np.ndarray],
    scale: int,
    *,
    size: int,
    stride: int,
    margin: int,
    hr_crop: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """LR-space sub-images (FSRCNN, ESPCN): LR windows and the HR region they predict.

    A network trained with valid convolutions sees an LR window of ``size`` pixels and
    predicts the HR pixels of its centre ``size - 2 * margin`` LR pixels, less ``hr_crop``
    HR pixels per side (for a deconvolution whose outermost outputs lack contributions).

    Returns
    -------
    inputs : ndarray, shape (N, 1, size, size), float32
    labels : ndarray, shape (N, 1, L, L), float32, ``L = scale * (size - 2 margin) - 2 hr_crop``
    """
    inputs, labels = [], []
    inner_lr = size - 2 * margin
    label = scale * inner_lr - 2 * hr_crop
    for image in images:
        hr, lr = _hr_lr(image, scale)
        grid = _grid(lr.shape, size, stride)
        if 0 in grid:
            continue
        inputs.append(_windows(lr, size, stride))
        off = scale * margin + hr_crop
        # Window k of the LR grid starts at LR pixel stride*k, i.e. HR pixel scale*stride*k.
        labels.append(_windows(hr[off:, off:], label, scale * stride, grid))
    x = np.concatenate(inputs)[:, None]
    y = np.concatenate(labels)[:, None]
    return np.ascontiguousarray(x, np.float32), np.ascontiguousarray(y, np.float32)


def validation_pairs(
    images: Sequence[np.ndarray], scale: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(LR float32, HR uint8) pairs of whole held-out images, made with the protocol."""
    pairs = []
    for image in images:
        hr = modcrop(np.asarray(image), scale)
        pairs.append((degrade(hr, scale).astype(np.float32), hr))
    return pairs
