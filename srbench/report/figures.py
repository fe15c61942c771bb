"""Visual comparisons: crops of one region for HR, Bicubic and every method, as papers show.

For each protocol x dataset x scale section, a few images are chosen (those whose PSNR
differs most between methods, after any the user named with ``--crop``); on each, a square
region where the methods' outputs differ most from each other (or the user's region) is cut
from the HR image and from every method's saved output (:mod:`srbench.outputs`: the very
image that was scored). Under each crop: its PSNR and SSIM over that region, computed the
way the section's protocol scores a whole image (uint8 luminance under ``matlab``, unrounded
luminance of the uint8 RGB output under ``matlab-rgb``), so a crop of the whole shaved image
gives the stored per-image numbers exactly. A small picture of the full image marks where
the region lies.

Nothing is run: outputs come from beside the store, the HR image from the dataset folder.
Where either is missing the figure says so and shows what it can.
"""

from __future__ import annotations

import io
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from srbench.store import Result

__all__ = ["Crop", "CropSpec", "Figure", "FigureImage", "build_figure", "crop_scores", "parse_crop", "score_plane"]

#: Images per figure unless told otherwise.
IMAGES_PER_FIGURE = 2
#: Side of an automatically chosen region, in HR pixels (smaller for small images).
REGION_SIDE = 64
#: Width of the small picture of the whole image, in pixels.
THUMBNAIL_WIDTH = 240


@dataclass(frozen=True)
class CropSpec:
    """A region the user asked for: ``[DATASET/]IMAGE:x,y,w,h`` in HR pixels."""

    image: str
    x: int
    y: int
    w: int
    h: int
    dataset: str = ""

    def matches(self, dataset: str, image: str) -> bool:
        return image == self.image and (not self.dataset or self.dataset.lower() == dataset.lower())

    def __str__(self) -> str:
        where = f"{self.dataset}/{self.image}" if self.dataset else self.image
        return f"{where}:{self.x},{self.y},{self.w},{self.h}"


def parse_crop(text: str) -> CropSpec:
    """``baby:100,120,64,64`` or ``Set5/baby:100,120,64,64`` (x, y, width, height)."""
    match = re.fullmatch(r"\s*(?:([^/:]+)/)?([^:]+):\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*", text)
    if not match:
        raise ValueError(f"--crop {text!r}: expected IMAGE:x,y,w,h (or DATASET/IMAGE:x,y,w,h), e.g. baby:100,120,64,64")
    dataset, image, x, y, w, h = match.groups()
    spec = CropSpec(image.strip(), int(x), int(y), int(w), int(h), (dataset or "").strip())
    if spec.w < 11 or spec.h < 11:
        raise ValueError(f"--crop {text!r}: a region needs at least 11x11 pixels (SSIM's window)")
    return spec


@dataclass
class Crop:
    """One tile of a figure: HR or a method's output, cut to the region."""

    label: str
    method: str = ""  # "" for HR
    png: bytes | None = None
    psnr: float | None = None
    ssim: float | None = None
    #: The stored per-image PSNR, for the tooltip.
    image_psnr: float | None = None
    best: bool = False
    note: str = ""


@dataclass
class FigureImage:
    image: str
    #: x, y, width, height in HR pixels (after modcrop).
    region: tuple[int, int, int, int]
    #: Size of the scored HR image (width, height).
    size: tuple[int, int]
    #: "auto" (where methods differ most) or "asked" (``--crop``).
    chosen: str
    thumbnail: bytes | None = None
    thumbnail_kind: str = "jpeg"
    crops: list[Crop] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def display_width(self) -> int:
        """CSS width of each crop: an integer zoom of the region up to 128 px (sharp pixels)."""
        w = self.region[2]
        return w * max(1, 128 // w) if w <= 128 else 128

    @property
    def display_height(self) -> int:
        return round(self.region[3] * self.display_width / self.region[2])

    @property
    def box(self) -> dict[str, float]:
        """The region as percentages of the full image (to mark it on the small picture)."""
        x, y, w, h = self.region
        width, height = self.size
        return {"left": 100 * x / width, "top": 100 * y / height, "width": 100 * w / width, "height": 100 * h / height}


@dataclass
class Figure:
    protocol: str
    dataset: str
    scale: int
    images: list[FigureImage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def caption(self) -> str:
        return f"{self.dataset} ×{self.scale}, protocol {self.protocol}"


# ---------------------------------------------------------------------------- scoring
def score_plane(image: np.ndarray, protocol: str) -> np.ndarray:
    """The plane a protocol computes PSNR and SSIM on, on the 0-255 scale, unshaved.

    ``matlab``: the uint8 luminance itself. ``matlab-rgb`` (and any RGB image): MATLAB's
    ``rgb2ycbcr(im2double(rgb))`` luminance times 255, not rounded.
    """
    from srbench.protocol import rgb2ycbcr

    if image.ndim == 3:
        return rgb2ycbcr(image.astype(np.float64) / 255.0)[..., 0] * 255.0
    return image.astype(np.float64)


def crop_scores(output: np.ndarray, hr: np.ndarray, region: tuple[int, int, int, int], protocol: str) -> tuple[float, float | None]:
    """PSNR and SSIM of ``output`` against ``hr`` over ``region`` (x, y, w, h) only."""
    from srbench.metrics import psnr_255, ssim_255

    x, y, w, h = region
    a = score_plane(output, protocol)[y : y + h, x : x + w]
    b = score_plane(hr, protocol)[y : y + h, x : x + w]
    return psnr_255(a, b), ssim_255(a, b) if min(a.shape) >= 11 else None


# ---------------------------------------------------------------------------- choosing
def _spread(results: Sequence[Result]) -> dict[str, float]:
    """Per image, how far apart the methods' PSNRs are."""
    by_image: dict[str, list[float]] = defaultdict(list)
    for r in results:
        if r.status == "ok" and r.psnr is not None:
            by_image[r.image].append(r.psnr)
    return {image: max(v) - min(v) for image, v in by_image.items() if len(v) > 1}


def choose_images(results: Sequence[Result], count: int, asked: Sequence[str] = ()) -> list[str]:
    """The images to show: those asked for, then those where methods differ most (with a
    single method: those it scores worst on)."""
    spread = _spread(results)
    if not spread:
        lowest: dict[str, float] = {}
        for r in results:
            if r.status == "ok" and r.psnr is not None:
                lowest[r.image] = min(lowest.get(r.image, r.psnr), r.psnr)
        spread = {image: -value for image, value in lowest.items()}
    chosen = [a for a in asked if a in {r.image for r in results}]
    for image in sorted(spread, key=lambda i: (-spread[i], i)):
        if len(chosen) >= max(count, len(asked)):
            break
        if image not in chosen:
            chosen.append(image)
    return chosen


def choose_region(
    planes: Sequence[np.ndarray], scale: int, side: int | None = None, reference: np.ndarray | None = None
) -> tuple[int, int, int, int]:
    """The square (x, y, side, side) inside the scored area where the planes differ most.

    "Differ" is the per-pixel standard deviation across the methods' outputs, summed over
    the square (found with an integral image). A thousandth of the outputs' mean error
    against ``reference`` (the HR plane; without one, their local contrast) is added, so
    that where the outputs agree (one method only, or identical outputs) the square goes
    where they are wrong rather than to a corner; the first of equal squares wins.
    """
    height, width = planes[0].shape[:2]
    inner_h, inner_w = height - 2 * scale, width - 2 * scale
    if side is None:
        side = min(REGION_SIDE, max(16, min(height, width) // 4))
    side = max(1, min(side, inner_h, inner_w))
    stack = np.stack([p.astype(np.float64) for p in planes])
    # Ties (methods that agree everywhere, or a single method) are broken by the error
    # against the reference, else by local contrast, never by the top-left corner.
    if reference is not None:
        fallback = np.abs(stack - reference).mean(axis=0)
    else:
        gy, gx = np.gradient(stack.mean(axis=0))
        fallback = np.hypot(gx, gy)
    spread = (stack.std(axis=0) if len(planes) > 1 else 0.0) + 1e-3 * fallback
    spread = spread[scale : height - scale, scale : width - scale]
    integral = np.zeros((inner_h + 1, inner_w + 1))
    integral[1:, 1:] = spread.cumsum(0).cumsum(1)
    sums = integral[side:, side:] - integral[:-side, side:] - integral[side:, :-side] + integral[:-side, :-side]
    y, x = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(x) + scale, int(y) + scale, side, side


def _clamp(spec: CropSpec, width: int, height: int) -> tuple[int, int, int, int] | None:
    x, y = min(spec.x, width - 1), min(spec.y, height - 1)
    w, h = min(spec.w, width - x), min(spec.h, height - y)
    return (x, y, w, h) if w >= 11 and h >= 11 else None


# ---------------------------------------------------------------------------- encoding
def png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _thumbnail(image: np.ndarray, width: int = THUMBNAIL_WIDTH) -> bytes:
    """A small JPEG of the whole image (only for finding the region; never scored)."""
    from PIL import Image

    picture = Image.fromarray(np.ascontiguousarray(image))
    if picture.width > width:
        picture = picture.resize((width, max(1, round(picture.height * width / picture.width))), Image.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=82, optimize=True)
    return buffer.getvalue()


# ---------------------------------------------------------------------------- building
class HRSource:
    """HR images from the dataset folders, loaded once, checked against the stored hash."""

    def __init__(self, data_dir: str | Path | None) -> None:
        self.data_dir = data_dir
        self._datasets: dict[str, object] = {}
        self._problems: dict[str, str] = {}

    def original(self, dataset: str, image: str, image_hash: str) -> tuple[np.ndarray | None, str]:
        """The stored uint8 image (before any protocol step), or None and why not."""
        from srbench.datasets import load_dataset

        if dataset not in self._datasets and dataset not in self._problems:
            try:
                self._datasets[dataset] = load_dataset(dataset, self.data_dir, download=False)
            except Exception as exc:  # noqa: BLE001 - any reason is reported, the figure goes on
                self._problems[dataset] = str(exc).split("; ")[0]
        if dataset in self._problems:
            return None, f"the HR images of {dataset} were not found ({self._problems[dataset]})"
        found = [i for i in self._datasets[dataset].images if i.name == image]  # type: ignore[attr-defined]
        if not found:
            return None, f"{image} is not in the local copy of {dataset}"
        try:
            pixels = found[0].pixels()
            digest = found[0].content_hash()
        except Exception as exc:  # noqa: BLE001
            return None, f"the local {image} cannot be read ({exc})"
        if image_hash and digest != image_hash:
            return None, f"the local {image} is not the image that was scored (other pixels)"
        return pixels, ""


def build_figure(
    protocol: str,
    dataset: str,
    scale: int,
    results: Sequence[Result],
    *,
    store_path: str | Path,
    labels_in_order: Sequence[tuple[str, str]],
    hr_source: HRSource,
    count: int = IMAGES_PER_FIGURE,
    crops: Iterable[CropSpec] = (),
) -> Figure:
    """The visual comparison of one section.

    Parameters
    ----------
    results : sequence of Result
        The section's results (one protocol, dataset and scale).
    labels_in_order : sequence of (method, label)
        The methods in table order (Bicubic first when present).
    """
    from srbench.outputs import load_output
    from srbench.protocols import get_protocol

    figure = Figure(protocol, dataset, scale)
    asked = {spec.image: spec for spec in crops if spec.matches(dataset, spec.image)}
    asked = {image: spec for image, spec in asked.items() if any(r.image == image for r in results)}
    if not any(r.output for r in results):
        figure.notes.append(
            "No method outputs were saved for these results (stored before srbench kept them, or run "
            "with --no-outputs), so there is nothing to crop: `srbench run ... --force` keeps them."
        )
        return figure
    by_image: dict[str, dict[str, Result]] = defaultdict(dict)
    for r in results:
        by_image[r.image][r.method] = r
    for image in choose_images(results, count, list(asked)):
        cells = by_image[image]
        outputs: dict[str, np.ndarray] = {}
        missing: dict[str, str] = {}
        for method, _label in labels_in_order:
            r = cells.get(method)
            if r is None:
                continue
            if r.status != "ok":
                missing[method] = "failed"
            elif not r.output:
                missing[method] = "output not kept"
            else:
                try:
                    outputs[method] = load_output(store_path, r.output)
                except (FileNotFoundError, OSError):
                    missing[method] = "output file missing"
        some = next(iter(cells.values()))
        original, problem = hr_source.original(dataset, image, some.image_hash)
        hr = None
        if original is not None:
            try:
                hr = get_protocol(protocol).ground_truth(original, scale)
            except ValueError as exc:
                problem = f"protocol {protocol} is unknown here ({exc})"
        shapes = {o.shape[:2] for o in outputs.values()} | ({hr.shape[:2]} if hr is not None else set())
        if not outputs or len(shapes) > 1:
            figure.notes.append(f"{image}: " + ("no saved output to crop." if not outputs else "outputs of different sizes; not shown."))
            continue
        height, width = next(iter(shapes))
        spec = asked.get(image)
        region = _clamp(spec, width, height) if spec else None
        if spec and region is None:
            figure.notes.append(f"{image}: the region {spec} lies outside the {width}x{height} image; chosen automatically instead.")
        chosen = "asked" if region else "auto"
        if region is None:
            region = choose_region([score_plane(o, protocol) for o in outputs.values()], scale,
                                   reference=score_plane(hr, protocol) if hr is not None else None)
        x, y, w, h = region
        entry = FigureImage(image=image, region=region, size=(width, height), chosen=chosen)
        if hr is not None:
            entry.crops.append(Crop("HR", png=png_bytes(hr[y : y + h, x : x + w])))
        else:
            entry.crops.append(Crop("HR", note="not available"))
            entry.notes.append(f"No HR crop and no crop scores: {problem}.")
        picture = original if original is not None else next(iter(outputs.values()))
        entry.thumbnail = _thumbnail(picture)
        for method, label in labels_in_order:
            r = cells.get(method)
            if r is None:
                continue
            crop = Crop(label, method=method, image_psnr=r.psnr if r.status == "ok" else None)
            if method in outputs:
                crop.png = png_bytes(outputs[method][y : y + h, x : x + w])
                if hr is not None:
                    crop.psnr, crop.ssim = crop_scores(outputs[method], hr, region, protocol)
            else:
                crop.note = missing.get(method, "")
            entry.crops.append(crop)
        scored = [c for c in entry.crops if c.psnr is not None]
        for crop in scored:  # every crop that ties for the best
            crop.best = crop.psnr == max(c.psnr for c in scored)
        figure.images.append(entry)
    return figure


def attach_figures(
    sections: Sequence[object],
    results: Sequence[Result],
    *,
    store_path: str | Path,
    data_dir: str | Path | None = None,
    count: int = IMAGES_PER_FIGURE,
    crops: Sequence[CropSpec] = (),
) -> list[str]:
    """Give every section (:class:`srbench.report.data.Section`) its figure.

    Returns notes about the figures as a whole: crops asked for that match no result.
    """
    grouped: Mapping[tuple, list[Result]] = defaultdict(list)
    for r in results:
        grouped[(r.protocol, r.dataset, r.scale)].append(r)  # type: ignore[index]
    source = HRSource(data_dir)
    for section in sections:
        mine = grouped.get((section.protocol, section.dataset, section.scale), [])  # type: ignore[attr-defined]
        order = [(row.method, row.label) for row in section.rows]  # type: ignore[attr-defined]
        section.figure = build_figure(  # type: ignore[attr-defined]
            section.protocol, section.dataset, section.scale, mine, store_path=store_path,  # type: ignore[attr-defined]
            labels_in_order=order, hr_source=source, count=count, crops=crops,
        )  # fmt: skip
    notes = []
    for spec in crops:
        if not any(spec.matches(r.dataset, r.image) for r in results):
            notes.append(f"--crop {spec}: no result for that image, so no figure uses it.")
    return notes
