"""The screened homotopy's inner loop, compiled: one signal at a time instead of stacked arrays.

:func:`srbench._methods.sparse.coding._lars_local` runs the local homotopies of thousands of
patches as stacked numpy arrays. Each step then touches every unfinished patch's whole state
(``n x K`` correlations, ``n x W x W`` inverses) through a dozen temporary arrays, while the
arithmetic per patch is tiny (about a dozen active atoms out of a few dozen candidates).
Compiled with numba, the same steps run per patch in registers and cache, several times
faster, and the patches are split over the available cores.

The steps, tolerances, tie rules, slot order and stopping rules are exactly those of
``_lars_local`` (which stays the reference and the fallback where numba is not installed):
the bordered inverse when atoms join, its Schur downdate when one leaves, the first used slot
standing for the multiplier, atoms tied within ``zero_tol`` joining lowest index first, and
SparseLab's collinearity test. Only the order of a few floating-point sums differs, so the
codes agree to round-off.
"""

from __future__ import annotations

import numpy as np

__all__ = ["available", "lars_local", "warm_up"]

from srbench.jit import (
    available,
    jit,
    limit_threads,
    prange,
    slot_border,
    slot_drop,
    slot_projection,
)


def lars_local(gram, cand, corr, lam, exact, zero_tol, opt_tol, max_steps):
    """Same contract as :func:`srbench._methods.sparse.coding._lars_local`, compiled."""
    limit_threads()
    n, k = corr.shape
    codes = np.zeros((n, k))
    lam_end = np.zeros(n)
    w_lam = np.zeros((n, k))
    w_start = np.zeros((n, k))
    level_start = np.zeros(n)
    unorm = np.zeros(n)
    _kernel(
        np.ascontiguousarray(gram),
        np.ascontiguousarray(cand, dtype=np.int64),
        np.ascontiguousarray(corr, dtype=np.float64),
        float(lam),
        bool(exact),
        float(zero_tol),
        float(opt_tol),
        int(max_steps),
        codes,
        lam_end,
        w_lam,
        w_start,
        level_start,
        unorm,
    )
    out = {"codes": codes, "lam_end": lam_end}
    if not exact:
        out.update(w_lam=w_lam, w_start=w_start, level_start=level_start, unorm=unorm)
    return out


def warm_up() -> None:
    """Compile the kernel now (the first call otherwise pays it: seconds, or a cache load)."""
    if not available():
        return
    gram = np.eye(2)
    lars_local(gram, np.array([[0, 1]]), np.array([[1.0, 0.5]]), 0.1, False, 1e-5, 1e-5, 4)


@jit()
def _grow(
    gram,
    cand_i,
    pending,
    excluded,
    active,
    used,
    coef,
    rows_g,
    inverse,
    width,
    zero_tol,
):
    """Append the pending atoms, lowest index first (``_grow`` for one signal)."""
    k = cand_i.size
    hit = False
    u = np.empty(k)
    g_aj = np.empty(k)
    for atom in range(k):
        if not pending[atom]:
            continue
        base = cand_i[atom]
        g_new = np.empty(k)
        for c in range(k):
            g_new[c] = gram[base, cand_i[c]]
        for s in range(width):
            g_aj[s] = g_new[active[s]] if used[s] else 0.0
        schur = g_new[atom] - slot_projection(inverse, g_aj, width, u)
        if schur <= zero_tol:
            excluded[atom] = True
            hit = True
            continue
        at, width = slot_border(inverse, used, u, schur, width)
        for c in range(k):
            rows_g[at, c] = g_new[c]
        active[at] = atom
        coef[at] = 0.0
    return hit, width


@jit()
def _one(
    gram,
    cand_i,
    corr,
    lam,
    exact,
    zero_tol,
    opt_tol,
    max_steps,
    codes,
    w_lam,
    w_start,
    out_scalars,
):
    k = cand_i.size
    active = np.zeros(k, np.int64)
    used = np.zeros(k, np.bool_)
    coef = np.zeros(k)
    rows_g = np.zeros((k, k))
    inverse = np.zeros((k, k))
    excluded = np.zeros(k, np.bool_)
    pending = np.zeros(k, np.bool_)
    direction = np.zeros(k)
    moves = np.zeros(k)
    join = np.zeros(k)
    first = 0
    for c in range(1, k):
        if corr[c] > corr[first]:
            first = c
    lam0 = corr[first]
    for c in range(k):
        rows_g[0, c] = gram[cand_i[first], cand_i[c]]
    inverse[0, 0] = 1.0 / rows_g[0, first]
    active[0] = first
    used[0] = True
    width = 1
    any_pending = False
    for c in range(k):
        pending[c] = c != first and abs(corr[c] - lam0) < zero_tol
        any_pending |= pending[c]
    any_excluded = False
    if any_pending:
        any_excluded, width = _grow(
            gram,
            cand_i,
            pending,
            excluded,
            active,
            used,
            coef,
            rows_g,
            inverse,
            width,
            zero_tol,
        )
    recorded = False
    steps = 0
    while True:
        steps += 1
        for s in range(width):
            acc = 0.0
            for t in range(width):
                acc += inverse[s, t]
            direction[s] = acc
        for c in range(k):
            moves[c] = 0.0
        for s in range(width):
            if used[s]:
                d = direction[s]
                for c in range(k):
                    moves[c] += d * rows_g[s, c]
        lead = 0
        while not used[lead]:
            lead += 1
        level = corr[active[lead]]
        drop_slot = 0
        gamma_drop = np.inf
        for s in range(width):
            cross = np.inf
            if used[s] and abs(direction[s]) > zero_tol:
                cross = -coef[s] / direction[s]
                if not cross > zero_tol:
                    cross = np.inf
            if cross < gamma_drop:
                gamma_drop = cross
                drop_slot = s
        for c in range(k):
            value = (level - corr[c]) / (1.0 - moves[c] + 1e-12)
            join[c] = value if value >= zero_tol else np.inf
        for s in range(width):
            if used[s]:
                join[active[s]] = np.inf
        if any_excluded:
            for c in range(k):
                if excluded[c]:
                    join[c] = np.inf
        gamma_join = np.inf
        for c in range(k):
            gamma_join = min(gamma_join, join[c])
        gamma = min(gamma_join, gamma_drop)
        if not np.isfinite(gamma):
            gamma = level
        cut = False
        if exact:
            cut = level - gamma < lam
            if cut:
                gamma = level - lam
        elif not recorded and level - gamma <= lam:
            to_lam = min(max(level - lam, 0.0), gamma)
            total = 0.0
            for s in range(width):
                if used[s]:
                    w_lam[active[s]] = coef[s] + to_lam * direction[s]
                    total += direction[s]
            out_scalars[3] = np.sqrt(max(total, 0.0))
            recorded = True
        for c in range(k):
            corr[c] -= gamma * moves[c]
        finished = (level - gamma < opt_tol) or steps >= max_steps
        finished = finished or (cut if exact else level <= lam)
        if finished:
            for s in range(width):
                if used[s]:
                    codes[active[s]] = coef[s] + gamma * direction[s]
                    w_start[active[s]] = coef[s]
            out_scalars[0] = level - gamma
            out_scalars[1] = level
            return
        for s in range(width):
            coef[s] += gamma * direction[s]
        adding = gamma_join <= gamma_drop
        dropping = gamma_drop <= gamma_join
        if adding:
            for c in range(k):
                pending[c] = abs(join[c] - gamma_join) < zero_tol
            hit, width = _grow(
                gram,
                cand_i,
                pending,
                excluded,
                active,
                used,
                coef,
                rows_g,
                inverse,
                width,
                zero_tol,
            )
            any_excluded |= hit
        if dropping:
            slot_drop(inverse, used, drop_slot, width, join)  # join is free scratch here
            coef[drop_slot] = 0.0
            if any_excluded:
                for c in range(k):
                    excluded[c] = False


@jit(parallel=True)
def _kernel(
    gram,
    cand,
    corr,
    lam,
    exact,
    zero_tol,
    opt_tol,
    max_steps,
    codes,
    lam_end,
    w_lam,
    w_start,
    level_start,
    unorm,
):
    for i in prange(cand.shape[0]):
        scalars = np.zeros(4)
        row = corr[i].copy()
        _one(
            gram,
            cand[i],
            row,
            lam,
            exact,
            zero_tol,
            opt_tol,
            max_steps,
            codes[i],
            w_lam[i],
            w_start[i],
            scalars,
        )
        lam_end[i] = scalars[0]
        level_start[i] = scalars[1]
        unorm[i] = scalars[3]
