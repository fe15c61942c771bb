"""Published numbers to compare against, with their source and protocol."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib import resources

__all__ = ["PublishedValue", "REFERENCES", "published"]


@dataclass(frozen=True)
class PublishedValue:
    dataset: str
    image: str
    scale: int
    label: str
    psnr: float
    seconds: float | None
    source: str


REFERENCES = {
    "srcnn_eccv2014.csv": (
        "Dong et al., Learning a Deep Convolutional Network for Image Super-Resolution, "
        "ECCV 2014, per-image table (MATLAB protocol; times on a 2014 desktop CPU)"
    ),
}


def published() -> list[PublishedValue]:
    """Every per-image published value shipped with srbench."""
    values = []
    for filename, source in REFERENCES.items():
        text = resources.files(__package__).joinpath(filename).read_text()
        for row in csv.DictReader(text.splitlines()):
            values.append(
                PublishedValue(
                    dataset=row["dataset"], image=row["image"], scale=int(row["scale"]),
                    label=row["method"], psnr=float(row["psnr"]),
                    seconds=float(row["seconds"]) if row["seconds"] else None, source=source,
                )  # fmt: skip
            )
    return values
