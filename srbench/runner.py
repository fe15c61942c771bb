"""Run the grid datasets x methods x scales, skipping cells the store already holds.

The data flows one way: dataset -> protocol.degrade -> method.upscale -> metrics -> store.
Methods run in worker processes that receive only their input and the scale
(:mod:`srbench.isolation`); the driver makes the inputs, scores the outputs and alone writes
the store. Serial by default so timings stay honest: one cached worker per method, used one
cell at a time; ``jobs > 1`` runs a local process pool with one thread per worker, and
``executor="dask"`` sends the same cell tasks to a Dask cluster.

A run that computes anything first records itself in the store (:func:`start_run`): machine,
GPU, library versions, git revision and concurrency, measured then, and every row it writes
names that record. The report reads it from there, whenever and wherever it is made.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from srbench.datasets import Dataset, load_dataset
from srbench.imageio import ImageError
from srbench.isolation import (
    MethodSpec,
    ModelSpec,
    WorkerPool,
    build_method,
    freeze,
    register_models,
    run_method,
)
from srbench.method import Method, MethodError
from srbench.outputs import save_output
from srbench.protocols import DEFAULT_PROTOCOL, Protocol, get_protocol
from srbench.registry import Registry, get_registry
from srbench.store import CellKey, Result, ResultStore, RunInfo, canonical_params
from srbench.variants import run_settings, split_variant, variant_names

__all__ = [
    "RunConfig", "RunSummary", "Runner", "measure_environment", "resolve_device", "start_run",
    "validate_output",
]  # fmt: skip


@dataclass
class RunConfig:
    methods: Sequence[str]
    datasets: Sequence[str]
    scales: Sequence[int]
    data_dir: str | Path | None = None
    device: str = "auto"
    jobs: int = 1
    executor: str = "local"
    scheduler: str | None = None
    plugins: Sequence[str] = ()
    force: bool = False
    repeat: int = 1
    protocol: str = DEFAULT_PROTOCOL.name
    #: ``KEY=VALUE`` parameter settings for every method run (see :mod:`srbench.variants`).
    settings: Sequence[str] = ()
    #: Users' PyTorch modules brought in with ``--model`` (registered under their names).
    models: Sequence[ModelSpec] = ()
    #: Keep each scored output as a PNG beside the store (:mod:`srbench.outputs`), for the
    #: report's visual comparisons.
    save_outputs: bool = True


@dataclass
class RunSummary:
    cached: int = 0
    run: int = 0
    failed: int = 0
    bad_images: int = 0
    unsupported: int = 0
    #: Cells skipped because the method's channels do not fit the protocol (RGB under matlab).
    incompatible: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    #: The names the results were stored under (a variant's own, e.g. fsrcnn[border=layers]).
    methods: list[str] = field(default_factory=list)
    #: The id of the run recorded for the cells computed; None when everything was cached.
    run_id: str | None = None

    def line(self) -> str:
        parts = [f"{self.cached} cached", f"{self.run} run"]
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.bad_images:
            parts.append(f"{self.bad_images} bad images")
        if self.unsupported:
            parts.append(f"{self.unsupported} skipped (scale not supported)")
        if self.incompatible:
            parts.append(f"{self.incompatible} skipped (RGB methods: use -p matlab-rgb)")
        return ", ".join(parts) + f" in {self.seconds:.1f} s"


class RunError(Exception):
    """A run that cannot start (unknown method, missing dataset)."""


def resolve_device(method: Method, requested: str) -> str:
    """``auto`` picks CUDA when the method supports it and a GPU is present."""
    requested = requested.lower()
    if requested not in ("auto", "cpu", "cuda"):
        raise RunError(f"unknown device {requested!r}; use auto, cpu or cuda")
    if "cuda" not in method.devices:
        if requested == "cuda":
            raise RunError(f"{method.name} does not run on CUDA")
        return "cpu"
    if requested == "cpu":
        return "cpu"
    available = False
    if _gpu_driver_possible():
        try:
            import torch

            available = torch.cuda.is_available()
        except ImportError:
            pass
    if requested == "cuda" and not available:
        raise RunError("--device cuda asked for, but no CUDA device is available")
    return "cuda" if available else "cpu"


def _gpu_driver_possible() -> bool:
    """False only where no GPU driver can be present: Linux without NVIDIA's, WSL's or ROCm's
    device nodes.

    Asking torch costs its import (1-2 s in the driver, which otherwise never needs it), for
    an answer these files already give on a CPU-only Linux machine.
    """
    if not sys.platform.startswith("linux"):
        return True
    nodes = ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/dxg", "/dev/kfd")
    return any(os.path.exists(node) for node in nodes)


def validate_output(sr: Any, expected_shape: tuple[int, ...]) -> np.ndarray:
    """Reject a wrong shape, NaN/inf or out-of-range output with a clear message."""
    if not isinstance(sr, np.ndarray):
        raise MethodError(f"returned {type(sr).__name__}, not a numpy array")
    if sr.shape != tuple(expected_shape):
        raise MethodError(f"returned shape {sr.shape}, expected {tuple(expected_shape)}")
    if not np.all(np.isfinite(sr)):
        raise MethodError("returned NaN or infinite values")
    low, high = float(sr.min()), float(sr.max())
    if low < 0.0 or high > 1.0:
        raise MethodError(f"returned values in [{low:.3g}, {high:.3g}], outside [0, 1]")
    return sr


def score_output(
    protocol: Protocol, sr: Any, hr: np.ndarray, lr: np.ndarray, scale: int, channels: str
) -> tuple[float, float, np.ndarray]:
    """Check a method's output and score it under ``protocol`` (done where the HR image is).

    Returns PSNR, SSIM and the uint8 image that was scored.
    """
    image = scored_image(protocol, sr, hr, lr, channels)
    psnr, ssim = protocol.score(image, hr, lr, scale)
    return psnr, ssim, image


def scored_image(protocol: Protocol, sr: Any, hr: np.ndarray, lr: np.ndarray, channels: str) -> np.ndarray:
    """A method's output checked and turned into the uint8 image ``protocol`` scores."""
    expected = hr.shape[:2] + ((3,) if channels == "rgb" else ())
    return protocol.output_image(validate_output(sr, expected), lr)


# ---------------------------------------------------------------------- provenance
#: The libraries whose versions a run records (those installed).
LIBRARIES = ("numpy", "scipy", "scikit-learn", "torch")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if sys.platform == "darwin":  # platform.processor() only says "arm" or "i386" there
        try:
            out = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True,
                                 text=True, timeout=5, check=False)  # fmt: skip
            if out.stdout.strip():
                return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine()


def _git_revision(root: Path | None = None) -> str:
    """``git describe --always --dirty`` of the checkout srbench runs from; "" outside one.

    ``-dirty`` means tracked files differ from the commit (untracked files do not count, nor
    changes under ``reports/``, which ``make bench`` itself rewrites after every run).
    ``root`` is the folder that must be the checkout's top (srbench's own, by default).
    """
    root = (root or Path(__file__).resolve().parents[1]).resolve()

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=10, check=False)  # fmt: skip

    try:
        # An installed srbench may sit inside another project's checkout (a virtual env in
        # it); that project's revision says nothing about the code that ran.
        top = git("rev-parse", "--show-toplevel")
        if top.returncode != 0 or Path(top.stdout.strip()).resolve() != root:
            return ""
        described = git("describe", "--always", "--abbrev=12").stdout.strip()
        # A changed reports/ is what `make bench` writes: it changes nothing that ran.
        changed = git("--no-optional-locks", "status", "--porcelain", "--untracked-files=no",
                      "--", ".", ":(exclude)reports")  # fmt: skip
        return f"{described}-dirty" if described and changed.stdout.strip() else described
    except (OSError, subprocess.SubprocessError):
        return ""


def _library_versions() -> dict[str, str]:
    # Installed versions from package metadata: nothing is imported (torch takes seconds).
    from importlib import metadata

    import srbench

    # srbench's own version by import name: its distribution name (srbench-sisr) differs.
    versions = {"srbench": srbench.__version__}
    for package in LIBRARIES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _gpu_name() -> str:
    """The current CUDA device and CUDA version; "" when torch is not loaded or sees no GPU.

    Only asked when a cell runs on CUDA, so torch is already imported by then.
    """
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return ""
    name = torch.cuda.get_device_name(torch.cuda.current_device())
    return f"{name}, CUDA {torch.version.cuda}" if torch.version.cuda else name


def measure_environment(*, cuda: bool) -> dict[str, Any]:
    """Where cells are being computed, measured now: the :attr:`RunInfo.ENVIRONMENT` fields.

    Parameters
    ----------
    cuda : bool
        Whether cells run on CUDA here; the GPU is named only then.
    """
    return {
        "cpu": _cpu_name(),
        "cores": os.cpu_count() or 1,
        "system": f"{platform.system()} {platform.release()}",
        "gpu": _gpu_name() if cuda else "",
        "python": platform.python_version(),
        "libraries": _library_versions(),
        "revision": _git_revision(),
    }


def start_run(store: ResultStore, *, jobs: int = 1, executor: str = "local", cuda: bool = False) -> RunInfo:
    """Measure this machine, record a new run in ``store`` and return it.

    Called once per run, before its first result is written, so that a run killed part-way
    leaves results that still say where they came from.
    """
    run = RunInfo(id=uuid.uuid4().hex, started=time.time(), jobs=jobs, executor=executor,
                  **measure_environment(cuda=cuda))  # fmt: skip
    store.put_run(run)
    return run


# ---------------------------------------------------------------------- method set-up
def resolve_variants(
    registry: Registry, specs: Iterable[str], settings: Sequence[str] = ()
) -> list[tuple[type[Method], dict[str, Any]]]:
    """The methods a run asks for, each with its parsed settings, once per variant.

    ``specs`` are names, wildcards or variant names (``fsrcnn[border=layers]``); ``settings``
    (``--set``) apply to every method, and a variant's own settings come after them.

    Raises
    ------
    UnknownMethodError
        For a name nothing matches.
    RunError
        For a setting a method does not accept: the user's mistake stops the run here,
        before any cell is computed.
    """
    out: list[tuple[type[Method], dict[str, Any]]] = []
    seen: set[str] = set()
    for spec in specs:
        pattern, inline = split_variant(spec)
        if not pattern:
            continue
        for cls in registry.resolve([pattern]):
            try:
                parsed = run_settings(cls, [*settings, *inline])
            except MethodError as exc:
                raise RunError(str(exc)) from None
            name, _ = variant_names(cls, parsed)
            if name not in seen:
                seen.add(name)
                out.append((cls, parsed))
    return out


def instantiate(
    cls: type[Method], device: str, settings: Mapping[str, Any] | None = None
) -> tuple[Method, str]:
    method = cls()
    if settings:
        method.set_params(**settings)
    chosen = resolve_device(method, device)
    if "device" in method.get_params():
        method.set_params(device=chosen)
    if method.trainable:
        method.load()
    return method, chosen


# ---------------------------------------------------------------------- worker side
_WORKER_METHODS: dict[MethodSpec, Method] = {}
_WORKER_ENVIRONMENT: dict[bool, dict[str, Any]] = {}


def _worker_init() -> None:
    # One thread per worker: N workers on N cores, timings not skewed by oversubscription.
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass


def _worker_cell(task: dict) -> dict:
    """Run one cell's method in a pool or Dask worker: the method's input in, its output out.

    The task holds no HR image; the driver scores what comes back.
    """
    _worker_init()
    spec: MethodSpec = task["spec"]
    try:
        if spec not in _WORKER_METHODS:
            _WORKER_METHODS[spec] = build_method(spec)
        method = _WORKER_METHODS[spec]
        torch = sys.modules.get("torch")
        if torch is not None:
            torch.set_num_threads(1)
        outcome = {"status": "ok", "error": "", **run_method(method, task["x"], task["scale"], task["repeat"])}
        if task.get("environment"):
            # A Dask worker may be another machine: it says where it computed the cell.
            cuda = spec.device == "cuda"
            if cuda not in _WORKER_ENVIRONMENT:
                environment = measure_environment(cuda=cuda)
                if not cuda:
                    environment["gpu"] = None  # used no GPU: any run's GPU fits this cell
                _WORKER_ENVIRONMENT[cuda] = environment
            outcome["environment"] = _WORKER_ENVIRONMENT[cuda]
        return outcome
    except Exception as exc:  # noqa: BLE001 - a failing cell never stops the grid
        return {"status": "failed", "error": _describe(exc)}


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# ---------------------------------------------------------------------- driver
class _Source:
    """One image as its ground truths at every scale start from (``Protocol.prepare_image``:
    its luminance under ``matlab``), made once and kept while inputs made from it are."""

    def __init__(self, pixels: np.ndarray, protocol: Protocol) -> None:
        self.pixels, self._protocol = pixels, protocol
        self._prepared: np.ndarray | None = None
        self.users = 0  # _Inputs of this image still to be used

    def prepared(self) -> np.ndarray:
        if self._prepared is None:
            self._prepared = self._protocol.prepare_image(self.pixels)
        return self._prepared

    def release(self) -> None:
        self.users -= 1
        if self.users <= 0:
            self._prepared = None


class _Inputs:
    """Ground truth and LR of one image at one scale, made only if some cell needs computing."""

    def __init__(self, source: _Source, scale: int, protocol: Protocol) -> None:
        self._source, self._scale, self._protocol = source, scale, protocol
        self._pixels = source.pixels
        self._pair: tuple[np.ndarray, np.ndarray] | None = None
        #: Cells still to use these inputs; at zero the HR and LR images are let go, so a
        #: run holds only the images it is working on, not the whole suite's.
        self.users = 0
        source.users += 1

    def release(self) -> None:
        self.users -= 1
        if self.users <= 0 and self._source is not None:
            self._pair = None
            self._source.release()
            self._source = None

    @property
    def size(self) -> tuple[int, int]:
        """Width and height of the HR image (after ``modcrop``), without making it."""
        height, width = self._pixels.shape[:2]
        return width - width % self._scale, height - height % self._scale

    def get(self) -> tuple[np.ndarray, np.ndarray]:
        if self._pair is None:
            # Its own read-only copy: scoring may then keep statistics of it between cells
            # (see srbench.metrics), as nothing can change it.
            assert self._source is not None, "inputs used after their last cell"
            hr = np.array(self._protocol.ground_truth(self._source.prepared(), self._scale))
            hr.setflags(write=False)
            self._pair = (hr, self._protocol.degrade(hr, self._scale))
        return self._pair

    def method_input(self, channels: str) -> np.ndarray:
        return self._protocol.method_input(self.get()[1], channels)


def _read_images_ahead(images: Sequence[Any]) -> None:
    """Decode the images on every core before the plan walks them (PIL releases the GIL):
    a warm standard-suite run reads 229 of them only to hash them. A bad image is left for
    the plan, which reads it again and records its error."""
    from concurrent.futures import ThreadPoolExecutor

    def read(image: Any) -> None:
        try:
            image.pixels()
        except ImageError:
            pass

    threads = min(len(images), os.cpu_count() or 1)
    if threads > 1:
        with ThreadPoolExecutor(threads, thread_name_prefix="srbench-read") as pool:
            list(pool.map(read, images))


def _release(cell: _Cell) -> None:
    if cell.inputs is not None:
        cell.inputs.release()


@dataclass
class _Cell:
    result: Result
    inputs: _Inputs | None
    method: Method | None
    #: The registered method and the settings it runs with (a variant's name is not in the
    #: registry).
    registered: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    #: How a worker process builds the same method.
    spec: MethodSpec | None = None
    channels: str = "y"


class Runner:
    """Runs a :class:`RunConfig` against a :class:`ResultStore`.

    Parameters
    ----------
    store : ResultStore
    registry : Registry, optional
    progress : callable, optional
        ``progress(total)`` returns an object with ``advance(description)`` (a cell is done)
        and ``close()``, and optionally ``working(description)``, told which cell is being
        computed before it starts: one Urban100 image can take minutes, and a bar that only
        moves when a cell ends looks frozen meanwhile. The CLI passes a rich progress bar.
    log : callable, optional
        Receives one line per notable event (plugin or method failures).
    """

    def __init__(
        self,
        store: ResultStore,
        registry: Registry | None = None,
        *,
        progress: Callable[[int], Any] | None = None,
        log: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.store = store
        self.registry = registry or get_registry()
        self.progress = progress
        self.log = log
        #: The run being recorded (see :func:`start_run`), and the runs derived from it for
        #: Dask workers on other machines, by their environment.
        self._run: RunInfo | None = None
        self._worker_runs: dict[str, str] = {}

    def plan(
        self,
        config: RunConfig,
        *,
        resolved: Callable[[Sequence[tuple[type[Method], dict[str, Any]]], Sequence[Dataset]], None] | None = None,
    ) -> tuple[list[_Cell], RunSummary]:
        """Every cell of the grid with its key, and what can already be counted.

        ``resolved(variants, datasets)`` is called once the methods and datasets are known,
        before the methods are set up and the images read.
        """
        protocol = get_protocol(config.protocol)
        for plugin in config.plugins:
            self.registry.load_plugin(plugin)
        if config.models:
            register_models(config.models)
        variants = resolve_variants(self.registry, config.methods, config.settings)
        if not variants:
            raise RunError("no methods to run")
        scales = sorted({int(s) for s in config.scales})
        datasets: list[Dataset] = [load_dataset(name, config.data_dir) for name in config.datasets]
        if resolved is not None:
            resolved(variants, datasets)

        summary = RunSummary(methods=[variant_names(cls, settings)[0] for cls, settings in variants])
        methods: list[tuple[type[Method], Method | None, str, str, dict[str, Any], tuple[str, str]]] = []
        for cls, settings in variants:
            names = variant_names(cls, settings)
            try:
                method, device = instantiate(cls, config.device, settings)
                methods.append((cls, method, device, "", settings, names))
            except RunError:
                raise
            except Exception as exc:  # noqa: BLE001 - a broken method must not stop the others
                message = _describe(exc)
                self.log(f"{cls.name}: cannot be set up: {message}")
                methods.append((cls, None, "cpu", message, settings, names))

        # Workers load --plugin files by absolute path: they may run in another folder.
        plugins = tuple(str(Path(p).resolve()) if Path(p).exists() else p for p in config.plugins)
        rgb_under_y = [n for cls, _, _, _, _, (n, _) in methods if not protocol.accepts(cls.channels)]
        if rgb_under_y:
            self.log(f"{', '.join(rgb_under_y)}: RGB methods are scored under -p matlab-rgb; skipped under -p {protocol.name}")
        _read_images_ahead([image for dataset in datasets for image in dataset.images])
        cells: list[_Cell] = []
        # A method's artifacts (A+'s regressors: 19 MB at x4) hash once per scale, not per cell.
        artifact_hashes: dict[tuple[int, int], str] = {}
        for dataset in datasets:
            for image in dataset.images:
                try:
                    pixels = image.pixels()
                    image_hash = image.content_hash()
                    image_error = ""
                except ImageError as exc:
                    pixels, image_hash, image_error = None, "", str(exc)
                source = _Source(pixels, protocol) if pixels is not None else None
                for scale in scales:
                    inputs = None
                    if pixels is not None:
                        if min(pixels.shape[:2]) // scale * scale < 2 * scale + 11:
                            height, width = pixels.shape[:2]
                            image_error = f"{image.name}: {width}x{height} is too small for x{scale}"
                        else:
                            inputs = _Inputs(source, scale, protocol)
                    for cls, method, device, setup_error, settings, (name, label) in methods:
                        if scale not in cls.scales:
                            summary.unsupported += 1
                            continue
                        if not protocol.accepts(cls.channels):
                            summary.incompatible += 1
                            continue
                        params = canonical_params(method.key_params()) if method else "{}"
                        artifact = ""
                        if method is not None:
                            memo = (id(method), scale)
                            if memo not in artifact_hashes:
                                artifact_hashes[memo] = method.artifact_hash(scale)
                            artifact = artifact_hashes[memo]
                        key = CellKey(
                            cls.name, cls.version, params, artifact, dataset.name,
                            image_hash or f"unreadable:{image.path.name}", scale, protocol.name, device,
                        )  # fmt: skip
                        result = Result(
                            method=name, label=label, dataset=dataset.name, image=image.name,
                            scale=scale, psnr=None, ssim=None, seconds=None, device=device,
                            protocol=protocol.name, method_version=cls.version, params=params,
                            artifact_hash=artifact, image_hash=image_hash, repeat=config.repeat,
                            jobs=config.jobs, key=key.digest(),
                        )  # fmt: skip
                        if image_error:
                            result.status, result.error = "bad_image", image_error
                        elif setup_error:
                            result.status, result.error = "failed", setup_error
                        elif method is not None and scale not in method.fitted_scales:
                            result.status = "failed"
                            result.error = f"no trained artifacts for x{scale} (run `srbench train {cls.name} -s {scale}`)"
                        spec = MethodSpec(
                            cls.name, freeze(settings), device, plugins + self._origin(cls),
                            tuple(config.models), cls.version,
                        )  # fmt: skip
                        if inputs is not None:
                            inputs.users += 1
                        cells.append(_Cell(result, inputs, method, cls.name, settings, spec, cls.channels))
        return cells, summary

    def _origin(self, cls: type[Method]) -> tuple[str, ...]:
        """The plugin a worker loads to find ``cls`` as this registry did (entry points it finds itself)."""
        entry = self.registry.entries.get(cls.name)
        origin = entry.origin if entry is not None else ""
        if origin.startswith("module "):
            return (origin.removeprefix("module "),)
        if origin and Path(origin).is_file():
            return (origin,)
        module = sys.modules.get(cls.__module__)
        if origin == "python" and module is not None and getattr(module, "__file__", None) and cls.__module__ != "__main__":
            return (cls.__module__,)  # registered by importing its module: the worker does too
        return ()

    def run(self, config: RunConfig) -> RunSummary:
        start = time.perf_counter()
        if config.jobs < 1:
            raise RunError("--jobs must be at least 1")
        if config.repeat < 1:
            raise RunError("--repeat must be at least 1")
        if config.executor not in ("local", "dask"):
            raise RunError(f"unknown executor {config.executor!r}; use local or dask")
        # A serial run's method workers; started early where the run looks cold (see _start_early).
        workers = WorkerPool() if config.executor == "local" and config.jobs == 1 else None
        try:
            return self._execute(config, start, workers)
        finally:
            if workers is not None:
                # Every cell is stored: the workers' exits are waited for in the background.
                workers.close(wait=False)

    def _start_early(
        self, workers: WorkerPool, config: RunConfig, variants: Sequence[tuple[type[Method], dict[str, Any]]], datasets: Sequence[Dataset]
    ) -> None:
        """Start the workers' zygote while the plan is made, where the run will compute cells.

        Its start (its imports and compiled kernels: 0.6 s) is then under way while the
        plan sets up the methods and reads the images (0.4 s for the paper suite). Guessed
        from the store before the cells' keys are known: ``--force``, or none of these
        methods has a result on these datasets, as in a first run. Otherwise the run starts
        it once it knows there is work to do, as ever; a zygote started for nothing is
        stopped at once.
        """
        if config.device == "cuda":
            return  # cuda: workers are fresh interpreters
        names = [variant_names(cls, settings)[0] for cls, settings in variants]
        if not config.force and self.store.holds_any(names, [d.name for d in datasets]):
            return
        try:
            # Provisional specs: the zygote is told which workers will need torch.
            workers.prestart([MethodSpec(cls.name, models=tuple(config.models)) for cls, _ in variants])
        except OSError:
            pass  # no process to be had now: the run tries again when it needs its workers

    def _execute(self, config: RunConfig, start: float, workers: WorkerPool | None) -> RunSummary:
        early = (lambda variants, datasets: self._start_early(workers, config, variants, datasets)) if workers else None
        cells, summary = self.plan(config, resolved=early)
        cached = set() if config.force else self.store.cached_keys(c.result.key for c in cells)
        todo: list[_Cell] = []
        for cell in cells:
            if cell.result.key in cached:
                summary.cached += 1
                _release(cell)
            else:
                todo.append(cell)
        if todo:
            # Cached cells keep the run that produced them; only what is computed now is this run's.
            self._run = start_run(self.store, jobs=config.jobs, executor=config.executor,
                                  cuda=any(c.result.device == "cuda" for c in todo))  # fmt: skip
            self._worker_runs = {}
            summary.run_id = self._run.id
            for cell in todo:
                cell.result.run = self._run.id

        bar = self.progress(len(todo)) if self.progress and todo else None
        # The thread that writes outputs while a cell is scored (see _score).
        self._saving = ThreadPoolExecutor(1, thread_name_prefix="srbench-save")
        try:
            ready = [c for c in todo if c.result.status == "ok"]
            for cell in todo:
                if cell.result.status != "ok":
                    self._finish(cell.result, summary, bar)
                    _release(cell)
            if config.executor == "dask":
                self._run_pool(ready, config, summary, bar, dask=True)
            elif config.jobs > 1:
                self._run_pool(ready, config, summary, bar, dask=False)
            else:
                assert workers is not None
                self._run_serial(ready, config, summary, bar, workers)
        finally:
            self._saving.shutdown()
            if bar is not None:
                bar.close()
        summary.seconds = time.perf_counter() - start
        return summary

    # ------------------------------------------------------------------ execution
    def _finish(self, result: Result, summary: RunSummary, bar: Any) -> None:
        result.created = time.time()
        self.store.put(result)
        if result.status == "ok":
            summary.run += 1
        elif result.status == "bad_image":
            summary.bad_images += 1
        else:
            summary.failed += 1
        if result.status != "ok":
            line = f"{result.method} {result.dataset}/{result.image} x{result.scale}: {result.error}"
            if line not in summary.failures:
                summary.failures.append(line)
                self.log(line)
        if bar is not None:
            bar.advance(f"{result.label} {result.dataset}/{result.image} x{result.scale}")

    @staticmethod
    def _working(bar: Any, cell: _Cell, prefix: str = "computing") -> None:
        """Tell the progress display which cell is being computed (method, image, scale, size)."""
        show = getattr(bar, "working", None)
        if show is None:
            return
        r = cell.result
        size = f" ({cell.inputs.size[0]}x{cell.inputs.size[1]})" if cell.inputs is not None else ""
        show(f"{prefix} {r.label} {r.dataset}/{r.image} x{r.scale}{size}")

    def _run_serial(
        self, cells: Iterable[_Cell], config: RunConfig, summary: RunSummary, bar: Any, workers: WorkerPool
    ) -> None:
        protocol = get_protocol(config.protocol)
        cells = list(cells)
        ahead = self._work_ahead(cells, protocol)

        def step() -> bool:
            return next(ahead, False) is None

        scales: dict[MethodSpec, list[int]] = {}
        for cell in cells:
            if cell.spec is not None and cell.spec.device != "cuda":
                spec_scales = scales.setdefault(cell.spec, [])
                if cell.result.scale not in spec_scales:
                    spec_scales.append(cell.result.scale)
        show = getattr(bar, "working", None)
        if show is not None and scales:
            show(f"starting {len(scales)} method worker{'s' if len(scales) > 1 else ''}")
        if scales:
            workers.prestart(scales)
            while workers.starting() and step():
                pass
        workers.prepare(scales, meanwhile=step)
        for cell in cells:
            result = cell.result
            self._working(bar, cell)
            try:
                assert cell.spec is not None and cell.inputs is not None
                x = cell.inputs.method_input(cell.channels)
                # Borrowed: scored (and the scored image made) before this worker's next call.
                outcome = workers.run(cell.spec, result.scale, x, config.repeat, borrow=True)
                self._score(cell, outcome, protocol, config.save_outputs)
                del outcome
            except Exception as exc:  # noqa: BLE001 - record the failure, run the rest
                result.status, result.error = "failed", _describe(exc)
            self._finish(result, summary, bar)
            _release(cell)

    @staticmethod
    def _work_ahead(cells: Sequence[_Cell], protocol: Protocol) -> Iterator[None]:
        """The driver's first-use work, a step per ``next``: for the waits before the first timed call.

        While the workers' zygote starts (0.6 s) and the workers prepare, the
        driver's core would be idle. Each step makes the next cell's inputs (the first step
        also loads the scoring code, its compiled kernels, on a corner of that image scored
        against itself); inputs made ahead are held until their cells run, at most as many
        as the waits leave time for. A step that fails ends the work: the cell meets the
        error again and records it.
        """
        warm = True
        for cell in cells:
            if cell.inputs is None:
                continue
            try:
                hr, lr = cell.inputs.get()
                if warm:
                    warm = False
                    corner = hr[: 4 * 11, : 4 * 11]
                    protocol.score(corner, corner, lr, cell.result.scale)
            except Exception:  # noqa: BLE001
                return
            yield None

    def _score(self, cell: _Cell, outcome: Mapping[str, Any], protocol: Protocol, keep: bool) -> None:
        """Score a worker's output here, where the HR image is, and keep its measurements."""
        assert cell.inputs is not None
        hr, lr = cell.inputs.get()
        result = cell.result
        image = scored_image(protocol, outcome["sr"], hr, lr, cell.channels)
        saving = None
        if keep and self.store.path is not None:
            # The PNG is written on another thread while this one scores (zlib, hashing, the
            # file and the SSIM kernel all release the GIL): both are done before the next
            # timed call starts, so the workers' calls still have the machine to themselves.
            saving = self._saving.submit(save_output, self.store.path, image)
        try:
            # The saving thread has the other core: SSIM's map is made on this one alone.
            from srbench import ssim_kernel  # here: it loads numba, which a plan does not need

            with ssim_kernel.one_thread() if saving is not None else nullcontext():
                result.psnr, result.ssim = protocol.score(image, hr, lr, result.scale)
        finally:
            if saving is not None:
                result.output = saving.result()
        result.seconds = outcome["seconds"]
        # The spread of the repeated calls; a Dask worker running an older srbench does not send it.
        result.seconds_min = outcome.get("seconds_min")
        result.seconds_max = outcome.get("seconds_max")
        result.peak_mb = outcome.get("peak_mb")
        result.parameters = outcome.get("parameters")
        result.macs = outcome.get("macs")

    def _run_pool(
        self, cells: list[_Cell], config: RunConfig, summary: RunSummary, bar: Any, *, dask: bool
    ) -> None:
        """Cells side by side in a process pool or on Dask, a few at a time.

        Only ``2 * jobs`` cells are in flight (Dask: ``4 * jobs``): every task carries an
        input image and brings back an HR-sized output, and submitting the whole standard
        suite at once would hold all of them in memory at the end.
        """
        self._protocol = get_protocol(config.protocol)
        self._keep_outputs = config.save_outputs

        def task(cell: _Cell) -> dict:
            assert cell.inputs is not None
            return {
                "spec": cell.spec, "x": cell.inputs.method_input(cell.channels),
                "scale": cell.result.scale, "repeat": config.repeat, "environment": dask,
            }  # fmt: skip

        if dask:
            try:
                from dask.distributed import Client, wait
            except ImportError:
                raise RunError("--executor dask needs dask[distributed]: pip install 'srbench-sisr[dask]'") from None
            if not config.scheduler:
                raise RunError("--executor dask needs --scheduler ADDRESS")
            with Client(config.scheduler) as client:
                self._drain(cells, lambda c: client.submit(_worker_cell, task(c), pure=False),
                            lambda fs: wait(fs, return_when="FIRST_COMPLETED").done, 4 * config.jobs, summary, bar)  # fmt: skip
            return
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor
        from concurrent.futures import wait as wait_any

        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(config.jobs, mp_context=context, initializer=_worker_init) as pool:
            self._drain(cells, lambda c: pool.submit(_worker_cell, task(c)),
                        lambda fs: wait_any(fs, return_when=FIRST_COMPLETED).done, 2 * config.jobs, summary, bar)  # fmt: skip

    def _drain(self, cells, submit, first_done, window: int, summary: RunSummary, bar: Any) -> None:
        """Keep ``window`` cells submitted, apply each as it finishes, then let it go."""
        queue = iter(cells)
        in_flight: dict[Any, _Cell] = {}
        for cell in queue:
            in_flight[submit(cell)] = cell
            if len(in_flight) >= window:
                break
        while in_flight:
            # The pool takes cells in submission order, so the oldest unfinished one is being
            # computed now; it is what the bar names while the workers are busy.
            self._working(bar, next(iter(in_flight.values())), "waiting on")
            for future in first_done(list(in_flight)):
                cell = in_flight.pop(future)
                self._apply(cell, future.result(), summary, bar)
                following = next(queue, None)
                if following is not None:
                    in_flight[submit(following)] = following

    def _apply(self, cell: _Cell, outcome: dict, summary: RunSummary, bar: Any) -> None:
        result = cell.result
        if outcome.get("environment") is not None:
            result.run = self._run_for(outcome["environment"])
        result.status, result.error = outcome["status"], outcome["error"]
        if result.status == "ok":
            try:
                self._score(cell, outcome, self._protocol, self._keep_outputs)
            except Exception as exc:  # noqa: BLE001 - a wrong output fails its cell only
                result.status, result.error = "failed", _describe(exc)
        self._finish(result, summary, bar)
        _release(cell)

    def _run_for(self, environment: Mapping[str, Any]) -> str | None:
        """The id of the run record for a cell computed where ``environment`` says.

        The driver's run when the worker matches it; otherwise a run of its own (the driver's
        start, jobs and executor with the worker's machine, versions and revision), recorded
        once per distinct worker environment, so a Dask result never claims the driver's machine.
        """
        run = self._run
        if run is None:
            return None
        mine = run.environment()
        environment = dict(environment)
        if environment.get("gpu") is None:  # the cell used no GPU: the GPU field says nothing
            environment["gpu"] = mine["gpu"] = ""
        if environment == mine:
            return run.id
        fingerprint = json.dumps(environment, sort_keys=True)
        if fingerprint not in self._worker_runs:
            worker = replace(run, id=f"{run.id}-{len(self._worker_runs) + 1}", **environment)
            self.store.put_run(worker)
            self._worker_runs[fingerprint] = worker.id
        return self._worker_runs[fingerprint]
