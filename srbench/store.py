"""The result store: one SQLite file, one row per (method, image, scale, protocol, ...) cell.

Every result is committed the moment it is produced, in WAL mode, so a run killed at any
point loses nothing finished, a re-run computes only what is missing, and two runs can
share one store.

Each result row names the run that produced it, and the ``runs`` table keeps what was true
of that run when it measured: machine, GPU, library versions, git revision, concurrency. A
report made later, on another machine, reads that record instead of its own surroundings
(asv's rule: what produced a number is recorded when it is measured).

The file carries its schema version (``meta.schema_version``). An older store is migrated
in place when opened; a store from a newer srbench is refused rather than misread.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = [
    "EXPORT_FORMATS", "SCHEMA_VERSION", "CellKey", "Result", "ResultStore", "RunInfo", "StoreError",
    "default_store_path", "describe_run", "export",
]  # fmt: skip

#: The store layout this code reads and writes. Bump it with every change to the tables, and
#: teach :meth:`ResultStore._migrate` the step from the previous one.
#:
#: 1. ``results`` and ``meta`` (srbench 0.1).
#: 2. ``runs`` (one row per run: machine, versions, revision, concurrency) and ``results.run``
#:    naming it; results stored before this have ``run`` NULL: not recorded.
#: 3. ``results.peak_mb``, ``parameters`` and ``macs``: the efficiency columns (NULL where
#:    not measured: older rows, and methods that are not networks); ``results.output``, the
#:    hash of the saved output image (NULL where none was kept).
#: 4. ``results.seconds_min`` and ``seconds_max``: the fastest and slowest of the ``repeat``
#:    timed calls whose median is ``seconds`` (NULL on rows stored before they were kept).
SCHEMA_VERSION = 4


def default_store_path() -> Path:
    """``SRBENCH_STORE``, else ``results.sqlite`` in the srbench cache folder."""
    if os.environ.get("SRBENCH_STORE"):
        return Path(os.environ["SRBENCH_STORE"])
    from srbench.datasets import cache_dir

    return cache_dir() / "results.sqlite"


@dataclass(frozen=True)
class CellKey:
    """Everything that decides a result: change any of it and the cell is recomputed."""

    method: str
    method_version: str
    params: str  # canonical JSON of the output-changing hyperparameters
    artifact_hash: str
    dataset: str
    image_hash: str
    scale: int
    protocol: str
    device: str

    def digest(self) -> str:
        canonical = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def canonical_params(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)


@dataclass
class Result:
    """One cell of the grid as stored and exported."""

    method: str
    label: str
    dataset: str
    image: str
    scale: int
    psnr: float | None
    ssim: float | None
    seconds: float | None
    device: str
    protocol: str
    status: str = "ok"  # ok | failed | bad_image
    error: str = ""
    method_version: str = ""
    params: str = "{}"
    artifact_hash: str = ""
    image_hash: str = ""
    repeat: int = 1
    #: The fastest and slowest of the ``repeat`` timed calls (``seconds`` is their median);
    #: None on rows stored before schema 4, whose spread was not kept.
    seconds_min: float | None = None
    seconds_max: float | None = None
    jobs: int = 1
    created: float = field(default_factory=time.time)
    #: The :class:`RunInfo` id of the run that computed this row; None where the store holds
    #: no record (results stored before runs were recorded). Not part of the key: a cached
    #: cell keeps the run that produced it.
    run: str | None = None
    #: Memory the timed call took beyond what the process held before it, in MiB (CUDA: most
    #: allocated; CPU: growth of the resident set). Measured, not part of the key.
    peak_mb: float | None = None
    #: Parameters of the network, and its multiply-accumulates for a 256x256 LR input (the
    #: efficient-SR challenges' figures); None for methods that are not networks.
    parameters: int | None = None
    macs: int | None = None
    #: Hash of the saved output image (:mod:`srbench.outputs`); None when not kept.
    output: str | None = None
    key: str = ""

    @classmethod
    def columns(cls) -> list[str]:
        return [f.name for f in fields(cls)]


@dataclass
class RunInfo:
    """What was true of one run when it computed its cells: one row of the ``runs`` table.

    Measured by the runner at the start of a run (:func:`srbench.runner.start_run`), never by
    whoever reads the results later. Host names are deliberately not kept: a published store
    or report should not name the machines it ran on.

    Attributes
    ----------
    id : str
        Random hex id; random rather than a counter so that stores can be merged.
    started : float
        Unix time the run started.
    cpu : str
        CPU model name.
    cores : int
        Logical cores.
    system : str
        Operating system and kernel release, e.g. ``Linux 6.8.0``.
    gpu : str
        Name of the CUDA device the run's CUDA cells used (with the CUDA version), or ``""``
        when no cell ran on CUDA.
    python : str
        Python version.
    libraries : dict of str to str
        Installed versions of srbench, numpy, scipy, scikit-learn and torch (those present).
    revision : str
        ``git describe`` of the srbench checkout, ``-dirty`` when its tracked files differ
        from the commit; ``""`` when srbench is not running from a git checkout.
    jobs : int
        Worker processes (``--jobs``).
    executor : str
        ``local`` or ``dask``.
    """

    id: str
    started: float
    cpu: str
    cores: int
    system: str
    gpu: str
    python: str
    libraries: dict[str, str]
    revision: str
    jobs: int = 1
    executor: str = "local"

    #: The fields that describe where the cells were computed (not when, nor how many workers).
    ENVIRONMENT = ("cpu", "cores", "system", "gpu", "python", "libraries", "revision")

    @classmethod
    def columns(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def environment(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.ENVIRONMENT}


EXPORT_COLUMNS = [
    "method", "label", "dataset", "image", "scale", "psnr", "ssim", "seconds", "seconds_min",
    "seconds_max", "device", "protocol", "status", "error", "method_version", "artifact_hash",
    "params", "repeat", "jobs", "run", "peak_mb", "parameters", "macs",
]  # fmt: skip
#: Columns an export gains when it is given the runs: where each row was measured.
RUN_EXPORT_COLUMNS = ["run_started", "cpu", "gpu", "revision"]


_REAL_COLUMNS = frozenset({"psnr", "ssim", "seconds", "seconds_min", "seconds_max", "created", "started", "peak_mb"})
_INTEGER_COLUMNS = frozenset({"scale", "repeat", "jobs", "cores", "parameters", "macs"})


def _column_type(name: str) -> str:
    return "REAL" if name in _REAL_COLUMNS else "INTEGER" if name in _INTEGER_COLUMNS else "TEXT"


class ResultStore:
    """SQLite-backed store of :class:`Result` rows keyed by :class:`CellKey` digests.

    Parameters
    ----------
    path : str or Path, optional
        The SQLite file; :func:`default_store_path` when not given. Created if missing.

    Attributes
    ----------
    migrated_from : int or None
        The schema version the file had when this open migrated it to
        :data:`SCHEMA_VERSION`; None when it needed no migration.

    Raises
    ------
    StoreError
        The file is not an SQLite database, or was written by a newer srbench (a schema
        version this code does not know).
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.migrated_from: int | None = None
        try:
            self._db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
            self._write_ahead_log()
            # With WAL, NORMAL syncs at checkpoints instead of at every commit: a crash of
            # srbench loses nothing, a power cut at most the last cells (they are recomputed).
            # FULL cost an fsync per cell, about 2 ms each.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=60000")
            self._open_schema()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open result store {self.path}: {exc}") from None

    def _write_ahead_log(self, wait: float = 60.0) -> None:
        """Put the file in WAL mode (a no-op once it is), waiting for other processes meanwhile.

        Turning a new file to WAL takes an exclusive lock and does not wait for one: a second
        process opening the same new store in the same instant got "database is locked"
        (two ``srbench run`` started together on a new store: one of them failed in a few
        tries). So it tries again until ``wait`` seconds have passed, as every other
        statement here waits through its busy timeout.
        """
        deadline = time.monotonic() + wait
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.005)

    # ------------------------------------------------------------------ schema
    def _schema_version(self) -> int | None:
        """The file's schema version; None for a file that holds no store yet."""
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        row = None
        if "meta" in tables:
            row = self._db.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
        if row is None:
            # Version 1 always wrote its meta row, but a results table alone can only be its layout.
            return 1 if "results" in tables else None
        try:
            return int(row[0])
        except (TypeError, ValueError):
            raise StoreError(f"result store {self.path} has an unreadable schema version {row[0]!r}") from None

    def _too_new(self, version: int) -> StoreError:
        return StoreError(
            f"result store {self.path} has schema version {version}, newer than this srbench reads "
            f"({SCHEMA_VERSION}): upgrade srbench, or use another store"
        )

    def _open_schema(self) -> None:
        """Create the tables, or migrate an older store in place, or refuse a newer one."""
        version = self._schema_version()
        if version == SCHEMA_VERSION:
            return  # the usual case reads and takes no write lock
        if version is not None and version > SCHEMA_VERSION:
            raise self._too_new(version)
        # Another process may be creating or migrating the same file: decide again under the
        # write lock, so exactly one of them does the work.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            version = self._schema_version()
            if version is None:
                self._create()
            elif version > SCHEMA_VERSION:
                raise self._too_new(version)
            elif version < SCHEMA_VERSION:
                self._migrate(version)
                self.migrated_from = version
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def _create_runs(self) -> None:
        cols = ", ".join(f"{name} {_column_type(name)}" for name in RunInfo.columns() if name != "id")
        self._db.execute(f"CREATE TABLE IF NOT EXISTS runs (id TEXT PRIMARY KEY, {cols})")

    def _set_version(self) -> None:
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT)")
        self._db.execute(
            "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
        )

    def _create(self) -> None:
        cols = ", ".join(f"{name} {_column_type(name)}" for name in Result.columns() if name != "key")
        self._db.execute(f"CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, {cols})")
        self._create_runs()
        self._set_version()

    def _migrate(self, version: int) -> None:
        """Bring a store of schema ``version`` to :data:`SCHEMA_VERSION`, keeping every row.

        Keys are untouched, so every cached cell is still found.
        """
        # Columns added since (2: run; 3: peak_mb, parameters, macs, output; 4: seconds_min,
        # seconds_max) are NULL on old rows: the report says their provenance or spread was not
        # recorded, rather than pinning them on whichever machine reads them or inventing them.
        have = {row[1] for row in self._db.execute("PRAGMA table_info(results)")}
        for name in Result.columns():
            if name not in have:
                self._db.execute(f"ALTER TABLE results ADD COLUMN {name} {_column_type(name)}")
        if version < 2:
            self._create_runs()
        self._set_version()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ writes
    def put(self, result: Result) -> None:
        """Insert or replace one result and commit it at once."""
        names = Result.columns()
        values = [getattr(result, n) for n in names]
        placeholders = ", ".join("?" for _ in names)
        self._db.execute(
            f"INSERT OR REPLACE INTO results ({', '.join(names)}) VALUES ({placeholders})", values
        )

    def put_run(self, run: RunInfo) -> None:
        """Record one run (before the results that name it), committed at once."""
        values = [json.dumps(run.libraries) if name == "libraries" else getattr(run, name)
                  for name in RunInfo.columns()]  # fmt: skip
        marks = ", ".join("?" for _ in values)
        self._db.execute(f"INSERT OR REPLACE INTO runs ({', '.join(RunInfo.columns())}) VALUES ({marks})", values)

    # ------------------------------------------------------------------ reads
    def runs(self, ids: Iterable[str] | None = None) -> dict[str, RunInfo]:
        """Recorded runs by id: all of them, or those of ``ids`` that the store holds."""
        names = RunInfo.columns()
        rows = self._db.execute(f"SELECT {', '.join(names)} FROM runs ORDER BY started").fetchall()
        wanted = None if ids is None else set(ids)
        out = {}
        for row in rows:
            values = dict(zip(names, row, strict=True))
            if wanted is not None and values["id"] not in wanted:
                continue
            values["libraries"] = json.loads(values["libraries"] or "{}")
            out[values["id"]] = RunInfo(**values)
        return out

    def cached_keys(self, keys: Iterable[str]) -> set[str]:
        """Which of ``keys`` already hold a successful result."""
        keys = list(keys)
        found: set[str] = set()
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            rows = self._db.execute(
                f"SELECT key FROM results WHERE status = 'ok' AND key IN ({marks})", chunk
            )
            found.update(row[0] for row in rows)
        return found

    def holds_any(self, methods: Iterable[str], datasets: Iterable[str]) -> bool:
        """Whether any of ``methods`` (result names) has a successful result on any of ``datasets``."""
        methods, datasets = list(methods), list(datasets)
        if not methods or not datasets:
            return False
        query = (
            f"SELECT 1 FROM results WHERE status = 'ok' AND method IN ({', '.join('?' for _ in methods)}) "
            f"AND dataset IN ({', '.join('?' for _ in datasets)}) LIMIT 1"
        )
        return self._db.execute(query, [*methods, *datasets]).fetchone() is not None

    def results(
        self,
        *,
        methods: Sequence[str] | None = None,
        datasets: Sequence[str] | None = None,
        scales: Sequence[int] | None = None,
        protocol: str | None = None,
        status: str | None = None,
        latest_only: bool = True,
    ) -> list[Result]:
        """Stored results, filtered; by default only the newest row per visible cell.

        Several rows can describe one visible cell (same method, dataset, image, scale,
        protocol and device) when a method's version, parameters or artifacts changed; the
        newest is the one that describes the code as it is now.
        """
        clauses, args = [], []
        for column, wanted in (("method", methods), ("dataset", datasets), ("scale", scales)):
            if wanted:
                values = [w.lower() if column != "scale" else int(w) for w in wanted]
                column_expr = f"lower({column})" if column != "scale" else column
                clauses.append(f"{column_expr} IN ({', '.join('?' for _ in values)})")
                args.extend(values)
        if protocol:
            clauses.append("protocol = ?")
            args.append(protocol)
        if status:
            clauses.append("status = ?")
            args.append(status)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        names = Result.columns()
        rows = self._db.execute(
            f"SELECT {', '.join(names)} FROM results {where} ORDER BY created", args
        ).fetchall()
        results = [Result(**dict(zip(names, row, strict=True))) for row in rows]
        if latest_only:
            newest: dict[tuple, Result] = {}
            for r in results:
                newest[(r.method, r.dataset, r.image, r.scale, r.protocol, r.device)] = r
            results = list(newest.values())
        return sorted(results, key=lambda r: (r.dataset, r.scale, r.method, r.image))

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0]

    def __iter__(self) -> Iterator[Result]:
        return iter(self.results(latest_only=False))


class StoreError(Exception):
    """A store that cannot be used: not SQLite, or from a newer srbench. The CLI prints one line."""


EXPORT_FORMATS = ("csv", "parquet", "json", "markdown", "latex")


def _fmt(value: Any, digits: int) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _utc(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    return _dt.datetime.fromtimestamp(timestamp, _dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def describe_run(run: RunInfo) -> str:
    """One line for a run: when, on what, with which versions, at which revision."""
    libraries = ", ".join(f"{k} {v}" for k, v in run.libraries.items())
    gpu = f", {run.gpu}" if run.gpu else ""
    return (
        f"{_utc(run.started)}; {run.cpu} ({run.cores} logical cores){gpu}; {run.system}; "
        f"Python {run.python}; {libraries}; revision {run.revision or 'not a git checkout'}; "
        f"{run.jobs} job{'s' if run.jobs != 1 else ''} ({run.executor})"
    )


def export(
    results: Sequence[Result], fmt: str, out: str | Path, *, runs: Mapping[str, RunInfo] | None = None
) -> Path:
    """Write per-image results as a long table: one row per result, as the store keeps them.

    This is the tidy form that analysis code loads (``pandas.read_csv``, ``read_parquet``,
    ``read_json``); :mod:`srbench.report.tables` prints the same results as papers do.

    Parameters
    ----------
    results : sequence of Result
    fmt : {"csv", "parquet", "json", "markdown", "latex"}
        JSON is an array of row objects (null where a value is missing).
    out : str or Path
    runs : mapping of str to RunInfo, optional
        The runs the results name (:meth:`ResultStore.runs`). When given, CSV, Parquet and
        JSON gain :data:`RUN_EXPORT_COLUMNS` (empty where a row's run was not recorded), and
        Markdown and LaTeX end with one line per run saying where their numbers were measured.
    """
    out = Path(out)
    fmt = fmt.lower()
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose from {', '.join(EXPORT_FORMATS)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    columns = EXPORT_COLUMNS + (RUN_EXPORT_COLUMNS if runs is not None else [])
    rows = []
    for r in results:
        row = {c: getattr(r, c) for c in EXPORT_COLUMNS}
        if runs is not None:
            run = runs.get(r.run or "")
            row.update(
                run_started=_utc(run.started) if run else "",
                cpu=run.cpu if run else "",
                # The run's GPU only where this cell ran on it (a run can mix CPU and CUDA cells).
                gpu=run.gpu if run and r.device == "cuda" else "",
                revision=run.revision if run else "",
            )
        rows.append(row)
    shown_runs = [runs[i] for i in dict.fromkeys(r.run for r in results) if runs and i in runs]
    unrecorded = runs is not None and any(r.run not in runs for r in results)
    if fmt == "csv":
        import csv

        with open(out, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(rows) if rows else pa.table({c: [] for c in columns})
        pq.write_table(table, out)
    elif fmt == "json":
        # JSON has no infinity (a PSNR of an exact reconstruction): null, as pandas writes it.
        finite = [{k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()} for row in rows]
        out.write_text(json.dumps(finite, indent=1) + "\n", encoding="utf-8")
    elif fmt == "markdown":
        shown = ["label", "dataset", "image", "scale", "psnr", "ssim", "seconds", "device", "protocol"]
        lines = ["| " + " | ".join(shown) + " |", "|" + "---|" * len(shown)]
        for row in rows:
            cells = [_fmt(row[c], 4 if c == "ssim" else 2 if c == "psnr" else 3) for c in shown]
            if (row["repeat"] or 1) > 1 and row["seconds_min"] is not None and row["seconds_max"] is not None:
                cells[shown.index("seconds")] += f" ({row['seconds_min']:.3f}–{row['seconds_max']:.3f}, {row['repeat']} repeats)"
            if row["status"] != "ok":
                cells[shown.index("psnr")] = f"failed: {row['error']}"
            lines.append("| " + " | ".join(cells) + " |")
        if shown_runs or unrecorded:
            lines.append("")
            lines.extend(f"Run `{run.id[:8]}`: {describe_run(run)}.  " for run in shown_runs)
            if unrecorded:
                lines.append("Some rows were stored before srbench recorded runs: their machine, versions and revision are not recorded.")
        out.write_text("\n".join(lines) + "\n")
    else:  # latex
        shown = ["label", "dataset", "image", "scale", "psnr", "ssim", "seconds"]
        body = []
        for row in rows:
            cells = [_latex_escape(_fmt(row[c], 4 if c == "ssim" else 2 if c == "psnr" else 3)) for c in shown]
            body.append(" & ".join(cells) + r" \\")
        protocol = rows[0]["protocol"] if rows else ""
        provenance = [f"% run {run.id[:8]}: {describe_run(run)}" for run in shown_runs]
        if unrecorded:
            provenance.append("% some rows: run not recorded (stored before srbench recorded runs)")
        text = "\n".join(
            [
                f"% srbench results, protocol {protocol}",
                *provenance,
                r"\begin{tabular}{lllrrrr}",
                r"\hline",
                " & ".join(_LATEX_HEADERS.get(s, s.capitalize()) for s in shown) + r" \\",
                r"\hline",
                *body,
                r"\hline",
                r"\end{tabular}",
            ]
        )
        out.write_text(text + "\n")
    return out


_LATEX_HEADERS = {"psnr": "PSNR (dB)", "ssim": "SSIM", "seconds": "Seconds"}


def _latex_escape(text: str) -> str:
    for char, repl in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"), ("$", r"\$")):
        text = text.replace(char, repl)
    return text
