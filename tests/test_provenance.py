"""Provenance recorded at run time: the runs table, the store's schema version, the report."""

import csv
import re
import shutil
import sqlite3
import subprocess
import sys
import time

import pytest

from srbench.report import write_report
from srbench.runner import (
    RunConfig,
    Runner,
    _git_revision,
    measure_environment,
    start_run,
)
from srbench.store import (
    SCHEMA_VERSION,
    CellKey,
    Result,
    ResultStore,
    RunInfo,
    StoreError,
)
from tests.conftest import srbench_cli

# The results table exactly as srbench wrote it before runs were recorded (schema version 1).
V1_RESULTS = (
    "CREATE TABLE results (key TEXT PRIMARY KEY, method TEXT, label TEXT, dataset TEXT, image TEXT, "
    "scale INTEGER, psnr REAL, ssim REAL, seconds REAL, device TEXT, protocol TEXT, status TEXT, "
    "error TEXT, method_version TEXT, params TEXT, artifact_hash TEXT, image_hash TEXT, repeat INTEGER, "
    "jobs INTEGER, created REAL)"
)
V1_COLUMNS = [
    "key", "method", "label", "dataset", "image", "scale", "psnr", "ssim", "seconds", "device",
    "protocol", "status", "error", "method_version", "params", "artifact_hash", "image_hash", "repeat",
    "jobs", "created",
]  # fmt: skip


def _v1_store(path, results, *, meta=True):
    """A store as the pre-provenance code left it, holding ``results``."""
    db = sqlite3.connect(path)
    db.execute(V1_RESULTS)
    if meta:
        db.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT)")
        db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    for r in results:
        db.execute(
            f"INSERT INTO results ({', '.join(V1_COLUMNS)}) VALUES ({', '.join('?' for _ in V1_COLUMNS)})",
            [getattr(r, c) for c in V1_COLUMNS],
        )
    db.commit()
    db.close()


def _schema(path):
    db = sqlite3.connect(path)
    try:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        version = None
        if "meta" in tables:
            version = db.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
        columns = {row[1] for row in db.execute("PRAGMA table_info(results)")}
        return tables, version[0] if version else None, columns
    finally:
        db.close()


def _elsewhere(**changes):
    run = RunInfo(
        id="a" * 32, started=1_700_000_000.0, cpu="Test CPU X", cores=64, system="TestOS 1.0",
        gpu="Test GPU Y, CUDA 99.9", python="3.99.1", libraries={"srbench": "9.9.9", "numpy": "0.0.1"},
        revision="abc123def456-dirty", jobs=4, executor="local",
    )  # fmt: skip
    for key, value in changes.items():
        setattr(run, key, value)
    return run


def _cell(method, label, image, run, *, scale=3, device="cpu", psnr=30.0):
    return Result(method=method, label=label, dataset="Set5", image=image, scale=scale, psnr=psnr,
                  ssim=0.9, seconds=0.01, device=device, protocol="matlab", run=run,
                  key=f"{method}-{image}-{scale}-{device}")  # fmt: skip


# ---------------------------------------------------------------------- run time
def test_a_run_records_where_it_ran_and_cached_cells_keep_their_run(tmp_path, data_dir):
    grid = {"methods": ["bicubic"], "datasets": ["Set5"], "scales": [2], "data_dir": data_dir, "jobs": 1}
    with ResultStore(tmp_path / "s.sqlite") as store:
        before = time.time()
        first = Runner(store).run(RunConfig(**grid))
        runs = store.runs()
        assert list(runs) == [first.run_id]
        run = runs[first.run_id]
        assert before <= run.started <= time.time()
        assert run.environment() == measure_environment(cuda=False)
        assert (run.jobs, run.executor, run.gpu) == (1, "local", "")
        assert run.libraries["numpy"] and run.libraries["srbench"]
        assert {r.run for r in store.results()} == {first.run_id}

        # Everything cached: no new run, and the cells still name the run that measured them.
        again = Runner(store).run(RunConfig(**grid))
        assert (again.cached, again.run_id) == (5, None)
        assert list(store.runs()) == [first.run_id]

        # A wider grid: only the new cells are the new run's.
        wider = Runner(store).run(RunConfig(**{**grid, "scales": [2, 3]}))
        assert (wider.cached, wider.run) == (5, 5)
        by_scale = {}
        for r in store.results():
            by_scale.setdefault(r.scale, set()).add(r.run)
        assert by_scale == {2: {first.run_id}, 3: {wider.run_id}}
        assert set(store.runs()) == {first.run_id, wider.run_id}

        # --force recomputes, and the recomputed rows name the forcing run.
        forced = Runner(store).run(RunConfig(**{**grid, "force": True}))
        assert {r.run for r in store.results(scales=[2])} == {forced.run_id}


def test_a_run_does_not_import_torch_to_record_its_version(tmp_path, data_dir):
    pytest.importorskip("torch")
    code = (
        "import sys\n"
        "from srbench.store import ResultStore\n"
        "from srbench.runner import RunConfig, Runner\n"
        f"store = ResultStore({str(tmp_path / 's.sqlite')!r})\n"
        f"Runner(store).run(RunConfig(methods=['bicubic'], datasets=['Set5'], scales=[4], data_dir={str(data_dir)!r}))\n"
        "(run,) = store.runs().values()\n"
        "print('torch' in sys.modules, run.libraries.get('torch'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    imported, version = out.stdout.split()
    assert imported == "False" and version != "None"


def test_git_revision_is_marked_dirty_and_ignores_other_projects(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args):
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                       env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                            "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"})  # fmt: skip

    git("init", "-q")
    (repo / "a.txt").write_text("one")
    git("add", "a.txt")
    git("commit", "-q", "-m", "one")
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout
    clean = _git_revision(repo)
    assert clean and head.startswith(clean) and not clean.endswith("-dirty")
    (repo / "untracked.txt").write_text("x")
    assert _git_revision(repo) == clean, "untracked files do not make the tree dirty"
    # What `make bench` rewrites (reports/) does not make the tree dirty; code does.
    (repo / "reports").mkdir()
    (repo / "reports" / "index.html").write_text("r")
    git("add", "-A")
    git("commit", "-q", "-m", "r")
    clean = _git_revision(repo)
    (repo / "reports" / "index.html").write_text("rewritten by make bench")
    assert _git_revision(repo) == clean
    (repo / "a.txt").write_text("two")
    assert _git_revision(repo) == f"{clean}-dirty"
    # An srbench installed in a folder inside some other checkout is not that checkout's code.
    (repo / "site-packages").mkdir()
    assert _git_revision(repo / "site-packages") == ""
    assert _git_revision(tmp_path) == ""


def test_dask_workers_on_other_machines_get_runs_of_their_own(tmp_path):
    with ResultStore(tmp_path / "s.sqlite") as store:
        runner = Runner(store)
        runner._run = start_run(store, jobs=2, executor="dask")
        here = runner._run.environment()
        assert runner._run_for(here) == runner._run.id
        # A CPU cell says nothing about the GPU: it still matches a run that used one.
        assert runner._run_for({**here, "gpu": None}) == runner._run.id
        other = {**here, "cpu": "Worker CPU Z", "cores": 128}
        worker_id = runner._run_for(other)
        assert worker_id != runner._run.id and runner._run_for(other) == worker_id
        stored = store.runs()[worker_id]
        assert (stored.cpu, stored.cores) == ("Worker CPU Z", 128)
        assert (stored.started, stored.jobs, stored.executor) == (runner._run.started, 2, "dask")
        assert len(store.runs()) == 2


# ---------------------------------------------------------------------- schema
def test_cell_keys_are_what_the_first_store_wrote():
    # Computed by the pre-provenance code: a changed digest would orphan every stored cell.
    key = CellKey("bicubic", "1", '{"a":1}', "", "Set5", "0123abcd", 3, "matlab", "cpu")
    assert key.digest() == "386c8f4568f2fe0da1bac6d36d816030e68a86d841d4269d23d7c6ae8f5502d4"


@pytest.mark.parametrize("meta", [True, False], ids=["version-1", "no-version"])
def test_an_older_store_is_migrated_in_place_and_its_cells_stay_cached(tmp_path, data_dir, meta):
    grid = {"methods": ["bicubic"], "datasets": ["Set5"], "scales": [2], "data_dir": data_dir}
    with ResultStore(tmp_path / "fresh.sqlite") as fresh:
        Runner(fresh).run(RunConfig(**grid))
        measured = fresh.results()
    old = tmp_path / "old.sqlite"
    _v1_store(old, measured, meta=meta)
    assert "runs" not in _schema(old)[0]

    with ResultStore(old) as store:
        assert store.migrated_from == 1
        tables, version, columns = _schema(old)
        assert "runs" in tables and version == str(SCHEMA_VERSION) and "run" in columns
        kept = store.results()
        assert [(r.key, r.psnr) for r in kept] == [(r.key, r.psnr) for r in measured]
        assert {r.run for r in kept} == {None}, "old results have no run, not today's"
        summary = Runner(store).run(RunConfig(**grid))
        assert (summary.cached, summary.run, summary.run_id) == (5, 0, None)
    with ResultStore(old) as store:
        assert store.migrated_from is None, "migrated once"

    html = write_report(tmp_path / "rep", store_path=old).read_text()
    setup = html[html.index('id="setup"'):]
    assert "stored before srbench recorded runs" in setup
    assert measure_environment(cuda=False)["cpu"] not in html


def test_concurrent_opens_migrate_an_older_store_once(tmp_path):
    old = tmp_path / "old.sqlite"
    _v1_store(old, [_cell("bicubic", "Bicubic", f"im{i}", None) for i in range(3)])
    code = "import sys; from srbench.store import ResultStore; ResultStore(sys.argv[1]).close()"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(old)], stderr=subprocess.PIPE, text=True)
             for _ in range(4)]  # fmt: skip
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    tables, version, columns = _schema(old)
    assert version == str(SCHEMA_VERSION) and "runs" in tables and "run" in columns
    with ResultStore(old) as store:
        assert len(store) == 3


def test_a_store_from_a_newer_srbench_is_refused_untouched(tmp_path, isolated_env):
    newer = tmp_path / "newer.sqlite"
    _v1_store(newer, [])
    db = sqlite3.connect(newer)
    db.execute("UPDATE meta SET value = ? WHERE name = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    db.commit()
    db.close()
    with pytest.raises(StoreError, match=rf"schema version {SCHEMA_VERSION + 1}, newer than this srbench"):
        ResultStore(newer)
    assert "runs" not in _schema(newer)[0], "nothing was changed"
    out = srbench_cli("report", "--store", str(newer), "--out", str(tmp_path / "rep"), env=isolated_env)
    assert out.returncode == 1
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"schema version {SCHEMA_VERSION + 1}" in lines[0], out.stderr
    assert "Traceback" not in out.stderr


# ---------------------------------------------------------------------- report
def test_a_store_measured_elsewhere_reports_that_machine(tmp_path, monkeypatch):
    store_path = tmp_path / "s.sqlite"
    run = _elsewhere()
    with ResultStore(store_path) as store:
        store.put_run(run)
        store.put(_cell("bicubic", "Bicubic", "baby", run.id))
        store.put(_cell("srcnn", "SRCNN", "baby", run.id, device="cuda"))
    here = measure_environment(cuda=False)

    # Rendering must not look at this machine: any attempt to would fail the test.
    def refuse(*args, **kwargs):
        raise AssertionError("the report read the rendering machine")

    import os
    import platform

    import srbench.runner

    for module, name in [(platform, "processor"), (platform, "release"), (platform, "python_version"),
                         (platform, "system"), (os, "cpu_count"), (subprocess, "run"),
                         (srbench.runner, "measure_environment")]:  # fmt: skip
        monkeypatch.setattr(module, name, refuse)
    out = tmp_path / "rep"
    html = write_report(out, store_path=store_path).read_text()
    monkeypatch.undo()

    for recorded in ("Test CPU X", "64 logical cores", "Test GPU Y, CUDA 99.9", "TestOS 1.0", "Python 3.99.1",
                     "numpy 0.0.1", "srbench 9.9.9", "abc123def456-dirty", "2023-11-14 22:13 UTC"):  # fmt: skip
        assert recorded in html, recorded
    header = html[html.index("<header>"):html.index("</header>")]
    assert "Test CPU X" in header and "abc123def456-dirty" in header
    assert here["cpu"] not in html and f"numpy {here['libraries']['numpy']}" not in html
    if here["revision"]:
        assert here["revision"] not in html
    # One run: no per-row run column is needed.
    assert "<th>Run</th>" not in html

    with open(out / "results.csv") as handle:
        rows = {row["method"]: row for row in csv.DictReader(handle)}
    assert rows["bicubic"]["run"] == run.id and rows["bicubic"]["cpu"] == "Test CPU X"
    assert rows["bicubic"]["revision"] == "abc123def456-dirty"
    assert (rows["bicubic"]["gpu"], rows["srcnn"]["gpu"]) == ("", "Test GPU Y, CUDA 99.9")
    assert "Test CPU X" in (out / "results.md").read_text()
    assert "% run aaaaaaaa: " in (out / "results.tex").read_text()


def test_several_runs_are_listed_and_each_result_names_its_run(tmp_path):
    store_path = tmp_path / "s.sqlite"
    early = _elsewhere(id="1" * 32, started=1_700_000_000.0)
    late = _elsewhere(id="2" * 32, started=1_700_100_000.0, cpu="Other CPU W", revision="fedcba987654")
    with ResultStore(store_path) as store:
        store.put_run(late)
        store.put_run(early)
        store.put(_cell("bicubic", "Bicubic", "baby", early.id))
        store.put(_cell("bicubic", "Bicubic", "bird", late.id, psnr=31.25))
        store.put(_cell("anr", "ANR", "baby", None, psnr=32.5))  # from a store older than runs
        store.put(_cell("anr", "ANR", "bird", "gone" * 8, psnr=32.75))  # its run row is missing
    html = write_report(tmp_path / "rep", store_path=store_path).read_text()
    header = html[html.index("<header>"):html.index("</header>")]
    assert "Measured in 2 runs on 2 machines; 2 results with no recorded run" in header
    setup = html[html.index('id="setup"'):]
    assert "2 different machines" in setup and "do not compare" in setup
    # Runs are numbered in start order, whatever order they were stored in.
    assert setup.index("Test CPU X") < setup.index("Other CPU W")
    assert re.search(r"R1 <code[^>]*>11111111</code>", setup) and re.search(r"R2 <code[^>]*>22222222</code>", setup)
    assert "fedcba987654" in setup and "not recorded" in setup
    # Per summary row: its runs; per image: the run in the cell's tooltip.
    summary = html[html.index('class="summary"'):html.index("</table>", html.index('class="summary"'))]
    assert re.search(r"Bicubic.*?<td>R1, R2</td>", summary, re.DOTALL)
    assert re.search(r"ANR.*?<td>not recorded</td>", summary, re.DOTALL)
    assert '<td class="" title="run R2">31.25' in html
    assert 'title="run not recorded">32.75' in html and 'title="run not recorded">32.50' in html


def test_a_run_with_cuda_cells_names_the_gpu(tmp_path, monkeypatch):
    from types import SimpleNamespace

    # No GPU here: a stand-in torch answers as a CUDA build on one would.
    cuda = SimpleNamespace(is_available=lambda: True, current_device=lambda: 0,
                           get_device_name=lambda index: f"Fake GPU {index}")  # fmt: skip
    monkeypatch.setitem(sys.modules, "torch", SimpleNamespace(cuda=cuda, version=SimpleNamespace(cuda="12.8")))
    with ResultStore(tmp_path / "s.sqlite") as store:
        assert start_run(store, cuda=True).gpu == "Fake GPU 0, CUDA 12.8"
        assert start_run(store, cuda=False).gpu == "", "a CPU-only run names no GPU"
        assert sorted(run.gpu for run in store.runs().values()) == ["", "Fake GPU 0, CUDA 12.8"]
