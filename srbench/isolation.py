"""Methods run in worker processes that never hold the ground truth.

The driver makes the LR input and scores the output; a worker receives only the method's
input and the scale, and sends back only the output, its timing and its footprint. No plugin
can read the answer from memory, by accident or on purpose (DESIGN.md section 5). Workers
are started with ``spawn`` (a forked child would inherit the driver's memory, HR images
included) and cached: one per method, kept across images, so a model is loaded once.

What a worker computes for a cell is :func:`run_method`; the same function serves the local
process pool and Dask, whose tasks likewise carry no HR image.
"""

from __future__ import annotations

import os
import sys
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from srbench.method import Method, MethodError

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


def _prepare_once(method: Method, scale: int) -> None:
    """``prepare`` is one-time work: a cached worker does it for its first image of a scale only.

    A CNN's warm-up probe costs a few milliseconds, which per image would be a visible share of
    a small network's time on Set5.
    """
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
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    return _status_kb("VmRSS") * 1024.0


def _memory_peak(cuda: bool, before: float) -> float | None:
    if cuda:
        import torch

        return max(0.0, float(torch.cuda.max_memory_allocated()) - before) / 2**20
    peak = _status_kb("VmHWM") * 1024.0
    return max(0.0, peak - before) / 2**20 if peak else None


def _status_kb(field_name: str) -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    return 0.0


_EFFICIENCY: dict[tuple[int, int], dict[str, Any]] = {}


def _efficiency(method: Method, scale: int) -> dict[str, Any]:
    key = (id(method), scale)
    if key not in _EFFICIENCY:
        counts = method.efficiency(scale) if hasattr(method, "efficiency") else None
        _EFFICIENCY[key] = dict(counts) if counts else {"parameters": None, "macs": None}
    return _EFFICIENCY[key]


# ---------------------------------------------------------------------- the worker process
def _serve(connection: Any, spec: MethodSpec) -> None:
    """Worker main loop: build the method once, then answer (scale, x, repeat) requests."""
    if spec.threads:
        os.environ["OMP_NUM_THREADS"] = str(spec.threads)
    try:
        method = build_method(spec)
        if spec.threads and "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(spec.threads)
        connection.send(("ready", None))
    except BaseException as exc:  # noqa: BLE001 - reported to the driver, which goes on
        connection.send(("error", _describe(exc)))
        return
    while True:
        try:
            request = connection.recv()
        except EOFError:
            return
        if request is None:
            return
        scale, x, repeat = request
        try:
            connection.send(("ok", run_method(method, x, scale, repeat)))
        except BaseException as exc:  # noqa: BLE001
            connection.send(("error", _describe(exc)))


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Worker:
    """A fresh interpreter running :func:`_serve`, talked to over a socket pair.

    Started as ``python -m srbench.isolation FD`` rather than by multiprocessing: a spawned
    multiprocessing child re-imports the parent's main module, which breaks any user script
    that drives srbench without an ``if __name__ == "__main__"`` guard.
    """

    def __init__(self, spec: MethodSpec) -> None:
        import socket
        import subprocess
        from multiprocessing.connection import Connection

        mine, theirs = socket.socketpair()
        with theirs:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "srbench.isolation", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
            )  # fmt: skip
        self.connection = Connection(mine.detach())
        self.connection.send(spec)
        status, detail = self._receive()
        if status != "ready":
            self.close()
            raise WorkerError(detail)

    def alive(self) -> bool:
        return self.process.poll() is None

    def _receive(self) -> tuple[str, Any]:
        try:
            return self.connection.recv()
        except (EOFError, OSError):
            code = self.process.poll()
            raise WorkerError(f"the method's worker process died (exit code {code})") from None

    def run(self, scale: int, x: np.ndarray, repeat: int) -> dict[str, Any]:
        self.connection.send((scale, x, repeat))
        status, detail = self._receive()
        if status != "ok":
            raise MethodError(detail)
        return detail

    def close(self) -> None:
        try:
            self.connection.send(None)
        except (OSError, ValueError):
            pass
        try:
            self.process.wait(timeout=5)
        except Exception:  # noqa: BLE001 - a worker that will not stop is killed
            self.process.kill()
            self.process.wait()
        self.connection.close()


class WorkerPool:
    """One cached worker per method spec; a worker that dies is replaced on next use."""

    def __init__(self) -> None:
        self._workers: dict[MethodSpec, _Worker] = {}

    def run(self, spec: MethodSpec, scale: int, x: np.ndarray, repeat: int = 1) -> dict[str, Any]:
        worker = self._workers.get(spec)
        if worker is None or not worker.alive():
            worker = self._workers[spec] = _Worker(spec)
        try:
            return worker.run(scale, x, repeat)
        except WorkerError:
            self._workers.pop(spec, None)
            raise

    def close(self) -> None:
        for worker in self._workers.values():
            worker.close()
        self._workers.clear()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def freeze(settings: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """Settings as a hashable, picklable tuple (a spec is a cache key)."""
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in settings.items()))


if __name__ == "__main__":  # a worker: python -m srbench.isolation FD
    from multiprocessing.connection import Connection

    channel = Connection(int(sys.argv[1]))
    _serve(channel, channel.recv())
