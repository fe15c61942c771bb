"""Results as a pandas DataFrame, for people who analyse them themselves.

>>> import srbench
>>> frame = srbench.load_results("results.sqlite")
>>> frame[frame.status == "ok"].groupby(["protocol", "dataset", "scale", "label"]).psnr.mean()

One row per stored result (by default the newest row per visible cell, as every table of
srbench shows them), with the columns of :class:`srbench.store.Result`, the machine columns
of the run that measured it, and the path of its saved output image. The store is only read.
pandas is imported when this is called, never by ``import srbench``.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from srbench.store import Result, ResultStore, RunInfo, StoreError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["RESULT_COLUMNS", "RUN_COLUMNS", "load_results", "results_frame"]

#: The columns every frame has, in order: the stored result's own fields...
RESULT_COLUMNS = [name for name in Result.columns() if name != "key"] + ["key"]
_RESULT_FIELDS = tuple(f.name for f in fields(Result))
#: ...then where it was measured (from the stored run; empty where none was recorded), and
#: the saved output's path (None where the output was not kept, or its file is gone).
RUN_COLUMNS = [
    "run_started", "cpu", "cores", "system", "gpu", "python", "libraries", "revision",
    "run_jobs", "executor", "output_path",
]  # fmt: skip

_NULLABLE_INTEGERS = ("parameters", "macs", "cores", "run_jobs")


def load_results(
    store: str | Path | ResultStore,
    *,
    methods: Sequence[str] | None = None,
    datasets: Sequence[str] | None = None,
    scales: Sequence[int] | None = None,
    protocol: str | None = None,
    status: str | None = None,
    latest_only: bool = True,
) -> pd.DataFrame:
    """The results of a store as a DataFrame, one row per result.

    Parameters
    ----------
    store : str, Path or ResultStore
        A store file (it must exist: a mistyped path is an error, not an empty frame) or an
        open store.
    methods, datasets, scales, protocol, status
        Filters, as :meth:`ResultStore.results` takes them (names case-insensitive).
    latest_only : bool
        Only the newest row per visible cell (method, dataset, image, scale, protocol,
        device), as reports show them; False gives every stored row.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`RESULT_COLUMNS` then :data:`RUN_COLUMNS`. ``run_started`` is a UTC
        timestamp; ``gpu`` is the run's GPU only on rows that ran on CUDA; ``parameters``
        and ``macs`` are nullable integers (missing for methods that are not networks).
        Rows are sorted by protocol, dataset, scale, method and image.
    """
    if isinstance(store, ResultStore):
        return _load(store, methods, datasets, scales, protocol, status, latest_only)
    path = Path(store)
    if not path.is_file():
        raise StoreError(f"no result store at {path}")
    with ResultStore(path) as opened:
        return _load(opened, methods, datasets, scales, protocol, status, latest_only)


def _load(store, methods, datasets, scales, protocol, status, latest_only) -> pd.DataFrame:
    results = store.results(methods=methods, datasets=datasets, scales=scales, protocol=protocol,
                            status=status, latest_only=latest_only)  # fmt: skip
    runs = store.runs({r.run for r in results if r.run})
    return results_frame(results, runs, store_path=store.path)


def results_frame(
    results: Sequence[Result], runs: Mapping[str, RunInfo] | None = None, *, store_path: str | Path | None = None
) -> pd.DataFrame:
    """:func:`load_results`' frame for results already read (the report and exports use it)."""
    import pandas as pd

    from srbench.outputs import output_dir

    runs = runs or {}
    outputs = output_dir(store_path) if store_path is not None else None
    rows = []
    for r in results:
        # Every field is a plain value: a shallow dict is asdict() without its deep copies
        # (2 s of a warm standard-suite report).
        row: dict[str, Any] = {name: getattr(r, name) for name in _RESULT_FIELDS}
        run = runs.get(r.run or "")
        row.update(_run_columns(run, r.device))
        path = None
        if outputs is not None and r.output:
            candidate = outputs / r.output[:2] / f"{r.output}.png"
            path = str(candidate) if candidate.is_file() else None
        row["output_path"] = path
        rows.append(row)
    frame = pd.DataFrame(rows, columns=RESULT_COLUMNS + RUN_COLUMNS)
    for name in _NULLABLE_INTEGERS:
        frame[name] = pd.array([None if pd.isna(v) else int(v) for v in frame[name]], dtype="Int64")
    for name in ("psnr", "ssim", "seconds", "seconds_min", "seconds_max", "peak_mb", "created"):
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    frame["scale"] = frame["scale"].astype("int64")
    frame["run_started"] = pd.to_datetime(frame["run_started"], unit="s", utc=True)
    frame = frame.sort_values(["protocol", "dataset", "scale", "method", "image"], kind="stable")
    return frame.reset_index(drop=True)


def _run_columns(run: RunInfo | None, device: str) -> dict[str, Any]:
    if run is None:
        return {"run_started": None, "cpu": None, "cores": None, "system": None, "gpu": None, "python": None,
                "libraries": None, "revision": None, "run_jobs": None, "executor": None}  # fmt: skip
    return {
        "run_started": run.started, "cpu": run.cpu, "cores": run.cores, "system": run.system,
        # The run's GPU only where this row ran on it (a run can mix CPU and CUDA cells).
        "gpu": run.gpu if device.startswith("cuda") else "", "python": run.python,
        "libraries": json.dumps(run.libraries, sort_keys=True), "revision": run.revision,
        "run_jobs": run.jobs, "executor": run.executor,
    }  # fmt: skip


def utc(timestamp: float | None) -> str:
    """``2024-05-01 12:00 UTC``; empty for None."""
    if timestamp is None:
        return ""
    return _dt.datetime.fromtimestamp(timestamp, _dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
