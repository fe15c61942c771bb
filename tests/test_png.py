"""The PNG encoder: lossless round trips through PIL, one thread or several."""

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from srbench import png
from srbench.imageio import read_image, write_image


@pytest.fixture(params=["isal", "zlib"], autouse=True)
def engine(request, monkeypatch):
    """Every test with ISA-L deflating (where installed) and with zlib alone."""
    if request.param == "zlib":
        monkeypatch.setattr(png, "_isal", None)
        monkeypatch.setattr(png, "_sums", zlib)
    elif png._isal is None:
        pytest.skip("the isal package is not installed")
    return request.param


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (9, 1), (2, 3, 3), (5, 4, 4), (6, 7, 1)])
@pytest.mark.parametrize("threads", [1, 3])
def test_round_trip_through_pil(shape, threads):
    image = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    decoded = np.asarray(Image.open(io.BytesIO(png.encode_png(image, threads=threads))))
    assert np.array_equal(decoded, image.reshape(decoded.shape))


def test_pieces_deflated_on_threads_join_into_one_stream(monkeypatch):
    # Small pieces force many full-flush joins; the stream must still decode exactly.
    monkeypatch.setattr(png, "_PIECE", 1000)
    rng = np.random.default_rng(1)
    smooth = np.cumsum(rng.integers(-2, 3, (97, 61, 3)), axis=1).astype(np.uint8)
    one = png.encode_png(smooth, threads=1)
    many = png.encode_png(smooth, threads=4)
    assert one != many, "the threaded path was not taken"
    for data in (one, many):
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), smooth)


def test_compresses_a_smooth_image():
    ramp = np.add.outer(np.arange(200), np.arange(300)).astype(np.uint8)
    assert len(png.encode_png(ramp)) < ramp.nbytes / 20


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros((4, 4), np.uint16), "uint8"),
        (np.zeros((4, 4, 2), np.uint8), "shape"),
        (np.zeros((0, 4), np.uint8), "shape"),
        (np.zeros(4, np.uint8), "shape"),
    ],
)
def test_refuses_what_it_cannot_write(image, message):
    with pytest.raises(ValueError, match=message):
        png.encode_png(image)


def test_write_image_png_reads_back(tmp_path):
    rgb = np.random.default_rng(2).integers(0, 256, (33, 17, 3), dtype=np.uint8)
    write_image(tmp_path / "out.png", rgb)
    assert np.array_equal(read_image(tmp_path / "out.png"), rgb)
