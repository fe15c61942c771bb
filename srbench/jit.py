"""Optional numba compilation for the classical methods' per-patch inner loops.

SC's homotopy and NE+NNLS's active-set solver take many tiny data-dependent steps per patch;
as stacked numpy arrays every step touches the state of all patches. Compiled per patch they
run several times faster. numba is a dependency, but everything compiled here has a numpy
twin the methods fall back to where numba cannot be imported, so results never depend on it
(beyond round-off).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

try:
    import numba
except ImportError:
    numba = None

__all__ = ["available", "jit", "limit_threads", "prange", "preload"]


def available() -> bool:
    """Whether numba is installed."""
    return numba is not None


def jit(**options: Any) -> Callable[[Callable], Callable]:
    """``numba.njit`` with srbench's defaults, or the function unchanged without numba.

    ``error_model="numpy"``: a division by zero gives inf/nan, as in the numpy twins (whose
    step rules discard them), instead of raising. ``cache=True``: compiled once per install,
    loaded from ``__pycache__`` afterwards. ``nogil=True``: callers may thread.
    """
    if numba is None:
        return lambda function: function
    return numba.njit(cache=True, nogil=True, error_model="numpy", **options)


prange = numba.prange if numba is not None else range


def limit_threads() -> None:
    """Use no more numba threads than OpenMP may (a worker of a ``--jobs 2`` run gets one).

    The runner limits a worker's threads through ``OMP_NUM_THREADS``; numba reads it only at
    import, so it is applied again here before each parallel call.
    """
    if numba is None:
        return
    try:
        allowed = int(os.environ.get("OMP_NUM_THREADS", "0"))
    except ValueError:
        allowed = 0
    limit = numba.config.NUMBA_NUM_THREADS
    numba.set_num_threads(min(limit, allowed) if allowed > 0 else limit)


def preload(function: Callable, *example: Any) -> None:
    """Load ``function``'s machine code for the argument types of ``example`` (from numba's
    cache, compiling where it holds none) without calling it.

    The pool's zygote loads kernels this way, so that the workers forked from it do not load
    them inside their first timed call; it must never run one, since a process that has run
    a parallel region cannot fork children that run them (GNU OpenMP).
    """
    if numba is None:
        return
    function.compile(tuple(numba.typeof(value) for value in example))


def warm_up_all() -> None:
    """Compile (or load from numba's cache) every kernel srbench ships: ``python -m srbench.jit``."""
    import numpy as np

    from srbench import colour_kernel, metrics, resize_kernel
    from srbench._methods.neighbor_embedding import embedding_kernel, nnls_kernel
    from srbench._methods.sparse import lars_kernel, zeyde_kernel

    lars_kernel.warm_up()
    nnls_kernel.warm_up()
    embedding_kernel.warm_up()
    resize_kernel.warm_up()
    colour_kernel.warm_up()
    zeyde_kernel.warm_up()
    image = np.arange(144, dtype=np.float64).reshape(12, 12)
    metrics.ssim_255(image, image)
    metrics.evaluate(image.astype(np.uint8), image.astype(np.uint8), 0)  # the uint8 kernels
    # Against a read-only ground truth, as the runner scores: the kept-statistics kernels.
    truth = image.astype(np.uint8)
    truth.setflags(write=False)
    metrics.evaluate(image.astype(np.uint8), truth, 0)


if __name__ == "__main__":
    warm_up_all()


# ------------------------------------------------ inverses of active blocks kept in slots
# SC's homotopy and NE+NNLS's active-set solver both keep the inverse of the Gram block of
# their active variables in slots (zero rows and columns where a slot is free), bordered when
# a variable enters and downdated when one leaves, as their numpy twins do.


@jit()
def slot_projection(inverse, g, width, u):
    """``u = inverse @ g`` over the first ``width`` slots; returns ``g . u``."""
    dot = 0.0
    for s in range(width):
        acc = 0.0
        for t in range(width):
            acc += inverse[s, t] * g[t]
        u[s] = acc
        dot += g[s] * acc
    return dot


@jit()
def slot_border(inverse, used, u, schur, width):
    """Put a new variable in the first free slot: the bordered inverse
    ``[[B + u u'/s, -u/s], [-u'/s, 1/s]]`` (``u`` from :func:`slot_projection`, ``s`` the
    Schur complement). Returns the slot and the new width; the caller fills the slot."""
    at = 0
    while at < width and used[at]:
        at += 1
    if at == width:
        u[width] = 0.0
        width += 1
    for s in range(width):
        vs = u[s] / schur
        for t in range(width):
            inverse[t, s] += u[t] * vs
    for s in range(width):
        v = u[s] / schur
        inverse[at, s] = -v
        inverse[s, at] = -v
    inverse[at, at] = 1.0 / schur
    used[at] = True
    return at, width


@jit()
def slot_drop(inverse, used, p, width, scratch):
    """Free slot ``p``: the Schur downdate ``B - B[:, p] (B[p, :] / B[p, p])``, computed from
    the row as it was, then row and column ``p`` zeroed."""
    pivot = inverse[p, p]
    for t in range(width):
        scratch[t] = inverse[p, t] / pivot
    for s in range(width):
        column = inverse[s, p]
        if column != 0.0:
            for t in range(width):
                inverse[s, t] -= column * scratch[t]
    for s in range(width):
        inverse[p, s] = 0.0
        inverse[s, p] = 0.0
    used[p] = False
