import math
import os
import subprocess
import sys

import numpy as np
import pytest

from srbench.jit import available as numba_available
from srbench.protocol import (
    cubic,
    degrade,
    imresize,
    modcrop,
    rgb2y,
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


def test_compiled_to_uint8_is_numpys_rounding():
    from srbench import colour_kernel

    if not colour_kernel.available():
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(8)
    # Values on and around every rounding boundary, beyond [0, 1] too, in both float types.
    edges = (np.arange(-3, 260)[:, None] + np.array([-0.5, 0.5 - 1e-9, 0.5, 0.5 + 1e-9])) / 255
    for values in (edges, rng.random((37, 29, 3)) * 1.2 - 0.1):
        for dtype in (np.float64, np.float32):
            image = values.astype(dtype)
            reference = np.floor(np.clip(image.astype(np.float64) * 255.0, 0.0, 255.0) + 0.5).astype(np.uint8)
            assert np.array_equal(colour_kernel.to_uint8(image), reference)
            assert np.array_equal(to_uint8(image), reference)
    # NaN is left to numpy's path (whatever its cast gives), never the kernel's.
    with np.errstate(invalid="ignore"):
        assert to_uint8(np.array([0.5, np.nan])).shape == (2,)


def test_modcrop_shave_and_degrade():
    image = np.zeros((17, 22), dtype=np.uint8)
    assert modcrop(image, 4).shape == (16, 20)
    assert shave(np.zeros((10, 10)), 3).shape == (4, 4)
    lr = degrade(modcrop(image, 3) + 100, 3)
    assert lr.shape == (5, 7) and lr.dtype == np.float32
    assert np.allclose(lr, 100 / 255)
    with pytest.raises(ValueError, match="modcropped"):
        degrade(image, 3)


def _dense_imresize(image: np.ndarray, scale=None, output_shape=None) -> np.ndarray:
    """The former implementation: dense weight matrices, einsum on 3-D images (float64)."""
    from srbench.protocol import _resize_matrix

    data = np.asarray(image, dtype=np.float64)
    in_h, in_w = data.shape[:2]
    if output_shape is None:
        output_shape = (math.ceil(in_h * scale), math.ceil(in_w * scale))
        scale_h = scale_w = scale
    else:
        scale_h, scale_w = output_shape[0] / in_h, output_shape[1] / in_w
    rows = _resize_matrix(in_h, output_shape[0], scale_h, True)
    cols = _resize_matrix(in_w, output_shape[1], scale_w, True)
    if data.ndim == 2:
        return rows @ data @ cols.T
    return np.einsum("lk,ikc->ilc", cols, np.einsum("ij,jkc->ikc", rows, data))


@pytest.mark.parametrize("n", [3, 5, 23, 170, 1000])
@pytest.mark.parametrize("scale", [4, 3, 2, 1 / 2, 1 / 3, 0.7, 0.98])
def test_resize_weights_are_the_csr_matrix_scipy_builds(n, scale):
    # The weights are built with numpy alone; scipy's csr_matrix of the same (row, column,
    # weight) triplets, duplicates summed and zeros dropped, is what they used to be.
    from scipy import sparse

    from srbench.protocol import _resize_weights, cubic

    out_len = math.ceil(n * scale)
    shrinking = scale < 1
    width = 4.0 / scale if shrinking else 4.0
    u = np.arange(1, out_len + 1) / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    indices = left[:, None] + np.arange(math.ceil(width) + 2)[None, :]
    weights = scale * cubic(scale * (u[:, None] - indices)) if shrinking else cubic(u[:, None] - indices)
    weights /= weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(n), np.arange(n - 1, -1, -1)])
    columns = mirror[np.mod(indices.astype(np.int64) - 1, 2 * n)]
    rows = np.repeat(np.arange(out_len), indices.shape[1])
    expected = sparse.csr_matrix((weights.ravel(), (rows, columns.ravel())), shape=(out_len, n))
    expected.sum_duplicates()
    expected.eliminate_zeros()

    got = _resize_weights(n, out_len, scale, True)
    assert got.shape == expected.shape
    for mine, theirs in ((got.data, expected.data), (got.indices, expected.indices), (got.indptr, expected.indptr)):
        assert mine.dtype == theirs.dtype and np.array_equal(mine, theirs)
        assert not mine.flags.writeable
    assert np.array_equal(got.toarray(), expected.toarray())
    assert (got.tocsr() != expected).nnz == 0


def test_resize_weights_are_the_documented_algorithm():
    from srbench.protocol import _resize_matrix

    for n, scale in ((23, 3), (23, 1 / 3), (7, 0.7), (1, 4), (2, 1 / 2)):
        matrix = _resize_matrix(n, math.ceil(n * scale), scale, True)
        eye = np.eye(n)
        expected = np.stack([naive_imresize_1d(eye[:, j], scale) for j in range(n)], axis=1)
        assert np.allclose(matrix, expected, atol=1e-14)


@pytest.mark.parametrize("seed", range(6))
def test_imresize_equals_the_dense_formulation_on_odd_sizes(seed):
    rng = np.random.default_rng(100 + seed)
    h, w = (int(v) for v in rng.integers(1, 41, 2))
    for channels in (None, 1, 2, 3):
        shape = (h, w) if channels is None else (h, w, channels)
        image = rng.random(shape)
        for scale in (2, 3, 4, 1 / 2, 1 / 3, 1 / 4, 0.7, 1.5):
            ours = imresize(image, scale)
            assert ours.shape == _dense_imresize(image, scale).shape
            assert ours.flags.c_contiguous
            assert np.allclose(ours, _dense_imresize(image, scale), rtol=0, atol=1e-12)
        target = tuple(int(v) for v in rng.integers(1, 60, 2))
        ours = imresize(image, output_shape=target)
        assert np.allclose(ours, _dense_imresize(image, output_shape=target), rtol=0, atol=1e-12)


def test_imresize_of_a_colour_image_is_its_channels_resized_alone():
    rng = np.random.default_rng(7)
    for dtype in (np.float32, np.float64):
        image = rng.random((37, 29, 3)).astype(dtype)
        for scale in (4, 1 / 3, 2.5):
            whole = imresize(image, scale)
            assert whole.dtype == dtype
            for c in range(3):
                # A channel slice is not contiguous; the result must not depend on that.
                alone = imresize(image[..., c], scale)
                assert np.allclose(whole[..., c], alone, rtol=0, atol=1e-6 if dtype == np.float32 else 1e-14)
    rgb8 = (rng.random((11, 14, 3)) * 255).astype(np.uint8)
    whole = imresize(rgb8, 3)
    assert whole.dtype == np.uint8
    for c in range(3):
        assert np.abs(whole[..., c].astype(int) - imresize(np.ascontiguousarray(rgb8[..., c]), 3)).max() == 0


def test_upscale_image_colour_path_matches_the_reference_pipeline():
    """Method on Y, bicubic on Cb/Cr, back to RGB uint8, banded or not."""
    from srbench import colour
    from srbench._methods.bicubic import Bicubic

    rng = np.random.default_rng(11)
    rgb = (rng.random((70, 53, 3)) * 255).astype(np.uint8)  # more rows than one band at x4
    ycc = rgb2ycbcr(rgb.astype(np.float32) / 255.0)
    y = _dense_imresize(ycc[..., 0], 4).astype(np.float32)
    chroma = _dense_imresize(ycc[..., 1:], 4).astype(np.float32)
    expected = to_uint8(ycbcr2rgb(np.concatenate([y[..., None], chroma], axis=2)))
    ours = colour.upscale_image(Bicubic(), rgb, 4)
    assert ours.shape == (280, 212, 3) and ours.dtype == np.uint8
    # Float round-off may move a value sitting on a rounding boundary by one level.
    assert np.abs(ours.astype(int) - expected).max() <= 1
    assert np.mean(ours != expected) < 1e-3


_CHROMA_PROCESS_SCRIPT = """
import sys
import numpy as np
from srbench import Method, colour


class Network(Method):  # a torch method as far as the colour path can tell: it may run on CUDA
    name = "nearest-network"
    devices = ("cpu", "cuda")
    scales = frozenset({4})

    def __init__(self):
        pass

    def _upscale(self, lr, scale):
        if sys.argv[1] == "fail":
            raise RuntimeError("the method failed")
        return lr.repeat(scale, 0).repeat(scale, 1)


rgb = np.random.default_rng(3).integers(0, 256, (300, 260, 3)).astype(np.uint8)  # 1.2 MP out
started = []
start = colour._ChromaProcess.start
colour._ChromaProcess.start = lambda *a: started.append(start(*a)) or started[-1]
try:
    alongside = colour.upscale_image(Network(), rgb, 4)
except RuntimeError as error:
    print(error)
    raise SystemExit(0 if started[0] is not None else 3)
assert started[0] is not None, "no chroma process was started"
colour._ChromaProcess.start = lambda *a: None
one_process = colour.upscale_image(Network(), rgb, 4)
assert alongside.shape == (1200, 1040, 3) and alongside.dtype == np.uint8
assert np.array_equal(alongside, one_process)
print("same")
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the chroma process is forked on Linux only")
@pytest.mark.parametrize("outcome", ["same", "fail"])
def test_a_networks_chroma_done_alongside_is_the_same_image(outcome):
    # A fresh interpreter: the process is forked only before numba or torch is loaded.
    done = subprocess.run(
        [sys.executable, "-c", _CHROMA_PROCESS_SCRIPT, outcome],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ("same" if outcome == "same" else "the method failed")


def test_rgb2y_is_the_luminance_of_rgb2ycbcr():
    rng = np.random.default_rng(8)
    rgb8 = rng.integers(0, 256, (256, 300, 3)).astype(np.uint8)
    for image in (rgb8, rgb8.astype(np.float32) / 255, rgb8.astype(np.float64) / 255):
        y = rgb2y(image)
        assert y.dtype == image.dtype and y.shape == image.shape[:2]
        assert np.array_equal(y, rgb2ycbcr(image)[..., 0])
    # MATLAB's values: white and black, and the coefficients on the pure primaries.
    assert rgb2y(np.array([[[255, 255, 255], [0, 0, 0]]], np.uint8)).tolist() == [[235, 16]]
    assert rgb2y(np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]]], np.uint8)).tolist() == [[81, 145, 41]]
    with pytest.raises(ValueError, match="rgb2y expects"):
        rgb2y(rgb8[..., :2])


def test_colour_kernel_is_the_numpy_conversion():
    """ycbcr_to_rgb8 against ycbcr2rgb + to_uint8, values beyond [0, 1] (saturation) included,
    on one thread and on several."""
    from srbench import colour_kernel

    if not colour_kernel.available():
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(5)
    y = (rng.random((61, 47)) * 1.2 - 0.1).astype(np.float32)
    chroma = (rng.random((61, 47, 2)) * 1.2 - 0.1).astype(np.float32)
    expected = to_uint8(ycbcr2rgb(np.concatenate([y[..., None], chroma], axis=2)))
    assert 0 in expected and 255 in expected
    for threads in (1, 3):
        assert np.array_equal(colour_kernel.ycbcr_to_rgb8(y, chroma, threads=threads), expected)
    with pytest.raises(ValueError, match="chroma"):
        colour_kernel.ycbcr_to_rgb8(y, chroma[:, :, :1])


def test_upscale_image_gives_an_rgb_method_the_colour_image():
    from srbench import Method, colour

    class ChannelBicubic(Method):
        name = "channel-bicubic"
        channels = "rgb"
        scales = frozenset({2})

        def _upscale(self, lr, scale):
            return imresize(lr, scale)

    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (9, 7, 3)).astype(np.uint8)
    assert np.array_equal(colour.upscale_image(ChannelBicubic(), rgb, 2), imresize(rgb, 2))
    gray = colour.upscale_image(ChannelBicubic(), rgb[..., 0], 2)
    assert gray.shape == (18, 14) and np.array_equal(gray, imresize(rgb[..., 0], 2))


# ------------------------------------------------- the compiled kernels against scipy's path
# srbench.resize_kernel applies the same CSR weights as scipy's csr_matvecs, in the same order
# per output element, so the two paths must agree bit for bit (np.array_equal, not allclose).

def _scipy_imresize(image, scale=None, output_shape=None):
    """imresize through scipy's sparse products, as without numba."""
    from srbench.protocol import _imresize

    return _imresize(image, scale, output_shape, True, False)


def _random_image(rng, shape, dtype):
    if dtype == np.uint8:
        return rng.integers(0, 256, shape).astype(np.uint8)
    return rng.random(shape).astype(dtype)


def _assert_identical(ours, reference):
    assert ours.dtype == reference.dtype and ours.shape == reference.shape
    assert ours.flags.c_contiguous
    assert np.array_equal(ours, reference, equal_nan=True)


needs_numba = pytest.mark.skipif(not numba_available(), reason="numba not installed")


@needs_numba
@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
@pytest.mark.parametrize("channels", [None, 1, 2, 3])
def test_compiled_imresize_is_bit_identical_to_scipy(dtype, channels, monkeypatch):
    from srbench import protocol

    calls = []
    scipy_path = protocol._resize_scipy
    monkeypatch.setattr(protocol, "_resize_scipy", lambda *a: calls.append(a) or scipy_path(*a))
    rng = np.random.default_rng(200 + (channels or 0))
    sizes = [(1, 1), (1, 9), (9, 1), (3, 3), (2, 5), (17, 13), (40, 31), (33, 64)]
    for h, w in sizes:
        shape = (h, w) if channels is None else (h, w, channels)
        image = _random_image(rng, shape, dtype)
        for scale in (1 / 2, 1 / 3, 1 / 4, 2, 3, 4, 0.7, 1.5):
            _assert_identical(imresize(image, scale), _scipy_imresize(image, scale))
        for target in ((2 * h, max(1, w // 3)), (max(1, h // 3), 3 * w), (h + 5, w + 1), (7, 5)):
            _assert_identical(imresize(image, output_shape=target), _scipy_imresize(image, output_shape=target))
    assert len(calls) == len(sizes) * 12  # only the references went through scipy


@needs_numba
@pytest.mark.parametrize("height_first", [True, False])
def test_compiled_imresize_does_not_depend_on_the_bands_or_threads(height_first, monkeypatch):
    from srbench import resize_kernel
    from srbench.protocol import _resize_scipy, _resize_weights

    rng = np.random.default_rng(5)
    image = rng.random((29, 23, 2))
    for scale in (1 / 3, 3, 0.7):
        out_h, out_w = math.ceil(29 * scale), math.ceil(23 * scale)
        rows = _resize_weights(29, out_h, scale, True)
        cols = _resize_weights(23, out_w, scale, True)
        one = resize_kernel.resize(image, rows, cols, height_first, bands=1)
        assert np.array_equal(one, _resize_scipy(image, rows, cols, height_first))
        for bands in (2, 3, 7, out_h, out_h + 4):
            assert np.array_equal(resize_kernel.resize(image, rows, cols, height_first, bands=bands), one)
        monkeypatch.setattr(resize_kernel, "PARALLEL_FROM", 0)  # all threads, even this small
        assert np.array_equal(resize_kernel.resize(image, rows, cols, height_first), one)
        monkeypatch.undo()


@needs_numba
def test_compiled_imresize_on_views_read_only_arrays_and_non_finite_values():
    rng = np.random.default_rng(8)
    image = rng.random((31, 26, 3)).astype(np.float32)
    frozen = image.copy()
    frozen.setflags(write=False)
    for view in (image[..., 1], image[::2, 1:], image.transpose(1, 0, 2), frozen, frozen[..., 0]):
        for scale in (1 / 3, 4):
            _assert_identical(imresize(view, scale), _scipy_imresize(view, scale))
    spiky = rng.random((12, 14))
    spiky[3, 4], spiky[0, 0], spiky[11, 13], spiky[6, 0] = np.inf, np.nan, -np.inf, np.nan
    for scale in (1 / 2, 1 / 3, 2, 3, 4):
        _assert_identical(imresize(spiky, scale), _scipy_imresize(spiky, scale))


@needs_numba
def test_compiled_imresize_is_bit_identical_on_held_out_training_images(data_dir):
    """Real photographs (T91, never an evaluation set): uint8 RGB, float32 and float64 Y."""
    from srbench.imageio import read_image

    folder = data_dir / "T91"
    if not folder.is_dir():
        pytest.skip("T91 not available")
    for name in ("t1.png", "t20.png", "t47.png", "tt27.png"):
        rgb = read_image(folder / name)
        y = rgb2ycbcr(rgb.astype(np.float32) / 255.0)[..., 0]
        for image in (rgb, y, y.astype(np.float64), rgb2ycbcr(rgb.astype(np.float32) / 255.0)[..., 1:]):
            for scale in (1 / 2, 1 / 3, 1 / 4, 2, 3, 4):
                _assert_identical(imresize(image, scale), _scipy_imresize(image, scale))
            lr = imresize(modcrop(image, 3), 1 / 3)
            target = modcrop(image, 3).shape[:2]
            _assert_identical(imresize(lr, output_shape=target), _scipy_imresize(lr, output_shape=target))


def test_imresize_falls_back_to_scipy_without_numba(monkeypatch):
    from srbench import resize_kernel

    def refuse(*args, **kwargs):
        raise AssertionError("the compiled kernel ran without numba")

    monkeypatch.setattr(resize_kernel, "available", lambda: False)
    monkeypatch.setattr(resize_kernel, "resize", refuse)
    rng = np.random.default_rng(9)
    image = rng.random((19, 23, 3))
    for scale in (1 / 3, 2):
        assert np.allclose(imresize(image, scale), _dense_imresize(image, scale), rtol=0, atol=1e-12)
    as_uint8 = imresize((image * 255).astype(np.uint8), 2)
    assert as_uint8.dtype == np.uint8 and as_uint8.shape == (38, 46, 3)
    resize_kernel.warm_up()  # nothing to compile: returns without calling the kernel


def test_imresize_takes_other_dtypes_through_scipy(monkeypatch):
    from srbench import resize_kernel

    def refuse(*args, **kwargs):
        raise AssertionError("the compiled kernel got a dtype it does not cover")

    monkeypatch.setattr(resize_kernel, "resize", refuse)
    image = np.random.default_rng(10).random((9, 11))
    half = imresize(image.astype(np.float16), 2)
    assert half.dtype == np.float16
    assert np.allclose(half, _dense_imresize(image.astype(np.float16), 2), atol=2e-3)
    ints = imresize((image * 1000).astype(np.int16), 1 / 2)
    assert ints.dtype == np.float64
    assert np.allclose(ints, _dense_imresize((image * 1000).astype(np.int16), 1 / 2), atol=1e-9)


@needs_numba
@pytest.mark.skipif(not hasattr(os, "fork"), reason="the pool's zygote forks only where fork exists")
def test_preloaded_kernels_leave_a_process_that_can_fork_parallel_workers():
    # The zygote preloads the serial kernels; its forked workers must still be able to run
    # the parallel ones (GNU OpenMP kills a child whose parent had started it).
    script = (
        "import os, numpy as np\n"
        "from srbench import resize_kernel\n"
        "from srbench.protocol import _resize_weights\n"
        "resize_kernel.preload()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    rows, cols = _resize_weights(8, 24, 3.0, True), _resize_weights(8, 24, 3.0, True)\n"
        "    out = resize_kernel.resize(np.ones((8, 8)), rows, cols, False, bands=2)\n"
        "    os._exit(0 if np.allclose(out, 1.0) else 3)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "raise SystemExit(os.waitstatus_to_exitcode(status))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
