"""The result store: one SQLite file, one row per (method, image, scale, protocol, ...) cell.

Every result is committed the moment it is produced, in WAL mode, so a run killed at any
point loses nothing finished, a re-run computes only what is missing, and two runs can
share one store.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = ["EXPORT_FORMATS", "CellKey", "Result", "ResultStore", "default_store_path", "export"]

SCHEMA_VERSION = 1


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
    jobs: int = 1
    created: float = field(default_factory=time.time)
    key: str = ""

    @classmethod
    def columns(cls) -> list[str]:
        return [f.name for f in fields(cls)]


EXPORT_COLUMNS = [
    "method", "label", "dataset", "image", "scale", "psnr", "ssim", "seconds", "device",
    "protocol", "status", "error", "method_version", "artifact_hash", "params", "repeat", "jobs",
]  # fmt: skip


class ResultStore:
    """SQLite-backed store of :class:`Result` rows keyed by :class:`CellKey` digests."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA busy_timeout=60000")
            self._create()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open result store {self.path}: {exc}") from None

    def _create(self) -> None:
        cols = ", ".join(
            f"{name} {'REAL' if name in ('psnr', 'ssim', 'seconds', 'created') else 'INTEGER' if name in ('scale', 'repeat', 'jobs') else 'TEXT'}"
            for name in Result.columns()
            if name != "key"
        )
        self._db.execute(f"CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, {cols})")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT)")
        self._db.execute(
            "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
        )

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

    # ------------------------------------------------------------------ reads
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
    pass


EXPORT_FORMATS = ("csv", "parquet", "markdown", "latex")


def _fmt(value: Any, digits: int) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def export(results: Sequence[Result], fmt: str, out: str | Path) -> Path:
    """Write per-image results as CSV, Parquet, Markdown or LaTeX."""
    out = Path(out)
    fmt = fmt.lower()
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose from {', '.join(EXPORT_FORMATS)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = [{c: getattr(r, c) for c in EXPORT_COLUMNS} for r in results]
    if fmt == "csv":
        import csv

        with open(out, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=EXPORT_COLUMNS)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(rows) if rows else pa.table({c: [] for c in EXPORT_COLUMNS})
        pq.write_table(table, out)
    elif fmt == "markdown":
        shown = ["label", "dataset", "image", "scale", "psnr", "ssim", "seconds", "device", "protocol"]
        lines = ["| " + " | ".join(shown) + " |", "|" + "---|" * len(shown)]
        for row in rows:
            cells = [_fmt(row[c], 4 if c == "ssim" else 2 if c == "psnr" else 3) for c in shown]
            if row["status"] != "ok":
                cells[shown.index("psnr")] = f"failed: {row['error']}"
            lines.append("| " + " | ".join(cells) + " |")
        out.write_text("\n".join(lines) + "\n")
    else:  # latex
        shown = ["label", "dataset", "image", "scale", "psnr", "ssim", "seconds"]
        body = []
        for row in rows:
            cells = [_latex_escape(_fmt(row[c], 4 if c == "ssim" else 2 if c == "psnr" else 3)) for c in shown]
            body.append(" & ".join(cells) + r" \\")
        protocol = rows[0]["protocol"] if rows else ""
        text = "\n".join(
            [
                f"% srbench results, protocol {protocol}",
                r"\begin{tabular}{lllrrrr}",
                r"\hline",
                " & ".join(s.capitalize() if s != "psnr" else "PSNR (dB)" for s in shown) + r" \\",
                r"\hline",
                *body,
                r"\hline",
                r"\end{tabular}",
            ]
        )
        out.write_text(text + "\n")
    return out


def _latex_escape(text: str) -> str:
    for char, repl in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"), ("$", r"\$")):
        text = text.replace(char, repl)
    return text
