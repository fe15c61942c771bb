"""Tests of batched NNLS, LLE weights and the NE+LLE / NE+NNLS plugins (tiny, fast)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import nnls as scipy_nnls
from srbench._methods.neighbor_embedding.embedding import (
    lle_weights,
    ne_residuals,
    nearest_atoms,
)
from srbench._methods.neighbor_embedding.nnls import nnls, nnls_gram

from tests.conftest import natural_image


# ----------------------------------------------------------------------------- NNLS
@pytest.mark.parametrize("m,k", [(30, 24), (12, 6), (40, 3)])
def test_batched_nnls_matches_scipy(m, k):
    rng = np.random.default_rng(m + k)
    a = rng.standard_normal((300, m, k))
    y = rng.standard_normal((300, m))
    x = nnls(a, y)
    expected = np.stack([scipy_nnls(a[i], y[i])[0] for i in range(len(a))])
    assert (x >= 0).all()
    np.testing.assert_allclose(x, expected, atol=1e-9)


def test_batched_nnls_rank_deficient_reaches_scipy_residual():
    # More unknowns than equations (as NE+NNLS with 24 atoms in a lower-dimensional PCA
    # space): the solution is not unique, the residual is.
    rng = np.random.default_rng(7)
    a = rng.standard_normal((300, 15, 24))
    y = rng.standard_normal((300, 15))
    x = nnls(a, y)
    ref = np.stack([scipy_nnls(a[i], y[i])[0] for i in range(len(a))])
    res = np.linalg.norm(np.einsum("nmk,nk->nm", a, x) - y, axis=1)
    res_ref = np.linalg.norm(np.einsum("nmk,nk->nm", a, ref) - y, axis=1)
    assert (x >= 0).all()
    np.testing.assert_allclose(res, res_ref, atol=1e-7)


def test_compiled_nnls_takes_the_numpy_steps():
    # The numba kernel makes the numpy iterations' decisions problem by problem: the same
    # solutions to round-off, with dependent columns, more unknowns than equations, and
    # problems whose feasibility steps drop several variables.
    from srbench._methods.neighbor_embedding import nnls_kernel

    if not nnls_kernel.available():
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(21)
    for m, k in [(30, 24), (15, 24), (40, 3)]:
        a = rng.standard_normal((400, m, k))
        a[:50, :, 1] = a[:50, :, 0]  # dependent columns
        y = rng.standard_normal((400, m))
        gram = np.matmul(a.transpose(0, 2, 1), a)
        rhs = np.matmul(y[:, None, :], a)[:, 0, :]
        numpy_x = nnls_gram(gram, rhs, compiled=False)
        compiled_x = nnls_gram(gram, rhs, compiled=True)
        # More unknowns than equations: a singular Gram matrix amplifies round-off in x
        # (the solution is not unique), not in the fit.
        np.testing.assert_allclose(compiled_x, numpy_x, rtol=0, atol=1e-10 if m >= k else 1e-8)
        fits = [np.einsum("nmk,nk->nm", a, x) for x in (numpy_x, compiled_x)]
        np.testing.assert_allclose(fits[1], fits[0], rtol=0, atol=1e-10)
        assert (numpy_x > 0).sum(axis=1).max() > 1


def test_nnls_gram_edge_cases():
    gram = np.broadcast_to(np.eye(4), (3, 4, 4)).copy()
    # Non-positive correlations: the zero vector is optimal.
    assert not nnls_gram(gram, -np.ones((3, 4))).any()
    # Orthonormal columns: the solution is the clipped right-hand side.
    b = np.array([[1.0, -2.0, 3.0, 0.5]] * 3)
    np.testing.assert_allclose(nnls_gram(gram, b), np.clip(b, 0, None))
    assert nnls_gram(np.zeros((0, 4, 4)), np.zeros((0, 4))).shape == (0, 4)


# ----------------------------------------------------------------------------- LLE
def _naive_lle(D_K, y, reg=1e-4):
    z = D_K - y[:, None]
    c = z.T @ z
    tr = np.trace(c)
    c = c + np.eye(c.shape[0]) * (reg if tr == 0 else reg * tr)
    w = np.linalg.solve(c, np.ones(c.shape[0]))
    return w / w.sum()


def test_lle_weights_sum_to_one_and_match_the_reference_formula():
    rng = np.random.default_rng(3)
    d, k, n = 10, 6, 50
    D = rng.standard_normal((n, d, k))
    y = rng.standard_normal((n, d))
    w = lle_weights(D.transpose(0, 2, 1) @ D, np.einsum("ndk,nd->nk", D, y), (y * y).sum(1))
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    expected = np.stack([_naive_lle(D[i], y[i]) for i in range(n)])
    np.testing.assert_allclose(w, expected, rtol=1e-8, atol=1e-10)


def test_lle_weights_reconstruct_a_point_in_the_affine_span():
    rng = np.random.default_rng(4)
    d, k = 12, 5
    D = rng.standard_normal((d, k))
    truth = rng.random(k)
    truth /= truth.sum()
    y = D @ truth
    w = lle_weights((D.T @ D)[None], (D.T @ y)[None], np.array([y @ y]), reg=1e-12)
    np.testing.assert_allclose(w[0], truth, atol=1e-6)
    np.testing.assert_allclose(D @ w[0], y, atol=1e-6)


def test_lle_zero_trace_uses_absolute_ridge():
    # All neighbours equal to the point: C = 0, ridge 1e-4 I, equal weights.
    D = np.ones((1, 3, 4))
    y = np.ones((1, 3))
    w = lle_weights(D.transpose(0, 2, 1) @ D, np.einsum("ndk,nd->nk", D, y), np.array([3.0]))
    np.testing.assert_allclose(w, 0.25)


# ----------------------------------------------------------------------------- NE
def test_nearest_atoms_are_the_largest_absolute_correlations():
    corr = np.array([[0.1, -0.9, 0.5, 0.3, -0.6], [1.0, 0.0, -0.2, 0.25, 0.3]])
    got = np.sort(nearest_atoms(corr, 2), axis=1)
    np.testing.assert_array_equal(got, [[1, 4], [0, 4]])


def test_nearest_atoms_float32_selection_equals_float64():
    # The partition runs on float32 magnitudes; correlations that only differ beyond
    # float32 precision at the k-th place (a tie there) must still give the float64 set.
    rng = np.random.default_rng(11)
    corr = rng.standard_normal((500, 300))
    corr[::7] *= 0.1
    corr[::7, 5] = 2.0 * (1 + 1e-12)  # equal magnitudes in float32, ordered in float64
    corr[::7, 9] = -2.0
    assert np.float32(corr[0, 5]) == -np.float32(corr[0, 9])
    for k in (1, 24, 299, 300):
        expected = np.sort(np.argsort(-np.abs(corr), axis=1, kind="stable")[:, :k], axis=1)
        np.testing.assert_array_equal(np.sort(nearest_atoms(corr, k), axis=1), expected)


def test_batched_nnls_matches_scipy_on_neighbourhood_like_problems():
    # 24 correlated unit columns in 30-d (a neighbourhood of dictionary atoms): passive sets
    # of a dozen variables, several leaving on the way; the slot-based iterations must land
    # on scipy's solution.
    rng = np.random.default_rng(12)
    base = rng.standard_normal((30, 6))
    a = np.einsum("dj,njk->ndk", base, rng.standard_normal((400, 6, 24))) + 0.5 * (
        rng.standard_normal((400, 30, 24)))
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    y = np.einsum("ndk,nk->nd", a, rng.standard_normal((400, 24))) + 0.1 * (
        rng.standard_normal((400, 30)))
    x = nnls(a, y)
    expected = np.stack([scipy_nnls(a[i], y[i])[0] for i in range(len(a))])
    assert ((x > 0).sum(axis=1) >= 8).mean() > 0.5
    np.testing.assert_allclose(x, expected, atol=1e-8)


@pytest.mark.parametrize("solver", ["lle", "nnls"])
def test_ne_residuals_match_a_per_patch_loop(solver):
    rng = np.random.default_rng(5)
    d, n_atoms, p, k = 8, 40, 9, 6
    Dl = rng.standard_normal((d, n_atoms))
    Dl /= np.linalg.norm(Dl, axis=0)
    Dh = rng.standard_normal((p, n_atoms))
    y = rng.standard_normal((57, d)).astype(np.float32)
    got = ne_residuals(y, Dl, np.ascontiguousarray(Dh.T), Dl.T @ Dl, k, solver, chunk=16)
    for i in range(len(y)):
        yi = y[i].astype(np.float64)
        idx = np.argsort(-np.abs(Dl.T @ yi), kind="stable")[:k]
        if solver == "lle":
            w = _naive_lle(Dl[:, idx], yi)
        else:
            w = scipy_nnls(Dl[:, idx], yi)[0]
        np.testing.assert_allclose(got[i], Dh[:, idx] @ w, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- kernel
def _kernel():
    from srbench._methods.neighbor_embedding import embedding_kernel

    if not embedding_kernel.available():
        pytest.skip("numba is not installed")
    return embedding_kernel


def _dictionary(rng, d=12, n_atoms=300, p=9):
    Dl = rng.standard_normal((d, n_atoms))
    Dl /= np.linalg.norm(Dl, axis=0)
    gram = Dl.T @ Dl  # syrk: exactly symmetric
    assert np.array_equal(gram, gram.T)
    DhT = rng.standard_normal((n_atoms, p)).astype(np.float32)
    return Dl, gram, DhT


@pytest.mark.parametrize("solver", ["lle", "nnls"])
@pytest.mark.parametrize("k", [24, 5, 40])
def test_kernel_matches_the_numpy_steps(solver, k):
    # The compiled path (neighbour search, weights, HR combination per patch) against the
    # stacked numpy steps: the same neighbours and arithmetic; NNLS identical, LLE's own LU
    # rounding differently from LAPACK's by a float32 unit at most, in a few entries. k = 40
    # takes the search's heap path (more neighbours than groups).
    _kernel()
    rng = np.random.default_rng(k)
    Dl, gram, DhT = _dictionary(rng)
    y = rng.standard_normal((700, Dl.shape[0])).astype(np.float32)
    ref = ne_residuals(y, Dl, DhT, gram, k, solver, chunk=256, compiled=False)
    for symmetric in (False, True):
        got = ne_residuals(y, Dl, DhT, gram, k, solver, chunk=256, compiled=True,
                           symmetric=symmetric)  # fmt: skip
        if solver == "nnls":
            np.testing.assert_array_equal(got, ref)
        else:
            np.testing.assert_allclose(got, ref, rtol=0, atol=4 * np.spacing(np.abs(ref).max()))
            assert (got == ref).mean() > 0.99


def test_kernel_pieces_keep_the_correlations(monkeypatch):
    # The kernel takes each chunk in pieces, each with its own BLAS product: the same
    # correlations as the chunk's (a one-row piece is merged into the one before, as numpy
    # computes a single row with gemv), so NNLS's outputs stay those of the numpy path.
    kernel = _kernel()
    monkeypatch.setattr(kernel, "ROWS_PER_CALL", 16)
    rng = np.random.default_rng(23)
    Dl, gram, DhT = _dictionary(rng)
    y = rng.standard_normal((97 * 3 + 1, Dl.shape[0])).astype(np.float32)
    for solver in ("nnls", "lle"):
        ref = ne_residuals(y, Dl, DhT, gram, 12, solver, chunk=97, compiled=False)
        got = ne_residuals(y, Dl, DhT, gram, 12, solver, chunk=97, compiled=True)
        if solver == "nnls":
            np.testing.assert_array_equal(got, ref)
        else:
            np.testing.assert_allclose(got, ref, rtol=0, atol=4 * np.spacing(np.abs(ref).max()))


@pytest.mark.parametrize("solver", ["lle", "nnls"])
def test_kernel_leaves_ties_and_nan_to_numpy(solver):
    # Rows whose K-th neighbour is tied (a zero feature: every correlation 0; a duplicated
    # atom at the boundary) or whose feature is not finite take the numpy code's choice:
    # the same output as the numpy path, bit for bit.
    _kernel()
    rng = np.random.default_rng(17)
    Dl, gram, DhT = _dictionary(rng, n_atoms=120)
    Dl[:, 7] = Dl[:, 3]  # a duplicated atom: equal |corr| for atoms 3 and 7
    gram = Dl.T @ Dl
    # Rows where atoms 3 and 7 are the 6th and 7th largest: a tie at the 6th neighbour.
    y = rng.standard_normal((20000, Dl.shape[0])).astype(np.float32)
    size = np.abs(y.astype(np.float64) @ Dl)
    assert np.array_equal(size[:, 3], size[:, 7])
    tied = np.flatnonzero(np.sum(size > size[:, 3:4], axis=1) == 5)[:40]
    assert len(tied) > 10
    y = np.concatenate([y[tied], y[:60]])
    tied = np.arange(len(tied))
    y[-20::4] = 0.0
    y[-3, 2] = np.nan
    ref = ne_residuals(y, Dl, DhT, gram, 6, solver, compiled=False)
    got = ne_residuals(y, Dl, DhT, gram, 6, solver, compiled=True, symmetric=True)
    np.testing.assert_array_equal(got[tied], ref[tied])
    np.testing.assert_array_equal(got[-20::4], ref[-20::4])
    np.testing.assert_array_equal(got[-3], ref[-3])
    if solver == "nnls":
        np.testing.assert_array_equal(got, ref)


def test_kernel_neighbours_are_nearest_atoms():
    kernel = _kernel()
    rng = np.random.default_rng(8)
    for n_atoms, k in [(1024, 24), (1024, 32), (1024, 33), (20, 6), (31, 31), (64, 1)]:
        corr = rng.standard_normal((200, n_atoms)) * rng.random((200, 1)) ** 4
        got = np.empty((200, k), dtype=np.int64)
        heap, idx = np.empty(k), np.empty(k, dtype=np.int64)
        top, total = np.empty(kernel._GROUPS), np.empty(kernel._GROUPS)
        rank = np.empty(max(kernel._GROUPS, 4 * k), dtype=np.int64)
        cand, size = np.empty(n_atoms + 1, dtype=np.int64), np.empty(n_atoms + 1)
        for i in range(200):
            assert kernel.select(corr[i], k, idx, top, total, rank, cand, size, heap)
            got[i] = idx
        np.testing.assert_array_equal(got, nearest_atoms(corr, k))
    # A tie at the k-th magnitude is reported, not resolved (heap and group paths).
    for n_atoms in (5, 1024):
        c = np.zeros(n_atoms)
        c[:5] = [0.5, -0.9, -0.5, 0.1, 0.2]
        for k, determined in [(2, False), (3, True)]:
            idx = np.empty(k, dtype=np.int64)
            args = (np.empty(kernel._GROUPS), np.empty(kernel._GROUPS),
                    np.empty(max(kernel._GROUPS, 4 * k), np.int64), np.empty(n_atoms + 1, np.int64),
                    np.empty(n_atoms + 1), np.empty(k))  # fmt: skip
            assert kernel.select(c, k, idx, *args) == determined
            if determined:
                np.testing.assert_array_equal(idx, [0, 1, 2])


def test_kernel_preload_covers_the_methods_calls():
    # preload (for the pool's zygote) loads the kernel for the argument types the methods
    # pass, without running it: a method's call then compiles nothing more.
    kernel = _kernel()
    kernel.preload()
    known = set(kernel._embed_rows.signatures)
    rng = np.random.default_rng(2)
    Dl, gram, DhT = _dictionary(rng)
    y = rng.standard_normal((40, Dl.shape[0])).astype(np.float32)
    for solver in ("lle", "nnls"):
        ne_residuals(y, Dl, DhT, gram, 24, solver, compiled=True, symmetric=True)
    assert set(kernel._embed_rows.signatures) == known


def test_kernel_sums_and_solves_in_numpy_and_lapack_order():
    kernel = _kernel()
    rng = np.random.default_rng(9)
    # numpy's pairwise sum (np.add.reduce), bit for bit, below and above 8 terms.
    for n in (1, 5, 8, 24, 37, 128):
        a = rng.standard_normal(n) * np.exp(rng.standard_normal(n) * 5)
        assert kernel.pairwise_sum(a, n) == np.add.reduce(a)
    # The LU solve against LAPACK's, to round-off, on LLE-like systems; a zero pivot fails.
    for k in (1, 6, 24):
        z = rng.standard_normal((30, k))
        c = z.T @ z
        c += 1e-4 * np.trace(c) * np.eye(k)
        width = (k + 7) // 8 * 8
        at = np.zeros((k, width))
        at[:, :k] = c.T
        w = np.empty(k)
        assert kernel.lu_solve_ones(at, k, w, np.empty(width))
        np.testing.assert_allclose(w, np.linalg.solve(c, np.ones(k)), rtol=1e-9)
    at = np.zeros((2, 8))
    assert not kernel.lu_solve_ones(at, 2, np.empty(2), np.empty(8))


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


@pytest.mark.parametrize("name", ["ne_lle", "ne_nnls"])
def test_ne_plugin_fit_upscale_and_round_trip(name, tiny_dictionaries, tmp_path):
    from srbench.protocol import degrade, modcrop
    from srbench.registry import get_registry

    folder, images = tiny_dictionaries
    cls = get_registry().get(name)
    method = cls(neighbors=8, dictionary_dir=str(folder)).fit(images, 3)
    assert set(method.artifacts_[3]) == {"V_pca", "Dl", "Dh"}
    lr = degrade(modcrop(natural_image((60, 54), seed=9), 3), 3)
    out = method.upscale(lr, 3)
    assert out.shape == (60, 54) and out.dtype == np.float32
    method.save(tmp_path)
    again = cls(neighbors=8).load(tmp_path)
    for key, value in method.artifacts_[3].items():
        assert again.artifacts_[3][key].tobytes() == value.tobytes()
    assert again.upscale(lr, 3).tobytes() == out.tobytes()
    # The output stays close to bicubic: the dictionary adds detail, not a new image.
    from srbench.protocol import imresize

    assert np.abs(out - imresize(lr, 3))[3:-3, 3:-3].mean() < 0.05
