"""srbench merge: stores from several machines joined without losing or duplicating a cell."""

import hashlib
import sqlite3

import numpy as np
import pytest

from srbench.merge import merge_stores
from srbench.outputs import load_output, output_dir, save_output
from srbench.store import SCHEMA_VERSION, Result, ResultStore, RunInfo, StoreError
from tests.conftest import srbench_cli


def _run(id_, cpu, started):
    return RunInfo(id=id_, started=started, cpu=cpu, cores=8, system="TestOS", gpu="", python="3.11",
                   libraries={"numpy": "2.0"}, revision="abc")  # fmt: skip


def _result(image, run, *, psnr=30.0, created=1.0, status="ok", output=None, method="bicubic"):
    return Result(method=method, label=method.title(), dataset="Set5", image=image, scale=2, psnr=psnr,
                  ssim=0.9, seconds=0.1, device="cpu", protocol="matlab", status=status, run=run,
                  created=created, output=output, key=f"{method}-{image}")  # fmt: skip


def _store(path, runs, results):
    with ResultStore(path) as store:
        for run in runs:
            store.put_run(run)
        for r in results:
            store.put(r)
    return path


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _merge_pair(tmp_path):
    """A: baby, bird, butterfly (bird failed); B: bird (ok), butterfly (other value, newer), head."""
    pixels = np.arange(64, dtype=np.uint8).reshape(8, 8)
    a_path, b_path = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    a_out = save_output(a_path, pixels)
    b_out = save_output(b_path, pixels[::-1].copy())
    ra, rb = _run("a" * 32, "CPU A", 1.0), _run("b" * 32, "CPU B", 2.0)
    _store(a_path, [ra], [
        _result("baby", ra.id, output=a_out), _result("bird", ra.id, status="failed", psnr=None),
        _result("butterfly", ra.id, psnr=31.0, created=1.0),
    ])  # fmt: skip
    _store(b_path, [rb], [
        _result("bird", rb.id, psnr=32.0, created=0.5, output=b_out), _result("butterfly", rb.id, psnr=31.5, created=2.0),
        _result("head", rb.id), _result("baby", ra.id, output=a_out),  # the same row as A's (a copied store)
    ])  # fmt: skip
    return a_path, b_path, a_out, b_out


def test_merge_keeps_every_cell_once_and_every_run(tmp_path):
    a_path, b_path, a_out, b_out = _merge_pair(tmp_path)
    before = {p: _digest(p) for p in (a_path, b_path)}
    into = tmp_path / "c.sqlite"
    summary = merge_stores([a_path, b_path], into)
    with ResultStore(into) as store:
        rows = {r.key: r for r in store.results(latest_only=False)}
        runs = store.runs()
    # Every key of either store, once.
    assert sorted(rows) == ["bicubic-baby", "bicubic-bird", "bicubic-butterfly", "bicubic-head"]
    # bird: B's success beats A's failure although it is older; butterfly: the newer row.
    assert (rows["bicubic-bird"].status, rows["bicubic-bird"].psnr) == ("ok", 32.0)
    assert rows["bicubic-butterfly"].psnr == 31.5
    # Each result still names the run (and so the machine) that measured it.
    assert set(runs) == {"a" * 32, "b" * 32} and rows["bicubic-head"].run == "b" * 32
    assert runs["a" * 32].cpu == "CPU A" and runs["a" * 32].libraries == {"numpy": "2.0"}
    # Outputs: copied under their hash, readable from the merged store.
    assert load_output(into, a_out).shape == (8, 8) and load_output(into, b_out)[0, 0] == 56
    a, b = summary.sources
    assert (a.rows, a.added, a.identical, a.replaced, a.kept) == (3, 3, 0, 0, 0)
    assert (b.rows, b.added, b.identical, b.replaced, b.kept) == (4, 1, 1, 2, 0)
    assert (a.outputs_copied, b.outputs_copied) == (1, 1) and summary.total == 4
    # The sources are only read.
    assert {p: _digest(p) for p in (a_path, b_path)} == before


def test_merge_does_not_depend_on_the_order_and_is_idempotent(tmp_path):
    a_path, b_path, *_ = _merge_pair(tmp_path)

    def content(path):
        with ResultStore(path) as store:
            return sorted((r.key, r.status, r.psnr, r.run, r.output) for r in store.results(latest_only=False))

    merge_stores([a_path, b_path], tmp_path / "ab.sqlite")
    merge_stores([b_path, a_path], tmp_path / "ba.sqlite")
    assert content(tmp_path / "ab.sqlite") == content(tmp_path / "ba.sqlite")
    # Merging again (or into an existing target) adds nothing.
    again = merge_stores([a_path, b_path], tmp_path / "ab.sqlite")
    assert [s.added + s.replaced for s in again.sources] == [0, 0]
    assert content(tmp_path / "ab.sqlite") == content(tmp_path / "ba.sqlite")
    # A target that is also named as a source is skipped, not read against itself.
    same = merge_stores([tmp_path / "ab.sqlite", a_path], tmp_path / "ab.sqlite")
    assert same.sources[0].skipped and same.total == 4


def test_merge_refuses_a_newer_store_before_writing_anything(tmp_path):
    a_path, b_path, *_ = _merge_pair(tmp_path)
    db = sqlite3.connect(b_path)
    db.execute("UPDATE meta SET value = ? WHERE name = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="newer than this srbench"):
        merge_stores([a_path, b_path], tmp_path / "c.sqlite")
    assert not (tmp_path / "c.sqlite").exists()
    with pytest.raises(StoreError, match="no result store"):
        merge_stores([tmp_path / "missing.sqlite"], tmp_path / "c.sqlite")


def test_merge_reads_an_older_store_without_migrating_it(tmp_path):
    old = tmp_path / "old.sqlite"
    db = sqlite3.connect(old)
    db.execute("CREATE TABLE results (key TEXT PRIMARY KEY, method TEXT, label TEXT, dataset TEXT, image TEXT, "
               "scale INTEGER, psnr REAL, ssim REAL, seconds REAL, device TEXT, protocol TEXT, status TEXT, "
               "error TEXT, method_version TEXT, params TEXT, artifact_hash TEXT, image_hash TEXT, "
               "repeat INTEGER, jobs INTEGER, created REAL)")  # fmt: skip
    db.execute("INSERT INTO results VALUES ('k1', 'anr', 'ANR', 'Set5', 'baby', 2, 33.0, 0.9, 1.0, 'cpu', "
               "'matlab', 'ok', '', '1', '{}', 'h', 'i', 1, 1, 5.0)")  # fmt: skip
    db.commit()
    db.close()
    before = _digest(old)
    merge_stores([old], tmp_path / "c.sqlite")
    assert _digest(old) == before
    with ResultStore(tmp_path / "c.sqlite") as store:
        (row,) = store.results()
    assert (row.method, row.psnr, row.run, row.output) == ("anr", 33.0, None, None)


def test_merge_command(tmp_path, isolated_env):
    a_path, b_path, *_ = _merge_pair(tmp_path)
    into = tmp_path / "c.sqlite"
    out = srbench_cli("merge", str(a_path), str(b_path), "--into", str(into), env=isolated_env)
    assert out.returncode == 0, out.stderr
    assert "4 rows" in out.stdout and "2 replaced a differing row" in out.stdout
    assert output_dir(into).is_dir()
    out = srbench_cli("merge", str(tmp_path / "nope.sqlite"), "--into", str(into), env=isolated_env)
    assert out.returncode == 1 and "no result store" in out.stderr and "Traceback" not in out.stderr
