"""Tests of the anchored-regression machinery and the GR / ANR / A+ plugins (tiny, fast)."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from srbench._methods.anchored import regressors as anchored
from tests.conftest import natural_image


def _unit_atoms(rng, d, n):
    D = rng.standard_normal((d, n))
    return D / np.linalg.norm(D, axis=0)


# ----------------------------------------------------------------------------- regressors
@pytest.mark.parametrize("n", [5, 40])  # fewer and more neighbours than feature dimensions
def test_ridge_regressors_equal_the_closed_form(n):
    rng = np.random.default_rng(n)
    m, k, p, lam = 3, 12, 9, 0.1
    lo = rng.standard_normal((m, k, n))
    hi = rng.standard_normal((m, p, n))
    got = anchored.ridge_regressors(lo, hi, lam, gain=1.5)
    for i in range(m):
        expected = 1.5 * hi[i] @ np.linalg.inv(lo[i].T @ lo[i] + lam * np.eye(n)) @ lo[i].T
        np.testing.assert_allclose(got[i], expected, rtol=1e-9, atol=1e-12)


def test_global_regressor_equals_the_closed_form():
    rng = np.random.default_rng(1)
    Dl, Dh = _unit_atoms(rng, 10, 64), rng.standard_normal((16, 64))
    expected = 1.1 * Dh @ np.linalg.inv(Dl.T @ Dl + 0.1 * np.eye(64)) @ Dl.T
    np.testing.assert_allclose(anchored.global_regressor(Dl, Dh, 0.1), expected, rtol=1e-9)


def test_anr_neighbourhoods_are_the_first_of_a_stable_sort_ties_included():
    # The partition-based selection must pick and order exactly as MATLAB's sort(..., 'descend')
    # (a stable sort): ties at the cut go to the lower atom index.
    rng = np.random.default_rng(3)
    for _ in range(100):
        rows, cols = rng.integers(1, 40, size=2)
        values = rng.integers(0, rng.integers(1, 5), (rows, cols)).astype(np.float64)  # many ties
        for size in (1, int(rng.integers(1, cols + 1)), int(cols), int(cols) + 3):
            expected = np.argsort(values, axis=1, kind="stable")[:, :size]
            np.testing.assert_array_equal(anchored._first_of_stable_sort(values, size), expected)
    dictionary = rng.normal(size=(29, 300))
    dictionary /= np.linalg.norm(dictionary, axis=0)
    expected = np.argsort(-np.abs(dictionary.T @ dictionary), axis=1, kind="stable")[:, :40]
    np.testing.assert_array_equal(anchored.neighbour_atoms(dictionary, 40), expected)


def test_anr_projection_is_the_ridge_solution_on_the_most_correlated_atoms():
    rng = np.random.default_rng(2)
    Dl, Dh = _unit_atoms(rng, 10, 100), rng.standard_normal((16, 100))
    P, neighbours = anchored.anr_regressors(Dl, Dh, neighbourhood=40, lam=0.01)
    assert P.shape == (100, 16, 10) and neighbours.shape == (100, 40)
    np.testing.assert_array_equal(neighbours[:, 0], np.arange(100))  # the atom itself first
    for i in (0, 17, 99):
        corr = np.abs(Dl.T @ Dl[:, i])
        idx = np.argsort(-corr, kind="stable")[:40]
        assert set(idx) == set(neighbours[i])
        lo, hi = Dl[:, idx], Dh[:, idx]
        expected = 1.01 * hi @ np.linalg.inv(lo.T @ lo + 0.01 * np.eye(40)) @ lo.T
        np.testing.assert_allclose(P[i], expected, rtol=1e-9, atol=1e-12)


def test_anr_projections_on_threads_are_the_single_threaded_ones():
    from srbench import threads

    rng = np.random.default_rng(4)
    Dl, Dh = _unit_atoms(rng, 12, 301), rng.standard_normal((36, 301))
    together, _ = anchored.anr_regressors(Dl, Dh, neighbourhood=40, lam=0.01)

    @contextlib.contextmanager
    def one_thread():
        yield 1

    original = threads.blas_in_threads
    threads.blas_in_threads = one_thread
    try:
        alone, _ = anchored.anr_regressors(Dl, Dh, neighbourhood=40, lam=0.01)
    finally:
        threads.blas_in_threads = original
    assert np.array_equal(together, alone)


def test_anr_falls_back_to_global_regression_for_tiny_dictionaries():
    rng = np.random.default_rng(3)
    Dl, Dh = _unit_atoms(rng, 6, 50), rng.standard_normal((4, 50))
    P, _ = anchored.anr_regressors(Dl, Dh, neighbourhood=40, lam=0.01)
    np.testing.assert_allclose(P[7], anchored.global_regressor(Dl, Dh, 0.01))


# ----------------------------------------------------------------------------- A+ training
def test_nearest_samples_pick_the_true_nearest_across_chunks():
    rng = np.random.default_rng(4)
    samples = rng.standard_normal((1000, 6)).astype(np.float32)
    atoms = rng.standard_normal((6, 20)).astype(np.float32)
    got = anchored.nearest_samples(samples, atoms, 50, chunk=64, atom_block=7)
    dist = ((samples[None, :, :] - atoms.T[:, None, :]) ** 2).sum(-1)
    expected = np.argsort(dist, axis=1, kind="stable")[:, :50]
    np.testing.assert_array_equal(got, expected)


def test_normalise_samples_scales_hr_except_flat_patches():
    lo = np.array([[3.0, 4.0], [0.03, 0.04], [0.0, 0.0]], dtype=np.float32)
    hi = np.array([[10.0], [10.0], [10.0]], dtype=np.float32)
    anchored.normalise_samples(lo, hi)
    np.testing.assert_allclose(lo, [[0.6, 0.8], [0.6, 0.8], [0.0, 0.0]], rtol=1e-6)
    # Norm 5 divides the HR patch; norms below 0.1 (0.05 and 0) leave it alone.
    np.testing.assert_allclose(hi[:, 0], [2.0, 10.0, 10.0], rtol=1e-6)


def test_collect_pyramid_first_level_is_zeyde_full_overlap_and_truncates_in_order():
    from srbench._methods.sparse import zeyde

    images = [natural_image((48, 42), seed=i) for i in range(2)]
    V = np.linalg.qr(np.random.default_rng(5).standard_normal((4 * 36, 10)))[0]
    lo, hi = anchored.collect_pyramid(images, 2, V, levels=3, max_samples=10**6)
    feats, resid = zeyde.collect(images, 2, overlap=2)
    n0 = feats.shape[0]
    np.testing.assert_allclose(lo[:n0], feats @ V.astype(np.float32), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(hi[:n0], resid)
    assert lo.shape[0] > n0  # the smaller pyramid levels add samples after the first
    lo2, hi2 = anchored.collect_pyramid(images, 2, V, levels=3, max_samples=n0 + 7)
    assert lo2.shape[0] == n0 + 7
    # Same values (a shorter matrix product may round differently in the last bit).
    np.testing.assert_allclose(lo2, lo[: n0 + 7], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(hi2, hi[: n0 + 7])


def test_aplus_regressors_fit_each_atoms_nearest_samples():
    rng = np.random.default_rng(6)
    lo = rng.standard_normal((500, 5))
    lo /= np.linalg.norm(lo, axis=1, keepdims=True)
    hi = rng.standard_normal((500, 4))
    Dl = _unit_atoms(rng, 5, 9)
    P = anchored.aplus_regressors(lo, hi, Dl, neighbourhood=30, lam=0.1, atom_block=4)
    for i in (0, 8):
        idx = np.argsort(((lo - Dl[:, i]) ** 2).sum(1), kind="stable")[:30]
        Lo, Hi = lo[idx].T, hi[idx].T
        expected = Hi @ np.linalg.inv(Lo.T @ Lo + 0.1 * np.eye(30)) @ Lo.T
        np.testing.assert_allclose(P[i], expected, rtol=1e-5, atol=1e-7)


# ----------------------------------------------------------------------------- test time
def test_anchors_and_grouped_application_match_a_per_patch_loop():
    rng = np.random.default_rng(7)
    Dl = _unit_atoms(rng, 6, 30).astype(np.float32)
    P = rng.standard_normal((30, 9, 6)).astype(np.float32)
    y = rng.standard_normal((200, 6)).astype(np.float32)
    anchors = anchored.anchor_atoms(y, Dl, chunk=37)
    np.testing.assert_array_equal(anchors, np.argmax(np.abs(y @ Dl), axis=1))
    got = anchored.apply_regressors(y, anchors, P)
    expected = np.stack([P[a] @ v for a, v in zip(anchors, y)])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def _numpy_path(monkeypatch):
    """Switch the family's compiled passes and threads off: the numpy reference path."""
    from srbench._methods.sparse import zeyde

    monkeypatch.setattr(zeyde, "_compiled", lambda: None)


needs_numba = pytest.mark.skipif(
    not __import__("srbench.jit", fromlist=["available"]).available(),
    reason="numba is not installed",
)


@needs_numba
def test_threaded_anchors_and_grouped_regressors_equal_the_numpy_path(monkeypatch):
    # Several blocks per thread and a short last block; the same BLAS products on the same
    # blocks, so the same bits.
    from srbench._methods.sparse import zeyde

    rng = np.random.default_rng(8)
    Dl = _unit_atoms(rng, 12, 300).astype(np.float32)
    P = rng.standard_normal((300, 16, 12)).astype(np.float32)
    y = rng.standard_normal((5000, 12)).astype(np.float32)
    anchors = anchored.anchor_atoms(y, Dl, chunk=64)
    grouped = anchored.grouped_regressors(y, anchors, P)
    assert isinstance(grouped, zeyde.GroupedRows)
    applied = anchored.apply_regressors(y, anchors, P)
    _numpy_path(monkeypatch)
    expected_anchors = anchored.anchor_atoms(y, Dl, chunk=64)
    np.testing.assert_array_equal(anchors, expected_anchors)
    expected = anchored.apply_regressors(y, anchors, P)
    np.testing.assert_array_equal(applied, expected)
    np.testing.assert_array_equal(grouped.toarray(), expected)
    reference = anchored.grouped_regressors(y, anchors, P)
    np.testing.assert_array_equal(grouped.order, reference.order)
    np.testing.assert_array_equal(grouped.values, reference.values)


# ----------------------------------------------------------------------------- plugins
@pytest.fixture(scope="module")
def tiny_dictionaries(tmp_path_factory):
    """A 48-atom Zeyde dictionary per scale, learned in a second from synthetic images."""
    from safetensors.numpy import save_file

    from srbench._methods.sparse import zeyde

    folder = tmp_path_factory.mktemp("dict")
    images = [natural_image((72, 66), seed=i) for i in range(3)]
    for scale in (2, 3):
        learned = zeyde.learn_dictionaries(images, scale, n_atoms=48, n_iter=2)
        arrays = {k: np.ascontiguousarray(learned[k]) for k in ("V_pca", "Dl", "Dh")}
        save_file(arrays, str(folder / f"x{scale}.safetensors"))
    return folder, images


PLUGINS = {
    "gr": ({}, {"V_pca", "Dl", "Dh", "P"}),
    # ANR ships only the dictionary; its projections are rebuilt on first use.
    "anr": ({"neighborhood": 8}, {"V_pca", "Dl", "Dh"}),
    "aplus": (
        {"neighborhood": 64, "levels": 3, "samples": 3000},
        {"V_pca", "Dl", "Dh", "P"},
    ),
}


@pytest.mark.parametrize("name", sorted(PLUGINS))
def test_anchored_plugin_fit_upscale_and_round_trip(name, tiny_dictionaries, tmp_path):
    from srbench.protocol import degrade, imresize, modcrop
    from srbench.registry import get_registry

    folder, images = tiny_dictionaries
    params, arrays = PLUGINS[name]
    cls = get_registry().get(name)
    method = cls(dictionary_dir=str(folder), **params).fit(images, 2)
    tensors = method.artifacts_[2]
    assert set(tensors) == arrays
    k = tensors["Dl"].shape[0]
    lr = degrade(modcrop(natural_image((60, 54), seed=9), 2), 2)
    out = method.upscale(lr, 2)
    projections = method.models_[2]["P"]
    expected_p = (36, k) if name == "gr" else (48, 36, k)
    assert projections.shape == expected_p and projections.dtype == np.float32
    assert out.shape == (60, 54) and out.dtype == np.float32
    assert np.abs(out - imresize(lr, 2))[2:-2, 2:-2].mean() < 0.05
    if anchored._compiled() is not None:
        # The compiled front and back end and the threaded products give the numpy path's bits.
        with pytest.MonkeyPatch.context() as patch:
            _numpy_path(patch)
            assert method.upscale(lr, 2).tobytes() == out.tobytes()
    method.save(tmp_path)
    again = cls(**params).load(tmp_path)
    for key, value in tensors.items():
        assert again.artifacts_[2][key].tobytes() == value.tobytes()
    assert again.upscale(lr, 2).tobytes() == out.tobytes()


def test_aplus_training_reports_monotonic_progress(tiny_dictionaries):
    from srbench.registry import get_registry

    folder, images = tiny_dictionaries
    method = get_registry().get("aplus")(
        neighborhood=64, levels=2, samples=2000, dictionary_dir=str(folder)
    )
    calls = []
    method.progress_callback = lambda done, total, info: calls.append((done, total))
    method.fit(images, 2)
    done = [d for d, _ in calls]
    assert calls and all(total == 100 for _, total in calls)
    assert done == sorted(done) and done[-1] == 100


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (4, 6)])
def test_images_smaller_than_one_window_upscale_to_bicubic(shape, tiny_dictionaries):
    from srbench.protocol import imresize
    from srbench.registry import get_registry

    folder, images = tiny_dictionaries
    method = get_registry().get("anr")(neighborhood=8, dictionary_dir=str(folder)).fit(images, 2)
    lr = np.linspace(0.2, 0.8, shape[0] * shape[1], dtype=np.float32).reshape(shape)
    np.testing.assert_allclose(method.upscale(lr, 2), np.clip(imresize(lr, 2), 0, 1))
