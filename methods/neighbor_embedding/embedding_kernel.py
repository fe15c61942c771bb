"""Neighbour embedding per patch, compiled: neighbour search, weights and HR combination.

:func:`srbench._methods.neighbor_embedding.embedding.ne_residuals` works on stacks: a
partition of float32 magnitudes, masks and ``nonzero`` for the neighbours, gathers of
``(n, K, K)`` Gram blocks, a batched LAPACK solve, a sparse product with the HR atoms. Each of
those passes moves whole-chunk temporaries through memory for a few dozen flops per element.
Here each patch is done start to finish, its data in L1, one piece of a few hundred patches
per call: the caller computes the piece's correlations with the dictionary (numpy's BLAS
product, the same numbers) just before, so they are still in cache, and shares the pieces
out to its threads (the kernel itself is serial: no OpenMP team to spin against BLAS's
threads, or to keep the process from forking workers that run kernels).

The arithmetic is the numpy code's wherever numpy's order is known, so the outputs are those
of the numpy path (which stays the reference and the fallback without numba):

- the neighbours: the ``K`` atoms of largest float64 ``|corr|``, in increasing atom order (as
  ``nearest_atoms`` returns them). A row where the ``K``-th largest magnitude is tied with a
  non-neighbour (``nearest_atoms`` then takes ``np.argpartition``'s choice) is left to the
  numpy code: the kernel flags it and writes nothing;
- LLE: ``C = ((G - c 1') - 1 c') + ||y||^2`` element by element, the trace and the sum of the
  weights summed as numpy's pairwise sum does (eight interleaved partial sums), the ridge, the
  normalising division. The ``K x K`` solve is LU with partial pivoting in the order of
  reference LAPACK's unblocked ``dgetf2`` and ``dgetrs`` (right-looking rank-1 updates, the
  column scaled by the pivot's reciprocal, column-oriented triangular solves), on the matrix
  stored by columns as LAPACK has it; numpy's ``solve`` calls OpenBLAS, whose LU (blocked,
  with its own kernels, chosen per CPU) rounds differently, so the weights agree to
  round-off (the HR patches, rounded to float32, differ by a unit in about 1 entry in 1e5;
  the images on held-out T91 images not at all). A zero pivot (a singular system) is
  flagged and left to numpy, which raises as before;
- NNLS: the ``nnls_gram`` defaults (tolerance, ``3 K`` iterations) and the compiled
  Lawson-Hanson problem of :mod:`.nnls_kernel`, the same numbers;
- the HR patch: ``sum_j w_j Dh_j`` accumulated in float64 in the order of scipy's
  ``csr_matvecs`` (neighbours in increasing atom order; a zero weight adds nothing), rounded
  to float32.
"""

from __future__ import annotations

import numpy as np

from srbench.jit import available, jit
from srbench.jit import preload as preload_kernel

from .nnls_kernel import _solve_one

__all__ = ["ROWS_PER_CALL", "available", "embed", "preload", "warm_up"]

#: Patches per call: their correlations (2 MB) stay in cache from the BLAS product to the
#: kernel (one thread, x3: 256 rows 14% faster than 2048).
ROWS_PER_CALL = 256
#: Strided groups of atoms whose maxima bound the neighbours' magnitudes from below (the
#: neighbour search's fast path takes up to this many neighbours).
_GROUPS = 32
#: numpy's pairwise sum is exactly the eight-accumulator loop below up to this many terms.
MAX_K = 128
#: ``dlamch('S')``: below it ``dgetf2`` divides by the pivot instead of scaling.
_SFMIN = float(np.finfo(np.float64).tiny)
_EPS = float(np.finfo(np.float64).eps)


def embed(
    corr: np.ndarray,
    gram: np.ndarray,
    DhT: np.ndarray,
    sq_norm: np.ndarray | None,
    k: int,
    solver: str,
    out: np.ndarray,
    *,
    reg: float = 1e-4,
    symmetric: bool = False,
) -> np.ndarray:
    """Residual patches of a chunk into ``out``; returns the rows left to the numpy code.

    Parameters
    ----------
    corr : ndarray, shape (m, n_atoms), float64
        ``y Dl`` of the chunk.
    gram : ndarray, shape (n_atoms, n_atoms), float64
    DhT : ndarray, shape (n_atoms, p)
    sq_norm : ndarray, shape (m,), float64, or None
        ``||y||^2`` per patch (LLE only).
    k : int
        Neighbours per patch, at most ``min(n_atoms, MAX_K)``.
    solver : {"lle", "nnls"}
    out : ndarray, shape (m, p), float32
        Written for every row not returned.
    reg : float
        LLE's ridge relative to the trace.
    symmetric : bool
        ``gram`` is exactly symmetric (as numpy's ``Dl.T @ Dl`` is, computed with ``syrk``):
        each neighbour pair's entry is read once, from one triangle.

    Returns
    -------
    ndarray of bool, shape (m,)
        Rows the kernel did not do (a tie at the ``K``-th neighbour, or a singular LLE
        system): the caller runs the numpy code on them.
    """
    m, n_atoms = corr.shape
    if not 0 < k <= min(n_atoms, MAX_K):
        raise ValueError(f"the kernel takes 1 to {min(n_atoms, MAX_K)} neighbours, not {k}")
    lle = solver == "lle"
    if lle and sq_norm is None:
        raise ValueError("LLE needs the squared norms of the features")
    if not lle:
        sq_norm = np.zeros(m)
    left = np.zeros(m, dtype=np.bool_)
    _embed_rows(
        np.ascontiguousarray(corr, dtype=np.float64),
        np.ascontiguousarray(gram, dtype=np.float64),
        np.ascontiguousarray(DhT),
        np.ascontiguousarray(sq_norm, dtype=np.float64),
        int(k),
        bool(lle),
        float(reg),
        bool(symmetric),
        out,
        left,
    )
    return left


def warm_up() -> None:
    """Compile (or load from numba's cache) now rather than in the first timed call: the
    float32 atoms and output of the methods, both solvers."""
    if not available():
        return
    rng = np.random.default_rng(0)
    dl = rng.standard_normal((4, 6))
    corr = rng.standard_normal((3, 4)) @ dl
    dht = np.ones((6, 2), dtype=np.float32)
    for solver in ("lle", "nnls"):
        out = np.empty((3, 2), dtype=np.float32)
        embed(corr, dl.T @ dl, dht, np.ones(3), 2, solver, out, symmetric=True)


def preload() -> None:
    """Load the kernel for the methods' argument types without running it (see
    :func:`srbench.jit.preload`; it is serial, so a process that loaded it may still fork
    workers that run kernels)."""
    if not available():
        return
    corr = np.zeros((1, 2))
    dht = np.zeros((2, 1), dtype=np.float32)
    out = np.zeros((1, 1), dtype=np.float32)
    left = np.zeros(1, dtype=np.bool_)
    preload_kernel(_embed_rows, corr, np.eye(2), dht, np.zeros(1), 1, True, 1e-4, True, out, left)


@jit()
def pairwise_sum(a, n):
    """``np.add.reduce`` of ``a[:n]`` (``n <= 128``) in numpy's order: a plain loop below 8
    terms, else eight interleaved partial sums combined as a tree, then the remainder."""
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[0], a[1], a[2], a[3]
    r4, r5, r6, r7 = a[4], a[5], a[6], a[7]
    i = 8
    stop = n - n % 8
    while i < stop:
        r0 += a[i]
        r1 += a[i + 1]
        r2 += a[i + 2]
        r3 += a[i + 3]
        r4 += a[i + 4]
        r5 += a[i + 5]
        r6 += a[i + 6]
        r7 += a[i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[i]
        i += 1
    return res


@jit()
def kth_largest(values, n, k, heap):
    """The ``k``-th largest of ``values[:n]`` (counted with multiplicity), by a min-heap of
    the ``k`` largest so far."""
    for i in range(k):
        v = values[i]
        j = i
        while j > 0:
            parent = (j - 1) // 2
            if heap[parent] <= v:
                break
            heap[j] = heap[parent]
            j = parent
        heap[j] = v
    for i in range(k, n):
        v = values[i]
        if v > heap[0]:
            j = 0
            while True:
                child = 2 * j + 1
                if child >= k:
                    break
                if child + 1 < k and heap[child + 1] < heap[child]:
                    child += 1
                if heap[child] >= v:
                    break
                heap[j] = heap[child]
                j = child
            heap[j] = v
    return heap[0]


@jit()
def count_greater(values, n, rank):
    """``rank[q]``: how many of ``values[:n]`` are larger than ``values[q]``."""
    for q in range(n):
        v = values[q]
        r = 0
        for p in range(n):
            r += 1 if values[p] > v else 0
        rank[q] = r


@jit()
def select(c, k, idx, top, total, rank, cand, size, heap):
    """The ``k`` atoms of largest ``|c|`` into ``idx`` in increasing order; False if the
    magnitudes do not determine them (a tie at the ``k``-th, or a NaN or infinity).

    Without a partition: the atoms are split into ``_GROUPS`` strided groups (a compile-time
    count: the loops over them are unrolled and vectorised), whose maxima come out of one
    vectorised pass; the ``k``-th largest group maximum bounds the ``k``-th largest magnitude
    from below (the ``k`` largest maxima are ``k`` distinct atoms), and only the few atoms at
    or above it (about 40 of 1024 for 24 neighbours) are candidates. Among them, an atom is a
    neighbour if fewer than ``k`` are larger: the atoms of magnitude at least the ``k``-th
    largest, exactly ``k`` of them unless there is a tie there. More neighbours than groups,
    or fewer atoms, take a heap over all the magnitudes instead.
    """
    n = c.size
    if k > _GROUPS or n < _GROUPS:
        for i in range(n):
            size[i] = abs(c[i])
            if not size[i] < np.inf:
                return False
        threshold = kth_largest(size, n, k, heap)
        count = 0
        for i in range(n):
            if size[i] >= threshold:
                if count < k:
                    idx[count] = i
                count += 1
        return count == k
    g = _GROUPS
    for j in range(g):
        v = abs(c[j])
        top[j] = v
        total[j] = v
    stop = n - n % g
    for base in range(g, stop, g):
        for j in range(g):
            v = abs(c[base + j])
            top[j] = max(top[j], v)
            total[j] += v  # NaN or inf shows in the totals
    for i in range(stop, n):
        v = abs(c[i])
        top[i - stop] = max(top[i - stop], v)
        total[i - stop] += v
    finite = 0.0
    for j in range(g):
        finite += total[j] - total[j]  # 0, or NaN if a total is not finite
    if finite != 0.0:
        return False
    # The bound: the smallest of the k largest maxima (those with fewer than k above).
    count_greater(top, g, rank)
    low = np.inf
    for j in range(g):
        if rank[j] < k and top[j] < low:
            low = top[j]
    # Candidates: every atom at or above the bound, in increasing order (written
    # unconditionally, kept by advancing the count), then their magnitudes.
    nc = 0
    for i in range(n):
        cand[nc] = i
        nc += 1 if abs(c[i]) >= low else 0
    for q in range(nc):
        size[q] = abs(c[cand[q]])
    count = 0
    if nc <= 4 * k:
        count_greater(size, nc, rank)
        for q in range(nc):
            if rank[q] < k:
                if count < k:
                    idx[count] = cand[q]
                count += 1
    else:  # many equal magnitudes (a flat patch): no quadratic ranking
        threshold = kth_largest(size, nc, k, heap)
        for q in range(nc):
            if size[q] >= threshold:
                if count < k:
                    idx[count] = cand[q]
                count += 1
    return count == k


@jit()
def lu_solve_ones(at, k, w, m):
    """Solve ``A w = 1`` by LU with partial pivoting in the order of reference LAPACK's
    ``dgetf2`` + ``dgetrs``, in place; False on a zero pivot.

    ``at[c, r]`` holds ``A[r, c]`` (column-major, as LAPACK stores it), ``k`` by ``W``, the
    rows beyond ``k`` zero: each column's rank-1 update then runs over the whole padded column
    with the multipliers in ``m`` (zero at and above the pivot, which leaves those entries as
    they are), full-width vector operations instead of ever shorter loops.
    """
    width = at.shape[1]
    for j in range(k):
        cj = at[j]
        p = j
        big = abs(cj[j])
        for i in range(j + 1, k):  # idamax: the first of the largest
            v = abs(cj[i])
            better = v > big
            big = v if better else big
            p = i if better else p
        if cj[p] == 0.0:
            return False
        if p != j:
            for col in range(k):
                t = at[col, j]
                at[col, j] = at[col, p]
                at[col, p] = t
        # The multipliers, as dgetf2 forms them.
        pivot = cj[j]
        if abs(pivot) >= _SFMIN:
            recip = 1.0 / pivot
            for i in range(j + 1, k):
                cj[i] *= recip
        else:
            for i in range(j + 1, k):
                cj[i] /= pivot
        # dger: A[i, c] - l_i u_c below the pivot row (a zero u_c, which dger skips, and a
        # zero multiplier change nothing).
        for i in range(j + 1):
            m[i] = 0.0
        for i in range(j + 1, width):
            m[i] = cj[i]
        for col in range(j + 1, k):
            cc = at[col]
            u = cc[j]
            for i in range(width):
                cc[i] = cc[i] - m[i] * u
    # dgetrs: the row interchanges on the right-hand side (all ones: no change), then
    # dtrsm's column-oriented forward (unit lower) and backward (upper) substitutions.
    for i in range(k):
        w[i] = 1.0
    for col in range(k):
        cc = at[col]
        wc = w[col]
        if wc != 0.0:
            for i in range(col + 1, k):
                w[i] = w[i] - wc * cc[i]
    for col in range(k - 1, -1, -1):
        cc = at[col]
        if w[col] != 0.0:
            wc = w[col] / cc[col]
            w[col] = wc
            for i in range(col):
                w[i] = w[i] - wc * cc[i]
    return True


@jit()
def _embed_one(c, gram, DhT, sq, k, lle, reg, symmetric, out_row, select_scratch, idx, cand,
               rank, at, g, m, w, cb, diag, acc):  # fmt: skip
    top, total, heap, size = select_scratch
    if not select(c, k, idx, top, total, rank, cand, size, heap):
        return False
    for i in range(k):
        cb[i] = c[idx[i]]
    if lle:
        # C stored by columns: at[j, i] = C[i, j] = ((G_ij - c_i) - c_j) + ||y||^2.
        for i in range(k):
            row = gram[idx[i]]
            ci = cb[i]
            if symmetric:
                at[i, i] = ((row[idx[i]] - ci) - ci) + sq
                for j in range(i + 1, k):
                    gij = row[idx[j]]
                    cj = cb[j]
                    at[j, i] = ((gij - ci) - cj) + sq
                    at[i, j] = ((gij - cj) - ci) + sq
            else:
                for j in range(k):
                    at[j, i] = ((row[idx[j]] - ci) - cb[j]) + sq
        for i in range(k):
            diag[i] = at[i, i]
        trace = pairwise_sum(diag, k)
        ridge = reg if trace == 0.0 else reg * trace
        for i in range(k):
            at[i, i] += ridge
        if not lu_solve_ones(at, k, w, m):
            return False
        total_w = pairwise_sum(w, k)
        for i in range(k):
            w[i] = w[i] / total_w
    else:
        for i in range(k):
            row = gram[idx[i]]
            if symmetric:
                g[i, i] = row[idx[i]]
                for j in range(i + 1, k):
                    gij = row[idx[j]]
                    g[i, j] = gij
                    g[j, i] = gij
            else:
                for j in range(k):
                    g[i, j] = row[idx[j]]
        # nnls_gram's defaults: lsqnonneg's tolerance from the largest column norm, 3 K
        # iterations.
        big = 0.0
        for i in range(k):
            d = np.sqrt(max(g[i, i], 0.0))
            big = max(big, d)
        tol = 10.0 * _EPS * big * np.sqrt(float(k)) * k
        for i in range(k):
            w[i] = 0.0
        _solve_one(g, cb, tol, 3 * k, w)
    p = acc.size
    for col in range(p):
        acc[col] = 0.0
    for j in range(k):
        wj = w[j]
        if wj != 0.0:
            atom = DhT[idx[j]]
            for col in range(p):
                acc[col] += wj * atom[col]
    for col in range(p):
        out_row[col] = acc[col]
    return True


@jit()
def _embed_rows(corr, gram, DhT, sq_norm, k, lle, reg, symmetric, out, left):
    """Every row of ``corr`` in turn, in the calling thread (the caller splits the rows over
    its threads: no OpenMP team to spin against BLAS or to stop a fork)."""
    n_atoms = corr.shape[1]
    width = (k + 7) // 8 * 8
    select_scratch = (np.empty(_GROUPS), np.empty(_GROUPS), np.empty(k), np.empty(n_atoms + 1))
    idx = np.empty(k, np.int64)
    cand = np.empty(n_atoms + 1, np.int64)
    rank = np.empty(max(_GROUPS, 4 * k), np.int64)
    at = np.zeros((k, width))
    g = np.empty((k, k))
    multipliers = np.empty(width)
    vectors = np.empty((3, k))  # weights, the neighbours' correlations, C's diagonal
    acc = np.empty(DhT.shape[1])
    for i in range(corr.shape[0]):
        done = _embed_one(corr[i], gram, DhT, sq_norm[i], k, lle, reg, symmetric, out[i],
                          select_scratch, idx, cand, rank, at, g, multipliers, vectors[0],
                          vectors[1], vectors[2], acc)  # fmt: skip
        left[i] = not done
