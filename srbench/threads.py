"""Threads of the caller's own around BLAS: many small products split over threads, one BLAS
thread each.

Used by the Zeyde family (A+, ANR, GR, features) and neighbour embedding, whose BLAS calls are
too small for OpenBLAS's own threads to pay off.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

__all__ = ["blas_in_threads", "in_threads"]

_BLAS = None  # threadpoolctl's controller of the loaded BLAS libraries, made on first use
_BLAS_LOCK = threading.Lock()
_BLAS_USERS = 0  # blas_in_threads contexts open, in any thread
_BLAS_STATE: tuple[int, object] = (1, None)  # (threads BLAS had, the limiter to restore it)


@contextmanager
def blas_in_threads() -> Iterator[int]:
    """Run BLAS one thread per call while the caller splits its calls over its own threads.

    The products are many small ones (in the Zeyde family: a 512 x 31 by 31 x 1024 block of
    anchor correlations, a band of features by the PCA basis, an anchor's patches by its
    regressor):
    OpenBLAS's own threads synchronise on every call, which made two of them slower than
    one (the anchor search of a 1000x800 image at x4: 1.75 s against 1.0 s), while two
    threads each making whole calls take 0.5 s. Yields the number of threads to use (the
    BLAS's own count, so a worker limited to one thread stays at one), with BLAS set to one
    thread meanwhile and restored when the last such context open in the process closes.
    Each call is the same product as before on the same block, computed by one thread
    instead of several: OpenBLAS splits a product's rows and columns over its threads, never
    the sums, so the results are the same (tested). Without threadpoolctl it yields 1 and
    changes nothing.
    """
    global _BLAS, _BLAS_USERS, _BLAS_STATE
    with _BLAS_LOCK:
        if _BLAS is None:
            try:
                from threadpoolctl import ThreadpoolController
            except ImportError:
                _BLAS = False
            else:
                _BLAS = ThreadpoolController().select(user_api="blas")
        if _BLAS is False:
            threads = 1
        else:
            if _BLAS_USERS == 0:
                had = min((lib.num_threads for lib in _BLAS.lib_controllers), default=1)
                had = max(1, min(int(had), os.cpu_count() or 1))
                _BLAS_STATE = (had, _BLAS.limit(limits=1) if had > 1 else None)
            _BLAS_USERS += 1
            threads = _BLAS_STATE[0]
    if _BLAS is False:
        yield 1
        return
    try:
        yield threads
    finally:
        with _BLAS_LOCK:
            _BLAS_USERS -= 1
            if _BLAS_USERS == 0 and _BLAS_STATE[1] is not None:
                _BLAS_STATE[1].restore_original_limits()
                _BLAS_STATE = (1, None)


_POOL: ThreadPoolExecutor | None = None  # the helper threads of in_threads, kept for reuse
_POOL_SIZE = 0
_POOL_LOCK = threading.Lock()
_INSIDE = threading.local()  # set in the pool's own threads


def _mark_pool_thread() -> None:
    _INSIDE.pool = True


def _forget_pool() -> None:
    """In a forked child: the parent's pool threads do not exist there."""
    global _POOL, _POOL_SIZE
    _POOL, _POOL_SIZE = None, 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _pool(workers: int) -> ThreadPoolExecutor:
    global _POOL, _POOL_SIZE
    with _POOL_LOCK:
        if _POOL is None or _POOL_SIZE < workers:
            if _POOL is not None:
                _POOL.shutdown(wait=False)
            _POOL = ThreadPoolExecutor(workers, thread_name_prefix="srbench-threads", initializer=_mark_pool_thread)
            _POOL_SIZE = workers
        return _POOL


def in_threads(work: Callable[[int], object], threads: int) -> None:
    """``work(t)`` for ``t`` in ``range(threads)``, concurrently (``t = 0`` in this thread);
    re-raises the first error.

    The helper threads are kept between calls: starting a thread took about 1.8 ms on the
    development machine (a VM), as long as scoring a Set14 output's SSIM. Called from one of
    those threads, the parts run one after another in it (a task waiting on tasks queued
    behind it could wait forever).
    """
    if threads <= 1 or getattr(_INSIDE, "pool", False):
        for t in range(max(1, threads)):
            work(t)
        return
    others = [_pool(threads - 1).submit(work, t) for t in range(1, threads)]
    try:
        work(0)
    finally:
        errors = [future.exception() for future in others]
    for error in errors:
        if error is not None:
            raise error
