"""Method outputs saved beside the store, so a report can show crops without running anything.

Each output is the image that was scored (uint8 luminance under ``matlab``, uint8 RGB under
``matlab-rgb``), written once as a lossless PNG named by the SHA-256 of its pixels, in
``<store>-outputs/<first two hex digits>/<hash>.png``. A result row names its output by that
hash (``Result.output``); identical outputs share one file.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import numpy as np

__all__ = ["load_output", "output_dir", "save_output"]


def output_dir(store_path: str | Path) -> Path:
    """The folder of a store's outputs: ``results.sqlite`` -> ``results-outputs/``."""
    store_path = Path(store_path)
    return store_path.with_name(f"{store_path.stem}-outputs")


def _path(store_path: str | Path, digest: str) -> Path:
    return output_dir(store_path) / digest[:2] / f"{digest}.png"


def save_output(store_path: str | Path, image: np.ndarray) -> str:
    """Write ``image`` (uint8) unless an identical one is there; return its hash."""
    image = np.ascontiguousarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"outputs are saved as uint8, got {image.dtype}")
    digest = hashlib.sha256(str(image.shape).encode() + image.tobytes()).hexdigest()
    path = _path(store_path, digest)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # A name of this process's own: two runs on one store may write the same output.
        partial = path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.part")
        _write_png(partial, image)
        partial.replace(path)  # never a half-written PNG under the final name
    return digest


def _write_png(path: Path, image: np.ndarray) -> None:
    from srbench.png import write_png

    # One thread: the driver saves between two timed calls and must not spin into them.
    write_png(path, image)


def load_output(store_path: str | Path, digest: str) -> np.ndarray:
    """The saved output with hash ``digest`` (FileNotFoundError if it was not kept)."""
    from PIL import Image

    with Image.open(_path(store_path, digest)) as handle:
        return np.asarray(handle).copy()
