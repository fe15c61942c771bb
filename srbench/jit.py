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

__all__ = ["available", "jit", "limit_threads", "prange"]


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


def warm_up_all() -> None:
    """Compile (or load from numba's cache) every kernel srbench ships: ``python -m srbench.jit``."""
    import numpy as np

    from srbench import metrics
    from srbench._methods.neighbor_embedding import nnls_kernel
    from srbench._methods.sparse import lars_kernel

    lars_kernel.warm_up()
    nnls_kernel.warm_up()
    image = np.arange(144, dtype=np.float64).reshape(12, 12)
    metrics.ssim_255(image, image)


if __name__ == "__main__":
    warm_up_all()
