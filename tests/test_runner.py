import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from srbench.runner import RunConfig, Runner
from srbench.store import ResultStore, export
from tests import plugin_sources
from tests.conftest import natural_image


def rows(store_path):
    db = sqlite3.connect(store_path)
    try:
        return db.execute("SELECT status, COUNT(*) FROM results GROUP BY status").fetchall()
    finally:
        db.close()


def test_cache_force_and_counts(tmp_path, data_dir):
    with ResultStore(tmp_path / "s.sqlite") as store:
        runner = Runner(store)
        config = RunConfig(methods=["bicubic"], datasets=["Set5"], scales=[2, 4], data_dir=data_dir)
        first = runner.run(config)
        assert (first.cached, first.run) == (0, 10)
        second = runner.run(config)
        assert (second.cached, second.run) == (10, 0)
        assert second.line().startswith("10 cached, 0 run")
        forced = runner.run(RunConfig(**{**config.__dict__, "force": True}))
        assert (forced.cached, forced.run) == (0, 10)
        assert len(store) == 10, "recomputed cells replace their rows"


def test_failing_method_is_recorded_and_grid_completes(tmp_path, data_dir):
    from srbench.registry import Registry

    plugin = tmp_path / "faulty.py"
    plugin.write_text(plugin_sources.FAULTY)
    registry = Registry().discover()
    registry.load_plugin(str(plugin))
    with ResultStore(tmp_path / "s.sqlite") as store:
        summary = Runner(store, registry).run(
            RunConfig(methods=["faulty", "bicubic"], datasets=["Set5"], scales=[2, 3, 4], data_dir=data_dir)
        )
        assert summary.run == 15 and summary.failed == 15
        errors = {r.scale: r.error for r in store.results(methods=["faulty"])}
        assert "boom" in errors[2]
        assert "NaN" in errors[3]
        assert "shape" in errors[4]
        # failures are retried on the next run, successes are not
        again = Runner(store, registry).run(
            RunConfig(methods=["faulty", "bicubic"], datasets=["Set5"], scales=[2, 3, 4], data_dir=data_dir)
        )
        assert (again.cached, again.failed) == (15, 15)


def test_bad_images_are_reported_per_image(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(natural_image((48, 48))).save(folder / "good.png")
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    Image.fromarray(natural_image((48, 48))).convert("P").save(folder / "palette.png")
    with ResultStore(tmp_path / "s.sqlite") as store:
        summary = Runner(store).run(RunConfig(methods=["bicubic"], datasets=[f"folder:{folder}"], scales=[2]))
        assert (summary.run, summary.bad_images) == (1, 2)
        by_image = {r.image: r for r in store.results()}
        assert by_image["good"].status == "ok" and by_image["good"].psnr > 20
        assert by_image["broken"].status == "bad_image" and "corrupt" in by_image["broken"].error
        assert "palette" in by_image["palette"].error


def test_process_pool_gives_the_same_numbers(tmp_path, data_dir):
    config = dict(methods=["bicubic"], datasets=["Set5"], scales=[3], data_dir=data_dir)
    with ResultStore(tmp_path / "a.sqlite") as a, ResultStore(tmp_path / "b.sqlite") as b:
        Runner(a).run(RunConfig(**config))
        summary = Runner(b).run(RunConfig(**config, jobs=2))
        assert summary.run == 5
        assert [r.psnr for r in a.results()] == [r.psnr for r in b.results()]
        assert {r.jobs for r in b.results()} == {2}


@pytest.mark.parametrize("how", ["sigkill", "sigint"])
def test_killed_run_loses_nothing_and_resumes(tmp_path, data_dir, how):
    plugin = tmp_path / "slow.py"
    plugin.write_text(plugin_sources.SLOW)
    store = tmp_path / "s.sqlite"
    args = [
        sys.executable, "-m", "srbench.cli", "run", "-m", "slow", "-d", "Set5", "-s", "2,3,4",
        "--plugin", str(plugin), "--store", str(store), "--data-dir", str(data_dir),
    ]  # fmt: skip
    # A shell's background job inherits SIGINT as ignored (CI may start us that way); the
    # child must see Ctrl-C as a user at a terminal would.
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.time() + 60
    done = 0
    while time.time() < deadline:
        time.sleep(0.2)
        if store.exists():
            try:
                done = sum(n for _, n in rows(store))
            except sqlite3.OperationalError:
                continue
            if done >= 4:
                break
    assert done >= 4, "the run never got going"
    proc.send_signal(signal.SIGKILL if how == "sigkill" else signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    if how == "sigint":
        assert proc.returncode == 130, f"rc {proc.returncode}\n{stdout}\n{stderr}"
        assert "finished results are kept" in stderr
    kept = sum(n for _, n in rows(store))
    assert 4 <= kept < 15
    again = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert f"{kept} cached, {15 - kept} run" in again.stdout
    assert rows(store) == [("ok", 15)]


def test_two_runs_share_one_store(tmp_path, data_dir):
    store = tmp_path / "s.sqlite"
    args = [sys.executable, "-m", "srbench.cli", "run", "-m", "bicubic", "-d", "Set5,Set14", "-s", "2,3,4",
            "--store", str(store), "--data-dir", str(data_dir), "--force"]  # fmt: skip
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert rows(store) == [("ok", 57)]
    with sqlite3.connect(store) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_exports(tmp_path, data_dir):
    with ResultStore(tmp_path / "s.sqlite") as store:
        summary = Runner(store).run(RunConfig(methods=["bicubic"], datasets=["Set5"], scales=[2], data_dir=data_dir))
        results = store.results()
        runs = store.runs()
    import csv

    import pyarrow.parquet as pq

    export(results, "csv", tmp_path / "r.csv")
    with open(tmp_path / "r.csv") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 5
    for column in "method,label,dataset,image,scale,psnr,ssim,seconds,device,protocol,run".split(","):
        assert column in table[0]
    assert {row["run"] for row in table} == {summary.run_id}
    assert "cpu" not in table[0], "without the runs, no machine columns to leave empty"
    # Given the runs, each row says where it was measured.
    export(results, "csv", tmp_path / "runs.csv", runs=runs)
    with open(tmp_path / "runs.csv") as handle:
        table = list(csv.DictReader(handle))
    run = runs[summary.run_id]
    assert {(row["cpu"], row["revision"], row["gpu"]) for row in table} == {(run.cpu, run.revision, "")}
    export(results, "parquet", tmp_path / "r.parquet", runs=runs)
    parquet = pq.read_table(tmp_path / "r.parquet")
    assert parquet.num_rows == 5 and set(parquet.column("cpu").to_pylist()) == {run.cpu}
    export(results, "markdown", tmp_path / "r.md")
    assert "| Bicubic | Set5 | baby | 2 | 37.07" in (tmp_path / "r.md").read_text()
    export(results, "latex", tmp_path / "r.tex")
    assert r"\begin{tabular}" in (tmp_path / "r.tex").read_text()
    with pytest.raises(ValueError, match="unknown export format"):
        export(results, "xlsx", tmp_path / "r.xlsx")


def _folder_of_images(tmp_path, count=2, size=(60, 66)):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for seed in range(count):
        Image.fromarray(natural_image(size, seed=seed)).save(folder / f"im{seed}.png")
    return folder


def test_settings_run_a_variant_beside_the_default(tmp_path):
    folder = _folder_of_images(tmp_path)
    grid = dict(methods=["espcn"], datasets=[f"folder:{folder}"], scales=[3], device="cpu")
    with ResultStore(tmp_path / "s.sqlite") as store:
        runner = Runner(store)
        assert runner.run(RunConfig(**grid)).run == 2
        assert runner.run(RunConfig(**grid, settings=["border=layers"])).run == 2
        results = store.results()
        assert {(r.method, r.label) for r in results} == {
            ("espcn", "ESPCN"), ("espcn[border=layers]", "ESPCN (border=layers)")
        }
        psnr = {(r.method, r.image): r.psnr for r in results}
        for image in ("im0", "im1"):
            assert psnr[("espcn", image)] != psnr[("espcn[border=layers]", image)]
        # The default's cells are untouched, and restating a default is no variant.
        again = runner.run(RunConfig(**grid, settings=["border=symmetric"]))
        assert (again.cached, again.run) == (2, 0)
        # A variant's stored name runs it again, beside the default, in one grid.
        both = runner.run(RunConfig(**{**grid, "methods": ["espcn", "espcn[border=layers]"]}))
        assert (both.cached, both.run) == (4, 0)
        # Worker processes run the variant too, with the same numbers.
        with ResultStore(tmp_path / "pool.sqlite") as pool_store:
            Runner(pool_store).run(RunConfig(**grid, settings=["border=layers"], jobs=2))
            pooled = {(r.method, r.image): r.psnr for r in pool_store.results()}
        assert pooled == {k: v for k, v in psnr.items() if k[0] == "espcn[border=layers]"}


@pytest.mark.parametrize(
    ("method", "setting", "message"),
    [("gr", "lam=0.2", "fixed when its artifacts were trained"), ("espcn", "lr=0.1", "unknown parameter"),
     ("espcn", "bordr=layers", "unknown parameter"), ("espcn", "border", "expected KEY=VALUE")],
)
def test_bad_settings_stop_the_run_before_any_cell(tmp_path, method, setting, message):
    from srbench.runner import RunError

    folder = _folder_of_images(tmp_path, count=1)
    with ResultStore(tmp_path / "s.sqlite") as store:
        with pytest.raises(RunError, match=message):
            Runner(store).run(RunConfig(methods=[method], datasets=[f"folder:{folder}"], scales=[3],
                                        settings=[setting]))
        assert len(store) == 0
        assert store.runs() == {}, "a run that computed nothing records no run"


def test_dask_executor_gives_the_same_numbers_as_a_local_run(tmp_path):
    distributed = pytest.importorskip("distributed")
    folder = _folder_of_images(tmp_path)
    grid = dict(methods=["bicubic", "espcn[border=layers]"], datasets=[f"folder:{folder}"],
                scales=[2, 3], device="cpu")
    with ResultStore(tmp_path / "local.sqlite") as store:
        Runner(store).run(RunConfig(**grid))
        local = {(r.method, r.image, r.scale): r.psnr for r in store.results()}
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        with ResultStore(tmp_path / "dask.sqlite") as store:
            summary = Runner(store).run(
                RunConfig(**grid, executor="dask", scheduler=cluster.scheduler_address)
            )
            remote = {(r.method, r.image, r.scale): r.psnr for r in store.results()}
            runs, runs_named = store.runs(), {r.run for r in store.results()}
    assert summary.run == len(local) == 8 and summary.failed == 0
    assert remote == local
    # The worker (in this process) is the driver's machine: one run, named by every result.
    assert set(runs) == {summary.run_id} and runs_named == {summary.run_id}


def test_auto_device_asks_torch_only_where_a_gpu_driver_can_exist(monkeypatch):
    import types

    from srbench import runner

    class Net:
        name = "net"
        devices = ("cpu", "cuda")

    class Untouchable(types.ModuleType):
        def __getattr__(self, name):
            raise AssertionError("torch was consulted")

    monkeypatch.setitem(sys.modules, "torch", Untouchable("torch"))
    monkeypatch.setattr(runner, "_gpu_driver_possible", lambda: False)
    assert runner.resolve_device(Net(), "auto") == "cpu"
    with pytest.raises(runner.RunError, match="no CUDA device"):
        runner.resolve_device(Net(), "cuda")

    fake = types.ModuleType("torch")
    fake.cuda = types.SimpleNamespace(is_available=lambda: True)
    monkeypatch.setitem(sys.modules, "torch", fake)
    monkeypatch.setattr(runner, "_gpu_driver_possible", lambda: True)
    assert runner.resolve_device(Net(), "auto") == "cuda"


def test_a_cold_serial_run_starts_the_workers_zygote_while_it_plans(tmp_path, monkeypatch):
    # The zygote's imports overlap the plan when none of the run's methods has results on
    # its datasets; a run on a store that holds them starts it only once it knows there is
    # work to do, and a run with nothing to do never starts it.
    from srbench import runner as runner_module

    prestarts = []
    planned = []
    original_prestart = runner_module.WorkerPool.prestart
    original_plan = Runner.plan

    def prestart(pool, specs=()):
        prestarts.append(len(planned))
        original_prestart(pool, specs)

    def plan(self, config, **kwargs):
        cells = original_plan(self, config, **kwargs)
        planned.append(1)
        return cells

    monkeypatch.setattr(runner_module.WorkerPool, "prestart", prestart)
    monkeypatch.setattr(Runner, "plan", plan)
    folder = _folder_of_images(tmp_path)
    grid = dict(methods=["bicubic"], datasets=[f"folder:{folder}"], device="cpu")
    with ResultStore(tmp_path / "s.sqlite") as store:
        assert not store.holds_any(["bicubic"], [f"folder:{folder}"])
        assert Runner(store).run(RunConfig(scales=[2], **grid)).run == 2
        assert prestarts[0] == 0, "started during the plan"
        dataset = store.results()[0].dataset
        assert store.holds_any(["bicubic", "nothing"], ["elsewhere", dataset])
        assert not store.holds_any(["espcn"], [dataset]) and not store.holds_any([], [dataset])
        prestarts.clear()
        assert Runner(store).run(RunConfig(scales=[2], **grid)).cached == 2
        assert prestarts == [], "nothing to compute: no zygote"
        planned.clear()
        assert Runner(store).run(RunConfig(scales=[3], **grid)).run == 2
        assert prestarts == [1], "results on these datasets: started after the plan"


def test_a_zygote_stopped_while_it_starts_is_killed_at_once():
    from srbench import isolation

    if not isolation._fork_supported():
        pytest.skip("workers fork from a zygote only on Linux")
    pool = isolation.WorkerPool()
    pool.prestart()
    zygote = pool._zygote
    assert zygote.starting()
    started = time.perf_counter()
    pool.close()
    assert zygote.process.returncode == -signal.SIGKILL
    assert time.perf_counter() - started < 5.0
