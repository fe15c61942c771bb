import numpy as np
import pytest
from scipy.signal import correlate2d

from srbench import metrics
from srbench.metrics import evaluate, psnr, ssim


def test_psnr_known_mse():
    a = np.full((20, 20), 100, dtype=np.uint8)
    b = a.copy()
    b[::2] = 110  # half the pixels off by 10 -> MSE 50
    assert psnr(a, b) == pytest.approx(10 * np.log10(255**2 / 50))
    assert psnr(a, a) == float("inf")


def test_psnr_rounds_float_like_matlab_and_shaves():
    hr = np.full((12, 12), 128, dtype=np.uint8)
    sr = np.full((12, 12), 128.49 / 255)
    sr[0, :] = 0  # only in the border, shaved away
    assert psnr(sr, hr, border=2) == float("inf")


def reference_ssim(a, b):
    x = np.arange(11) - 5
    g = np.exp(-(x**2) / (2 * 1.5**2))
    w = np.outer(g, g)
    w /= w.sum()
    a, b = a.astype(float), b.astype(float)
    f = lambda z: correlate2d(z, w, mode="valid")
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu1, mu2 = f(a), f(b)
    s1, s2, s12 = f(a * a) - mu1**2, f(b * b) - mu2**2, f(a * b) - mu1 * mu2
    m = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s1 + s2 + c2))
    return m.mean()


def test_ssim_matches_direct_2d_filtering():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (40, 33)).astype(np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    assert ssim(a, b) == pytest.approx(reference_ssim(a, b), abs=1e-10)
    assert ssim(a, a) == pytest.approx(1.0)


def test_evaluate_and_errors():
    a = np.random.default_rng(1).integers(0, 256, (30, 30)).astype(np.uint8)
    p, s = evaluate(a.astype(np.float32) / 255, a, 3)
    assert p == float("inf") and s == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shape"):
        psnr(a, a[:-1])
    with pytest.raises(ValueError, match="11x11"):
        ssim(a[:12, :12], a[:12, :12], border=2)


@pytest.mark.parametrize("size", [11, 7])  # SSIM's own window (its own kernels), and any other
@pytest.mark.parametrize("shape", [(11, 11), (37, 23), (128, 97), (12, 300)])
def test_compiled_ssim_map_is_bit_identical_to_scipy(shape, size):
    # SSIM's map comes from a numba kernel when numba is installed; it must hold the very
    # numbers scipy's correlate1d and numpy give, or cached and new cells would disagree.
    from srbench import metrics, ssim_kernel

    if not ssim_kernel.available():
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(sum(shape))
    a = rng.integers(0, 256, shape).astype(np.float64)
    b = np.clip(a + rng.normal(0, 7, shape), 0, 255).round()
    window = metrics._gaussian_window(size)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    compiled = metrics._ssim_map(a, b, window, c1, c2, compiled=True)
    reference = metrics._ssim_map(a, b, window, c1, c2, compiled=False)
    assert compiled.shape == (shape[0] - size + 1, shape[1] - size + 1)
    assert np.array_equal(compiled, reference)
    assert 0.0 < compiled.mean() < 1.0
    # Bands of rows on threads: the same rows; uint8 images read as they are: the same map.
    for threads in (2, 3):
        assert np.array_equal(ssim_kernel.ssim_map(a, b, window, c1, c2, threads=threads), reference)
    a8, b8 = a.astype(np.uint8), b.astype(np.uint8)
    assert np.array_equal(ssim_kernel.ssim_map(a8, b8, window, c1, c2), reference)
    # From the second image's statistics computed apart (kept between cells): the same map.
    for x, y in ((a, b), (a8, b8)):
        for threads in (1, 2):
            kept = ssim_kernel.reference_statistics(y, window, threads=threads)
            assert np.array_equal(ssim_kernel.ssim_map(x, y, window, c1, c2, threads=threads, reference=kept), reference)
    with pytest.raises(ValueError, match="reference statistics"):
        ssim_kernel.ssim_map(a, b, window, c1, c2, reference=kept[:, 1:])


def test_ssim_keeps_a_read_only_ground_truths_statistics_and_only_those():
    from srbench import metrics, ssim_kernel

    if not ssim_kernel.available():
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(5)
    hr = rng.integers(0, 256, (64, 50)).astype(np.uint8)
    outputs = [np.clip(hr + rng.normal(0, s, hr.shape), 0, 255).astype(np.uint8) for s in (2, 9, 30)]
    expected = [metrics.ssim_255(metrics.shave(sr, 3), metrics.shave(hr, 3)) for sr in outputs]
    metrics._REFERENCES.clear()
    assert [ssim(sr, hr, border=3) for sr in outputs] == expected
    assert not metrics._REFERENCES  # writeable: its values could change between calls
    view = hr[:, :]
    view.setflags(write=False)
    assert not metrics._frozen(view)  # a read-only view of a writeable array
    frozen = hr.copy()
    frozen.setflags(write=False)
    assert [ssim(sr, frozen, border=3) for sr in outputs] == expected
    assert list(metrics._REFERENCES) == [(id(frozen), 3)]
    assert ssim(outputs[0], frozen, border=4) == metrics.ssim_255(metrics.shave(outputs[0], 4), metrics.shave(hr, 4))
    assert len(metrics._REFERENCES) == 2
    del frozen  # a new array at the same address is not taken for the old one
    other = (255 - hr).copy()
    other.setflags(write=False)
    assert ssim(outputs[0], other, border=3) == metrics.ssim_255(metrics.shave(outputs[0], 3), metrics.shave(other, 3))


@pytest.mark.parametrize("border", [0, 3])
def test_psnr_of_uint8_images_in_integers_is_the_float_mean(border):
    from srbench import ssim_kernel

    if not ssim_kernel.available():
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(border)
    a = rng.integers(0, 256, (67, 45)).astype(np.uint8)
    b = np.clip(a + rng.normal(0, 11, a.shape), 0, 255).astype(np.uint8)
    shaved = (slice(border, a.shape[0] - border), slice(border, a.shape[1] - border))
    # The float path: the same images as float64, whose squared differences numpy averages.
    assert metrics.psnr(a, b, border=border) == metrics.psnr_255(a[shaved].astype(float), b[shaved].astype(float))
    assert metrics.psnr(a, a, border=border) == float("inf")
    assert ssim_kernel.sum_squared_differences(a, b) == int(((a.astype(int) - b) ** 2).sum())
