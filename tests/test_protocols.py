"""The two protocols: matlab (SRCNN/A+ papers) and matlab-rgb (EDSR/RCAN scripts)."""

import numpy as np
import pytest

from srbench.protocol import imresize, rgb2ycbcr, to_uint8
from srbench.protocols import ProtocolError, get_protocol
from tests.conftest import natural_image


def _colour(shape=(48, 42), seed=0):
    grey = natural_image(shape, seed=seed).astype(np.int16)
    tint = np.stack([grey, np.roll(grey, 3, axis=0), np.roll(grey, 5, axis=1)], axis=2)
    return np.clip(tint, 0, 255).astype(np.uint8)


def test_matlab_rgb_makes_uint8_rgb_lr_and_replicates_grayscale():
    rgb = get_protocol("matlab-rgb")
    image = _colour((49, 43))
    hr = rgb.ground_truth(image, 3)
    assert hr.shape == (48, 42, 3) and hr.dtype == np.uint8
    lr = rgb.degrade(hr, 3)
    assert lr.dtype == np.uint8 and lr.shape == (16, 14, 3)
    np.testing.assert_array_equal(lr, imresize(hr, 1 / 3))
    grey = rgb.ground_truth(natural_image((48, 48)), 2)
    assert grey.shape == (48, 48, 3) and (grey[..., 0] == grey[..., 2]).all()


def test_matlab_rgb_scores_unrounded_luminance_of_the_rounded_rgb_output():
    rgb = get_protocol("matlab-rgb")
    hr = rgb.ground_truth(_colour(), 2)
    lr = rgb.degrade(hr, 2)
    perfect = hr.astype(np.float32) / 255
    assert rgb.score(perfect, hr, lr, 2)[0] == float("inf")
    # Off by 0.4/255 everywhere: rounding to uint8 RGB takes it back to the HR exactly.
    assert rgb.score(perfect + 0.4 / 255, hr, lr, 2)[0] == float("inf")
    off = np.clip(perfect + 1 / 255, 0, 1)
    y = rgb2ycbcr(hr.astype(np.float64) / 255)[..., 0] * 255
    y_off = rgb2ycbcr(to_uint8(off) / 255)[..., 0] * 255
    expected = 10 * np.log10(255**2 / np.mean((y[2:-2, 2:-2] - y_off[2:-2, 2:-2]) ** 2))
    assert rgb.score(off, hr, lr, 2)[0] == pytest.approx(expected, abs=1e-9)


def test_a_luminance_method_under_matlab_rgb_gets_lr_y_and_bicubic_chroma():
    rgb = get_protocol("matlab-rgb")
    hr = rgb.ground_truth(_colour(), 2)
    lr = rgb.degrade(hr, 2)
    y = rgb.method_input(lr, "y")
    np.testing.assert_allclose(y, rgb2ycbcr(lr.astype(np.float64) / 255)[..., 0], atol=1e-6)
    # Bicubic on Y plus bicubic Cb/Cr is bicubic on RGB up to rounding: the scores agree.
    via_y = rgb.score(imresize(y, 2), hr, lr, 2)[0]
    via_rgb = rgb.score(imresize(lr.astype(np.float64) / 255, 2), hr, lr, 2)[0]
    assert abs(via_y - via_rgb) < 0.05


def test_an_rgb_method_has_no_place_under_matlab():
    matlab = get_protocol("matlab")
    assert matlab.accepts("y") and not matlab.accepts("rgb")
    with pytest.raises(ProtocolError, match="matlab-rgb"):
        matlab.method_input(np.zeros((4, 4), np.float32), "rgb")
    with pytest.raises(ValueError, match="unknown protocol 'matlab-y'"):
        get_protocol("matlab-y")


def test_bicubic_under_both_protocols_on_set5(data_dir):
    """The protocols differ by rounding alone: LR to uint8 RGB, Y left unrounded."""
    from srbench.imageio import read_image

    for name in ("baby", "bird"):
        image = read_image(data_dir / "Set5" / f"{name}.png")
        for scale in (2, 4):
            scores = []
            for protocol in (get_protocol("matlab"), get_protocol("matlab-rgb")):
                hr = protocol.ground_truth(image, scale)
                x = protocol.method_input(protocol.degrade(hr, scale), "y")
                scores.append(protocol.score(imresize(x, scale).clip(0, 1), hr, protocol.degrade(hr, scale), scale)[0])
            assert abs(scores[0] - scores[1]) < 0.06, (name, scale, scores)


@pytest.mark.parametrize("name", ["matlab", "matlab-rgb"])
def test_a_prepared_image_gives_the_same_ground_truth_at_every_scale(name):
    # The runner converts each image once (prepare_image) for all its scales.
    protocol = get_protocol(name)
    rgb = _colour((53, 61), seed=4)
    for image in (rgb, rgb[..., 1].copy()):
        prepared = protocol.prepare_image(image)
        for scale in (2, 3, 4):
            expected = protocol.ground_truth(image, scale)
            actual = protocol.ground_truth(prepared, scale)
            assert actual.dtype == expected.dtype and np.array_equal(actual, expected)
