"""The dataset catalog and where images come from.

Sources, in order: ``--data-dir`` / ``SRBENCH_DATA`` (one sub-folder per dataset), the user
cache, then a download of the dataset's archive from the Hugging Face hub, verified against
the pixel hashes pinned here. Only high-resolution images are used: the protocol makes LR.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from srbench.imageio import IMAGE_SUFFIXES, ImageError, luminance, pixel_hash, read_image, write_image

__all__ = [
    "CATALOG",
    "Dataset",
    "DatasetError",
    "DatasetImage",
    "DatasetSpec",
    "cache_dir",
    "list_datasets",
    "load_dataset",
    "local_copy",
]


class DatasetError(Exception):
    """A dataset that cannot be found, fetched or verified."""


@dataclass(frozen=True)
class DatasetSpec:
    """A catalogued dataset: image names with the SHA-256 of their decoded pixels."""

    name: str
    hashes: dict[str, str]
    hf_repo: str
    hf_archive: str
    citation: str
    description: str


CATALOG: dict[str, DatasetSpec] = {
    "set5": DatasetSpec(
        name="Set5",
        hashes={
            "baby": "12b76465e821bb19eb49dbda4eaa4807b51d4cd9e746157c6407fc11a177c3f5",
            "bird": "a8b0a6677ab489ca9b43cdde1443ec372e9551f45e2817b1a97e2877b37bd949",
            "butterfly": "fae60034ac005cd65a34891b8628dbcc08e78db700a0d877b7a5a14c777c40a7",
            "head": "78143f48e8a04476d4e8a52472e47d4a163591ea70a9efc3375d283cf95fa1d1",
            "woman": "6a343209b9ee6302a7f2134b6a6fbeeb13e910d2ae84e1c9de1c005c9c2f6d49",
        },
        hf_repo="eugenesiow/Set5",
        hf_archive="data/Set5_HR.tar.gz",
        citation="Bevilacqua et al., BMVC 2012",
        description="5 images (baby, bird, butterfly, head, woman)",
    ),
    "set14": DatasetSpec(
        name="Set14",
        hashes={
            "baboon": "a0d807ede504d436671f01143a61ce4e3811a9d41ebc517425ffab9ca84ba13e",
            "barbara": "be54f5ea857e83b5a8535c4aa8c2b51f11ac6570962f7302644522d0c13942e0",
            "bridge": "218ea8448dc7a4d11de368f1e5bfdb0c390f777ee996a833b388acabb9521a32",
            "coastguard": "5b79dbf3c9b5837e907e43d453139192a25d8a1f8ed0d9f29f5ee74d463181c1",
            "comic": "add2d47588cc8a2f027b8b2c76de892a624ad36d3acd9269aaa18f44dc28454a",
            "face": "fd232ee8065f4e0dcbcff8f2e3f7f690bff0073fc8c26bf55f511c992f1aecdb",
            "flowers": "9e787e965882e29b0d68bd744e1fbb0123672fee8e4e80347a015ca9f697016f",
            "foreman": "41beaaa4e1e1a323575764dabcea0a4923cad70876bd36191bf4c7bee2460b37",
            "lenna": "065eb5023e6c7c2519ff9a9ca7904d4e173c0696375a577707ab36a18c6ae9d2",
            "man": "59119c6dde371aeb03b2203a057047ab84e0fe451c7406046df5e92a212b4b39",
            "monarch": "6d1b37d42eff8328a93513a3ab2725b8f00c470b439f4f7f29c864ab21434018",
            "pepper": "a81f0a94cc02b69ef0bfd3d51960f4e0cbedf743b7efb97061e18b0fb5ebea84",
            "ppt3": "a771bdea5226ca0744198a11d69b16b7df126bb6822e2c30fe92fbb86fc09383",
            "zebra": "2c05de82b186cc7a7a9aab22f53beab7aa3110d857b362d8b11cef4f71fb5e77",
        },
        hf_repo="eugenesiow/Set14",
        hf_archive="data/Set14_HR.tar.gz",
        citation="Zeyde et al., Curves and Surfaces 2010",
        description="14 images (baboon ... zebra; bridge is 8-bit grayscale)",
    ),
}


@dataclass
class DatasetImage:
    """One HR image of a dataset; pixels are read on demand."""

    dataset: str
    name: str
    path: Path
    expected_hash: str | None = None
    _pixels: np.ndarray | None = field(default=None, repr=False)

    def pixels(self) -> np.ndarray:
        """The image as uint8 (H, W) or (H, W, 3); raises :class:`ImageError` on bad input."""
        if self._pixels is None:
            self._pixels = read_image(self.path)
        return self._pixels

    def luminance(self) -> np.ndarray:
        return luminance(self.pixels())

    def content_hash(self) -> str:
        return pixel_hash(self.pixels())


@dataclass
class Dataset:
    name: str
    source: str
    images: list[DatasetImage]

    def __len__(self) -> int:
        return len(self.images)


def cache_dir() -> Path:
    """``SRBENCH_CACHE`` or the user's cache folder for srbench."""
    if os.environ.get("SRBENCH_CACHE"):
        return Path(os.environ["SRBENCH_CACHE"])
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("srbench"))


def list_datasets() -> list[DatasetSpec]:
    return list(CATALOG.values())


def local_copy(name: str, data_dir: str | Path | None = None) -> Path | None:
    """The folder of a complete local copy of a catalogued dataset, or None; never downloads.

    Looks where :func:`load_dataset` looks (``data_dir`` or ``$SRBENCH_DATA``, then the
    user cache), so ``srbench list datasets`` says what a run would find.
    """
    try:
        dataset = load_dataset(name, data_dir, download=False)
    except DatasetError:
        return None
    return dataset.images[0].path.parent if dataset.images else None


def _images_in(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith("."):
            found.setdefault(path.stem, path)
    return found


def _find_child(parent: Path, name: str) -> Path | None:
    """``parent/name`` matched case-insensitively (``set5`` finds ``Set5``)."""
    if not parent.is_dir():
        return None
    exact = parent / name
    if exact.is_dir():
        return exact
    for child in parent.iterdir():
        if child.is_dir() and child.name.lower() == name.lower():
            return child
    return None


def _catalog_dataset(spec: DatasetSpec, folder: Path, source: str) -> Dataset | None:
    files = _images_in(folder)
    missing = [n for n in spec.hashes if n not in files]
    if missing:
        return None
    images = [DatasetImage(spec.name, n, files[n], spec.hashes[n]) for n in spec.hashes]
    return Dataset(spec.name, source, images)


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the hub's host answers at all; the hub client would retry for ~30 s."""
    import socket
    from urllib.parse import urlparse

    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = urlparse(endpoint).hostname or "huggingface.co"
    port = urlparse(endpoint).port or 443
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _default_download(repo: str, filename: str) -> str:
    import logging

    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false") or not _hub_reachable():
        raise ConnectionError("the Hugging Face hub is not reachable (offline?)")
    from huggingface_hub import hf_hub_download

    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)
    return hf_hub_download(repo_id=repo, filename=filename, repo_type="dataset")


#: Replaced in tests to fake the hub without network.
hf_download: Callable[[str, str], str] = _default_download


def _fetch_catalog_dataset(spec: DatasetSpec, target: Path) -> None:
    """Download the dataset's archive, keep the images whose pixels match the catalog."""
    try:
        archive = hf_download(spec.hf_repo, spec.hf_archive)
    except Exception as exc:  # the hub raises many types for "offline"
        raise DatasetError(
            f"{spec.name} not found and could not be downloaded from the Hugging Face hub "
            f"({exc or type(exc).__name__}); put its images ({', '.join(spec.hashes)}) in "
            f"$SRBENCH_DATA/{spec.name}/ or pass --data-dir"
        ) from None
    wanted = {h: n for n, h in spec.hashes.items()}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise DatasetError(f"{spec.name}: downloaded archive is unreadable ({exc})") from None
        matched: dict[str, np.ndarray] = {}
        for path in sorted(Path(tmp).rglob("*")):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                pixels = read_image(path)
            except ImageError:
                continue
            name = wanted.get(pixel_hash(pixels))
            if name is not None:
                matched[name] = pixels
        missing = [n for n in spec.hashes if n not in matched]
        if missing:
            raise DatasetError(
                f"{spec.name}: the downloaded archive does not hold the catalogued pixels of "
                f"{', '.join(missing)} (hash mismatch); put verified copies in $SRBENCH_DATA/{spec.name}/"
            )
        staging = target.with_name(target.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for name, pixels in matched.items():
            write_image(staging / f"{name}.png", pixels)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)


def load_dataset(name: str, data_dir: str | Path | None = None, *, download: bool = True) -> Dataset:
    """Find a dataset by name.

    Parameters
    ----------
    name : str
        A catalog name (case-insensitive: ``Set5``, ``set14``) or ``folder:PATH``.
    data_dir : path, optional
        Folder with one sub-folder per dataset; defaults to ``$SRBENCH_DATA``.
    download : bool
        Whether a catalogued dataset missing locally may be fetched from the hub.
    """
    if name.lower().startswith("folder:"):
        folder = Path(name.split(":", 1)[1]).expanduser()
        if not folder.is_dir():
            raise DatasetError(f"folder {folder} does not exist")
        files = _images_in(folder)
        if not files:
            raise DatasetError(f"folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        label = folder.name or str(folder)
        return Dataset(label, f"folder {folder}", [DatasetImage(label, n, p) for n, p in files.items()])

    spec = CATALOG.get(name.lower())
    if spec is None:
        import difflib

        close = difflib.get_close_matches(name.lower(), list(CATALOG), n=1)
        hint = f"; did you mean {CATALOG[close[0]].name!r}?" if close else ""
        known = ", ".join(s.name for s in CATALOG.values())
        raise DatasetError(f"unknown dataset {name!r}{hint} (known: {known}, or folder:PATH)")

    roots: list[tuple[Path, str]] = []
    data_dir = data_dir if data_dir is not None else os.environ.get("SRBENCH_DATA") or None
    if data_dir is not None:
        roots.append((Path(data_dir), "data dir"))
    cached = cache_dir() / "datasets"
    roots.append((cached, "cache"))
    for root, kind in roots:
        folder = _find_child(root, spec.name)
        if folder is not None:
            dataset = _catalog_dataset(spec, folder, f"{kind} {folder}")
            if dataset is not None:
                return dataset
    if not download:
        raise DatasetError(
            f"{spec.name} not found; put its images ({', '.join(spec.hashes)}) in "
            f"$SRBENCH_DATA/{spec.name}/ or pass --data-dir"
        )
    target = cached / spec.name
    _fetch_catalog_dataset(spec, target)
    dataset = _catalog_dataset(spec, target, f"hub {spec.hf_repo} (cached in {target})")
    assert dataset is not None
    return dataset
