"""Neighbour embedding on Zeyde's dictionaries: NE+LLE and NE+NNLS.

As run inside Timofte's ANR/A+ framework (METHODS.md section 4): the "training set" the
neighbours come from is the 1024 atoms of the low-resolution dictionary, not raw patches.
For a PCA feature ``y`` the neighbours are the K atoms of largest ``|d_j^T y|``; weights
found in the low-resolution space are applied to the matching high-resolution atoms.

Everything needed per patch (the neighbours' Gram matrix and their correlations with the
feature) is a sub-matrix of the dictionary's Gram matrix ``Dl^T Dl`` or of the correlations
``Dl^T y`` already computed for the neighbour search, so each batch of patches is solved
with gathers and batched solves, without a loop over patches. With numba, each patch is
instead done start to finish by the compiled kernel of :mod:`.embedding_kernel` (the same
neighbours and arithmetic); these numpy steps stay the reference and the fallback.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from .nnls import nnls_gram

__all__ = ["lle_weights", "ne_residuals", "nearest_atoms"]

#: Patches processed together: bounds the (chunk, K, K) and (chunk, K, p) stacks.
_CHUNK = 2048


def nearest_atoms(corr: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` atoms of largest ``|corr|`` per row, in increasing order of atom index.

    Neither LLE nor NNLS depends on the order of the neighbours, so a partition is
    enough. It is done on float32 magnitudes (half the memory traffic), which select the
    same set as float64 wherever exactly ``k`` of them reach the float32 ``k``-th largest
    (rounding to float32 keeps the order, so a float64 neighbour cannot fall below a
    non-neighbour); rows with a tie there are partitioned in float64. Equal float64
    correlations, the only case where the choice is arbitrary, have probability zero for
    real features.

    Parameters
    ----------
    corr : ndarray, shape (n, n_atoms)
    k : int

    Returns
    -------
    ndarray of int64, shape (n, k)
    """
    n, n_atoms = corr.shape
    k = min(int(k), n_atoms)
    if k == n_atoms:
        return np.broadcast_to(np.arange(k), corr.shape).copy()
    size = corr.astype(np.float32)  # |round(x)| = round(|x|)
    np.abs(size, out=size)
    threshold = np.partition(size, n_atoms - k, axis=1)[:, n_atoms - k]
    mask = size >= threshold[:, None]
    plain = np.count_nonzero(mask, axis=1) == k
    out = np.empty((n, k), dtype=np.int64)
    out[plain] = np.nonzero(mask[plain])[1].reshape(-1, k)
    if not plain.all():
        tied = np.flatnonzero(~plain)
        out[tied] = np.sort(np.argpartition(-np.abs(corr[tied]), k - 1, axis=1)[:, :k],
                            axis=1)
    return out


def lle_weights(
    gram: np.ndarray, corr: np.ndarray, sq_norm: np.ndarray, reg: float = 1e-4
) -> np.ndarray:
    """Locally linear embedding weights of a stack of points on their neighbours.

    With Z = D_K - y 1^T (neighbours shifted to the point) and C = Z^T Z, solve
    ``(C + r I) w = 1`` with ``r = reg * trace(C)`` (``reg`` if the trace is 0) and
    normalise ``w`` to sum to one (Chang et al. 2004, as in ``scaleup_NE_LLE.m``).

    C is formed from inner products, ``C = G - c 1^T - 1 c^T + ||y||^2``, with ``G``
    the neighbours' Gram matrix and ``c = D_K^T y``.

    Parameters
    ----------
    gram : ndarray, shape (n, K, K)
        ``D_K^T D_K`` per point.
    corr : ndarray, shape (n, K)
        ``D_K^T y`` per point.
    sq_norm : ndarray, shape (n,)
        ``||y||^2`` per point.
    reg : float
        Ridge relative to the trace.

    Returns
    -------
    ndarray, shape (n, K), float64
        Weights summing to one.
    """
    gram = np.asarray(gram, dtype=np.float64)
    corr = np.asarray(corr, dtype=np.float64)
    sq_norm = np.asarray(sq_norm, dtype=np.float64)
    k = gram.shape[-1]
    # In place, in the order of gram - c 1' - 1 c' + ||y||^2 (the same rounding).
    cov = gram - corr[:, :, None]
    cov -= corr[:, None, :]
    cov += sq_norm[:, None, None]
    trace = np.trace(cov, axis1=1, axis2=2)
    ridge = np.where(trace == 0.0, reg, reg * trace)
    diag = np.arange(k)
    cov[:, diag, diag] += ridge[:, None]
    w = np.linalg.solve(cov, np.ones((gram.shape[0], k, 1)))[..., 0]
    return w / w.sum(axis=1, keepdims=True)


def ne_residuals(
    y: np.ndarray,
    Dl: np.ndarray,
    DhT: np.ndarray,
    gram: np.ndarray,
    k: int,
    solver: str,
    *,
    chunk: int = _CHUNK,
    compiled: bool | None = None,
    symmetric: bool = False,
) -> np.ndarray:
    """Residual HR patches by neighbour embedding on the dictionary atoms.

    Parameters
    ----------
    y : ndarray, shape (n, d)
        PCA features.
    Dl : ndarray, shape (d, n_atoms)
        Low-resolution atoms (unit norm).
    DhT : ndarray, shape (n_atoms, p)
        High-resolution atoms, one per row.
    gram : ndarray, shape (n_atoms, n_atoms)
        ``Dl^T Dl`` in float64.
    k : int
        Neighbours per patch.
    solver : {"lle", "nnls"}
        LLE weights (sum to one, 1e-4 trace ridge) or non-negative least squares
        (``lsqnonneg(D_K, y)``, no sum-to-one constraint).
    compiled : bool, optional
        Run each patch's search, weights and HR combination in the numba kernel
        (:mod:`.embedding_kernel`: the same neighbours and arithmetic, LLE's small solves
        rounded differently from LAPACK's, so equal to round-off) or as the stacked numpy
        steps below. The default uses the kernel when numba is installed.
    symmetric : bool
        ``gram`` is exactly symmetric (``Dl.T @ Dl`` from numpy is: ``syrk`` fills one
        triangle and copies it): the kernel then reads each entry once.

    Returns
    -------
    ndarray, shape (n, p), float32
    """
    if solver not in ("lle", "nnls"):
        raise ValueError(f"unknown neighbour-embedding solver {solver!r}")
    from . import embedding_kernel

    Dl = np.asarray(Dl, dtype=np.float64)
    n, n_atoms = y.shape[0], Dl.shape[1]
    if compiled is None:
        compiled = embedding_kernel.available()
    compiled = compiled and 0 < min(int(k), n_atoms) <= embedding_kernel.MAX_K
    out = np.empty((n, DhT.shape[1]), dtype=np.float32)
    if not compiled:
        for start in range(0, n, chunk):
            yc = np.asarray(y[start : start + chunk], dtype=np.float64)
            corr = yc @ Dl  # (m, n_atoms), double as the reference code
            sq_norm = np.einsum("nd,nd->n", yc, yc) if solver == "lle" else None
            out[start : start + chunk] = _embed_rows(corr, sq_norm, DhT, gram, k, solver)
        return out
    # The kernel takes each chunk in pieces of a few hundred rows, whose correlations (2 MB)
    # are still in cache when it reads them; the pieces are shared out to threads, each
    # making its own BLAS products with BLAS at one thread (OpenBLAS's threads would spin
    # against the kernel's on every piece). A piece's BLAS product gives its rows the
    # numbers of the whole chunk's: OpenBLAS accumulates every entry over the features in
    # the same order whatever the rows around it and however it splits rows over threads,
    # except for a single row, which numpy hands to gemv; so a piece never has one row unless
    # its chunk has (and then the chunk's product was a gemv too).
    from srbench.threads import blas_in_threads, in_threads

    size = embedding_kernel.ROWS_PER_CALL
    pieces = []
    sq_norm = np.empty(n) if solver == "lle" else None
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        if sq_norm is not None:  # per chunk, as the numpy steps
            yc = np.asarray(y[start:stop], dtype=np.float64)
            sq_norm[start:stop] = np.einsum("nd,nd->n", yc, yc)
        bounds = list(range(start, stop, size)) + [stop]
        if len(bounds) > 2 and bounds[-1] - bounds[-2] == 1:
            del bounds[-2]
        pieces += pairwise(bounds)
    kk = min(int(k), n_atoms)
    left: list[list] = []

    def work(thread: int) -> None:
        buffer = np.empty((min(size + 1, n), n_atoms))
        for a, b in pieces[thread::threads]:
            corr = np.matmul(np.asarray(y[a:b], dtype=np.float64), Dl, out=buffer[: b - a])
            sq = None if sq_norm is None else sq_norm[a:b]
            undone = embedding_kernel.embed(corr, gram, DhT, sq, kk, solver, out[a:b],
                                            symmetric=symmetric)  # fmt: skip
            if undone.any():  # done below, in this thread: numpy's choice of atoms
                pick = np.flatnonzero(undone)
                left.append((a + pick, corr[pick].copy()))

    with blas_in_threads() as threads:
        threads = max(1, min(threads, len(pieces)))
        in_threads(work, threads)
    for rows, corr in left:
        out[rows] = _embed_rows(
            corr, None if sq_norm is None else sq_norm[rows], DhT, gram, k, solver
        )
    return out


def _embed_rows(corr, sq_norm, DhT, gram, k, solver):
    """The numpy steps of :func:`ne_residuals` for one chunk; float64 rows."""
    from scipy.sparse import csr_matrix

    n_atoms = gram.shape[0]
    idx = nearest_atoms(corr, k)
    m, kk = idx.shape
    # Gathers through flat indices (a single take, not a 2-D fancy index).
    sub_gram = np.take(gram.reshape(-1), idx[:, :, None] * n_atoms + idx[:, None, :])
    sub_corr = np.take_along_axis(corr, idx, axis=1)
    if solver == "lle":
        w = lle_weights(sub_gram, sub_corr, sq_norm)
    else:
        w = nnls_gram(sub_gram, sub_corr)
    # sum_j w_j Dh_j as a sparse product: no (m, K, p) stack of gathered atoms.
    weights = csr_matrix((w.ravel(), idx.ravel(), np.arange(0, m * kk + 1, kk)),
                         shape=(m, n_atoms))
    return weights @ DhT
