"""Methods run in worker processes that never hold the ground truth.

The driver makes the LR input and scores the output; a worker receives only the method's
input and the scale, and sends back only the output, its timing and its footprint. No plugin
can read the answer from memory, by accident or on purpose (DESIGN.md section 5). A worker
is never a fork of the driver (it would inherit the driver's memory, HR images included):
it is forked from a *zygote*, a fresh interpreter that has imported what workers share and
never holds an image (see :class:`WorkerPool`), or, where that is not possible, it is a
fresh interpreter itself. Workers are cached: one per method, kept across images, so a
model is loaded once.

What a worker computes for a cell is :func:`run_method`; the same function serves the local
process pool and Dask, whose tasks likewise carry no HR image.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from srbench.method import Method, MethodError

log = logging.getLogger(__name__)

__all__ = ["MethodSpec", "ModelSpec", "WorkerError", "WorkerPool", "build_method", "run_method"]


class WorkerError(MethodError):
    """A worker process died or could not build its method."""


@dataclass(frozen=True)
class ModelSpec:
    """A user's PyTorch module brought in with ``--model`` (see :func:`srbench.nn.torch_method.module_method`)."""

    model: str
    weights: str
    name: str
    label: str | None
    scales: tuple[int, ...]
    model_args: tuple[tuple[str, Any], ...] = ()
    channels: str = "rgb"
    input_range: float = 1.0
    rgb_mean: tuple[float, ...] | None = None

    def method_class(self) -> type[Method]:
        from srbench.nn.loading import load_module_class
        from srbench.nn.torch_method import module_method

        return module_method(
            load_module_class(self.model), self.weights, name=self.name, label=self.label,
            scales=set(self.scales), model_args=dict(self.model_args), channels=self.channels,
            input_range=self.input_range, rgb_mean=self.rgb_mean,
        )  # fmt: skip


@dataclass(frozen=True)
class MethodSpec:
    """Everything a fresh process needs to build the same method the driver planned with."""

    registered: str
    settings: tuple[tuple[str, Any], ...] = ()
    device: str = "cpu"
    plugins: tuple[str, ...] = ()
    models: tuple[ModelSpec, ...] = field(default=())
    version: str = ""
    #: CPU threads for the worker (None: the libraries' defaults, as in the driver). Serial
    #: runs leave it None, so a method is timed with the cores it would have in process.
    threads: int | None = None


def register_models(models: Sequence[ModelSpec]) -> None:
    """Register ``--model`` networks in this process's registry (driver and workers alike)."""
    from srbench.registry import get_registry

    registry = get_registry()
    for model in models:
        if model.name not in registry.entries:
            registry.add(model.method_class(), f"--model {model.model}")


def build_method(spec: MethodSpec) -> Method:
    """The method of ``spec``, set up as the driver's (settings, device, artifacts loaded)."""
    from srbench.registry import get_registry
    from srbench.runner import instantiate

    registry = get_registry()
    for plugin in spec.plugins:
        registry.load_plugin(plugin)
    register_models(spec.models)
    cls = registry.get(spec.registered)
    if spec.version and cls.version != spec.version:
        raise WorkerError(f"worker has {cls.name} version {cls.version}, driver {spec.version}")
    method, _ = instantiate(cls, spec.device, dict(spec.settings))
    return method


def run_method(method: Method, x: np.ndarray, scale: int, repeat: int = 1) -> dict[str, Any]:
    """Upscale ``x``, timing the call alone; with its peak memory and, once, its size.

    Returns a dict with ``sr``, ``seconds`` (the median over ``repeat`` calls),
    ``seconds_min`` and ``seconds_max`` (the fastest and slowest of them), ``peak_mb``
    (CUDA: the most memory allocated during the call; CPU: how far the call raised the
    process's resident set above where it started), ``parameters`` and ``macs`` (None where
    they mean nothing: methods that are not networks).
    """
    _prepare_once(method, scale)
    cuda = _cuda_device(method)
    times, peaks = [], []
    sr = None
    for _ in range(max(1, repeat)):
        before = _memory_mark(cuda)
        start = time.perf_counter()
        sr = method.upscale(x, scale)
        times.append(time.perf_counter() - start)
        peaks.append(_memory_peak(cuda, before))
    efficiency = _efficiency(method, scale)
    return {
        "sr": sr, "seconds": float(np.median(times)), "seconds_min": float(min(times)),
        "seconds_max": float(max(times)), "peak_mb": max(peaks), **efficiency,
    }  # fmt: skip


_PREPARED: weakref.WeakKeyDictionary[Method, set[int]] = weakref.WeakKeyDictionary()


def _load_shared_kernels() -> None:
    """Load the compiled kernels every method may call (``imresize``'s), without running them.

    Loading them from numba's cache takes about 0.4 s, which a worker would otherwise pay
    inside its first timed call. The zygote does it once for all its workers (it must not
    run a kernel; see :func:`srbench.jit.preload`); a fresh worker does it before its first
    ``prepare``. Failing here only means the first call loads them after all.
    """
    global _KERNELS_LOADED
    if _KERNELS_LOADED:
        return
    _KERNELS_LOADED = True
    try:
        from srbench import resize_kernel

        resize_kernel.preload()
    except Exception as exc:  # noqa: BLE001 - an optimisation; the call compiles what it needs
        log.debug("preloading the imresize kernels failed: %s", _describe(exc))


_KERNELS_LOADED = False


def _prepare_once(method: Method, scale: int) -> None:
    """``prepare`` is one-time work: a cached worker does it for its first image of a scale only.

    A CNN's warm-up probe costs a few milliseconds, which per image would be a visible share of
    a small network's time on Set5.
    """
    _load_shared_kernels()
    try:
        done = _PREPARED.setdefault(method, set())
    except TypeError:  # a method class that is not hashable or weak-referenceable
        method.prepare(scale)
        return
    if scale not in done:
        method.prepare(scale)
        done.add(scale)


def _cuda_device(method: Method) -> bool:
    return getattr(method, "device", "cpu") == "cuda" and "torch" in sys.modules


def _memory_mark(cuda: bool) -> float:
    if cuda:
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return float(torch.cuda.memory_allocated())
    # Linux: "5" resets the high-water mark (VmHWM) to the current resident set, so the
    # mark read after the call is the call's own peak.
    _PROC.write("clear_refs", b"5")
    return _PROC.resident()


def _memory_peak(cuda: bool, before: float) -> float | None:
    if cuda:
        import torch

        return max(0.0, float(torch.cuda.max_memory_allocated()) - before) / 2**20
    peak = _PROC.status_kb("VmHWM") * 1024.0
    return max(0.0, peak - before) / 2**20 if peak else None


class _ProcFiles:
    """This process's ``/proc/self`` files the memory marks use, kept open between calls.

    Opening, reading and parsing ``status`` with pathlib around every timed call took
    0.1-0.2 ms of each round trip; a read at offset 0 of a file kept open costs a few
    microseconds. Opened again in a forked child: ``/proc/self`` is resolved when opened.
    """

    def __init__(self) -> None:
        self._pid = -1
        self._files: dict[str, int] = {}

    def _fd(self, name: str, flags: int) -> int:
        if self._pid != os.getpid():
            self._pid, self._files = os.getpid(), {}  # a forked child's are its parent's files
        fd = self._files.get(name)
        if fd is None:
            fd = self._files[name] = os.open(f"/proc/self/{name}", flags | getattr(os, "O_CLOEXEC", 0))
        return fd

    def write(self, name: str, data: bytes) -> None:
        try:
            os.pwrite(self._fd(name, os.O_WRONLY), data, 0)
        except (OSError, AttributeError):  # no /proc (or no pwrite): no marks
            pass

    def read(self, name: str) -> bytes:
        try:
            return os.pread(self._fd(name, os.O_RDONLY), 1 << 16, 0)
        except (OSError, AttributeError):
            return b""

    def resident(self) -> float:
        """The resident set in bytes (``statm``'s second field, in pages: ``status``' VmRSS)."""
        fields = self.read("statm").split()
        return float(fields[1]) * os.sysconf("SC_PAGE_SIZE") if len(fields) > 1 else 0.0  # only where /proc is

    def status_kb(self, field_name: str) -> float:
        prefix = field_name.encode() + b":"
        for line in self.read("status").splitlines():
            if line.startswith(prefix):
                return float(line.split()[1])
        return 0.0


_PROC = _ProcFiles()


_EFFICIENCY: dict[tuple[int, int], dict[str, Any]] = {}


def _efficiency(method: Method, scale: int) -> dict[str, Any]:
    key = (id(method), scale)
    if key not in _EFFICIENCY:
        counts = method.efficiency(scale) if hasattr(method, "efficiency") else None
        _EFFICIENCY[key] = dict(counts) if counts else {"parameters": None, "macs": None}
    return _EFFICIENCY[key]


# ------------------------------------------------------- outputs through shared memory
@dataclass(frozen=True)
class _SharedOutput:
    """In a worker's answer, instead of the output: it lies in the worker's output buffer.

    ``size`` is set when the buffer is new (its file descriptor follows the answer)."""

    shape: tuple[int, ...]
    dtype: str
    size: int | None


class _OutputBuffer:
    """A worker's outputs written into memory the driver maps, instead of through the socket.

    A megabyte through the socket pair (pickled, sent in pieces, read back and unpickled) took
    1.9 ms on the 2-core development machine, most of a small method's round trip; written
    into a shared ``memfd`` and copied out by the driver, a few hundred microseconds. The
    buffer only ever goes from worker to driver: the driver writes nothing into it. Linux
    only (``os.memfd_create``); elsewhere, and for small outputs, the answer carries the
    array as before.
    """

    #: Outputs smaller than this go through the socket (the buffer saves nothing there).
    MIN_BYTES = 1 << 16

    def __init__(self) -> None:
        self.fd = -1
        self.size = 0
        self.memory: Any = None

    def pack(self, answer: dict[str, Any]) -> int:
        """Move ``answer["sr"]`` into the buffer; the descriptor to send after it, or -1."""
        import mmap

        sr = answer.get("sr")
        if not (isinstance(sr, np.ndarray) and sr.nbytes >= self.MIN_BYTES and hasattr(os, "memfd_create")):
            return -1
        fresh = sr.nbytes > self.size
        if fresh:
            self.close()
            self.size = max(sr.nbytes, 2 * self.size)
            self.fd = os.memfd_create("srbench-output", os.MFD_CLOEXEC)
            os.ftruncate(self.fd, self.size)
            self.memory = mmap.mmap(self.fd, self.size)
        np.copyto(np.ndarray(sr.shape, sr.dtype, buffer=self.memory), sr)
        answer["sr"] = _SharedOutput(tuple(sr.shape), sr.dtype.str, self.size if fresh else None)
        return self.fd if fresh else -1

    def unpack(self, shared: _SharedOutput, connection: Any, *, copy: bool = True) -> np.ndarray:
        """Driver side: the output a worker's answer points at (its descriptor read if new).

        ``copy=False``: a read-only view of the buffer itself, valid until the next request
        to the worker (whose next output overwrites it).
        """
        import mmap

        if shared.size is not None:
            fd = _receive_fd(connection)
            self.close()
            self.fd, self.size = fd, shared.size
            self.memory = mmap.mmap(fd, shared.size, prot=mmap.PROT_READ)
        dtype = np.dtype(shared.dtype)
        count = int(np.prod(shared.shape))
        if self.memory is None or count * dtype.itemsize > self.size:
            raise WorkerError("the worker's answer points past its output buffer")
        view = np.frombuffer(self.memory, dtype, count).reshape(shared.shape)
        return view.copy() if copy else view

    def close(self) -> None:
        if self.memory is not None:
            try:
                self.memory.close()
            except BufferError:  # a borrowed view still lives: unmapped when it is gone
                pass
            self.memory = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        self.size = 0


# ---------------------------------------------------------------------- the worker process
def _serve(connection: Any, spec: MethodSpec) -> None:
    """Worker main loop: build the method once, then answer (scale, x, repeat) requests.

    A ``("prepare", scales)`` request does a first call's one-time work for those scales
    ahead of the calls (see :meth:`WorkerPool.prepare`).
    """
    if spec.threads:
        # Read by libraries loaded from here on, and per call by code that sizes its own
        # thread use from it (the sparse-coding kernel).
        os.environ["OMP_NUM_THREADS"] = str(spec.threads)
    try:
        method = build_method(spec)
        if spec.threads:
            _limit_threads(spec.threads)
        connection.send(("ready", None))
    except BaseException as exc:  # noqa: BLE001 - reported to the driver, which goes on
        connection.send(("error", _describe(exc)))
        return
    outputs = _OutputBuffer()
    while True:
        try:
            request = connection.recv()
        except EOFError:
            return
        if request is None:
            return
        if request[0] == "prepare":
            connection.send(_prepare_ahead(method, request[1]))
            continue
        scale, x, repeat = request
        try:
            answer = run_method(method, x, scale, repeat)
        except BaseException as exc:  # noqa: BLE001
            connection.send(("error", _describe(exc)))
            continue
        try:
            fd = outputs.pack(answer)
        except OSError:  # no shared memory to be had: the socket carries the output
            outputs.close()
            fd = -1
        connection.send(("ok", answer))
        if fd >= 0:
            _send_fd(connection, fd)


def _prepare_ahead(method: Method, scales: Sequence[int]) -> tuple[str, Any]:
    """A first call's one-time work for each scale (``prepare``, the size counts); the answer.

    A failure is only reported back: the cell's own call meets it again and records it.
    """
    try:
        for scale in scales:
            _prepare_once(method, scale)
            _efficiency(method, scale)
    except BaseException as exc:  # noqa: BLE001
        return ("error", _describe(exc))
    return ("prepared", None)


def _limit_threads(threads: int) -> None:
    """Cap the thread pools of the libraries already loaded at ``threads``.

    OpenBLAS and OpenMP read ``OMP_NUM_THREADS`` once, when they are loaded; in a worker
    forked from the zygote, and even in a fresh one (numpy comes in with this module), that
    moment has passed, so the limit is set through the libraries' own calls.
    """
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    except ImportError:
        pass
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# ---------------------------------------------------------------------- the zygote process
#: What every worker imports, loaded once by the zygote so that a forked worker starts with
#: it: numpy and scipy come in with srbench's modules and its built-in methods, and
#: scipy.sparse (0.17 s), which SC and both NE methods use at test time, once here rather
#: than in each of their workers.
_ZYGOTE_MODULES = (
    "numpy", "scipy.sparse", "srbench", "srbench.registry", "srbench.runner", "multiprocessing.connection",
)
#: Large libraries the zygote imports only when a worker of the pool needs them (torch costs
#: about as much as everything above together, and a run of classical methods never uses
#: it). torch's FLOP counter imports torch._dynamo, another second, when a plugin network's
#: worker counts its MACs; srbench's own networks are counted without it
#: (:func:`srbench.nn.efficiency.count_layer_macs`), so it comes only for the others.
_SHARED_LIBRARIES = {"torch": ("torch",), "flop counter": ("torch._dynamo",)}


def _import_all(names: Sequence[str]) -> None:
    import importlib

    for name in names:
        if name not in sys.modules:
            try:
                importlib.import_module(name)
            except ModuleNotFoundError as exc:
                if not exc.name or not (name == exc.name or name.startswith(exc.name + ".")):
                    raise  # installed but broken: not a state to fork workers from
                # Not installed: a worker that needs it reports that itself.


def _import_builtin_methods() -> None:
    """Import srbench's own method modules, and only those.

    Other entry points and plugins are user code: a worker imports them after the fork, so
    nothing a plugin does at import time (start a thread, open a file) is shared between
    workers or runs in the zygote. The entry-point scan itself is cached by importlib and
    inherited, so a worker's own discovery finds the built-ins already imported.
    """
    import importlib
    from importlib import metadata

    from srbench.registry import BUILTIN_PACKAGE, ENTRY_POINT_GROUP

    for point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if point.module.startswith(BUILTIN_PACKAGE + "."):
            importlib.import_module(point.module)


def _fork_hazard() -> str:
    """Why forking this process would be unsafe now ('' when it is not).

    A forked child has only the thread that forked; a lock another thread held stays held
    in it. No preloaded module may start a Python thread. (OpenBLAS's own pool threads are
    fork-safe: it shuts them down around ``fork``. OpenMP is not, which is why the zygote
    never computes anything, so no parallel region has ever run in it.)
    """
    import threading

    count = threading.active_count()
    return f"the zygote runs {count} Python threads; forking it is not safe" if count > 1 else ""


def _send_fd(connection: Any, fd: int) -> None:
    import socket

    with socket.socket(fileno=os.dup(connection.fileno())) as channel:
        socket.send_fds(channel, [b"F"], [fd])


def _receive_fd(connection: Any) -> int:
    import socket

    with socket.socket(fileno=os.dup(connection.fileno())) as channel:
        # Close-on-exec: a subprocess a worker starts must not keep the worker's line open
        # (the driver sees a worker's death as the end of that line).
        _, fds, _, _ = socket.recv_fds(channel, 1, 1, socket.MSG_CMSG_CLOEXEC)
    if len(fds) != 1:
        raise OSError("expected one file descriptor from the driver")
    return fds[0]


class _Children:
    """The zygote's forked workers: reaped as they exit, their exit codes kept until asked."""

    def __init__(self) -> None:
        self.running: set[int] = set()
        self.codes: dict[int, int] = {}

    def reap(self, *_: object) -> None:
        """SIGCHLD handler: collect every child that has exited, so none stays a zombie."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.running.discard(pid)
            self.codes[pid] = os.waitstatus_to_exitcode(status)

    def exit_code(self, pid: int, wait: float = 2.0) -> int | None:
        """``pid``'s exit code; a worker whose line just closed may take a moment to exit."""
        deadline = time.monotonic() + wait
        while pid not in self.codes and pid in self.running and time.monotonic() < deadline:
            self.reap()
            time.sleep(0.005)
        return self.codes.pop(pid, None)

    def kill(self, pid: int) -> None:
        import signal

        if pid in self.running:  # never signal a pid that may have been reused
            os.kill(pid, signal.SIGKILL)

    def stop(self, wait: float = 5.0) -> None:
        """Wait for the workers to finish (the driver has asked them to), then kill the rest."""
        import signal

        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        deadline = time.monotonic() + wait
        while self.running and time.monotonic() < deadline:
            self.reap()
            time.sleep(0.01)
        for pid in list(self.running):
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            self.running.discard(pid)


def _zygote(control: Any) -> Any:
    """Zygote main loop: import what workers share once, then fork a worker per request.

    A large library (:data:`_SHARED_LIBRARIES`) is imported when the first worker that needs
    it is asked for: the driver asks for the others first (see :meth:`WorkerPool.prestart`).

    Requests: ``("fork", libraries, cwd, environ)`` followed by the worker's end of its socket
    pair (answered ``("forked", pid)``), ``("exit_code", pid)``, ``("kill", pid)``, and None
    (stop, after the workers). The zygote is a fresh interpreter that never receives an
    image, so nothing a worker inherits from it came from the driver.

    Returns None in the zygote, once it is done. In a forked worker it returns too: the
    worker's connection, for :func:`_main` to serve as a fresh worker would, so that the
    worker ends as an interpreter does (``atexit``, buffered files flushed).
    """
    import signal

    # Ctrl-C reaches the whole process group: the workers take it as a fresh one would (the
    # disposition this interpreter started with: ignored where the driver's was), the zygote
    # stops when the driver closes it (it has nothing of its own to interrupt).
    on_interrupt = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    children = _Children()
    signal.signal(signal.SIGCHLD, children.reap)
    home, me = os.getcwd(), os.getpid()
    try:
        _import_all(_ZYGOTE_MODULES)
        _import_builtin_methods()
        _load_shared_kernels()
        hazard = _fork_hazard()
        if hazard:
            raise RuntimeError(hazard)
    except BaseException as exc:  # noqa: BLE001 - the driver falls back to fresh workers
        control.send(("error", _describe(exc)))
        return None
    control.send(("ready", None))
    broken = ""
    try:
        while True:
            try:
                request = control.recv()
            except EOFError:
                return None
            if request is None:
                return None
            kind, *args = request
            if kind == "exit_code":
                control.send(("exit_code", children.exit_code(args[0])))
                continue
            if kind == "kill":
                children.kill(args[0])
                control.send(("killed", None))
                continue
            libraries, cwd, environ = args
            fd = _receive_fd(control)
            try:
                if broken:
                    raise RuntimeError(broken)
                try:
                    _import_all(libraries)
                except BaseException as exc:  # noqa: BLE001 - half an import may be left behind
                    broken = f"importing {', '.join(libraries)} failed ({_describe(exc)})"
                    raise RuntimeError(broken) from None
                hazard = _fork_hazard()
                if hazard:
                    raise RuntimeError(hazard)
                # Held back until the child is on the list, so that one dying at once is
                # still reaped as known, never signalled later under a reused pid.
                signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
                try:
                    pid = os.fork()
                    if pid == 0:
                        return _become_worker(control, fd, cwd, environ, home, on_interrupt)
                    children.running.add(pid)
                finally:
                    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
            except BaseException as exc:  # noqa: BLE001
                os.close(fd)
                control.send(("error", _describe(exc)))
                continue
            os.close(fd)  # the worker's alone now: its death closes the driver's line
            control.send(("forked", pid))
    finally:
        if os.getpid() == me:  # a worker has no children of the zygote's to stop
            children.stop()


def _become_worker(
    control: Any, fd: int, cwd: str, environ: Mapping[str, str], home: str, on_interrupt: Any
) -> Any:
    """In a child of the zygote: become what a worker started now would be; its connection.

    Nothing here may raise into the zygote's loop, which would go on in the child.
    """
    import signal
    import traceback
    from multiprocessing.connection import Connection

    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # a method's own subprocesses are its to wait for
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        signal.signal(signal.SIGINT, on_interrupt)
        control.close()  # the zygote's line to the driver is not this worker's
        # The driver's directory (a plugin given by a relative path or module name is found
        # from it) and environment, as a fresh worker would inherit them.
        if cwd != home:
            os.chdir(cwd)
            if sys.path and sys.path[0] == home:
                sys.path[0] = cwd
        os.environ.clear()
        os.environ.update(environ)
        np.random.seed()  # not the zygote's state, shared by every worker forked from it
        return Connection(fd)
    except BaseException:  # noqa: BLE001
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)


# ---------------------------------------------------------------------- the driver side
class _ZygoteError(Exception):
    """The zygote could not start, or cannot fork a worker: use a fresh interpreter instead."""


#: How long a worker's idle BLAS and OpenMP threads spin before they sleep. OpenBLAS's spin
#: 2**22 cycles (about 1.5 ms) instead of 2**28 (about 0.1 s), GNU OpenMP's (numba's parallel
#: kernels, torch) 10,000 turns (a fraction of a millisecond) instead of 300,000 (7.5 ms here).
#: After a method's call those threads spun on the cores where the driver then scores and the
#: next cell's method is timed: after GR or K-SVD 100 ms of CPU, after every Zeyde-family and
#: NE call 7.5 ms. In a serial run of GR, ANR, A+, K-SVD and the NE methods on Set5 and Set14
#: that took 10-15% off their method times (GR 1.1 -> 0.8 s, ANR 3.4 -> 2.2 s) and a quarter off
#: the scoring; the paper suite's SC 87-92 -> 77 s, as it ran after them. A spin this short still
#: keeps the threads awake between the parallel regions of one upscale. The libraries read
#: these when they load, so they are set in the environment of the zygote, of fresh workers
#: and of forked ones; a value in the user's environment is kept.
_IDLE_SPIN = {"OPENBLAS_THREAD_TIMEOUT": "22", "GOMP_SPINCOUNT": "10000"}


def _worker_environment() -> dict[str, str]:
    """The driver's environment, with :data:`_IDLE_SPIN` where the user set nothing."""
    environment = dict(os.environ)
    for name, value in _IDLE_SPIN.items():
        environment.setdefault(name, value)
    return environment


def _start_process(role: tuple[str, ...]) -> tuple[Any, Any]:
    """``python -m srbench.isolation ROLE... FD`` and the driver's end of its socket pair."""
    import socket
    import subprocess
    from multiprocessing.connection import Connection

    environment = _worker_environment()
    mine, theirs = socket.socketpair()
    with theirs:
        process = subprocess.Popen(
            [sys.executable, "-m", "srbench.isolation", *role, str(theirs.fileno())],
            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, env=environment,
        )  # fmt: skip
    return process, Connection(mine.detach())


class _Fork:
    """A worker asked of the zygote (:meth:`_Zygote.fork_later`) and, once answered, its pid."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.pid: int | None = None
        self.error: str | None = None


class _Zygote:
    """The driver's handle on the zygote process, started once per :class:`WorkerPool`."""

    def __init__(self) -> None:
        # Started, not waited for: its imports run while the driver prepares the first
        # inputs; the first fork waits for it to be ready.
        self.process, self.connection = _start_process(("--zygote",))
        self.ready = False
        #: Forks asked for whose answers are still to be read (it answers in order).
        self._asked: deque[_Fork] = deque()

    def starting(self) -> bool:
        """Whether it is still starting: it has not said whether it is ready (no wait)."""
        if self.ready:
            return False
        try:
            return not self.connection.poll(0)
        except (OSError, ValueError):
            return False

    def wait_ready(self) -> None:
        if self.ready:
            return
        try:
            status, detail = self.connection.recv()
        except (EOFError, OSError):
            status, detail = "error", f"exited with code {self.process.wait()}"
        if status != "ready":
            raise _ZygoteError(f"the zygote did not start: {detail}")
        self.ready = True

    def _ask(self, request: tuple) -> tuple[str, Any]:
        self._answer_forks()
        try:
            self.connection.send(request)
            return self.connection.recv()
        except (EOFError, OSError) as exc:
            raise _ZygoteError(f"the zygote is gone ({_describe(exc)})") from None

    def fork(self, libraries: Sequence[str]) -> tuple[int, Any]:
        """A new worker: its pid, and the driver's end of the line to it."""
        fork = self.fork_later(libraries)
        return self.pid_of(fork), fork.connection

    def fork_later(self, libraries: Sequence[str]) -> _Fork:
        """Ask for a new worker without waiting, even before the zygote is ready.

        The driver's end of the line to it (:attr:`_Fork.connection`) takes requests at
        once (the worker reads them once it exists); :meth:`pid_of` waits for the answer.
        The zygote serves the forks in the order asked, importing ``libraries`` first where
        it has not yet: asking for the workers without torch first, they are forked and at
        work while it imports torch for the networks' workers.
        """
        import socket
        from multiprocessing.connection import Connection

        mine, theirs = socket.socketpair()
        with mine, theirs:
            try:
                environment = _worker_environment()  # as a fresh worker's
                self.connection.send(("fork", tuple(libraries), os.getcwd(), environment))
                _send_fd(self.connection, theirs.fileno())
            except (OSError, ValueError) as exc:
                raise _ZygoteError(f"the zygote is gone ({_describe(exc)})") from None
            fork = _Fork(Connection(mine.detach()))
        self._asked.append(fork)
        return fork

    def pid_of(self, fork: _Fork) -> int:
        """The pid of a worker asked for with :meth:`fork_later`; _ZygoteError if it was not forked."""
        while fork.pid is None and fork.error is None:
            self._answer_forks(until=fork)
        if fork.error is not None:
            raise _ZygoteError(fork.error)
        return fork.pid

    def _answer_forks(self, until: _Fork | None = None) -> None:
        """Read the answers to the forks asked (all, or up to ``until``'s)."""
        while self._asked:
            fork = self._asked.popleft()
            try:
                self.wait_ready()
                status, detail = self.connection.recv()
            except (_ZygoteError, EOFError, OSError) as exc:
                problem = str(exc) if isinstance(exc, _ZygoteError) else f"the zygote is gone ({_describe(exc)})"
                for unanswered in (fork, *self._asked):
                    unanswered.error = problem
                self._asked.clear()
                return
            if status == "forked":
                fork.pid = detail
            else:
                fork.error = f"the zygote cannot fork a worker: {detail}"
            if fork is until:
                return

    def exit_code(self, pid: int) -> int | None:
        try:
            return self._ask(("exit_code", pid))[1]
        except _ZygoteError:
            return None

    def kill(self, pid: int) -> None:
        try:
            self._ask(("kill", pid))
        except _ZygoteError:
            pass

    def close(self, *, wait: bool = True) -> None:
        """Stop it (it waits up to 5 s for its workers, then kills them); ``wait=False``:
        only ask, and let :func:`_reap` wait for it."""
        if self.starting():
            # Still importing, so it has no workers yet: a run that found nothing to compute
            # need not wait for its imports to end before it is stopped.
            self.process.kill()
        try:
            self.connection.send(None)
        except (OSError, ValueError):
            pass
        if wait:
            _reap([self.process], timeout=10)
        self.connection.close()


def _reap(processes: Sequence[Any], timeout: float) -> None:
    """Wait for processes asked to stop; kill any still running after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except Exception:  # noqa: BLE001 - one that will not stop is killed
            process.kill()
            process.wait()


def _libraries_for(spec: MethodSpec) -> tuple[str, ...]:
    """The large libraries (:data:`_SHARED_LIBRARIES`) a worker for ``spec`` will import.

    A method that can run on CUDA is a torch method; so is a ``--model`` network. The class
    is looked up in this process's registry, where the runner found it; a class only a
    private registry holds is not found, and its worker imports torch itself.
    """
    torch = _SHARED_LIBRARIES["torch"]
    if spec.models:
        return torch + _SHARED_LIBRARIES["flop counter"]
    from srbench.registry import get_registry

    entry = get_registry().entries.get(spec.registered)
    if entry is None or "cuda" not in entry.cls.devices:
        return ()
    return torch if entry.builtin else torch + _SHARED_LIBRARIES["flop counter"]


def _fork_supported() -> bool:
    import socket

    # macOS and others: system frameworks are not fork-safe once loaded, and there is no
    # SCM_RIGHTS flag for close-on-exec; fresh interpreters are the safe choice there.
    return sys.platform.startswith("linux") and hasattr(os, "fork") and hasattr(socket, "send_fds")


class _Worker:
    """A process running :func:`_serve` for one method, talked to over a socket pair.

    Forked from the pool's zygote where it can be (see :class:`WorkerPool`), else a fresh
    interpreter: ``python -m srbench.isolation FD``, rather than a multiprocessing spawn,
    whose child re-imports the parent's main module and so breaks any user script that
    drives srbench without an ``if __name__ == "__main__"`` guard.
    """

    def __init__(
        self, spec: MethodSpec, zygote: _Zygote | None = None, *, wait: bool = True, fork: _Fork | None = None
    ) -> None:
        self.zygote = zygote
        self.process: Any = None
        self.outputs = _OutputBuffer()
        self._fork: _Fork | None = None
        self._pid: int | None = None
        if zygote is not None:
            # Asked, not waited for (or asked ahead: ``fork``): the spec is sent at once and
            # read once it is forked.
            self._fork = fork or zygote.fork_later(_libraries_for(spec))
            self.connection = self._fork.connection
        else:
            self.process, self.connection = _start_process(())
            self._pid = self.process.pid
        try:
            self.connection.send(spec)
        except OSError:
            pass  # it died before reading: _receive says so
        self.built = False
        if wait:
            self.wait_built()

    @property
    def pid(self) -> int:
        """The worker's pid (waiting for the zygote's answer; _ZygoteError if it forked none)."""
        if self._pid is None:
            assert self._fork is not None and self.zygote is not None
            self._pid = self.zygote.pid_of(self._fork)
        return self._pid

    def _known_pid(self) -> int | None:
        """The pid, where the zygote forked the worker (None where it has not, or could not)."""
        try:
            return self.pid
        except _ZygoteError:
            return None

    def wait_built(self) -> None:
        """Wait for the worker to say its method is built; WorkerError (and closed) if it is
        not, _ZygoteError (and closed) if the zygote could not fork it."""
        if self.built:
            return
        if self._fork is not None:
            try:
                self.pid
            except _ZygoteError:
                self.close()
                raise
        status, detail = self._receive()
        if status != "ready":
            self.close()
            raise WorkerError(detail)
        self.built = True

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        # Not this process's child: between requests nothing is due from a live worker, so
        # anything to read is the end of the line.
        try:
            return not self.connection.poll()
        except (OSError, ValueError):
            return False

    def exit_code(self) -> int | None:
        if self.process is None:
            pid = self._known_pid()
            return self.zygote.exit_code(pid) if self.zygote is not None and pid is not None else None
        try:
            return self.process.wait(timeout=2)
        except Exception:  # noqa: BLE001 - its line closed but it has not exited yet
            return self.process.poll()

    def ask_to_prepare(self, scales: Sequence[int]) -> None:
        """Send a ``prepare`` request (see :meth:`WorkerPool.prepare`); its answer is read later."""
        self.connection.send(("prepare", tuple(scales)))

    def answered(self) -> bool:
        """Whether an answer is waiting to be read (no wait)."""
        try:
            return bool(self.connection.poll(0))
        except (OSError, ValueError):
            return True  # the line is gone: reading says so at once

    def _receive(self) -> tuple[str, Any]:
        try:
            return self.connection.recv()
        except (EOFError, OSError):
            raise WorkerError(f"the method's worker process died (exit code {self.exit_code()})") from None

    def run(self, scale: int, x: np.ndarray, repeat: int, *, borrow: bool = False) -> dict[str, Any]:
        try:
            self.connection.send((scale, x, repeat))
        except OSError:
            pass  # dead: _receive says so
        status, detail = self._receive()
        if status != "ok":
            raise MethodError(detail)
        if isinstance(detail.get("sr"), _SharedOutput):
            try:
                detail["sr"] = self.outputs.unpack(detail["sr"], self.connection, copy=not borrow)
            except OSError:
                raise WorkerError(f"the method's worker process died (exit code {self.exit_code()})") from None
        return detail

    def stop(self) -> None:
        """Ask the worker to finish (it exits once it has read this)."""
        try:
            self.connection.send(None)
        except (OSError, ValueError):
            pass

    def wait(self, timeout: float = 5.0) -> None:
        """Wait for the worker to exit after :meth:`stop`; kill it after ``timeout`` seconds."""
        if self.process is not None:
            try:
                self.process.wait(timeout=timeout)
            except Exception:  # noqa: BLE001 - a worker that will not stop is killed
                self.process.kill()
                self.process.wait()
        else:
            try:  # its end of the line closes when it exits; the zygote then reaps it
                finished = self.connection.poll(timeout)
            except (OSError, ValueError):
                finished = True
            pid = self._known_pid() if not finished and self.zygote is not None else None
            if pid is not None:
                self.zygote.kill(pid)
        self.connection.close()
        self.outputs.close()

    def close(self) -> None:
        self.stop()
        self.wait()


class WorkerPool:
    """One cached worker per method spec; a worker that dies is replaced on next use.

    Starting a worker as a fresh interpreter costs its imports every time (torch alone is
    seconds). On Linux the pool therefore starts, at first use, a *zygote*: a fresh
    interpreter (``python -m srbench.isolation --zygote FD``, never a fork of this process,
    so it holds no image and none of the driver's memory) that imports numpy, scipy,
    srbench and its built-in methods once, torch too when a worker needs it, and then
    forks each worker on request. A forked worker loads plugins and ``--model`` networks
    itself (user code never runs in the zygote), applies ``spec.threads`` through the
    libraries' own calls, and serves as a fresh one would. Where fork is unavailable, for
    CUDA workers, or when the zygote fails, workers are fresh interpreters as before.

    Parameters
    ----------
    zygote : bool, optional
        False: every worker a fresh interpreter. Default: the ``SRBENCH_WORKER_START``
        environment variable (``spawn`` for fresh interpreters), else True.
    """

    def __init__(self, zygote: bool | None = None) -> None:
        if zygote is None:
            zygote = os.environ.get("SRBENCH_WORKER_START", "").strip().lower() != "spawn"
        self._workers: dict[MethodSpec, _Worker] = {}
        self._zygote: _Zygote | None = None
        #: Workers asked of the zygote ahead (see prestart), not yet given a method, by the
        #: large libraries they were forked with.
        self._spare: dict[tuple[str, ...], deque[_Fork]] = {}
        #: Why workers are fresh interpreters rather than forks of a zygote (None: they are forks).
        self.zygote_error: str | None = None
        if not zygote:
            self.zygote_error = "fresh interpreters asked for"
        elif not _fork_supported():
            self.zygote_error = "fork is not available on this platform"

    def prestart(self, specs: Iterable[MethodSpec] = ()) -> None:
        """Start the zygote now, without waiting for it, where workers will be its forks.

        Its imports (about 0.6 s) then overlap whatever the caller does before the first
        worker is needed (see :meth:`starting`); a zygote that fails to start is noticed
        then, as ever. A worker is asked for at once for each of ``specs`` (the methods the
        caller will run; settings may still change), those without torch first: the zygote
        forks them as soon as it is ready, then imports torch for the networks' workers,
        while the first build and prepare. A worker asked for ahead is given its method
        when :meth:`start` or :meth:`prepare` needs one that imports the same libraries.
        """
        if self.zygote_error is not None or self._zygote is not None:
            return
        self._zygote = _Zygote()
        libraries = sorted((_libraries_for(spec) for spec in specs if spec.device != "cuda"), key=bool)
        try:
            for needed in libraries:
                self._spare.setdefault(needed, deque()).append(self._zygote.fork_later(needed))
        except _ZygoteError:
            pass  # noticed again at the first worker's start

    def starting(self) -> bool:
        """Whether a prestarted zygote is still starting: time the caller may use (no wait)."""
        return self._zygote is not None and self._zygote.starting()

    def start(self, spec: MethodSpec, *, wait: bool = True) -> None:
        """Start the worker for ``spec`` now (its method built, models loaded), unless one is running.

        ``wait=False``: only started; the first request to it waits for its build.
        """
        worker = self._workers.get(spec)
        if worker is not None and (not worker.built or worker.alive()):
            return
        if worker is not None:
            self._discard(spec)
        self._workers[spec] = self._new_worker(spec, wait=wait)

    def prepare(self, scales: Mapping[MethodSpec, Sequence[int]], meanwhile: Callable[[], bool] | None = None) -> None:
        """Start the workers for ``scales``' specs and have each prepare its scales, side by side.

        A run calls this before its first timed call. The one-time work of each method's
        first call at a scale (``prepare``: A+'s regressors, a network's warm-up, loading
        compiled kernels; counting a network's MACs) otherwise runs one worker at a time
        between timed calls, while the driver waits: about 2.5 s of a cold paper-suite
        run. Here every worker works on it at once, on all cores, and nothing is timed
        meanwhile. ``meanwhile()`` is called while answers are due, until it returns False:
        the caller's own untimed work. A worker that cannot start or prepare is left for
        its cells, which meet the error again and record it.
        """
        asked = []
        # Workers that need no large library first: the zygote forks them at once, and
        # they build and prepare while it imports torch for the networks' workers.
        for spec, spec_scales in sorted(scales.items(), key=lambda item: bool(_libraries_for(item[0]))):
            try:
                # Not waiting for each to be forked and built: the builds (loading artifacts)
                # run side by side too, each worker reading its prepare request once built.
                self.start(spec, wait=False)
                self._workers[spec].ask_to_prepare(spec_scales)
                asked.append(spec)
            except (MethodError, OSError):
                self._discard(spec)
        for spec in asked:
            try:
                meanwhile = self._meanwhile(spec, meanwhile)
                if self._built(spec) is not None:
                    continue  # started afresh (the zygote could not fork it): prepared by its first call
                meanwhile = self._meanwhile(spec, meanwhile)
                self._workers[spec]._receive()
            except (WorkerError, OSError):
                self._discard(spec)

    def _meanwhile(self, spec: MethodSpec, meanwhile: Callable[[], bool] | None) -> Callable[[], bool] | None:
        """Call ``meanwhile()`` until ``spec``'s worker has an answer; None once it returns False."""
        while meanwhile is not None and not self._workers[spec].answered():
            if not meanwhile():
                return None
        return meanwhile

    def run(
        self, spec: MethodSpec, scale: int, x: np.ndarray, repeat: int = 1, *, borrow: bool = False
    ) -> dict[str, Any]:
        """The worker's answer for ``spec`` (see :func:`run_method`).

        ``borrow=True``: the output may be a read-only view of the worker's output buffer,
        valid only until the next call for ``spec`` (the runner scores it before then): it
        saves copying every output once more (0.15 ms a Set5/Set14 cell).
        """
        self.start(spec)
        try:
            self._built(spec)
            return self._workers[spec].run(scale, x, repeat, borrow=borrow)
        except WorkerError:
            self._discard(spec)
            raise

    def _built(self, spec: MethodSpec) -> _Worker | None:
        """Wait for ``spec``'s worker to be built (WorkerError if it cannot be).

        Where the zygote could not fork it, the pool stops using the zygote and starts the
        worker as a fresh interpreter instead (returned: it has had no request yet).
        """
        worker = self._workers[spec]
        try:
            worker.wait_built()
            return None
        except _ZygoteError as exc:
            self._zygote_failed(exc)
        worker = self._workers[spec] = _Worker(spec)
        return worker

    def _zygote_failed(self, exc: _ZygoteError) -> None:
        self.zygote_error = str(exc)
        self._release_spares()
        if self._zygote is not None:
            self._zygote.close()
            self._zygote = None

    def _release_spares(self) -> None:
        """Workers asked for ahead and never given a method: told to exit (their zygote reaps them)."""
        for forks in self._spare.values():
            for fork in forks:
                try:
                    fork.connection.send(None)
                except (OSError, ValueError):
                    pass
                fork.connection.close()
        self._spare.clear()

    def _discard(self, spec: MethodSpec) -> None:
        worker = self._workers.pop(spec, None)
        if worker is not None:
            worker.close()

    def _new_worker(self, spec: MethodSpec, *, wait: bool = True) -> _Worker:
        # CUDA workers stay fresh interpreters: the saving is small beside creating a CUDA
        # context, and forking is only safe while nothing in the zygote has touched CUDA.
        if self.zygote_error is None and spec.device != "cuda":
            try:
                if self._zygote is None:
                    self._zygote = _Zygote()
                spare = self._spare.get(_libraries_for(spec))
                return _Worker(spec, self._zygote, wait=wait, fork=spare.popleft() if spare else None)
            except _ZygoteError as exc:
                self._zygote_failed(exc)
        return _Worker(spec, wait=wait)

    def close(self, *, wait: bool = True) -> None:
        """Stop every worker, then the zygote (which reaps its workers); no process is left.

        ``wait=False``: return once every process has been asked to stop, and wait for their
        exits on a background thread. A process that loaded torch takes about 20 ms to be
        torn down, 0.2-0.3 s for the twelve workers of a paper-suite run, which a caller
        with more to do (the CLI writes the report next) need not sit through.
        """
        workers = list(self._workers.values())
        self._workers.clear()
        for worker in workers:  # all asked at once: they finish side by side
            worker.stop()
        self._release_spares()
        zygote, self._zygote = self._zygote, None
        if wait:
            for worker in workers:
                worker.wait()
            if zygote is not None:
                zygote.close()
            return
        processes = [worker.process for worker in workers if worker.process is not None]
        for worker in workers:  # a forked worker's exit is its zygote's to collect
            worker.connection.close()
            worker.outputs.close()
        if zygote is not None:
            zygote.close(wait=False)
            processes.append(zygote.process)
        if processes:
            import threading

            threading.Thread(target=_reap, args=(processes, 10.0), name="srbench-reap", daemon=True).start()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def freeze(settings: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """Settings as a hashable, picklable tuple (a spec is a cache key)."""
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in settings.items()))


def _main(argv: Sequence[str]) -> None:
    """``python -m srbench.isolation FD`` (a worker) or ``... --zygote FD`` (a pool's zygote)."""
    from multiprocessing.connection import Connection

    zygote = len(argv) == 2 and argv[0] == "--zygote"
    if not (len(argv) == 1 or zygote) or not argv[-1].isdigit():
        sys.exit("usage: python -m srbench.isolation [--zygote] FD (started by srbench, not by hand)")
    connection = Connection(int(argv[-1]))
    if zygote:
        connection = _zygote(connection)
        if connection is None:  # the zygote, done: it ran no user code, so no atexit is owed
            _exit(run_atexit=False)
    spec = connection.recv()
    if spec is not None:  # None: a worker asked for ahead and never given a method
        _serve(connection, spec)
    connection.close()
    _exit(run_atexit=True)


def _exit(*, run_atexit: bool) -> None:
    """End the process without the interpreter's module teardown.

    With torch loaded the teardown takes about a second, and the driver's ``close()`` waits
    for every worker and the zygote to be gone. A worker's ``atexit`` handlers (a plugin's
    clean-up) still run, and standard output and error are flushed.
    """
    import atexit

    if run_atexit:
        atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001, S110 - nowhere left to report it
            pass
    os._exit(0)


if __name__ == "__main__":
    # Run from the imported module, not this __main__ copy: one set of classes and caches.
    from srbench.isolation import _main as main

    main(sys.argv[1:])
