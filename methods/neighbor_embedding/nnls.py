"""Batched non-negative least squares (Lawson and Hanson's active-set algorithm).

NE+NNLS solves one small NNLS problem per test patch (24 unknowns, some tens of equations),
tens of thousands of them per image. A Python loop over :func:`scipy.optimize.nnls` would
spend its time in call overhead, so this module runs the active-set algorithm on a whole
stack of problems at once: every iteration adds one variable to (or removes some from) the
passive set of every unfinished problem and re-solves all of them through the inverses of
their passive Gram blocks, bordered and downdated as variables enter and leave. Problems
that have converged drop out of the working set.

The problems are given through their normal equations (``G = A^T A``, ``b = A^T y``). That
is what the NE methods have at hand anyway (the Gram matrix of the dictionary atoms and the
correlations used to pick the neighbours).
"""

from __future__ import annotations

import numpy as np

__all__ = ["nnls", "nnls_gram"]


def _drop(inverse: np.ndarray, leaving: np.ndarray) -> np.ndarray:
    """Remove the ``leaving`` variables from each passive inverse (embedded in zeros).

    Each removal is the Schur-complement downdate ``B - B[:, p] B[p, :] / B[p, p]`` with
    row and column ``p`` then zeroed: the inverse of the passive block without ``p``, as a
    fresh inversion would give it, in ``O(k^2)`` per variable.
    """
    leaving = leaving.copy()
    while leaving.any():
        rows = np.flatnonzero(leaving.any(axis=1))
        p = leaving[rows].argmax(axis=1)
        r = np.arange(rows.size)
        block = inverse[rows]
        column = block[r, :, p]
        block -= column[:, :, None] * (block[r, p, :] / column[r, p, None])[:, None, :]
        block[r, p, :] = 0.0
        block[r, :, p] = 0.0
        inverse[rows] = block
        leaving[rows, p] = False
    return inverse


def nnls_gram(
    gram: np.ndarray,
    rhs: np.ndarray,
    *,
    tol: np.ndarray | float | None = None,
    max_iter: int | None = None,
    compiled: bool | None = None,
) -> np.ndarray:
    """Solve ``min ||A x - y||`` subject to ``x >= 0`` for a stack of problems.

    Parameters
    ----------
    gram : ndarray, shape (n, k, k)
        ``A^T A`` of every problem (symmetric positive semi-definite).
    rhs : ndarray, shape (n, k)
        ``A^T y`` of every problem.
    tol : float or ndarray of shape (n,), optional
        Dual-feasibility tolerance. The default follows MATLAB's ``lsqnonneg``
        (``10 * eps * norm(A, 1) * k``), with ``norm(A, 1)`` bounded by the largest column
        norm times ``sqrt(k)`` since only ``A^T A`` is known here.
    max_iter : int, optional
        Cap on the outer iterations (default ``3 * k``, as ``lsqnonneg``).
    compiled : bool, optional
        Solve with the numba kernel (:mod:`.nnls_kernel`: the same decisions, one problem
        at a time, solutions equal to round-off) or with the stacked numpy iterations. The
        default uses the kernel when numba is installed.

    Returns
    -------
    ndarray, shape (n, k), float64
        The non-negative solutions.

    Notes
    -----
    Lawson and Hanson (1974), algorithm NNLS, as in ``lsqnonneg``: move the variable with
    the largest positive dual ``w = b - G x`` into the passive set, solve the unconstrained
    problem on the passive set, and, while that solution has non-positive entries, step
    towards it as far as feasibility allows and move the variables that hit zero back out.

    The passive-set solves use the inverse of the passive Gram block, kept up to date with
    the bordering (Schur complement) formula when a variable enters and downdated when one
    leaves: a few ``O(p k)`` array operations per iteration for the whole batch (``p``
    passive variables, kept in slots, :func:`_lawson_hanson`) instead of a fresh
    ``O(p^3)`` factorisation per problem.
    """
    gram = np.asarray(gram, dtype=np.float64)
    rhs = np.asarray(rhs, dtype=np.float64)
    if (
        gram.ndim != 3
        or rhs.ndim != 2
        or gram.shape[:2] != rhs.shape
        or gram.shape[1] != gram.shape[2]
    ):
        raise ValueError(
            f"expected gram (n, k, k) and rhs (n, k), got {gram.shape} and {rhs.shape}"
        )
    n, k = rhs.shape
    x = np.zeros((n, k))
    if n == 0 or k == 0:
        return x
    if tol is None:
        diagonal = np.clip(np.diagonal(gram, axis1=1, axis2=2), 0.0, None)
        tol = 10.0 * np.finfo(np.float64).eps * np.sqrt(diagonal).max(axis=1) * np.sqrt(k) * k
    tol = np.broadcast_to(np.asarray(tol, dtype=np.float64), (n,)).copy()
    max_iter = 3 * k if max_iter is None else int(max_iter)
    from . import nnls_kernel

    if compiled is None:
        compiled = nnls_kernel.available()
    solve = nnls_kernel.lawson_hanson if compiled else _lawson_hanson
    return solve(gram, rhs, tol, max_iter)


def _lawson_hanson(gram, rhs, tol, max_iter):
    """The active-set iterations of :func:`nnls_gram` on passive sets kept in slots.

    Each unfinished problem keeps its passive variables in ``width`` slots (``width`` the
    largest passive set so far, a dozen or so of the 24 variables in NE+NNLS): their
    indices, values, rows of the Gram matrix and the inverse of their Gram block. An
    iteration then costs ``O(width * k)`` per problem instead of ``O(k^2)``; a variable
    that leaves frees its slot (the inverse is downdated, :func:`_drop`), one that enters
    takes the first free slot (the inverse is bordered). The decisions are those of the
    dense formulation, so the solutions agree to round-off.
    """
    n, k = rhs.shape
    x = np.zeros((n, k))
    # Working through the Gram matrix squares the condition number, so a column closer
    # than ~3e-5 (relative) to the span of the passive ones is treated as dependent.
    tiny = 1e-9
    ids = np.arange(n)
    b, t = rhs, tol
    width = min(k, 4)
    slots = np.zeros((n, width), dtype=np.int64)
    used = np.zeros((n, width), dtype=bool)
    passive = np.zeros((n, k), dtype=bool)  # the same sets, by variable
    xs = np.zeros((n, width))
    b_s = np.zeros((n, width))  # b of the slots' variables
    inv = np.zeros((n, width, width))
    rows_g = np.zeros((n, width, k))

    def finish(done):
        r, s = np.nonzero(used[done])
        x[ids[done][r], slots[done][r, s]] = xs[done][r, s]

    for _ in range(max_iter):
        m = ids.size
        r = np.arange(m)
        dual = b - np.einsum("mw,mwk->mk", xs, rows_g)
        dual[passive] = -np.inf
        best = np.argmax(dual, axis=1)
        # Border the passive inverse with the entering variable j:
        # u = inv(G_PP) g_Pj, s = g_jj - g_Pj . u, the squared distance of column j from
        # the span of the passive columns. A positive dual guarantees s > 0 in exact
        # arithmetic; a column that is numerically in the span ends the problem instead.
        g_pj = np.where(used, rows_g[r, :, best], 0.0)
        u = np.einsum("mij,mj->mi", inv, g_pj)
        g_jj = gram[ids, best, best]
        s = g_jj - np.einsum("mi,mi->m", g_pj, u)
        enter = (dual[r, best] > t) & (s > tiny * g_jj)
        if not enter.all():
            finish(np.flatnonzero(~enter))
            ids, b, t, slots, used, passive, xs, b_s, inv, rows_g, best, u, s = (
                a[enter] for a in (ids, b, t, slots, used, passive, xs, b_s, inv, rows_g,
                                   best, u, s))
            if ids.size == 0:
                return x
            m = ids.size
            r = np.arange(m)
        if used.all(axis=1).any():  # a few more slots at once: widening copies the state
            more = min(4, k - width)
            width += more
            slots = np.pad(slots, ((0, 0), (0, more)))
            used = np.pad(used, ((0, 0), (0, more)))
            xs = np.pad(xs, ((0, 0), (0, more)))
            b_s = np.pad(b_s, ((0, 0), (0, more)))
            inv = np.pad(inv, ((0, 0), (0, more), (0, more)))
            rows_g = np.pad(rows_g, ((0, 0), (0, more), (0, 0)))
            u = np.pad(u, ((0, 0), (0, more)))
        at = np.argmax(~used, axis=1)  # the first free slot (u is zero there)
        v = u / s[:, None]
        inv += u[:, :, None] * v[:, None, :]
        inv[r, at, :] = -v
        inv[r, :, at] = -v
        inv[r, at, at] = 1.0 / s
        slots[r, at] = best
        used[r, at] = True
        passive[r, best] = True
        xs[r, at] = 0.0
        b_s[r, at] = b[r, best]
        rows_g[r, at] = gram[ids, best]
        z = np.einsum("mij,mj->mi", inv, b_s)
        # Inner loop: while some passive entry of the unconstrained solution is not
        # positive, step from x towards z until the first entry reaches zero and drop the
        # entries that did (only the still-infeasible problems take part).
        for _ in range(k + 1):
            bad = used & (z <= 0.0)
            sub = np.flatnonzero(bad.any(axis=1))
            if sub.size == 0:
                break
            xr, zr, br = xs[sub], z[sub], bad[sub]
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(br, xr / (xr - zr), np.inf)
            # 0/0 (a variable just added whose solution is exactly zero): no step; the
            # variable then leaves the passive set below.
            ratio[np.isnan(ratio)] = 0.0
            alpha = ratio.min(axis=1, keepdims=True)
            xr = xr + alpha * (zr - xr)
            leaving = used[sub] & (np.abs(xr) < t[sub, None])
            xs[sub] = np.where(leaving, 0.0, xr)
            inv[sub] = _drop(inv[sub], leaving)
            used[sub] &= ~leaving
            lr, ls = np.nonzero(leaving)
            passive[sub[lr], slots[sub[lr], ls]] = False
            b_s[sub[lr], ls] = 0.0
            z[sub] = np.einsum("mij,mj->mi", inv[sub], b_s[sub])
        xs = np.where(used, z, 0.0)
    finish(np.arange(ids.size))
    return x


def nnls(a: np.ndarray, y: np.ndarray, **kwargs) -> np.ndarray:
    """Batched NNLS from the design matrices: ``min ||a[i] x - y[i]||, x >= 0``.

    Parameters
    ----------
    a : ndarray, shape (n, m, k)
    y : ndarray, shape (n, m)
    **kwargs
        Passed to :func:`nnls_gram`.

    Returns
    -------
    ndarray, shape (n, k)
    """
    a = np.asarray(a, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    gram = np.matmul(a.transpose(0, 2, 1), a)
    rhs = np.matmul(y[:, None, :], a)[:, 0, :]
    if "tol" not in kwargs:
        # lsqnonneg's tolerance with the true 1-norm of each design matrix.
        k = a.shape[-1]
        kwargs["tol"] = 10.0 * np.finfo(np.float64).eps * np.abs(a).sum(axis=1).max(axis=1) * k
    return nnls_gram(gram, rhs, **kwargs)
