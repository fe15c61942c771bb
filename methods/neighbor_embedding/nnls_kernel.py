"""NE+NNLS's batched Lawson-Hanson solver, compiled: one problem at a time, over the cores.

:func:`srbench._methods.neighbor_embedding.nnls._lawson_hanson` runs tens of thousands of
24-variable problems as stacked arrays; each iteration then moves every unfinished problem's
whole state through temporaries. Here each problem runs its own iterations with the same
decisions: the entering variable of largest dual (first on ties), the bordered passive
inverse, the dependence test, the inner feasibility steps, and the Schur downdates of leaving
variables lowest slot first, so the solutions agree with the numpy code to round-off. The
numpy code stays the reference and the fallback without numba.
"""

from __future__ import annotations

import numpy as np

from srbench.jit import (
    available,
    jit,
    limit_threads,
    prange,
    slot_border,
    slot_drop,
    slot_projection,
)

__all__ = ["available", "lawson_hanson", "warm_up"]

# The numpy code's threshold for a column numerically in the span of the passive ones.
_TINY = 1e-9


def lawson_hanson(gram: np.ndarray, rhs: np.ndarray, tol: np.ndarray, max_iter: int) -> np.ndarray:
    """Same contract as :func:`srbench._methods.neighbor_embedding.nnls._lawson_hanson`."""
    limit_threads()
    n, k = rhs.shape
    x = np.zeros((n, k))
    _solve_all(np.ascontiguousarray(gram, dtype=np.float64),
               np.ascontiguousarray(rhs, dtype=np.float64),
               np.ascontiguousarray(tol, dtype=np.float64), int(max_iter), x)  # fmt: skip
    return x


def warm_up() -> None:
    """Compile (or load from numba's cache) now rather than in the first timed call."""
    if available():
        lawson_hanson(np.eye(2)[None], np.ones((1, 2)), np.full(1, 1e-12), 6)


@jit()
def _solve_one(gram, b, t, max_iter, x):
    k = b.size
    slots = np.zeros(k, np.int64)
    used = np.zeros(k, np.bool_)
    passive = np.zeros(k, np.bool_)
    xs = np.zeros(k)
    b_s = np.zeros(k)
    inv = np.zeros((k, k))
    rows_g = np.zeros((k, k))
    dual = np.empty(k)
    g_pj = np.empty(k)
    u = np.empty(k)
    z = np.zeros(k)
    xr = np.empty(k)
    scratch = np.empty(k)
    width = 0
    for _ in range(max_iter):
        for c in range(k):
            dual[c] = b[c]
        for s in range(width):
            if xs[s] != 0.0:
                for c in range(k):
                    dual[c] -= xs[s] * rows_g[s, c]
        best = -1
        for c in range(k):
            if not passive[c] and (best < 0 or dual[c] > dual[best]):
                best = c
        if best < 0:  # every variable passive: nothing can enter
            break
        # Border the passive inverse with the entering variable (see the numpy code).
        for s in range(width):
            g_pj[s] = rows_g[s, best] if used[s] else 0.0
        g_jj = gram[best, best]
        schur = g_jj - slot_projection(inv, g_pj, width, u)
        if not (dual[best] > t and schur > _TINY * g_jj):
            break
        at, width = slot_border(inv, used, u, schur, width)
        slots[at] = best
        passive[best] = True
        xs[at] = 0.0
        b_s[at] = b[best]
        for c in range(k):
            rows_g[at, c] = gram[best, c]
        for s in range(width):
            acc = 0.0
            for q in range(width):
                acc += inv[s, q] * b_s[q]
            z[s] = acc
        # Step towards the unconstrained solution while some passive entry is not positive.
        for _ in range(k + 1):
            alpha = np.inf
            any_bad = False
            for s in range(width):
                if used[s] and z[s] <= 0.0:
                    any_bad = True
                    ratio = xs[s] / (xs[s] - z[s])
                    if np.isnan(ratio):
                        ratio = 0.0  # a variable just added with a zero solution: no step
                    alpha = min(alpha, ratio)
            if not any_bad:
                break
            for s in range(width):
                xr[s] = xs[s] + alpha * (z[s] - xs[s])
            for s in range(width):
                leaving = used[s] and abs(xr[s]) < t
                xs[s] = 0.0 if leaving else xr[s]
                if leaving:
                    slot_drop(inv, used, s, width, scratch)
                    passive[slots[s]] = False
                    b_s[s] = 0.0
            for s in range(width):
                acc = 0.0
                for q in range(width):
                    acc += inv[s, q] * b_s[q]
                z[s] = acc
        for s in range(width):
            xs[s] = z[s] if used[s] else 0.0
    for s in range(width):
        if used[s]:
            x[slots[s]] = xs[s]


@jit(parallel=True)
def _solve_all(gram, rhs, tol, max_iter, x):
    for i in prange(rhs.shape[0]):
        _solve_one(gram[i], rhs[i], tol[i], max_iter, x[i])
