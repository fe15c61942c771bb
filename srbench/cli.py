"""The ``srbench`` command line: thin commands over the library."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

app = typer.Typer(
    name="srbench",
    help="Benchmark single-image super-resolution methods with the literature's exact protocol.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

#: Set by a command that leaves nothing to clean up (its files written and closed, no
#: store, no worker processes): :func:`main` then ends the process without the interpreter's
#: teardown, which frees every module and object one by one: 0.2 s after numba, 0.55 s
#: after torch, a sixth of a 1000x800 photo's upscale.
_nothing_left_to_do = False

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_DATASETS = "Set5,Set14"
DEFAULT_SCALES = "2,3,4"


def _domain_errors() -> tuple[type[BaseException], ...]:
    from srbench.datasets import DatasetError
    from srbench.imageio import ImageError
    from srbench.method import MethodError
    from srbench.runner import RunError
    from srbench.store import StoreError
    from srbench.training import TrainingDataError

    return (DatasetError, ImageError, MethodError, RunError, StoreError, TrainingDataError, ValueError)


def domain_command(fn: F) -> F:
    """Turn expected failures into one clear line on stderr and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except _domain_errors() as exc:
            # soft_wrap: one physical line whatever the width, so logs and grep see it whole.
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err_console.print("interrupted; finished results are kept in the store")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _scales(text: str) -> list[int]:
    try:
        scales = [int(part) for part in _split(text)]
    except ValueError:
        raise ValueError(f"scales must be integers separated by commas, got {text!r}") from None
    if not scales or any(s < 1 for s in scales):
        raise ValueError(f"scales must be positive integers, got {text!r}")
    return scales


def _registry(plugins: list[str] | None = None, *, show_errors: bool = True):
    from srbench.registry import get_registry

    registry = get_registry()
    for plugin in plugins or []:
        registry.load_plugin(plugin)
    if show_errors:
        for error in registry.errors:
            err_console.print(f"[yellow]warning:[/] {error} (skipped)", highlight=False)
    return registry


class _Bar:
    """A rich progress bar with the interface the runner and trainers expect."""

    def __init__(self, total: int, description: str = "running") -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            # Cell names are data (a variant's name has brackets), not rich markup.
            TextColumn("{task.fields[current]}", markup=False),
            console=err_console,
            transient=False,
            # The bar redraws from a thread of its own; at rich's default 10 per second it
            # takes CPU from the timed calls beside it for no visible gain.
            refresh_per_second=2,
        )
        self.task = self.progress.add_task(description, total=total, current="")
        self.progress.start()

    def advance(self, current: str = "") -> None:
        self.progress.update(self.task, advance=1, current=current)

    def working(self, current: str) -> None:
        """Name the cell being computed, so that a long one does not look like a frozen bar."""
        self.progress.update(self.task, current=current)

    def close(self) -> None:
        self.progress.stop()


# ---------------------------------------------------------------------------- list
@app.command("list")
@domain_command
def list_(
    what: Annotated[str, typer.Argument(help="methods or datasets")] = "methods",
    pattern: Annotated[str, typer.Argument(help="shell-style filter, e.g. 'ne_*'")] = "*",
    plugin: Annotated[list[str] | None, typer.Option("--plugin", help="extra plugin file or module")] = None,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="where to look for local copies of the datasets (default $SRBENCH_DATA)")] = None,
) -> None:
    """List registered methods or catalogued datasets."""
    if what in ("methods", "method"):
        _list_methods(pattern, plugin)
    elif what in ("datasets", "dataset"):
        _list_datasets(data_dir)
    else:
        raise ValueError(f"list what? {what!r}; use 'methods' or 'datasets'")


def _list_methods(pattern: str, plugins: list[str] | None) -> None:
    """One row per method, readable in full at 80 columns.

    Cells that cannot be broken at a space (names, one ``KEY=VALUE`` setting per line) do
    not wrap, so rich narrows the label and scales columns instead of cutting
    ``neighborhood=40`` to ``neighbo…``; a plugin's origin, often a long path, goes below
    the table on a line of its own.
    """
    from srbench.variants import settable_defaults

    registry = _registry(plugins)
    table = Table()
    for header, wraps in (("name", False), ("label", True), ("scales", True), ("trainable", False),
                          ("version", False), ("run --set", False)):  # fmt: skip
        table.add_column(header, no_wrap=not wraps, overflow="fold")
    origins: list[str] = []
    for name in registry.names(pattern):
        entry = registry.entries[name]
        cls = entry.cls
        try:
            settable = "\n".join(f"{k}={v}" for k, v in settable_defaults(cls).items())
        except Exception:  # noqa: BLE001 - a plugin whose defaults fail still gets listed
            settable = "?"
        table.add_row(
            name, escape(cls.label), ", ".join(str(s) for s in sorted(cls.scales)),
            "yes" if cls.trainable else "", cls.version, escape(settable),
        )  # fmt: skip
        if not entry.builtin:
            origins.append(f"{name} comes from {entry.origin}")
    console.print(table)
    for line in origins:
        console.print(line, soft_wrap=True, markup=False, highlight=False)


def _list_datasets(data_dir: Path | None) -> None:
    """The catalogue, T91 (training data) and, for each, whether a local copy was found.

    The table says where a copy was found (the data folder or the cache); the folders
    themselves go below it, whole, so that they can be copied.
    """
    import os

    from srbench.datasets import cache_dir, list_datasets, local_copy

    root = data_dir if data_dir is not None else os.environ.get("SRBENCH_DATA") or None
    cache = cache_dir() / "datasets"
    table = Table()
    for header in ("name", "images", "description", "source", "local copy"):
        table.add_column(header, overflow="fold")
    for spec in list_datasets():
        folder = local_copy(spec.name, data_dir)
        where = "no" if folder is None else "cache" if folder.parent == cache else "data dir"
        table.add_row(spec.name, str(len(spec.hashes)), spec.description, f"hub {spec.hf_repo}", where)
    training, problem = _training_folder()
    found = "no" if training is None else "data dir" if root and training.parent == Path(root) else "yes"
    table.add_row(
        "T91", str(_count_images(training)) if training else "–",
        "training data for `srbench train`, not a benchmark set (Yang et al. 2010)",
        "--train-dir or $SRBENCH_DATA/T91", found,
    )  # fmt: skip
    console.print(table)
    source = "--data-dir" if data_dir is not None else "$SRBENCH_DATA"
    notes = [
        f"data dir: {root} ({source})" if root else "data dir: none (SRBENCH_DATA is not set and no --data-dir given)",
        f"cache: {cache} (where a set missing locally is downloaded on first use)",
        f"T91: {training}" if training else f"T91: {problem}",
        "Also: folder:PATH for any folder of images.",
    ]
    for line in notes:
        console.print(line, soft_wrap=True, markup=False, highlight=False)


def _training_folder() -> tuple[Path | None, str]:
    """Where ``srbench train`` finds T91 by default, or why it finds nothing."""
    from srbench.training import TrainingDataError, find_training_dir

    try:
        return find_training_dir(), ""
    except TrainingDataError as exc:
        return None, str(exc)


def _count_images(folder: Path) -> int:
    from srbench.imageio import IMAGE_SUFFIXES

    return sum(1 for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


# ---------------------------------------------------------------------------- store
def _store_path(store: Path | None) -> Path:
    from srbench.store import default_store_path

    return store if store is not None else default_store_path()


def _writable_store(store: Path | None) -> Path:
    """The store path for a run, its folder made; a path that cannot hold a file is an error.

    Checked here so that a mistyped ``--store`` (``/dev/null/x.sqlite``) is one line, not
    the ``OSError`` the store's ``mkdir`` would raise.
    """
    from srbench.store import StoreError

    path = _store_path(store)
    if path.is_dir():
        raise StoreError(f"cannot create result store {path}: it is a folder; name a file inside it")
    problem = _folder_problem(path.parent)
    if problem:
        raise StoreError(f"cannot create result store {path}: {problem}")
    return path


def _existing_store(store: Path | None) -> Path:
    """The store path for a command that only reads it; it must exist.

    Opening a missing store would create an empty one, and a mistyped ``--store`` would
    then export 0 rows or render an empty report as if nothing were wrong.
    """
    from srbench.store import StoreError

    path = _store_path(store)
    if not path.exists():
        raise StoreError(f"no result store at {path}; check --store or $SRBENCH_STORE, or run `srbench run` first")
    if path.is_dir():
        raise StoreError(f"result store {path} is a folder, not a store file")
    return path


def _output_folder(folder: Path, what: str) -> Path:
    """``folder`` made if need be; one that cannot be is a one-line error: cannot write ``what``."""
    problem = _folder_problem(folder)
    if problem:
        raise ValueError(f"cannot write {what}: {problem}")
    return folder


def _folder_problem(folder: Path) -> str:
    """Why ``folder`` cannot be made, in words; empty once it exists.

    The first existing ancestor that is a file is named outright: the errno text alone
    ("File exists: '/dev/null'") does not say what is wrong.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return ""
    except OSError as exc:
        for parent in (folder, *folder.parents):
            if parent.exists():
                if not parent.is_dir():
                    return f"{parent} is not a folder"
                break
        if exc.strerror and exc.filename:
            return f"{exc.strerror} ({exc.filename})"
        return exc.strerror or str(exc)


# ---------------------------------------------------------------------------- run
StoreOpt = Annotated[
    Path | None, typer.Option("--store", help="result store (SQLite); default $SRBENCH_STORE or the user cache")
]
DataDirOpt = Annotated[
    Path | None, typer.Option("--data-dir", help="folder with one sub-folder per dataset (default $SRBENCH_DATA)")
]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu or cuda")]
PluginOpt = Annotated[
    list[str] | None, typer.Option("--plugin", help="plugin .py file or module name (repeatable)")
]


def _run_grid(
    methods: list[str], datasets: list[str], scales: list[int], *, store: Path | None,
    data_dir: Path | None, device: str, jobs: int, executor: str, scheduler: str | None,
    plugins: list[str], force: bool, repeat: int, settings: list[str] | None = None,
    protocol: str | None = None, models: tuple = (), save_outputs: bool = True,
) -> int:  # fmt: skip
    from srbench.isolation import register_models
    from srbench.protocols import DEFAULT_PROTOCOL, get_protocol
    from srbench.runner import RunConfig, Runner, resolve_variants
    from srbench.store import ResultStore

    registry = _registry(plugins)
    register_models(models)
    if protocol is None:
        # RGB networks are only scored under the RGB protocol: a grid of nothing else uses it.
        classes = [cls for cls, _ in resolve_variants(registry, methods, settings or [])]
        rgb_only = classes and all(cls.channels == "rgb" for cls in classes)
        protocol = "matlab-rgb" if rgb_only else DEFAULT_PROTOCOL.name
    get_protocol(protocol)  # an unknown name is one line before anything runs
    config = RunConfig(
        methods=methods, datasets=datasets, scales=scales, data_dir=data_dir, device=device,
        jobs=jobs, executor=executor, scheduler=scheduler, plugins=[], force=force, repeat=repeat,
        settings=settings or [], protocol=protocol, models=tuple(models), save_outputs=save_outputs,
    )  # fmt: skip
    _check_some_scale_runs(registry, config)
    _check_datasets_found(datasets, data_dir)
    with ResultStore(_writable_store(store)) as result_store:
        runner = Runner(
            result_store,
            registry,
            progress=lambda total: _Bar(total, "srbench run"),
            # One physical line per failure and for the summary, like the errors: paths stay whole.
            log=lambda line: err_console.print(f"[yellow]failed:[/] {escape(line)}", highlight=False, soft_wrap=True),
        )
        summary = runner.run(config)
        results = [r for r in result_store.results(methods=summary.methods, scales=scales) if r.protocol == protocol]
        _print_means(results, datasets)
        console.print(
            f"{summary.line()} (protocol {config.protocol}, store {escape(str(result_store.path))})", soft_wrap=True
        )
    return summary.failed + summary.bad_images


def _jobs(text: str) -> int:
    """``--jobs``: a positive count, or ``auto`` for one worker per core."""
    import os

    if text.strip().lower() == "auto":
        return max(1, os.cpu_count() or 1)
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"--jobs {text!r}: give a number or auto") from None
    if value < 1:
        raise ValueError("--jobs must be at least 1")
    return value


def _check_some_scale_runs(registry: Any, config: Any) -> None:
    """Refuse a grid in which no chosen method supports any chosen scale.

    Such a run would compute nothing, count every cell as skipped and exit 0, which reads
    like success. A grid where only some cells are unsupported runs as usual.

    Raises
    ------
    RunError
        Naming the scales asked for and the scales each chosen method supports.
    """
    from srbench.runner import RunError, resolve_variants

    classes = list(dict.fromkeys(cls for cls, _ in resolve_variants(registry, config.methods, config.settings)))
    wanted = sorted(set(config.scales))
    if not classes or any(s in cls.scales for cls in classes for s in wanted):
        return
    # Methods with the same scales share one clause: "anr, srcnn support x2, x3, x4".
    by_scales: dict[tuple[int, ...], list[str]] = {}
    for cls in classes:
        by_scales.setdefault(tuple(sorted(cls.scales)), []).append(cls.name)
    clauses = [
        f"{', '.join(names)} {'supports' if len(names) == 1 else 'support'} {_xs(supported)}"
        for supported, names in by_scales.items()
    ]
    raise RunError(f"nothing to run at {_xs(wanted)}: {'; '.join(clauses)}")


def _check_datasets_found(names: list[str], data_dir: Path | None) -> None:
    """Find (or download) every catalogued dataset of a grid, or say in one line what is missing.

    The runner stops at the first dataset it cannot find; a new user with no data then
    learns about Set5, fills it, and only then hears of Set14. This names every missing
    set, where srbench looked (whether ``SRBENCH_DATA`` is set, and to what) and the
    folders to fill.

    Raises
    ------
    DatasetError
        Naming the missing sets and the folders to put them in.
    """
    from srbench.datasets import CATALOG, DatasetError, load_dataset, local_copy

    missing: list[tuple[Any, DatasetError]] = []
    for name in names:
        spec = CATALOG.get(name.lower())
        if spec is None or local_copy(name, data_dir) is not None:
            continue  # folder:PATH and unknown names are the runner's to report
        try:
            load_dataset(name, data_dir)  # a download, when the hub can be reached
        except DatasetError as exc:
            if not str(exc).startswith(f"{spec.name} not found"):
                raise  # found but broken (a hash mismatch): its own message says more
            missing.append((spec, exc))
    if missing:
        raise DatasetError(_missing_data_message(missing, data_dir))


def _missing_data_message(missing: list[tuple[Any, Exception]], data_dir: Path | None) -> str:
    import os

    from srbench.datasets import cache_dir

    names = [spec.name for spec, _ in missing]
    listed = _and(names)
    env = os.environ.get("SRBENCH_DATA") or None
    if data_dir is not None:
        root, looked = data_dir, f"--data-dir {data_dir} has no complete {_and([n + '/' for n in names])}"
    elif env:
        root, looked = Path(env), f"SRBENCH_DATA is {env}, which has no complete {_and([n + '/' for n in names])}"
    else:
        root, looked = None, "SRBENCH_DATA is not set"
    cache = cache_dir() / "datasets"
    # The hub's own reason (offline, say) is the context of the "could not be downloaded" error.
    reason = next((exc.__context__ for _, exc in missing if exc.__context__ is not None), None)
    download = f"the download failed: {reason}" if reason else "it could not be downloaded"
    target = root if root is not None else cache
    folders = _and([f"{target / name}/" for name in names])
    if len(missing) == 1:
        fill = f"put its images ({missing[0][0].names_text()}) in {folders}"
    else:
        fill = f"put their images in {folders} (`srbench list datasets` names them)"
    if root is None:
        fill += f", or set SRBENCH_DATA to a folder holding {_and([n + '/' for n in names])}"
    cached = f"{'it is' if len(names) == 1 else 'they are'} not in the cache {cache}"
    return f"{listed} not found: {looked}; {cached}; {download}; {fill}"


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _xs(scales: Any) -> str:
    return ", ".join(f"x{s}" for s in scales)


def _print_means(results: list, datasets: list[str]) -> None:
    """Mean PSNR / SSIM / seconds per dataset x scale x method of what was asked for."""
    from collections import defaultdict

    wanted = {d.lower() for d in datasets}
    groups: dict[tuple, list] = defaultdict(list)
    for r in results:
        if r.dataset.lower() in wanted or any(w.startswith("folder:") for w in wanted):
            groups[(r.dataset, r.scale, r.label)].append(r)
    if not groups:
        return
    protocol = results[0].protocol
    table = Table("dataset", "scale", "method", "PSNR", "SSIM", "seconds", "images", title=f"protocol {protocol}")
    for (dataset, scale, label), rows in sorted(groups.items()):
        ok = [r for r in rows if r.status == "ok"]
        table.add_row(
            dataset, f"x{scale}", escape(label),
            _score_mean([r.psnr for r in ok], len(rows), ".2f"),
            _score_mean([r.ssim for r in ok], len(rows), ".4f"),
            f"{sum(r.seconds for r in ok) / len(ok):.3f}" if ok else "–",
            f"{len(ok)}/{len(rows)}",
        )  # fmt: skip
    console.print(table)


def _score_mean(values: list[float], total: int, spec: str) -> str:
    """The mean of the good images' scores, marked "(n/N)" when some images failed.

    A mean over fewer images is not the dataset's score (the papers' means are over every
    image), so it carries its count instead of passing for one; "–" when none succeeded.
    """
    if not values:
        return "–"
    mean = format(sum(values) / len(values), spec)
    return mean if len(values) == total else f"{mean} ({len(values)}/{total})"


@app.command()
@domain_command
def run(
    methods: Annotated[str | None, typer.Option("-m", "--methods", help="comma-separated names, wildcards or variants such as 'fsrcnn[border=layers]' (default: bicubic, or only the --model network)")] = None,
    datasets: Annotated[str, typer.Option("-d", "--datasets", help="e.g. Set5,Set14 or folder:PATH")] = DEFAULT_DATASETS,
    scales: Annotated[str, typer.Option("-s", "--scales", help="e.g. 2,3,4")] = DEFAULT_SCALES,
    data_dir: DataDirOpt = None,
    store: StoreOpt = None,
    device: DeviceOpt = "auto",
    jobs: Annotated[str, typer.Option("--jobs", "-j", help="worker processes (1 thread each), or auto: one per core; timings then say so")] = "1",
    executor: Annotated[str, typer.Option("--executor", help="local or dask")] = "local",
    scheduler: Annotated[str | None, typer.Option("--scheduler", help="Dask scheduler address")] = None,
    plugin: PluginOpt = None,
    force: Annotated[bool, typer.Option("--force", help="recompute cached cells")] = False,
    repeat: Annotated[int, typer.Option("--repeat", help="time each call N times, keep the median")] = 1,
    settings: Annotated[list[str] | None, typer.Option("--set", help="run with a parameter changed, KEY=VALUE (repeatable); results are stored as a variant, e.g. fsrcnn[border=layers]")] = None,
    protocol: Annotated[str | None, typer.Option("--protocol", "-p", help="matlab (default; SRCNN/A+ papers) or matlab-rgb (EDSR/RCAN scripts; the default when only RGB networks run)")] = None,
    model: Annotated[str | None, typer.Option("--model", help="any PyTorch module, FILE.py:ClassName or module:ClassName")] = None,
    weights: Annotated[Path | None, typer.Option("--weights", help="its weights: .safetensors, or a .pth/.pt state dict (loaded with weights_only=True)")] = None,
    model_args: Annotated[list[str] | None, typer.Option("--model-arg", help="constructor argument KEY=VALUE (repeatable), e.g. scale=4")] = None,
    name: Annotated[str | None, typer.Option("--name", help="name to store the --model results under (default: the class name)")] = None,
    label: Annotated[str | None, typer.Option("--label", help="label in tables and the report")] = None,
    channels: Annotated[str, typer.Option("--channels", help="rgb (the module maps RGB to RGB) or y (luminance)")] = "rgb",
    input_range: Annotated[float, typer.Option("--input-range", help="1 if the module takes [0, 1] intensities, 255 for [0, 255] (EDSR)")] = 1.0,
    rgb_mean: Annotated[str | None, typer.Option("--rgb-mean", help="mean shift R,G,B in [0, 1] units, subtracted before and added after (EDSR: 0.4488,0.4371,0.4040)")] = None,
    model_scales: Annotated[str | None, typer.Option("--model-scales", help="scales the checkpoint serves (default: -s)")] = None,
    tile: Annotated[int | None, typer.Option("--tile", help="run the --model network on LR tiles of this size", min=8)] = None,
    tile_overlap: Annotated[int, typer.Option("--tile-overlap", help="LR pixels of context around each tile", min=0)] = 16,
    self_ensemble: Annotated[bool, typer.Option("--self-ensemble", help="average over the 8 flips/rotations (the '+' rows)")] = False,
    fp16: Annotated[bool, typer.Option("--fp16", help="half precision on CUDA")] = False,
    outputs: Annotated[bool, typer.Option("--outputs/--no-outputs", help="keep each scored output as a PNG beside the store (for the report's visual comparisons)")] = True,
) -> None:
    """Run methods over datasets and scales; cached cells are skipped."""
    chosen = _split(methods) if methods is not None else []
    models: tuple = ()
    if model is not None:
        spec = _model_spec(model, weights, model_args or [], name, label, channels, input_range, rgb_mean,
                           model_scales or scales)  # fmt: skip
        models = (spec,)
        inline = [f"tile={tile}"] if tile else []
        inline += [f"tile_overlap={tile_overlap}"] if tile and tile_overlap != 16 else []
        inline += ["self_ensemble=true"] if self_ensemble else []
        inline += ["fp16=true"] if fp16 else []
        chosen.append(spec.name + (f"[{';'.join(inline)}]" if inline else ""))
    elif weights is not None or tile or self_ensemble or fp16:
        raise ValueError("--weights, --tile, --self-ensemble and --fp16 go with --model")
    _run_grid(
        chosen or ["bicubic"], _split(datasets), _scales(scales), store=store, data_dir=data_dir,
        device=device, jobs=_jobs(jobs), executor=executor, scheduler=scheduler, plugins=plugin or [],
        force=force, repeat=repeat, settings=settings, protocol=protocol, models=models,
        save_outputs=outputs,
    )  # fmt: skip


def _model_spec(model, weights, model_args, name, label, channels, input_range, rgb_mean, scales):
    """The ``--model`` options as a :class:`~srbench.isolation.ModelSpec`, checked up front.

    The module is imported and its weights fitted here, once, so that a bad path, a missing
    class or weights that do not fit are one line before any cell runs.
    """
    from srbench.isolation import ModelSpec
    from srbench.nn.loading import ModelError, fit_state_dict, load_module_class, load_state_dict, parse_model_args

    if weights is None:
        raise ModelError("--model needs --weights FILE (.safetensors, .pth or .pt)")
    if channels not in ("rgb", "y"):
        raise ModelError(f"--channels must be rgb or y; got {channels!r}")
    if input_range not in (1.0, 255.0):
        raise ModelError(f"--input-range must be 1 or 255; got {input_range:g}")
    mean = None
    if rgb_mean:
        try:
            mean = tuple(float(v) for v in rgb_mean.split(","))
        except ValueError:
            raise ModelError(f"--rgb-mean {rgb_mean!r}: expected numbers R,G,B") from None
        if len(mean) != (3 if channels == "rgb" else 1):
            raise ModelError(f"--rgb-mean needs {3 if channels == 'rgb' else 1} values for --channels {channels}")
    cls = load_module_class(model)
    arguments = parse_model_args(model_args)
    try:
        module = cls(**arguments)
    except Exception as exc:  # noqa: BLE001 - the user's constructor: one line
        raise ModelError(f"--model {model}: {cls.__name__}({', '.join(model_args)}) failed: {type(exc).__name__}: {exc}") from None
    fit_state_dict(module, load_state_dict(weights), source=f"--weights {weights.name}")
    chosen = (name or cls.__name__).lower()
    if not chosen.replace("_", "").isalnum():
        raise ModelError(f"--name {chosen!r}: use letters, digits and underscores")
    source, _, class_name = model.rpartition(":")
    if source.endswith(".py"):  # workers may start elsewhere: they get the absolute path
        model = f"{Path(source).resolve()}:{class_name}"
    return ModelSpec(
        model=model,
        weights=str(weights.resolve()), name=chosen, label=label or name or cls.__name__,
        scales=tuple(_scales(scales)) if isinstance(scales, str) else tuple(scales),
        model_args=tuple(sorted(arguments.items())), channels=channels, input_range=float(input_range),
        rgb_mean=mean,
    )  # fmt: skip


# ---------------------------------------------------------------------------- export
#: What each ``srbench export --table`` is written as.
EXPORT_TABLES = {
    "results": ("csv", "parquet", "json", "markdown", "latex"),
    "images": ("csv", "parquet", "markdown", "latex"),
    "summary": ("latex", "markdown", "csv"),
}


def _export_table(table: str | None, format: str) -> str:
    """The table ``--table``/``--format`` ask for, checked against what it is written as.

    Without ``--table``, the format decides: the data formats (CSV, Parquet, JSON) get the
    long table that analysis code loads, the document formats (Markdown, LaTeX) the
    per-image tables papers print.
    """
    fmt = format.lower()
    if table is None:
        if fmt not in EXPORT_TABLES["results"]:
            raise ValueError(f"unknown export format {format!r}; choose from {', '.join(EXPORT_TABLES['results'])}")
        return "images" if fmt in ("markdown", "latex") else "results"
    table = table.lower()
    if table not in EXPORT_TABLES:
        raise ValueError(f"unknown --table {table!r}; choose {', '.join(EXPORT_TABLES)}")
    if fmt not in EXPORT_TABLES[table]:
        raise ValueError(f"--table {table} is written as {', '.join(EXPORT_TABLES[table])}; not {format!r}")
    return table


@app.command()
@domain_command
def export(
    format: Annotated[str, typer.Option("--format", "-f", help="csv, parquet, json, markdown or latex (which ones depends on --table)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="output file")],
    store: StoreOpt = None,
    methods: Annotated[str, typer.Option("-m", "--methods", help="only these methods")] = "",
    datasets: Annotated[str, typer.Option("-d", "--datasets", help="only these datasets")] = "",
    scales: Annotated[str, typer.Option("-s", "--scales", help="only these scales")] = "",
    protocol: Annotated[str | None, typer.Option("--protocol", "-p", help="only this protocol (default: all, each in its own table)")] = None,
    table: Annotated[
        str | None,
        typer.Option("--table", help="results: the long table, one row per result with its timings and run (csv, parquet, json, "
                     "markdown, latex; what pandas loads); images: the per-image tables papers print, images x methods, PSNR/SSIM, "
                     "a mean row and seconds, one per protocol/dataset/scale (csv, parquet, markdown, latex); summary: methods x "
                     "dataset/scale, mean PSNR/SSIM (latex, markdown, csv). Default: results for csv, parquet and json, images for "
                     "markdown and latex"),
    ] = None,
) -> None:
    """Export results: the long table, the per-image tables, or the paper-format summary."""
    from srbench.store import ResultStore
    from srbench.store import export as write

    # The arguments first: a typo in --format needs no store to be reported.
    table = _export_table(table, format)
    path = _existing_store(store)
    _output_folder(out.parent, f"{out}")
    filters = {"methods": _split(methods) or None, "datasets": _split(datasets) or None,
               "scales": _scales(scales) if scales else None, "protocol": protocol}  # fmt: skip
    with ResultStore(path) as result_store:
        if table == "summary":
            _export_summary(result_store, filters, format, out)
            return
        results = result_store.results(**filters)
        runs = result_store.runs({r.run for r in results if r.run})
    if table == "images":
        _export_images(results, runs, filters, format, out)
        return
    write(results, format, out, runs=runs)
    console.print(f"wrote {len(results)} rows to {out}")


def _export_images(results: list, runs: dict, filters: dict, format: str, out: Path) -> None:
    """The per-image tables, as papers print them: images x methods, one per protocol, set and scale."""
    from srbench.report import _method_order, _runs_lines
    from srbench.report.tables import image_tables, write_images
    from srbench.results import results_frame

    tables = image_tables(results_frame(results, runs), _method_order(filters["methods"]))
    write_images(tables, format, out, _runs_lines(results, runs))
    console.print(f"wrote {len(results)} results in {len(tables)} table{'s' if len(tables) != 1 else ''} to {out}")


def _export_summary(result_store: Any, filters: dict, format: str, out: Path) -> None:
    """The summary pivot of :func:`srbench.load_results`' frame, one table per protocol."""
    from srbench.report import _method_order, _runs_lines
    from srbench.report.tables import summary_pivots, write_summary
    from srbench.results import load_results

    frame = load_results(result_store, **filters)
    if frame.empty:
        raise ValueError("no results match; nothing to put in a summary table")
    pivots = summary_pivots(frame, _method_order(filters["methods"]))
    results = result_store.results(**filters)
    lines = _runs_lines(results, result_store.runs({r.run for r in results if r.run}))
    text = write_summary(pivots, format, lines)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    protocols = ", ".join(p.protocol for p in pivots)
    console.print(f"wrote the summary of {len(pivots[0].rows) if len(pivots) == 1 else sum(len(p.rows) for p in pivots)} "
                  f"method rows (protocol {protocols}) to {out}")  # fmt: skip


# ---------------------------------------------------------------------------- report
CropOpt = Annotated[
    list[str] | None,
    typer.Option("--crop", help="a region for the visual comparisons, [DATASET/]IMAGE:x,y,w,h in HR pixels (repeatable); others are chosen where methods differ most"),
]
FiguresOpt = Annotated[int, typer.Option("--figures", help="images per visual comparison (0: none)", min=0)]


def _report_options(crop: list[str] | None) -> list:
    from srbench.report import parse_crop

    return [parse_crop(text) for text in crop or []]


@app.command()
@domain_command
def report(
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder")] = Path("reports"),
    store: StoreOpt = None,
    title: Annotated[str, typer.Option("--title", help="report title")] = "srbench report",
    data_dir: DataDirOpt = None,
    crop: CropOpt = None,
    figures: FiguresOpt = 2,
) -> None:
    """Render the HTML report (with CSV/Markdown/LaTeX twins) from the store."""
    from srbench.report import write_report

    crops = _report_options(crop)
    path = _existing_store(store)
    index = write_report(_output_folder(out, f"the report to {out}"), store_path=path, title=title,
                         data_dir=data_dir, crops=crops, figure_images=figures)  # fmt: skip
    console.print(f"wrote {index}")
    _figure_warnings(index)


def _figure_warnings(index: Path) -> None:
    """Crops asked for that no figure could use, said once on stderr (the page says it too)."""
    import re

    for note in re.findall(r'<p class="warn">(--crop [^<]*)</p>', index.read_text(encoding="utf-8")):
        err_console.print(f"[yellow]warning:[/] {escape(note)}", highlight=False, soft_wrap=True)


@app.command()
@domain_command
def publish(
    out: Annotated[Path, typer.Argument(help="the site folder (made if missing)")],
    store: StoreOpt = None,
    title: Annotated[str, typer.Option("--title", help="report title")] = "srbench report",
    data_dir: DataDirOpt = None,
    crop: CropOpt = None,
    figures: FiguresOpt = 2,
) -> None:
    """Write the report as a static site: pages, pictures, results.csv/parquet/json, reproduce.html."""
    from srbench.report import write_site

    crops = _report_options(crop)
    path = _existing_store(store)
    index = write_site(_output_folder(out, f"the site to {out}"), store_path=path, title=title,
                       data_dir=data_dir, crops=crops, figure_images=figures)  # fmt: skip
    console.print(f"wrote {index} and the site around it ({out})")
    _figure_warnings(index)


# ---------------------------------------------------------------------------- merge
@app.command()
@domain_command
def merge(
    stores: Annotated[list[Path], typer.Argument(help="result stores to join (from several machines)")],
    into: Annotated[Path, typer.Option("--into", help="the store to merge into (created if missing)")],
) -> None:
    """Join result stores: results by key, runs by id, outputs copied; no cell lost or duplicated."""
    from srbench.merge import merge_stores

    target = _writable_store(into)
    summary = merge_stores(stores, target)
    for line in summary.lines():
        console.print(escape(line), highlight=False, soft_wrap=True)


# ---------------------------------------------------------------------------- bench
def _bench_datasets(suite: str | None, datasets: str | None) -> list[str]:
    """The datasets of a bench: a suite's (``paper`` by default) or those named with -d.

    Raises
    ------
    DatasetError
        For an unknown suite.
    ValueError
        When both are given: which one was meant is not for srbench to guess.
    """
    from srbench.datasets import suite_datasets

    if suite is not None and datasets is not None:
        raise ValueError("--suite and --datasets exclude each other; give one")
    if datasets is not None:
        names = _split(datasets)
        if not names:
            raise ValueError("--datasets is empty; name at least one, e.g. Set5,Set14")
        return names
    return suite_datasets(suite or "paper")


@app.command()
@domain_command
def bench(
    out: Annotated[Path, typer.Option("--out", "-o", help="report folder")] = Path("reports"),
    suite: Annotated[str | None, typer.Option("--suite", help="paper: Set5, Set14 (the default); standard: Set5, Set14, BSD100, Urban100")] = None,
    datasets: Annotated[str | None, typer.Option("-d", "--datasets", help="these datasets instead of a suite")] = None,
    scales: Annotated[str, typer.Option("-s", "--scales")] = DEFAULT_SCALES,
    data_dir: DataDirOpt = None,
    store: StoreOpt = None,
    device: DeviceOpt = "auto",
    jobs: Annotated[str, typer.Option("--jobs", "-j", help="cells side by side (auto: one per core); the default keeps timings serial")] = "1",
    force: Annotated[bool, typer.Option("--force")] = False,
) -> None:
    """Every built-in method on a suite of datasets at x2-x4, then the report.

    Suites: paper (Set5, Set14; the default, what `make bench` runs) and standard (Set5,
    Set14, BSD100, Urban100; `make bench-standard`).
    """
    # The arguments, then the report folder, before the grid: neither a typo nor a folder
    # that cannot be made should waste (or follow) a run.
    names = _bench_datasets(suite, datasets)
    _output_folder(out, f"the report to {out}")
    registry = _registry()
    builtins = [n for n, e in registry.entries.items() if e.builtin]
    _run_grid(
        sorted(builtins), names, _scales(scales), store=store, data_dir=data_dir,
        device=device, jobs=_jobs(jobs), executor="local", scheduler=None, plugins=[], force=force, repeat=1,
    )  # fmt: skip
    from srbench.report import write_report

    index = write_report(out, store_path=store, methods=sorted(builtins), datasets=names, data_dir=data_dir)
    console.print(f"wrote {index} and {out / 'results.csv'}")


# ---------------------------------------------------------------------------- train
@app.command()
@domain_command
def train(
    method: Annotated[str, typer.Argument(help="method name, e.g. anr")],
    scales: Annotated[str, typer.Option("-s", "--scales")] = DEFAULT_SCALES,
    train_dir: Annotated[Path | None, typer.Option("--train-dir", help="training images (default $SRBENCH_DATA/T91)")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="artifact folder (default: the srbench cache, weights/METHOD)")] = None,
    overwrite_shipped: Annotated[bool, typer.Option("--overwrite-shipped", help="write into the method's shipped weights/ folder instead")] = False,
    device: DeviceOpt = "auto",
    epochs: Annotated[int | None, typer.Option("--epochs", help="training epochs (CNNs)")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue from the last checkpoint")] = False,
    warm_start: Annotated[bool, typer.Option("--warm-start", help="continue training the current weights (CNNs)")] = False,
    time_budget: Annotated[float | None, typer.Option("--time-budget", help="train each scale for about this many seconds instead of --epochs (CNNs)", min=1)] = None,
    settings: Annotated[list[str] | None, typer.Option("--set", help="override a training setting, KEY=VALUE (repeatable)")] = None,
    plugin: PluginOpt = None,
) -> None:
    """Learn a method's artifacts from T91 and save them (safetensors + JSON manifest).

    They go to the srbench cache (or --out) so that the shipped artifacts stay as they are;
    --overwrite-shipped replaces those.
    """
    from srbench.datasets import cache_dir
    from srbench.runner import resolve_device
    from srbench.training import load_training_images

    registry = _registry(plugin)
    cls = registry.get(method)
    if not cls.trainable:
        raise ValueError(f"{cls.name} has nothing to train")
    if out is not None and overwrite_shipped:
        raise ValueError("--out and --overwrite-shipped exclude each other")
    instance = cls()
    if "device" in instance.get_params():
        instance.set_params(device=resolve_device(instance, device))
    options = {"epochs": epochs, "resume": resume or None, "warm_start": warm_start or None, "time_budget": time_budget}
    options = {key: value for key, value in options.items() if value is not None}
    progress = "progress" in getattr(cls, "training_controls", ())
    if progress:
        options["progress"] = True
    instance.configure_training(settings=settings or [], **options)
    target = cls.weights_dir() if overwrite_shipped else out or cache_dir() / "weights" / cls.name
    if target != cls.weights_dir() and any(target.glob("x*.safetensors")):
        # Earlier output in this folder is what a fine-tune or a warm start builds on.
        instance.load(target)
    images = load_training_images(train_dir)
    console.print(f"training {cls.label} on {len(images)} images, scales {scales}; output {target}")
    # The base scale first: the others start from its freshly trained artifacts.
    ordered = sorted(_scales(scales), key=lambda s: s != cls.base_scale)
    for scale in ordered:
        instance.check_scale(scale)
        bars: list[_TrainBar] = []
        if not progress:
            instance.progress_callback = lambda done, total, info, s=scale: _train_bar(bars, cls.label, s, total).update(done, info)
        try:
            instance.fit(images, scale)
        finally:
            for bar in bars:
                bar.close()
        saved = instance.save(target)
        manifest = instance.manifests_[scale]
        console.print(f"x{scale}: {manifest.get('duration_s', '?')} s, saved to {saved / f'x{scale}.safetensors'}")


class _TrainBar:
    def __init__(self, description: str, total: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("{task.fields[info]}"), console=err_console,
        )  # fmt: skip
        self.task = self.progress.add_task(description, total=total, info="")
        self.progress.start()

    def update(self, done: int, info: object = "") -> None:
        self.progress.update(self.task, completed=done, info=str(info))

    def close(self) -> None:
        self.progress.stop()


def _train_bar(bars: list[_TrainBar], label: str, scale: int, total: int) -> _TrainBar:
    if not bars:
        bars.append(_TrainBar(f"{label} x{scale}", total))
    return bars[0]


# ---------------------------------------------------------------------------- upscale
@app.command()
@domain_command
def upscale(
    method: Annotated[str, typer.Argument(help="method name")],
    input: Annotated[Path, typer.Argument(help="input image (the low-resolution one)")],
    output: Annotated[Path, typer.Argument(help="output image")],
    scale: Annotated[int, typer.Option("-s", "--scale")] = 3,
    device: DeviceOpt = "auto",
    settings: Annotated[list[str] | None, typer.Option("--set", help="run with a parameter changed, KEY=VALUE (repeatable)")] = None,
    plugin: PluginOpt = None,
) -> None:
    """Upscale one image: the method on luminance, bicubic on Cb/Cr (as the papers do)."""
    from srbench.colour import upscale_image
    from srbench.imageio import read_image, write_image
    from srbench.runner import instantiate
    from srbench.variants import run_settings, split_variant

    registry = _registry(plugin)
    name, inline = split_variant(method)
    cls = registry.get(name)
    instance, _ = instantiate(cls, device, run_settings(cls, [*(settings or []), *inline]))
    if output.exists() and output.resolve() == input.resolve():
        raise ValueError("output would overwrite the input; choose another file")
    image = read_image(input, min_side=4)
    result = upscale_image(instance, image, scale)
    write_image(output, result)
    console.print(f"wrote {output} ({result.shape[1]}x{result.shape[0]})")
    global _nothing_left_to_do
    _nothing_left_to_do = True


# ---------------------------------------------------------------------------- check
@app.command()
@domain_command
def check(
    method: Annotated[str, typer.Argument(help="method name")],
    plugin: PluginOpt = None,
) -> None:
    """Run the plugin contract on a method."""
    from srbench.contract import check_method

    registry = _registry(plugin)
    cls = registry.get(method)
    report = check_method(cls)
    table = Table("check", "result", "detail")
    for item in report.checks:
        table.add_row(item.name, "[green]pass[/]" if item.passed else "[red]FAIL[/]", item.detail)
    console.print(table)
    if not report.passed:
        err_console.print(f"[bold red]{cls.name} fails {len(report.failures())} contract check(s)[/]")
        raise typer.Exit(1)
    console.print(f"[green]{cls.name} passes the plugin contract[/]")


def main() -> None:
    try:
        app()
    except SystemExit as finished:
        if _nothing_left_to_do and finished.code in (0, None):
            import os

            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        raise


if __name__ == "__main__":
    sys.exit(main())
