import io
import tarfile

import numpy as np
import pytest
from PIL import Image

import srbench.datasets as ds
from srbench.datasets import DatasetError, DatasetSpec, load_dataset
from srbench.imageio import pixel_hash
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
