"""Join result stores from several machines into one, losing and duplicating no cell.

A result row is identified by its key (the digest of everything that decides it:
:class:`~srbench.store.CellKey`), a run by its random id, an output image by the hash of its
pixels. So merging is a union:

* results by key: a key found in one store only is copied; a key found in both with the same
  values is one row; a key found in both with different values (the same cell measured twice,
  say on two machines) keeps one of them, by a rule that does not depend on the order the
  stores are named in: a successful result beats a failed one, then the newer one wins, then
  the larger row (compared value by value) wins;
* runs by id (a result keeps naming the run that measured it, so the machine of every number
  survives the merge);
* outputs (``<store>-outputs/``) by file name, which is their content hash.

The sources are only read (opened read-only, never migrated); the target is created, or
migrated and added to, like any store.
"""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from srbench.outputs import output_dir
from srbench.store import SCHEMA_VERSION, Result, ResultStore, RunInfo, StoreError

__all__ = ["MergeSummary", "SourceSummary", "merge_stores"]


@dataclass
class SourceSummary:
    """What one source store contributed."""

    path: Path
    rows: int = 0
    #: Keys the target did not have.
    added: int = 0
    #: Keys the target had with the same values.
    identical: int = 0
    #: Keys the target had with other values, where this store's row won (and replaced it).
    replaced: int = 0
    #: Keys the target had with other values, where the target's row won.
    kept: int = 0
    runs_added: int = 0
    outputs_copied: int = 0
    #: Outputs its rows name whose file is not in its outputs folder.
    outputs_missing: int = 0
    skipped: str = ""


@dataclass
class MergeSummary:
    into: Path
    sources: list[SourceSummary] = field(default_factory=list)
    #: Rows in the target after the merge.
    total: int = 0

    def lines(self) -> list[str]:
        """One line per source, then the total: what the CLI prints."""
        out = []
        for s in self.sources:
            if s.skipped:
                out.append(f"{s.path}: skipped ({s.skipped})")
                continue
            text = (f"{s.path}: {s.rows} rows: {s.added} added, {s.identical} already there, "
                    f"{s.replaced} replaced a differing row, {s.kept} kept the target's; "
                    f"{s.runs_added} runs, {s.outputs_copied} output images copied")  # fmt: skip
            if s.outputs_missing:
                text += f" ({s.outputs_missing} named outputs were not in its outputs folder)"
            out.append(text)
        out.append(f"{self.into}: {self.total} rows")
        return out


def _read_only(path: Path) -> sqlite3.Connection:
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60.0)
        db.execute("PRAGMA busy_timeout=60000")
        db.execute("SELECT name FROM sqlite_master").fetchall()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot read result store {path}: {exc}") from None
    return db


def _schema(db: sqlite3.Connection, path: Path) -> tuple[set[str], set[str]]:
    """The source's tables and results columns; a store from a newer srbench is refused."""
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "results" not in tables:
        raise StoreError(f"{path} is not a result store (it has no results table)")
    if "meta" in tables:
        row = db.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
        if row is not None and int(row[0]) > SCHEMA_VERSION:
            raise StoreError(
                f"result store {path} has schema version {row[0]}, newer than this srbench reads "
                f"({SCHEMA_VERSION}): upgrade srbench to merge it"
            )
    columns = {row[1] for row in db.execute("PRAGMA table_info(results)")}
    return tables, columns


def _rows(db: sqlite3.Connection, table: str, names: list[str], have: set[str]) -> list[dict[str, Any]]:
    """Every row of ``table`` with the columns ``names`` (None for those the store lacks)."""
    present = [n for n in names if n in have]
    out = []
    for values in db.execute(f"SELECT {', '.join(present)} FROM {table}"):
        row = dict.fromkeys(names)
        row.update(zip(present, values, strict=True))
        out.append(row)
    return out


def _rank(row: dict[str, Any]) -> tuple:
    """Which of two rows of one key wins: ok first, then newer, then a fixed order."""
    values = tuple("" if row[n] is None else str(row[n]) for n in sorted(row))
    return (row.get("status") == "ok", row.get("created") or 0.0, values)


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a.get(n) == b.get(n) for n in set(a) | set(b))


def merge_stores(sources: Sequence[str | Path], into: str | Path) -> MergeSummary:
    """Merge the result stores ``sources`` into ``into`` (created if missing).

    Parameters
    ----------
    sources : sequence of str or Path
        Store files; each must exist. A source that is the target itself is skipped.
    into : str or Path
        The target store; its own rows take part in the merge like any source's.

    Returns
    -------
    MergeSummary

    Raises
    ------
    StoreError
        A source is missing, not a store, or from a newer srbench (checked for every source
        before anything is written).
    """
    into = Path(into)
    paths = [Path(s) for s in sources]
    for path in paths:
        if not path.is_file():
            raise StoreError(f"no result store at {path}")
    opened = []
    for path in paths:
        if into.exists() and path.resolve() == into.resolve():
            opened.append((path, None, set(), set()))
            continue
        db = _read_only(path)
        tables, columns = _schema(db, path)
        opened.append((path, db, tables, columns))

    ResultStore(into).close()  # created, or migrated to this schema, with the usual checks
    names = Result.columns()
    run_names = RunInfo.columns()
    summary = MergeSummary(into=into)
    target = sqlite3.connect(into, timeout=60.0, isolation_level=None)
    try:
        target.execute("PRAGMA busy_timeout=60000")
        for path, db, tables, columns in opened:
            source = SourceSummary(path=path)
            summary.sources.append(source)
            if db is None:
                source.skipped = "it is the target"
                continue
            rows = _rows(db, "results", names, columns)
            runs = _rows(db, "runs", run_names, {r[1] for r in db.execute("PRAGMA table_info(runs)")}) if "runs" in tables else []
            db.close()
            source.rows = len(rows)
            target.execute("BEGIN IMMEDIATE")
            try:
                _merge_rows(target, rows, names, source)
                for run in runs:
                    marks = ", ".join("?" for _ in run_names)
                    cursor = target.execute(
                        f"INSERT OR IGNORE INTO runs ({', '.join(run_names)}) VALUES ({marks})",
                        [run[n] for n in run_names],
                    )
                    source.runs_added += cursor.rowcount
                target.execute("COMMIT")
            except BaseException:
                target.execute("ROLLBACK")
                raise
            _copy_outputs(path, into, {r["output"] for r in rows if r.get("output")}, source)
        summary.total = target.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    finally:
        target.close()
    return summary


def _merge_rows(target: sqlite3.Connection, rows: list[dict[str, Any]], names: list[str], source: SourceSummary) -> None:
    insert = f"INSERT OR REPLACE INTO results ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})"
    keys = [r["key"] for r in rows]
    existing: dict[str, dict[str, Any]] = {}
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        found = target.execute(
            f"SELECT {', '.join(names)} FROM results WHERE key IN ({', '.join('?' for _ in chunk)})", chunk
        )
        for values in found:
            row = dict(zip(names, values, strict=True))
            existing[row["key"]] = row
    for row in rows:
        have = existing.get(row["key"])
        if have is None:
            source.added += 1
        elif _same(have, row):
            source.identical += 1
            continue
        elif _rank(row) > _rank(have):
            source.replaced += 1
        else:
            source.kept += 1
            continue
        target.execute(insert, [row[n] for n in names])
        existing[row["key"]] = row


def _copy_outputs(source_store: Path, into: Path, digests: set[str], summary: SourceSummary) -> None:
    """Copy the outputs ``digests`` from the source's outputs folder where the target lacks them."""
    src, dst = output_dir(source_store), output_dir(into)
    if src.resolve() == dst.resolve():
        return
    for digest in sorted(digests):
        origin = src / digest[:2] / f"{digest}.png"
        target = dst / digest[:2] / f"{digest}.png"
        if target.exists():
            continue
        if not origin.is_file():
            summary.outputs_missing += 1
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.{uuid.uuid4().hex[:8]}.part")
        shutil.copyfile(origin, partial)
        partial.replace(target)
        summary.outputs_copied += 1
