import io
import tarfile

import numpy as np
import pytest
from PIL import Image

import srbench.datasets as ds
from srbench.datasets import DatasetError, DatasetSpec, load_dataset
from srbench.imageio import ImageError, pixel_hash
from tests.conftest import natural_image


def test_catalog_datasets_load_from_data_dir(data_dir):
    set14 = load_dataset("set14", data_dir)  # case-insensitive
    assert set14.name == "Set14" and len(set14) == 14
    bridge = next(i for i in set14.images if i.name == "bridge")
    assert bridge.pixels().ndim == 2, "bridge is grayscale and used as its own Y"
    for image in load_dataset("Set5", data_dir).images:
        assert image.content_hash() == image.expected_hash


def test_folder_dataset(tmp_path):
    for i in range(3):
        Image.fromarray(natural_image(seed=i)).save(tmp_path / f"img{i}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    dataset = load_dataset(f"folder:{tmp_path}")
    assert [im.name for im in dataset.images] == ["img0", "img1", "img2"]
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(f"folder:{tmp_path / 'nope'}")


def test_unknown_dataset_suggests(isolated_env):
    with pytest.raises(DatasetError, match="did you mean 'Set5'"):
        load_dataset("set55")


def test_offline_without_copy_says_where_to_put_images(isolated_env, tmp_path):
    with pytest.raises(DatasetError) as info:
        load_dataset("Set5", tmp_path / "empty")
    message = str(info.value)
    assert "SRBENCH_DATA/Set5" in message and "baby" in message
    assert "\n" not in message


@pytest.fixture
def fake_hub(monkeypatch, tmp_path):
    """A catalog entry for synthetic images and a fake hub serving their archive."""
    images = {f"pic{i}": natural_image((40 + i, 36), seed=i) for i in range(3)}
    spec = DatasetSpec(
        name="Fake3", hashes={n: pixel_hash(a) for n, a in images.items()},
        hf_repo="someone/Fake3", hf_archive="data/Fake3_HR.tar.gz", citation="", description="",
    )  # fmt: skip
    archive = tmp_path / "Fake3_HR.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for i, (name, array) in enumerate(images.items()):
            buffer = io.BytesIO()
            Image.fromarray(array).save(buffer, format="PNG")
            info = tarfile.TarInfo(f"Fake3_HR/img_{i:03d}.png")  # names differ: matched by pixels
            info.size = buffer.tell()
            buffer.seek(0)
            tar.addfile(info, buffer)
    calls = []

    def download(repo, filename):
        calls.append((repo, filename))
        return str(archive)

    monkeypatch.setitem(ds.CATALOG, "fake3", spec)
    monkeypatch.setattr(ds, "hf_download", download)
    return images, calls


def test_download_is_verified_and_cached(isolated_env, fake_hub, tmp_path):
    images, calls = fake_hub
    dataset = load_dataset("fake3", tmp_path / "no-data")
    assert calls == [("someone/Fake3", "data/Fake3_HR.tar.gz")]
    assert "hub" in dataset.source
    for image in dataset.images:
        assert np.array_equal(image.pixels(), images[image.name])
    again = load_dataset("fake3", tmp_path / "no-data")
    assert len(calls) == 1 and "cache" in again.source


def test_download_with_wrong_pixels_is_rejected(isolated_env, fake_hub, monkeypatch, tmp_path):
    spec = ds.CATALOG["fake3"]
    tampered = dict(spec.hashes, pic1="0" * 64)
    monkeypatch.setitem(ds.CATALOG, "fake3", DatasetSpec(**{**spec.__dict__, "hashes": tampered}))
    with pytest.raises(DatasetError, match="pic1.*hash mismatch"):
        load_dataset("fake3", tmp_path / "no-data")
    assert not (ds.cache_dir() / "datasets" / "Fake3").exists(), "nothing unverified is cached"


# ---------------------------------------------------------------------- BSD100 and Urban100
def test_bsd100_and_urban100_are_catalogued_with_every_image():
    for key, name, hub in (("bsd100", "BSD100", "eugenesiow/BSD100"), ("urban100", "Urban100", "eugenesiow/Urban100")):
        spec = ds.CATALOG[key]
        assert spec.name == name and spec.hf_repo == hub and spec.hf_archive == f"data/{name}_HR.tar.gz"
        assert list(spec.hashes) == [f"img_{i:03d}" for i in range(1, 101)]
        assert len(set(spec.hashes.values())) == 100, "every image has pixels of its own"
        assert all(len(h) == 64 and int(h, 16) >= 0 for h in spec.hashes.values())
        assert set(spec.shapes) == set(spec.hashes) and all(len(s) == 3 for s in spec.shapes.values())
    # The A+ / SelfExSR crop of the BSD300 test images, not the 481x321 originals.
    assert {s[:2] for s in ds.CATALOG["bsd100"].shapes.values()} == {(321, 480), (480, 321)}
    assert max(max(s[:2]) for s in ds.CATALOG["urban100"].shapes.values()) == 1280


@pytest.mark.parametrize("name", ["bsd100", "URBAN100"])
def test_catalogue_hashes_are_those_of_the_shared_copies(name):
    """Every pinned hash and shape against the shared folder (skipped where it is absent)."""
    import os
    from pathlib import Path

    from tests.conftest import SHARED

    spec = ds.CATALOG[name.lower()]
    roots = [Path(p) for p in (os.environ.get("SRBENCH_DATA"),) if p] + [SHARED / "datasets"]
    root = next((r for r in roots if (r / spec.name).is_dir()), None)
    if root is None:
        pytest.skip(f"the shared {spec.name} copy is not available")
    dataset = load_dataset(name, root, download=False)  # case-insensitive
    assert dataset.name == spec.name and len(dataset) == 100 and "data dir" in dataset.source
    for image in dataset.images:
        assert image.content_hash() == spec.hashes[image.name], image.name
        assert image.pixels().shape == spec.shapes[image.name], image.name


def _archive(path, images: dict, prefix: str = "Fake3_HR/") -> str:
    """A tar.gz of PNGs (or raw bytes) named ``prefix + name``, as the hub would serve it."""
    with tarfile.open(path, "w:gz") as tar:
        for name, content in images.items():
            buffer = io.BytesIO()
            if isinstance(content, bytes):
                buffer.write(content)
            else:
                Image.fromarray(content).save(buffer, format="PNG")
            info = tarfile.TarInfo(f"{prefix}{name}")
            info.size = buffer.tell()
            buffer.seek(0)
            tar.addfile(info, buffer)
    return str(path)


def _serve(monkeypatch, archive: str) -> None:
    monkeypatch.setattr(ds, "hf_download", lambda repo, filename: archive)


def _spec_with_shapes(images: dict) -> DatasetSpec:
    spec = DatasetSpec(
        name="Fake3", hashes={n: pixel_hash(a) for n, a in images.items()},
        hf_repo="someone/Fake3", hf_archive="data/Fake3_HR.tar.gz", citation="", description="",
        shapes={n: a.shape for n, a in images.items()},
    )  # fmt: skip
    return spec


def _one_line_error(name, data_dir) -> str:
    with pytest.raises(DatasetError) as info:
        load_dataset(name, data_dir)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_an_archive_with_another_crop_or_other_pixels_is_refused_in_one_line(isolated_env, monkeypatch, tmp_path):
    images = {f"pic{i}": natural_image((40 + i, 36), seed=i) for i in range(3)}
    monkeypatch.setitem(ds.CATALOG, "fake3", _spec_with_shapes(images))
    altered = images["pic1"].copy()
    altered[5, 5] ^= 1  # one pixel, one bit
    cropped = images["pic2"][:-1]  # another crop: a row fewer
    archive = {"pic0_HR.png": images["pic0"], "pic1_HR.png": altered, "pic2.png": cropped}
    _serve(monkeypatch, _archive(tmp_path / "a.tar.gz", archive))
    message = _one_line_error("fake3", tmp_path / "no-data")
    assert message == (
        "Fake3: the downloaded archive (someone/Fake3 data/Fake3_HR.tar.gz) differs from the catalogue "
        "in 2 of 3 images: pic1: other pixels, same size 36x41 grayscale; "
        "pic2: 36x41 grayscale in the archive, catalogued 36x42 grayscale; "
        "nothing was kept; put verified copies in $SRBENCH_DATA/Fake3/"
    )
    assert not (ds.cache_dir() / "datasets" / "Fake3").exists(), "nothing unverified is cached"


def test_an_archive_without_an_image_or_with_an_unreadable_one_says_which(isolated_env, monkeypatch, tmp_path):
    images = {f"pic{i}": natural_image((40, 36), seed=i) for i in range(6)}
    monkeypatch.setitem(ds.CATALOG, "fake3", _spec_with_shapes(images))
    archive = {"pic0.png": images["pic0"], "pic1.png": b"\x89PNG truncated"}  # pic2-pic5 absent
    _serve(monkeypatch, _archive(tmp_path / "a.tar.gz", archive))
    message = _one_line_error("fake3", tmp_path / "no-data")
    assert "differs from the catalogue in 5 of 6 images: pic1: unreadable in the archive (pic1.png: corrupt" in message
    assert "; pic2 is not in it (no image with its pixels: hash mismatch); pic3 is not in it" in message
    assert "; and 2 more; nothing was kept" in message, "a long list is cut, the line stays readable"


def test_renamed_archive_files_are_accepted_and_cached_under_catalogue_names(isolated_env, monkeypatch, tmp_path):
    images = {f"pic{i}": natural_image((40, 36 + i), seed=i) for i in range(3)}
    monkeypatch.setitem(ds.CATALOG, "fake3", _spec_with_shapes(images))
    # Names shuffled on purpose: a file called pic2 holding pic0's pixels is pic0.
    archive = {"x/pic2.png": images["pic0"], "y/img_7.png": images["pic1"], "pic0.bmp": images["pic2"]}
    _serve(monkeypatch, _archive(tmp_path / "a.tar.gz", archive, prefix=""))
    dataset = load_dataset("fake3", tmp_path / "no-data")
    assert [im.name for im in dataset.images] == ["pic0", "pic1", "pic2"]
    for image in dataset.images:
        assert np.array_equal(image.pixels(), images[image.name])
    cached = sorted(p.name for p in (ds.cache_dir() / "datasets" / "Fake3").iterdir())
    assert cached == ["pic0.png", "pic1.png", "pic2.png"]


def test_a_local_copy_is_matched_by_pixels_not_names(isolated_env, monkeypatch, tmp_path):
    images = {f"pic{i}": natural_image((40, 36), seed=i) for i in range(3)}
    monkeypatch.setitem(ds.CATALOG, "fake3", _spec_with_shapes(images))
    folder = tmp_path / "data" / "fake3"  # the folder name is case-insensitive too
    folder.mkdir(parents=True)
    for number, name in enumerate(["pic2", "pic0", "pic1"]):  # named as another package names them
        Image.fromarray(images[name]).save(folder / f"{3096 + number}.png")
    dataset = load_dataset("Fake3", tmp_path / "data")
    assert {im.name: im.path.name for im in dataset.images} == {"pic0": "3097.png", "pic1": "3098.png", "pic2": "3096.png"}
    assert all(im.content_hash() == im.expected_hash for im in dataset.images)
    assert ds.local_copy("fake3", tmp_path / "data") == folder


def test_a_local_file_with_a_catalogued_name_but_other_pixels_fails_alone(isolated_env, monkeypatch, tmp_path):
    images = {f"pic{i}": natural_image((40, 36), seed=i) for i in range(3)}
    monkeypatch.setitem(ds.CATALOG, "fake3", _spec_with_shapes(images))
    folder = tmp_path / "data" / "Fake3"
    folder.mkdir(parents=True)
    for name, array in images.items():
        Image.fromarray(array[:-1] if name == "pic1" else array).save(folder / f"{name}.png")
    dataset = load_dataset("fake3", tmp_path / "data")
    good = [im for im in dataset.images if im.name != "pic1"]
    assert all(im.content_hash() == im.expected_hash for im in good)
    bad = next(im for im in dataset.images if im.name == "pic1")
    with pytest.raises(ImageError) as info:
        bad.luminance()
    assert str(info.value) == (
        "pic1.png: not the catalogued Fake3 image pic1 (36x39 grayscale here, catalogued 36x40 grayscale)"
    )


def test_long_image_lists_are_shortened_in_messages():
    assert ds.CATALOG["set14"].names_text().startswith("baboon, barbara, bridge")
    assert ds.CATALOG["bsd100"].names_text() == "100 images, img_001 ... img_100"
