"""Training data for learned methods: the T91 images as uint8 luminance."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from srbench.imageio import IMAGE_SUFFIXES, read_luminance

__all__ = ["TrainingDataError", "find_training_dir", "load_training_images"]


class TrainingDataError(FileNotFoundError):
    pass


def find_training_dir(train_dir: str | Path | None = None, name: str = "T91") -> Path:
    """``train_dir`` if given, else ``$SRBENCH_DATA/T91``."""
    if train_dir is not None:
        path = Path(train_dir)
    elif os.environ.get("SRBENCH_DATA"):
        path = Path(os.environ["SRBENCH_DATA"]) / name
    else:
        raise TrainingDataError(
            f"no training data: pass --train-dir or set SRBENCH_DATA to a folder holding {name}/"
        )
    if not path.is_dir():
        raise TrainingDataError(f"training folder {path} does not exist")
    return path


def load_training_images(train_dir: str | Path | None = None) -> list[np.ndarray]:
    """All training images of a folder as uint8 luminance, in file-name order.

    File-name order (t1, t10, t11, ...) is fixed so training is reproducible.
    """
    path = find_training_dir(train_dir)
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise TrainingDataError(f"no images in {path}")
    return [read_luminance(p) for p in files]
