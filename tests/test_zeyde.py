"""Tests of the shared Zeyde module and the ksvd method (tiny synthetic sizes, fast)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from scipy.signal import convolve2d

from srbench._methods.sparse import zeyde


def _smooth_images(count: int, size: int, seed: int = 0) -> list[np.ndarray]:
    """Random smooth uint8 images: structure for the features, no dataset needed."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        coarse = rng.random((size // 6 + 2, size // 6 + 2))
        image = np.kron(coarse, np.ones((6, 6)))[:size, :size]
        image = convolve2d(image, np.ones((5, 5)) / 25, mode="same", boundary="symm")
        out.append(np.round(image * 255).astype(np.uint8))
    return out


# ----------------------------------------------------------------------------- features
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_gradient_filters_shapes(scale):
    g, gt, lap, lapt = zeyde.gradient_filters(scale)
    assert g.shape == (1, scale + 1) and gt.shape == (scale + 1, 1)
    assert lap.shape == (1, 2 * scale + 1) and lapt.shape == (2 * scale + 1, 1)
    assert g.sum() == 0 and lap.sum() == 0


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_feature_maps_match_matlab_conv2_same(scale):
    # MATLAB 'same' keeps the full convolution from index m // 2 along each axis.
    x = np.random.default_rng(1).random((17, 19))
    maps = zeyde.feature_maps(x, scale)
    for response, kernel in zip(maps, zeyde.gradient_filters(scale)):
        full = convolve2d(x, kernel, mode="full")
        r0, c0 = kernel.shape[0] // 2, kernel.shape[1] // 2
        np.testing.assert_allclose(response, full[r0 : r0 + 17, c0 : c0 + 19], atol=1e-12)


def test_x3_gradient_is_one_sample_right_of_scipy():
    x = np.random.default_rng(2).random((12, 12))
    g = zeyde.feature_maps(x, 3)[0]
    i, j = 5, 6
    assert g[i, j] == pytest.approx(x[i, j + 2] - x[i, j - 1])


@pytest.mark.parametrize("scale,overlap", [(2, 1), (3, 1), (4, 2), (3, 2)])
def test_sampling_grid_formula(scale, overlap):
    shape = (41, 53)
    rows, cols = zeyde.sampling_grid(shape, scale, overlap)
    step = (3 - overlap) * scale
    # 1-based corners s+1 .. N-4s+1 in steps of (3 - overlap) s, column-major order.
    r = np.arange(scale + 1, shape[0] - 4 * scale + 2, step) - 1
    c = np.arange(scale + 1, shape[1] - 4 * scale + 2, step) - 1
    rr, cc = np.meshgrid(r, c, indexing="ij")
    np.testing.assert_array_equal(rows, rr.ravel(order="F"))
    np.testing.assert_array_equal(cols, cc.ravel(order="F"))


def test_extract_patches_column_major_in_filter_order():
    maps = np.random.default_rng(3).random((4, 20, 22))
    grid = zeyde.sampling_grid(maps.shape[1:], 2, 1)
    size = 6
    patches = zeyde.extract_patches(maps, grid, size)
    assert patches.shape == (len(grid[0]), 4 * size * size)
    for k in (0, len(grid[0]) // 2, len(grid[0]) - 1):
        r, c = grid[0][k], grid[1][k]
        expected = np.concatenate(
            [m[r : r + size, c : c + size].ravel(order="F") for m in maps]
        )
        np.testing.assert_array_equal(patches[k], expected)


def test_overlap_add_of_constant_patches_is_constant():
    shape, scale = (30, 36), 3
    size = zeyde.patch_size(scale)
    grid = zeyde.sampling_grid(shape, scale, overlap=2)
    image = zeyde.overlap_add(np.full((len(grid[0]), size * size), 0.7), grid, shape, size)
    inner = image[scale:-scale, scale:-scale]
    np.testing.assert_allclose(inner, 0.7)
    assert np.all(image[:scale] == 0) and np.all(image[:, :scale] == 0)


def test_overlap_add_inverts_extract_patches():
    x = np.random.default_rng(4).random((24, 28))
    grid = zeyde.sampling_grid(x.shape, 2, overlap=2)  # full overlap reaches every inner pixel
    y = zeyde.overlap_add(zeyde.extract_patches(x, grid, 6), grid, x.shape, 6)
    np.testing.assert_allclose(y[2:-2, 2:-2], x[2:-2, 2:-2])


@pytest.mark.parametrize("scale, overlap", [(2, 2), (3, 2), (4, 1)])
def test_lattice_overlap_add_equals_the_scatter(scale, overlap, monkeypatch):
    # The strided lattice path and the general scatter must give the same sums and counts;
    # a shuffled grid (no lattice) must take the scatter.
    rng = np.random.default_rng(scale)
    shape = (17 * scale, 13 * scale)
    grid = zeyde.sampling_grid(shape, scale, overlap)
    size = zeyde.patch_size(scale)
    patches = rng.standard_normal((len(grid[0]), size * size))
    assert zeyde._lattice(*grid) is not None
    fast = zeyde._accumulate(patches, grid, shape, size)
    monkeypatch.setattr(zeyde, "_lattice", lambda rows, cols: None)
    slow = zeyde._accumulate(patches, grid, shape, size)
    for a, b in zip(fast, slow):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    monkeypatch.undo()
    order = rng.permutation(len(grid[0]))
    assert zeyde._lattice(grid[0][order], grid[1][order]) is None
    shuffled = zeyde._accumulate(patches[order], (grid[0][order], grid[1][order]), shape, size)
    np.testing.assert_allclose(shuffled[0], fast[0], atol=1e-12)


def test_banded_pca_features_equal_the_whole_product(monkeypatch):
    rng = np.random.default_rng(5)
    lr = rng.random((23, 19)).astype(np.float32)
    basis = rng.standard_normal((4 * 9 * 9, 7)).astype(np.float32)
    mid, grid, whole = zeyde.upscale_features(lr, 3, basis)
    monkeypatch.setattr(zeyde, "_FEATURE_BAND", 4 * 81 * 10)  # ten patches per band
    _, _, banded = zeyde.upscale_features(lr, 3, basis)
    raw = zeyde.extract_patches(zeyde.feature_maps(mid, 3), grid, 9) @ basis
    np.testing.assert_allclose(banded, raw, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(whole, raw, rtol=1e-5, atol=1e-5)


def test_assemble_keeps_bicubic_where_uncovered():
    rng = np.random.default_rng(5)
    mid = rng.random((24, 27)).astype(np.float32)
    grid = zeyde.sampling_grid(mid.shape, 3, overlap=2)
    resid = rng.standard_normal((len(grid[0]), 81)) * 0.01
    out = zeyde.assemble(mid, grid, resid, 9)
    reference = zeyde.overlap_add(resid + zeyde.extract_patches(mid, grid, 9), grid, mid.shape, 9)
    np.testing.assert_allclose(out[3:-3, 3:-3], reference[3:-3, 3:-3], atol=1e-6)
    np.testing.assert_array_equal(out[:3], mid[:3])


def test_collect_shapes_and_residual():
    images = _smooth_images(2, 36)
    feats, resid = zeyde.collect(images, 3)
    n = 2 * len(zeyde.sampling_grid((36, 36), 3, 1)[0])
    assert feats.shape == (n, 4 * 81) and resid.shape == (n, 81)
    assert feats.dtype == np.float32 and resid.dtype == np.float32


# ----------------------------------------------------------------------------- PCA
def test_fit_pca_keeps_energy():
    rng = np.random.default_rng(6)
    spectrum = np.geomspace(1.0, 1e-5, 12)
    f = rng.standard_normal((4000, 12)) * np.sqrt(spectrum) @ np.linalg.qr(
        rng.standard_normal((12, 12))
    )[0]
    V = zeyde.fit_pca(f, energy=0.999)
    total = np.sum(f.astype(np.float64) ** 2)
    kept = np.sum((f @ V) ** 2)
    assert kept / total >= 0.999
    # Minimal: one direction fewer would keep less than 99.9%.
    assert np.sum((f @ V[:, 1:]) ** 2) / total < 0.999
    np.testing.assert_allclose(V.T @ V, np.eye(V.shape[1]), atol=1e-10)
    # Ascending order, as MATLAB eig: the last column is the leading direction.
    energies = np.sum((f @ V) ** 2, axis=0)
    assert np.all(np.diff(energies) > 0)
    # An explicit dimension keeps that many leading directions, overriding the rule.
    wider = zeyde.fit_pca(f, energy=0.999, dims=V.shape[1] + 1)
    np.testing.assert_allclose(np.abs(wider[:, 1:].T @ V), np.eye(V.shape[1]), atol=1e-8)
    with pytest.raises(ValueError, match="PCA dimension"):
        zeyde.fit_pca(f, dims=13)


# ----------------------------------------------------------------------------- OMP, K-SVD
def test_omp_matches_scikit_learn():
    from sklearn.linear_model import orthogonal_mp_gram

    rng = np.random.default_rng(7)
    D = rng.standard_normal((16, 60))
    D /= np.linalg.norm(D, axis=0)
    X = rng.standard_normal((300, 16))
    X[0] = 0.0  # a zero signal codes to zeros
    idx, coef = zeyde.omp(D, X, 3, chunk=128)
    ours = zeyde.codes_to_sparse(idx, coef, 60).toarray()
    gram = D.T @ D
    theirs = orthogonal_mp_gram(gram, D.T @ X[1:].T, n_nonzero_coefs=3)
    np.testing.assert_allclose(ours[:, 1:], theirs, atol=1e-10)
    assert not ours[:, 0].any()


def test_ksvd_recovers_known_dictionary():
    rng = np.random.default_rng(8)
    d, n_atoms, n = 20, 50, 1500
    true = rng.standard_normal((d, n_atoms))
    true /= np.linalg.norm(true, axis=0)
    support = np.argsort(rng.random((n, n_atoms)), axis=1)[:, :3]
    coef = rng.standard_normal((n, 3))
    signals = np.einsum("nk,nkd->dn", coef, true.T[support])
    D, codes = zeyde.ksvd(signals, n_atoms=n_atoms, sparsity=3, n_iter=50, seed=0)
    assert D.shape == (d, n_atoms) and codes.shape == (n_atoms, n)
    np.testing.assert_allclose(np.linalg.norm(D, axis=0), 1.0)
    recovered = np.max(np.abs(true.T @ D), axis=1) > 0.99
    assert recovered.sum() >= 0.9 * n_atoms
    assert np.max(np.diff(codes.indptr)) <= 3


def test_ksvd_is_deterministic():
    signals = np.random.default_rng(9).standard_normal((8, 200))
    a, _ = zeyde.ksvd(signals, n_atoms=12, n_iter=3, seed=4)
    b, _ = zeyde.ksvd(signals, n_atoms=12, n_iter=3, seed=4)
    np.testing.assert_array_equal(a, b)


def test_ksvd_last_iteration_codes_are_the_sweeps_codes():
    """ksvdbox's returned Gamma: same dictionary, codes from the last sweep (pre-clearing)."""
    signals = np.random.default_rng(11).standard_normal((8, 300))
    D_final, final = zeyde.ksvd(signals, n_atoms=12, n_iter=3, seed=4)
    D_last, last = zeyde.ksvd(signals, n_atoms=12, n_iter=3, seed=4, codes="last_iteration")
    np.testing.assert_array_equal(D_final, D_last)
    assert last.shape == final.shape and np.max(np.diff(last.indptr)) <= 3
    # The sweep re-fits each used atom's coefficients, so its codes represent the signals
    # about as well as a fresh OMP with the final atoms does, but they are not that coding.
    err_last = np.linalg.norm(signals - D_last @ last.toarray())
    err_final = np.linalg.norm(signals - D_final @ final.toarray())
    assert err_last < 1.2 * err_final and (last != final).nnz > 0
    with pytest.raises(ValueError, match="codes must be"):
        zeyde.ksvd(signals, n_atoms=12, n_iter=1, codes="latest")


# ----------------------------------------------------------------------------- the method
@pytest.fixture(scope="module")
def tiny_ksvd():
    from srbench._methods.sparse.ksvd import KSVD

    return KSVD(n_atoms=24, n_iter=2).fit(_smooth_images(3, 60), 2)


def test_learn_dictionaries_artifact_names(tiny_ksvd):
    tensors = tiny_ksvd.artifacts_[2]
    assert set(tensors) == set(zeyde.ARTIFACT_NAMES)
    V, Dl, Dh = tensors["V_pca"], tensors["Dl"], tensors["Dh"]
    assert all(t.dtype == np.float32 for t in (V, Dl, Dh))
    assert V.shape[0] == 4 * 36 and Dl.shape == (V.shape[1], 24) and Dh.shape == (36, 24)


def test_ksvd_upscale_contract(tiny_ksvd):
    lr = np.random.default_rng(10).random((15, 13)).astype(np.float32)
    before = lr.copy()
    out = tiny_ksvd.upscale(lr, 2)
    assert out.shape == (30, 26) and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    np.testing.assert_array_equal(lr, before)
    np.testing.assert_array_equal(out, tiny_ksvd.upscale(lr, 2))
    # Too small for a single window: plain bicubic, no crash.
    assert tiny_ksvd.upscale(lr[:4, :4], 2).shape == (8, 8)


def test_ksvd_save_load_round_trip(tiny_ksvd, tmp_path):
    from srbench._methods.sparse.ksvd import KSVD

    tiny_ksvd.save(tmp_path)
    loaded = KSVD(n_atoms=24, n_iter=2).load(tmp_path)
    assert loaded.fitted_scales == {2}
    for name, array in tiny_ksvd.artifacts_[2].items():
        np.testing.assert_array_equal(loaded.artifacts_[2][name], array)
        assert loaded.artifacts_[2][name].dtype == array.dtype
    assert loaded.artifact_hash(2) == tiny_ksvd.artifact_hash(2)
    lr = np.random.default_rng(11).random((14, 16)).astype(np.float32)
    np.testing.assert_array_equal(loaded.upscale(lr, 2), tiny_ksvd.upscale(lr, 2))


# ----------------------------------------------------------------------------- compiled twins
# The kernels of zeyde_kernel do the numpy path's arithmetic in the same order: the outputs
# must be the same bit for bit, not merely close.
kernels = pytest.importorskip("srbench._methods.sparse.zeyde_kernel")
needs_numba = pytest.mark.skipif(not kernels.available(), reason="numba is not installed")


@pytest.fixture
def numpy_path(monkeypatch):
    """Call to switch the Zeyde front and back end to their numpy twins."""
    return lambda: monkeypatch.setattr(zeyde, "_compiled", lambda: None)


@needs_numba
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_compiled_patch_features_equal_numpy_at_any_corner(scale):
    # Corners on the image edges too, where the filters' taps fall outside and are skipped.
    rng = np.random.default_rng(20 + scale)
    size = zeyde.patch_size(scale)
    mid = rng.standard_normal((3 * size + 5, 2 * size + 7)).astype(np.float32)
    rows = rng.integers(0, mid.shape[0] - size + 1, 60)
    cols = rng.integers(0, mid.shape[1] - size + 1, 60)
    rows[:4], cols[:4] = [0, 0, mid.shape[0] - size, mid.shape[0] - size], [0, mid.shape[1] - size] * 2
    expected = zeyde.extract_patches(zeyde.feature_maps(mid, scale), (rows, cols), size)
    got = np.full(expected.shape, np.nan, dtype=np.float32)
    taps = kernels.filter_taps(zeyde.gradient_filters(scale))
    kernels.patch_features(mid, taps, rows, cols, size, got)
    np.testing.assert_array_equal(got, expected)


@needs_numba
@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("projected", [False, True])
def test_compiled_upscale_features_equal_numpy(scale, projected, numpy_path, monkeypatch):
    rng = np.random.default_rng(scale)
    lr = rng.random((29, 23)).astype(np.float32)
    basis = rng.standard_normal((4 * 9 * scale**2, 7)).astype(np.float32) if projected else None
    # Bands of 13 patches: many bands, split over threads, the last one short.
    monkeypatch.setattr(zeyde, "_FEATURE_BAND", 4 * 9 * scale**2 * 13)
    mid, grid, got = zeyde.upscale_features(lr, scale, basis)
    numpy_path()
    mid0, grid0, expected = zeyde.upscale_features(lr, scale, basis)
    np.testing.assert_array_equal(mid, mid0)
    np.testing.assert_array_equal(grid[0], grid0[0])
    np.testing.assert_array_equal(got, expected)


@needs_numba
@pytest.mark.parametrize(
    "scale, overlap, shape, dtype",
    [(2, 2, (40, 300), np.float32), (3, 2, (33, 45), np.float64), (4, 1, (52, 60), np.float32),
     (2, 2, (11, 12), np.float32)],
)
def test_compiled_assemble_equals_numpy(scale, overlap, shape, dtype, numpy_path):
    # (40, 300): more than one strip of columns; (11, 12): one patch row, no full coverage.
    rng = np.random.default_rng(sum(shape))
    mid = rng.random(shape).astype(np.float32)
    size = zeyde.patch_size(scale)
    grid = zeyde.sampling_grid(shape, scale, overlap)
    residual = (rng.standard_normal((len(grid[0]), size * size)) * 0.1).astype(dtype)
    order = rng.permutation(len(grid[0]))
    grouped = zeyde.GroupedRows(residual[order], order)
    got = zeyde.assemble(mid, grid, residual, size)
    got_grouped = zeyde.assemble(mid, grid, grouped, size)
    np.testing.assert_array_equal(grouped.toarray(), residual)
    numpy_path()
    expected = zeyde.assemble(mid, grid, residual, size)
    assert got.dtype == expected.dtype == np.float32
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got_grouped, expected)
    np.testing.assert_array_equal(zeyde.assemble(mid, grid, grouped, size), expected)


@needs_numba
def test_compiled_assemble_adds_in_the_numpy_order():
    # Values of very different magnitudes: any other order of the float64 sums rounds
    # differently, so only the numpy path's order reproduces its image.
    rng = np.random.default_rng(30)
    mid = np.zeros((30, 30), dtype=np.float32)
    grid = zeyde.sampling_grid(mid.shape, 3, 2)
    residual = (rng.standard_normal((len(grid[0]), 81)) * 10.0 ** rng.integers(-8, 8, (1, 81)))
    lattice = zeyde._lattice(*grid)
    total, count = zeyde._accumulate(residual, grid, mid.shape, 9)
    expected = np.zeros(mid.shape)
    covered = count > 0
    expected[covered] = total[covered] / count[covered]
    got = kernels.assemble_lattice(mid, residual, lattice, 9)
    np.testing.assert_array_equal(got, expected.astype(np.float32))


@needs_numba
def test_row_passes_equal_numpy():
    rng = np.random.default_rng(31)
    labels = rng.integers(0, 40, 5000)
    labels[labels == 7] = 8  # a label in no row
    order, bounds = kernels.stable_order(labels, 40)
    np.testing.assert_array_equal(order, np.argsort(labels, kind="stable"))
    np.testing.assert_array_equal(bounds, np.searchsorted(np.sort(labels), np.arange(41)))
    x = rng.standard_normal((5000, 9)).astype(np.float32)
    np.testing.assert_array_equal(kernels.gather_rows(x, order), x[order])
    out = kernels.scatter_rows(x, order, np.empty_like(x))
    expected = np.empty_like(x)
    expected[order] = x
    np.testing.assert_array_equal(out, expected)
    with pytest.raises(IndexError):
        kernels.stable_order(np.array([0, 40]), 40)


def test_in_threads_runs_every_share_and_reraises():
    seen = []
    kernels.in_threads(seen.append, 3)
    assert sorted(seen) == [0, 1, 2]

    def fail(t):
        if t == 1:
            raise RuntimeError("share 1")

    with pytest.raises(RuntimeError, match="share 1"):
        kernels.in_threads(fail, 2)


def test_blas_in_threads_restores_blas_when_the_last_context_closes():
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads():
        return [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]

    before = blas_threads()
    with kernels.blas_in_threads() as threads:
        assert threads == max(1, min([*before, os.cpu_count() or 1]))
        inside = blas_threads()
        with kernels.blas_in_threads() as again:  # another user (e.g. a thread) meanwhile
            assert again == threads
        assert blas_threads() == inside
    assert blas_threads() == before
    if threads > 1:
        assert set(inside) == {1}


@needs_numba
def test_ksvd_upscale_compiled_equals_numpy(tiny_ksvd, numpy_path):
    lr = np.random.default_rng(12).random((40, 37)).astype(np.float32)
    tiny_ksvd.prepare(2)
    got = tiny_ksvd.upscale(lr, 2)
    numpy_path()
    np.testing.assert_array_equal(got, tiny_ksvd.upscale(lr, 2))


def test_omp_chunks_coded_on_threads_are_the_chunks_coded_one_by_one():
    # omp shares its chunks out to threads (one BLAS thread each): the same numbers as
    # coding each chunk in turn.
    from srbench._methods.sparse import zeyde

    rng = np.random.default_rng(5)
    D = rng.normal(size=(30, 200)).astype(np.float32)
    D /= np.linalg.norm(D, axis=0)
    X = rng.normal(size=(300, 30)).astype(np.float32)
    idx, coef = zeyde.omp(D, X, 3, chunk=32)
    gram, DT = D.T @ D, np.ascontiguousarray(D.T)
    for start in range(0, 300, 32):
        i, c = zeyde._omp_chunk(D, DT, gram, X[start : start + 32], 3)
        np.testing.assert_array_equal(idx[start : start + 32], i)
        np.testing.assert_array_equal(coef[start : start + 32], c)


def test_gr_residuals_on_threads_are_the_one_product():
    from srbench._methods.anchored.methods import GR

    rng = np.random.default_rng(6)
    y = rng.normal(size=(5001, 30)).astype(np.float32)
    P = rng.normal(size=(81, 30)).astype(np.float32)
    np.testing.assert_array_equal(GR()._residuals({"P": P}, y), y @ P.T)
