import numpy as np
import pytest
from PIL import Image

from srbench.imageio import ImageError, read_image, read_luminance


def save(path, array, mode=None):
    Image.fromarray(array, mode=mode).save(path)
    return path


def test_reads_rgb_and_gray(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    assert read_image(save(tmp_path / "a.png", rgb)).shape == (20, 24, 3)
    gray = rgb[..., 0].copy()
    path = save(tmp_path / "g.png", gray)
    assert np.array_equal(read_luminance(path), gray), "grayscale is its own luminance"


@pytest.mark.parametrize(
    "kind, message",
    [
        ("empty", "empty file"),
        ("corrupt", "corrupt"),
        ("truncated", "corrupt or truncated"),
        ("16bit", "only 8-bit"),
        ("palette", "palette"),
        ("rgba", "alpha"),
        ("tiny", "too small"),
        ("missing", "cannot read"),
    ],
)
def test_bad_images_get_clear_errors(tmp_path, kind, message):
    path = tmp_path / f"{kind}.png"
    rgb = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "corrupt":
        path.write_bytes(b"this is not an image at all" * 10)
    elif kind == "truncated":
        save(path, rgb)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "16bit":
        Image.fromarray((np.arange(1600).reshape(40, 40) * 40).astype(np.uint16)).save(path)
    elif kind == "palette":
        Image.fromarray(rgb).convert("P").save(path)
    elif kind == "rgba":
        Image.fromarray(np.dstack([rgb, rgb[..., :1]])).save(path)
    elif kind == "tiny":
        save(path, rgb[:8, :8])
    with pytest.raises(ImageError, match=message) as info:
        read_image(path)
    assert path.name in str(info.value)
