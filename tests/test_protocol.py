import math

import numpy as np
import pytest

from srbench.protocol import (
    cubic,
    degrade,
    imresize,
    modcrop,
    rgb2ycbcr,
    shave,
    to_uint8,
    ycbcr2rgb,
)


def naive_imresize_1d(signal: np.ndarray, scale: float) -> np.ndarray:
    """MATLAB's documented algorithm, one output sample at a time (slow, obvious)."""
    n = len(signal)
    out_len = math.ceil(n * scale)
    shrink = scale < 1
    width = 4 / scale if shrink else 4
    out = np.empty(out_len)
    for i in range(1, out_len + 1):
        u = i / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        total = acc = 0.0
        for k in range(left, left + math.ceil(width) + 2):
            d = u - k
            w = scale * cubic(np.array(scale * d)) if shrink else cubic(np.array(d))
            j = k - 1
            # symmetric padding: ... 1 0 | 0 1 2 ... n-1 | n-1 n-2 ...
            period = 2 * n
            j = j % period
            j = j if j < n else period - 1 - j
            total += float(w)
            acc += float(w) * signal[j]
        out[i - 1] = acc / total
    return out


@pytest.mark.parametrize("scale", [1 / 2, 1 / 3, 1 / 4, 2, 3, 4, 0.7, 1.5])
def test_imresize_matches_the_documented_algorithm(scale):
    rng = np.random.default_rng(1)
    signal = rng.random(23)
    ours = imresize(signal[None, :], scale)[0]  # one row: the row axis is a no-op
    assert np.allclose(ours, naive_imresize_1d(signal, scale), atol=1e-12)


def test_imresize_is_separable_and_sizes_round_up():
    rng = np.random.default_rng(2)
    image = rng.random((17, 13))
    out = imresize(image, 1 / 3)
    assert out.shape == (6, 5)
    rows = np.stack([naive_imresize_1d(col, 1 / 3) for col in image.T], axis=1)
    both = np.stack([naive_imresize_1d(row, 1 / 3) for row in rows])
    assert np.allclose(out, both, atol=1e-12)


def test_imresize_keeps_constants_and_dtypes():
    flat = np.full((12, 9), 0.3, dtype=np.float32)
    for scale in (1 / 3, 2, 4):
        out = imresize(flat, scale)
        assert out.dtype == np.float32
        assert np.allclose(out, 0.3, atol=1e-6)
    as_uint8 = imresize(np.full((8, 8), 200, dtype=np.uint8), 2)
    assert as_uint8.dtype == np.uint8 and np.all(as_uint8 == 200)
    colour = imresize(np.random.default_rng(0).random((10, 8, 3)), 2)
    assert colour.shape == (20, 16, 3)


def test_imresize_rejects_bad_arguments():
    with pytest.raises(ValueError):
        imresize(np.zeros((4, 4)), 0)
    with pytest.raises(ValueError):
        imresize(np.zeros((4, 4)))


def test_rgb2ycbcr_matches_matlab_on_known_colours():
    rgb = np.array([[[255, 255, 255], [0, 0, 0], [255, 0, 0], [0, 255, 0]]], dtype=np.uint8)
    ycc = rgb2ycbcr(rgb)
    assert ycc.dtype == np.uint8
    assert ycc[0, 0].tolist() == [235, 128, 128]
    assert ycc[0, 1].tolist() == [16, 128, 128]
    # Y = 16 + 65.481 = 81.481 -> 81; Cb = 128 - 37.797 -> 90; Cr = 128 + 112 -> 240
    assert ycc[0, 2].tolist() == [81, 90, 240]
    assert ycc[0, 3].tolist() == [145, 54, 34]


def test_colour_round_trip():
    rgb = np.random.default_rng(3).random((6, 7, 3))
    assert np.allclose(ycbcr2rgb(rgb2ycbcr(rgb)), rgb, atol=1e-12)
    rgb8 = (rgb * 255).round().astype(np.uint8)
    assert np.abs(ycbcr2rgb(rgb2ycbcr(rgb8)).astype(int) - rgb8).max() <= 2


def test_to_uint8_rounds_half_away_from_zero_and_saturates():
    values = np.array([0.5, 1.5, 2.5, 254.5, -3, 300]) / 255
    assert to_uint8(values).tolist() == [1, 2, 3, 255, 0, 255]


def test_modcrop_shave_and_degrade():
    image = np.zeros((17, 22), dtype=np.uint8)
    assert modcrop(image, 4).shape == (16, 20)
    assert shave(np.zeros((10, 10)), 3).shape == (4, 4)
    lr = degrade(modcrop(image, 3) + 100, 3)
    assert lr.shape == (5, 7) and lr.dtype == np.float32
    assert np.allclose(lr, 100 / 255)
    with pytest.raises(ValueError, match="modcropped"):
        degrade(image, 3)
