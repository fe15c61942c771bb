"""Batched non-negative least squares (Lawson and Hanson's active-set algorithm).

NE+NNLS solves one small NNLS problem per test patch (24 unknowns, some tens of equations),
tens of thousands of them per image. A Python loop over :func:`scipy.optimize.nnls` would
spend its time in call overhead, so this module runs the active-set algorithm on a whole
stack of problems at once: every iteration adds one variable to (or removes some from) the
passive set of every unfinished problem and re-solves all of them with one batched
``np.linalg.solve``. Problems that have converged drop out of the working set.

The problems are given through their normal equations (``G = A^T A``, ``b = A^T y``). That
is what the NE methods have at hand anyway (the Gram matrix of the dictionary atoms and the
correlations used to pick the neighbours), and it makes a masked solve a plain square solve.
"""

from __future__ import annotations

import numpy as np

__all__ = ["nnls", "nnls_gram"]


def _masked_inverse(gram: np.ndarray, passive: np.ndarray) -> np.ndarray:
    """Inverse of the passive block of every Gram matrix, embedded in zeros.

    Rows and columns of inactive variables are replaced by the identity so one square
    inversion per problem gives ``inv(G[P, P])`` without gathering variable-size blocks;
    the identity part is then zeroed again.
    """
    both = passive[:, :, None] & passive[:, None, :]
    system = np.where(both, gram, 0.0)
    k = gram.shape[-1]
    diag = np.arange(k)
    system[:, diag, diag] = np.where(passive, gram[:, diag, diag], 1.0)
    try:
        inverse = np.linalg.inv(system)
    except np.linalg.LinAlgError:
        # An exactly singular passive block cannot occur in exact arithmetic (a variable
        # only enters with a positive dual, i.e. from outside the span of the others) but
        # can in floating point; the pseudo-inverse keeps the batch going.
        inverse = np.linalg.pinv(system)
    inverse[~both] = 0.0
    return inverse


def _matvec(matrices: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    return np.matmul(matrices, vectors[..., None])[..., 0]


def nnls_gram(
    gram: np.ndarray,
    rhs: np.ndarray,
    *,
    tol: np.ndarray | float | None = None,
    max_iter: int | None = None,
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
    the bordering (Schur complement) formula when a variable enters: a few ``O(k^2)``
    array operations per iteration for the whole batch instead of a fresh ``O(k^3)``
    factorisation per problem. The rarer removals re-invert the affected blocks.
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

    # Working copies of the unfinished problems. A finished problem is written back to x
    # and frozen (live = False); the copies are compacted only when at least half of them
    # are frozen, since gathering the (n, k, k) stacks costs more than an iteration.
    todo = np.arange(n)
    g, b, t = gram, rhs, tol
    xs = np.zeros((n, k))
    ps = np.zeros((n, k), dtype=bool)
    inv = np.zeros((n, k, k))
    live = np.ones(n, dtype=bool)
    # Working through the Gram matrix squares the condition number, so a column closer
    # than ~3e-5 (relative) to the span of the passive ones is treated as dependent.
    tiny = 1e-9
    for _ in range(max_iter):
        dual = b - _matvec(g, xs)
        candidate = np.where(ps, -np.inf, dual)
        best = np.argmax(candidate, axis=1)
        rows = np.arange(todo.size)
        # Border the passive inverse with the entering variable j:
        # u = inv(G_PP) g_Pj, s = g_jj - g_Pj . u, the squared distance of column j from
        # the span of the passive columns. A positive dual guarantees s > 0 in exact
        # arithmetic; a column that is numerically in the span ends the problem instead.
        column = g[rows, :, best]
        u = _matvec(inv, column)
        g_jj = column[rows, best]
        s = g_jj - np.einsum("ni,ni->n", column, u)
        enter = live & (candidate[rows, best] > t) & (s > tiny * g_jj)
        if not enter.all():
            done = live & ~enter
            x[todo[done]] = xs[done]
            live &= enter
            if not live.any():
                break
            if live.sum() * 2 <= live.size:
                todo, g, b, t, xs, ps, inv, best, u, s, live = (
                    a[live] for a in (todo, g, b, t, xs, ps, inv, best, u, s, live)
                )
                rows = np.arange(todo.size)
            # Frozen problems take a no-op step.
            s = np.where(live, s, 1.0)
            u = np.where(live[:, None], u, 0.0)
        upd = u / s[:, None]
        inv += u[:, :, None] * upd[:, None, :]
        inv[rows, :, best] = np.where(live[:, None], -upd, inv[rows, :, best])
        inv[rows, best, :] = np.where(live[:, None], -upd, inv[rows, best, :])
        inv[rows, best, best] = np.where(live, 1.0 / s, inv[rows, best, best])
        ps[rows, best] |= live
        z = _matvec(inv, b)
        # Inner loop: while some passive entry of the unconstrained solution is not
        # positive, step from x towards z until the first entry reaches zero and drop the
        # entries that did (only the still-infeasible problems take part).
        for _ in range(k + 1):
            bad = ps & (z <= 0.0) & live[:, None]
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
            pr = ps[sub] & ~(np.abs(xr) < t[sub, None])
            xs[sub] = xr
            ps[sub] = pr
            inv[sub] = _masked_inverse(g[sub], pr)
            z[sub] = _matvec(inv[sub], b[sub])
        xs = np.where(live[:, None], np.where(ps, z, 0.0), xs)
    else:
        x[todo[live]] = xs[live]
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
