"""A method under test runs where the HR image is not: it cannot read the answer."""

import importlib.util
import os
import time

import numpy as np
import pytest

from srbench import isolation
from srbench.protocol import degrade, modcrop
from srbench.registry import Registry
from srbench.runner import RunConfig, Runner
from srbench.store import ResultStore
from tests import plugin_sources


def _peeking(tmp_path):
    path = tmp_path / "peeking_plugin.py"
    path.write_text(plugin_sources.PEEKING)
    registry = Registry().discover()
    registry.load_plugin(str(path))
    return registry.get("peeking")


def test_the_peeking_plugin_cheats_where_the_hr_image_is_reachable(tmp_path, data_dir):
    """The control: in the process that holds the HR image, the search succeeds."""
    from srbench.imageio import read_luminance

    peeking = _peeking(tmp_path)()
    hr = modcrop(read_luminance(data_dir / "Set5" / "baby.png"), 3)
    lr = degrade(hr, 3)
    out = peeking.upscale(lr, 3)
    assert np.array_equal(np.round(out * 255).astype(np.uint8), hr)


def test_a_method_never_holds_the_hr_image_and_scores_like_bicubic(tmp_path, data_dir):
    path = tmp_path / "peeking_plugin.py"
    path.write_text(plugin_sources.PEEKING)
    registry = Registry().discover()
    registry.load_plugin(str(path))
    with ResultStore(tmp_path / "s.sqlite") as store:
        summary = Runner(store, registry).run(
            RunConfig(methods=["peeking", "bicubic"], datasets=["Set5"], scales=[2, 3], data_dir=data_dir)
        )
        assert summary.run == 20 and summary.failed == 0
        results = {(r.method, r.image, r.scale): r.psnr for r in store.results()}
    for (method, image, scale), value in results.items():
        if method == "peeking":
            assert np.isfinite(value)
            assert abs(value - results[("bicubic", image, scale)]) < 1e-9, (image, scale)


def test_pool_workers_get_no_hr_image_either(tmp_path, data_dir):
    path = tmp_path / "peeking_plugin.py"
    path.write_text(plugin_sources.PEEKING)
    registry = Registry().discover()
    registry.load_plugin(str(path))
    with ResultStore(tmp_path / "s.sqlite") as store:
        Runner(store, registry).run(
            RunConfig(methods=["peeking", "bicubic"], datasets=["Set5"], scales=[4], data_dir=data_dir, jobs=2)
        )
        results = {(r.method, r.image): r.psnr for r in store.results()}
    assert all(abs(results[("peeking", i)] - results[("bicubic", i)]) < 1e-9 for m, i in results if m == "peeking")


def test_scored_outputs_are_kept_beside_the_store_by_content(tmp_path, data_dir):
    from srbench.imageio import read_luminance
    from srbench.metrics import psnr
    from srbench.outputs import load_output, output_dir
    from srbench.protocol import imresize, to_uint8

    with ResultStore(tmp_path / "s.sqlite") as store:
        Runner(store).run(RunConfig(methods=["bicubic"], datasets=["Set5"], scales=[3], data_dir=data_dir))
        rows = {r.image: r for r in store.results()}
    baby = rows["baby"]
    image = load_output(tmp_path / "s.sqlite", baby.output)
    hr = modcrop(read_luminance(data_dir / "Set5" / "baby.png"), 3)
    np.testing.assert_array_equal(image, to_uint8(imresize(degrade(hr, 3), 3)))
    assert psnr(image, hr, border=3) == baby.psnr
    assert len(list(output_dir(tmp_path / "s.sqlite").rglob("*.png"))) == 5
    with ResultStore(tmp_path / "t.sqlite") as store:
        Runner(store).run(RunConfig(methods=["bicubic"], datasets=["Set5"], scales=[3], data_dir=data_dir,
                                    save_outputs=False))  # fmt: skip
        assert {r.output for r in store.results()} == {None}


# ---------------------------------------------------------------------- how workers start
# The pool forks workers from a zygote (a fresh interpreter that imported what workers share)
# where it can, and starts fresh interpreters otherwise; both must behave the same.
CRASHING = '''
import os
from srbench import Method, register
from srbench.protocol import imresize


@register
class Crashing(Method):
    name = "crashing"
    label = "Crashing"
    scales = frozenset({2, 3})

    def __init__(self):
        pass

    def _upscale(self, lr, scale):
        if scale == 2:
            os._exit(3)  # a native crash or a plugin's own exit: no exception, no answer
        return imresize(lr, scale)
'''

# Reports, as its output's value, the largest thread pool of the libraries it has loaded.
THREADS = '''
import numpy as np
from srbench import Method, register


@register
class Threads(Method):
    name = "threads"
    label = "Threads"
    scales = frozenset({2})

    def __init__(self):
        pass

    def _upscale(self, lr, scale):
        import torch
        from threadpoolctl import threadpool_info

        most = max([torch.get_num_threads()] + [pool["num_threads"] for pool in threadpool_info()])
        return np.full((lr.shape[0] * scale, lr.shape[1] * scale), most / 255, dtype=np.float32)
'''


def _spec(name, plugins=(), threads=None):
    from srbench.isolation import MethodSpec
    from srbench.registry import get_registry

    version = get_registry().get(name).version if not plugins else ""
    return MethodSpec(name, (), "cpu", tuple(plugins), (), version, threads)


def _plugin(tmp_path, source, name):
    path = tmp_path / f"{name}_plugin.py"
    path.write_text(source)
    return str(path)


def _lr(scale=3, seed=0):
    from tests.conftest import natural_image

    return degrade(modcrop(natural_image((48, 60), seed=seed), scale), scale)


def _gone(pid):
    """Whether ``pid`` has exited and been reaped (a zombie still has its /proc entry)."""
    from pathlib import Path

    return not Path(f"/proc/{pid}").exists()


needs_fork = pytest.mark.skipif(not isolation._fork_supported(), reason="workers fork from a zygote only on Linux")


@needs_fork
def test_a_forked_worker_computes_exactly_what_the_method_computes_in_process():
    from srbench.isolation import WorkerPool, build_method, run_method

    names = ["bicubic", "anr"]
    if importlib.util.find_spec("torch") is not None:
        names.append("espcn")  # torch imported in the zygote, its thread pools first used in the worker
    x = _lr()
    with WorkerPool() as pool:
        for name in names:
            spec = _spec(name)
            expected = run_method(build_method(spec), x, 3)
            answer = pool.run(spec, 3, x)
            assert pool._workers[spec].process is None, "forked from the zygote, not a fresh interpreter"
            np.testing.assert_array_equal(answer["sr"], expected["sr"])
            assert answer["parameters"] == expected["parameters"] and answer["macs"] == expected["macs"]
        assert pool.zygote_error is None


@pytest.mark.parametrize("zygote", [True, False], ids=["zygote", "spawn"])
def test_outputs_of_every_size_come_back_whole_through_the_shared_buffer(zygote):
    """Small outputs through the socket, large ones through the worker's shared buffer, which
    is replaced when an output outgrows it and reused when one fits."""
    from srbench.isolation import WorkerPool, build_method, run_method
    from tests.conftest import natural_image

    spec = _spec("bicubic")
    method = build_method(spec)
    with WorkerPool(zygote=zygote) as pool:
        for side, seed in [(20, 1), (120, 2), (200, 3), (90, 4), (200, 5)]:
            x = degrade(modcrop(natural_image((side, side + 7), seed=seed), 3), 3)
            answer = pool.run(spec, 3, x)
            np.testing.assert_array_equal(answer["sr"], run_method(method, x, 3)["sr"])
            assert answer["sr"].flags.writeable
        buffer = pool._workers[spec].outputs
        if hasattr(os, "memfd_create"):
            assert buffer.size >= 198 * 205 * 4, "large outputs came through the socket"


@needs_fork
def test_a_run_scores_the_same_through_forked_and_fresh_workers(tmp_path, data_dir, monkeypatch):
    scores = {}
    for start in ("zygote", "spawn"):
        monkeypatch.setenv("SRBENCH_WORKER_START", start)
        with ResultStore(tmp_path / f"{start}.sqlite") as store:
            summary = Runner(store).run(RunConfig(methods=["bicubic", "anr"], datasets=["Set5"], scales=[3],
                                                  data_dir=data_dir, save_outputs=False))  # fmt: skip
            assert summary.failed == 0
            scores[start] = {(r.method, r.image): (r.psnr, r.ssim) for r in store.results()}
    assert scores["zygote"] == scores["spawn"] and len(scores["spawn"]) == 10


@pytest.mark.parametrize("zygote", [True, False], ids=["zygote", "spawn"])
def test_both_ways_of_starting_a_worker_run_plugins(tmp_path, zygote):
    from srbench.isolation import WorkerPool
    from srbench.protocol import imresize

    spec = _spec("crashing", [_plugin(tmp_path, CRASHING, "crashing")])
    x = _lr()
    with WorkerPool(zygote=zygote) as pool:
        np.testing.assert_array_equal(pool.run(spec, 3, x)["sr"], imresize(x, 3))
        forked = pool._workers[spec].process is None
    assert forked == (zygote and isolation._fork_supported())


@needs_fork
def test_a_zygote_that_cannot_start_leaves_fresh_workers(monkeypatch):
    from srbench.isolation import WorkerPool

    start = isolation._start_process
    # A zygote that exits at once, as one whose interpreter cannot start would.
    monkeypatch.setattr(isolation, "_start_process", lambda role: start(("--bogus",) if role else role))
    x = _lr()
    for way in ("run", "prestart", "prepare"):  # the last asks for its forks without waiting
        with WorkerPool() as pool:
            if way != "run":
                pool.prestart()
            if way == "prepare":
                pool.prepare({_spec("bicubic"): [3], _spec("anr"): [3]})
                assert pool._workers[_spec("anr")].process is not None
            answer = pool.run(_spec("bicubic"), 3, x)
            assert pool._workers[_spec("bicubic")].process is not None
            assert "zygote did not start" in pool.zygote_error
        assert answer["sr"].shape == (x.shape[0] * 3, x.shape[1] * 3)


@pytest.mark.skipif(not os.path.exists("/proc/self/environ"), reason="reads /proc/PID/environ")
@pytest.mark.parametrize("user_value", [None, "25"])
def test_worker_processes_start_with_threads_that_sleep_soon(monkeypatch, user_value):
    # Idle OpenBLAS and OpenMP threads spun up to 0.1 s after every call, into the driver's
    # scoring and the next cell's timed call; workers get a short spin unless the user chose one.
    from srbench.isolation import WorkerPool

    for name in isolation._IDLE_SPIN:
        if user_value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, user_value)
    expected = {f"{name}={user_value or value}".encode() for name, value in isolation._IDLE_SPIN.items()}
    for zygote in (True, False):
        with WorkerPool(zygote=zygote) as pool:
            pool.run(_spec("bicubic"), 3, _lr())
            # A forked worker's libraries were loaded under the zygote's environment.
            started = pool._zygote.process if zygote and pool._zygote else pool._workers[_spec("bicubic")].process
            with open(f"/proc/{started.pid}/environ", "rb") as handle:
                assert expected <= set(handle.read().split(b"\0"))


@needs_fork
def test_a_prestarted_zygote_forks_the_workers():
    from srbench.isolation import WorkerPool

    with WorkerPool() as pool:
        pool.prestart()
        zygote = pool._zygote
        pool.run(_spec("bicubic"), 3, _lr())
        assert pool._workers[_spec("bicubic")].process is None and pool._zygote is zygote
        assert pool.zygote_error is None


@needs_fork
def test_a_zygote_that_dies_leaves_fresh_workers_for_what_follows():
    from srbench.isolation import WorkerPool

    x = _lr()
    with WorkerPool() as pool:
        pool.run(_spec("bicubic"), 3, x)
        pool._zygote.process.kill()
        pool._zygote.process.wait()
        pool.run(_spec("anr"), 3, x)
        assert pool._workers[_spec("anr")].process is not None
        assert "zygote is gone" in pool.zygote_error
        pool.run(_spec("bicubic"), 3, x)  # the worker forked before still serves


@pytest.mark.parametrize("zygote", [True, False], ids=["zygote", "spawn"])
def test_a_worker_that_crashes_is_reported_in_one_line_and_replaced(tmp_path, zygote):
    from srbench.isolation import WorkerError, WorkerPool

    spec = _spec("crashing", [_plugin(tmp_path, CRASHING, "crashing")])
    x = _lr(2)
    with WorkerPool(zygote=zygote) as pool:
        pool.run(spec, 3, _lr(3))
        first = pool._workers[spec].pid
        with pytest.raises(WorkerError) as caught:
            pool.run(spec, 2, x)
        assert str(caught.value) == "the method's worker process died (exit code 3)"
        assert spec not in pool._workers and _gone(first)
        pool.run(spec, 3, _lr(3))
        assert pool._workers[spec].pid != first


@pytest.mark.parametrize("zygote", [True, False], ids=["zygote", "spawn"])
def test_close_leaves_no_process_behind(tmp_path, zygote):
    from srbench.isolation import WorkerPool

    x = _lr()
    pool = WorkerPool(zygote=zygote)
    for name in ("bicubic", "anr"):
        pool.run(_spec(name), 3, x)
    pids = [w.pid for w in pool._workers.values()]
    if pool._zygote is not None:
        pids.append(pool._zygote.process.pid)
        assert len(pids) == 3
    pool.close()
    assert [pid for pid in pids if not _gone(pid)] == []
    assert pool._workers == {} and pool._zygote is None


@needs_fork
def test_a_forked_worker_holds_only_its_own_line(tmp_path):
    """The zygote's socket to the driver is closed in the worker: one socket, its own."""
    from srbench.isolation import WorkerPool

    with WorkerPool() as pool:
        pool.run(_spec("bicubic"), 3, _lr())
        pid = pool._workers[_spec("bicubic")].pid
        targets = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    assert sum(t.startswith("socket:") for t in targets) == 1, targets


@pytest.mark.parametrize("zygote", [True, False], ids=["zygote", "spawn"])
def test_spec_threads_limits_every_thread_pool_of_the_worker(tmp_path, monkeypatch, zygote):
    pytest.importorskip("torch")
    pytest.importorskip("threadpoolctl")
    from srbench.isolation import WorkerPool

    plugin = _plugin(tmp_path, THREADS, "threads")
    # As for a network: torch (and its OpenMP) loaded in the zygote, before any limit is set.
    monkeypatch.setattr(isolation, "_libraries_for", lambda spec: isolation._SHARED_LIBRARIES["torch"])
    x = _lr(2)
    with WorkerPool(zygote=zygote) as pool:
        limited = pool.run(_spec("threads", [plugin], threads=1), 2, x)["sr"]
        default = pool.run(_spec("threads", [plugin]), 2, x)["sr"]
    assert np.all(np.round(limited * 255) == 1)
    if (os.cpu_count() or 1) > 1 and "OMP_NUM_THREADS" not in os.environ:
        assert np.all(np.round(default * 255) > 1), "threads=None keeps the libraries' defaults"


@needs_fork
@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_prepared_workers_without_torch_are_forked_before_the_zygote_imports_it():
    # prepare() asks for the workers that need no torch first (whatever the order given):
    # they are forked without it, and the zygote imports it for the network's worker only.
    from srbench.isolation import WorkerPool

    def maps_torch(pid):
        with open(f"/proc/{pid}/maps") as handle:
            return "libtorch" in handle.read()

    for specs, networks in (([_spec("fsrcnn"), _spec("bicubic"), _spec("anr")], True),
                            ([_spec("bicubic")], False)):  # fmt: skip
        with WorkerPool() as pool:
            pool.prestart()
            pool.prepare({spec: [3] for spec in specs})
            assert not pool.starting()
            assert maps_torch(pool._zygote.process.pid) == networks
            for spec in specs:
                assert maps_torch(pool._workers[spec].pid) == (spec.registered == "fsrcnn")
            np.testing.assert_array_equal(pool.run(_spec("bicubic"), 3, _lr())["sr"].shape, (48, 60))


@pytest.mark.parametrize("zygote", [True, False], ids=["zygote", "spawn"])
def test_workers_prepared_ahead_compute_as_before_and_failures_stay_with_their_cells(tmp_path, zygote):
    from srbench.isolation import MethodError, WorkerPool

    unbuildable = _spec("broken", plugins=(_plugin(tmp_path, plugin_sources.BROKEN, "broken"),))
    x = _lr()
    with WorkerPool(zygote=zygote) as pool:
        steps = []
        pool.prepare({_spec("anr"): [3, 2], unbuildable: [3], _spec("bicubic"): [3]},
                     meanwhile=lambda: steps.append(1) is None and len(steps) < 3)  # fmt: skip
        assert len(steps) <= 3
        assert unbuildable not in pool._workers and _spec("anr") in pool._workers
        anr = pool._workers[_spec("anr")]
        answer = pool.run(_spec("anr"), 3, x)
        assert pool._workers[_spec("anr")] is anr  # the prepared worker served the call
        with pytest.raises(MethodError):  # the cell meets its method's error itself
            pool.run(unbuildable, 3, x)
    with WorkerPool(zygote=zygote) as pool:
        np.testing.assert_array_equal(pool.run(_spec("anr"), 3, x)["sr"], answer["sr"])


@pytest.mark.parametrize("zygote", [True, False], ids=["zygote", "spawn"])
def test_workers_started_without_waiting_serve_once_built(tmp_path, zygote):
    # prepare() starts every worker without waiting for each build; a call to a worker still
    # building waits for it, and one whose build fails raises its error at the call.
    from srbench.isolation import MethodError, WorkerPool

    unbuildable = _spec("broken", plugins=(_plugin(tmp_path, plugin_sources.BROKEN, "broken"),))
    x = _lr()
    with WorkerPool(zygote=zygote) as pool:
        pool.start(_spec("bicubic"), wait=False)
        pool.start(unbuildable, wait=False)
        assert not pool._workers[_spec("bicubic")].built
        pool.start(_spec("bicubic"), wait=False)  # still building: the same worker
        worker = pool._workers[_spec("bicubic")]
        sr = pool.run(_spec("bicubic"), 3, x)["sr"]
        assert worker.built and pool._workers[_spec("bicubic")] is worker
        assert sr.shape == (x.shape[0] * 3, x.shape[1] * 3)
        with pytest.raises(MethodError):
            pool.run(unbuildable, 3, x)
        assert unbuildable not in pool._workers


def test_a_borrowed_output_is_the_output_read_only_and_outlives_a_larger_buffer():
    from srbench.isolation import WorkerPool

    # Outputs of 64 KiB and more come through the shared buffer (smaller ones as copies).
    rng = np.random.default_rng(0)
    small, large = rng.random((40, 50), dtype=np.float32), rng.random((120, 130), dtype=np.float32)
    with WorkerPool() as pool:
        copied = pool.run(_spec("bicubic"), 3, small)["sr"]
        borrowed = pool.run(_spec("bicubic"), 3, small, borrow=True)["sr"]
        np.testing.assert_array_equal(borrowed, copied)
        assert not borrowed.flags.writeable
        kept = borrowed.copy()
        # A larger output makes the worker a new buffer; the driver maps it while the old
        # one is still borrowed here, which stays readable until it is let go.
        bigger = pool.run(_spec("bicubic"), 3, large, borrow=True)["sr"]
        assert bigger.shape == (360, 390)
        np.testing.assert_array_equal(borrowed, kept)
        del borrowed
        np.testing.assert_array_equal(pool.run(_spec("bicubic"), 3, small)["sr"], copied)


@pytest.mark.parametrize("zygote", [True, False], ids=["zygote", "spawn"])
def test_a_pool_closed_without_waiting_leaves_no_process_behind(zygote):
    from srbench.isolation import WorkerPool

    pool = WorkerPool(zygote=zygote)
    pool.run(_spec("bicubic"), 3, _lr())
    pool.run(_spec("anr"), 3, _lr())
    pids = [worker.pid for worker in pool._workers.values()]
    if pool._zygote is not None:
        pids.append(pool._zygote.process.pid)
    pool.close(wait=False)
    assert pool._workers == {} and pool._zygote is None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_running(pid) for pid in pids):
        time.sleep(0.02)
    assert not any(_running(pid) for pid in pids)


def _running(pid):
    # A process that has exited but is not yet reaped (a zombie) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@needs_fork
def test_workers_asked_for_ahead_serve_the_methods_started_later_and_the_rest_exit():
    from srbench.isolation import WorkerPool

    pool = WorkerPool()
    pool.prestart([_spec("bicubic"), _spec("anr")])  # two workers without torch, asked at once
    first, second = pool._spare[()]
    answer = pool.run(_spec("bicubic"), 3, _lr())
    assert pool._workers[_spec("bicubic")]._fork is first
    assert answer["sr"].shape == (48, 60)
    unused = pool._zygote.pid_of(second)
    assert _running(unused)
    pool.close()
    assert not _running(unused) and pool._spare == {}


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="Linux /proc only")
def test_a_calls_peak_memory_is_its_own_also_in_a_forked_child():
    # The /proc files stay open between calls; a forked child must read its own, not its parent's.
    def peak_of_an_allocation(megabytes):
        import mmap

        before = isolation._memory_mark(False)
        # Fresh pages, each touched (malloc could hand back memory already resident).
        block = mmap.mmap(-1, megabytes << 20)
        pages = np.frombuffer(block, np.uint8)
        pages[:: mmap.PAGESIZE] = 1
        del pages
        block.close()
        return isolation._memory_peak(False, before)

    assert 60 <= peak_of_an_allocation(64) < 200
    assert peak_of_an_allocation(1) < 30
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its peak and whether it reopened the files
        try:
            ok = 60 <= peak_of_an_allocation(64) < 200 and isolation._PROC._pid == os.getpid()
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
