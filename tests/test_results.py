"""srbench.load_results: the store as a pandas DataFrame."""

import numpy as np
import pytest

import srbench
from srbench.outputs import save_output
from srbench.store import Result, ResultStore, RunInfo, StoreError

pd = pytest.importorskip("pandas")


def _fill(path):
    run = RunInfo(id="r" * 32, started=1_700_000_000.0, cpu="Test CPU", cores=4, system="TestOS", gpu="Test GPU",
                  python="3.11", libraries={"numpy": "2.0"}, revision="abc", jobs=2)  # fmt: skip
    digest = save_output(path, np.zeros((4, 4), np.uint8))
    rows = [
        Result(method="bicubic", label="Bicubic", dataset="Set5", image="baby", scale=2, psnr=33.0, ssim=0.9,
               seconds=0.01, device="cpu", protocol="matlab", run=run.id, output=digest, key="k1"),
        Result(method="srcnn", label="SRCNN", dataset="Set5", image="baby", scale=2, psnr=36.0, ssim=0.95,
               seconds=0.02, device="cuda", protocol="matlab", run=run.id, parameters=8032, macs=2_000_000, key="k2"),
        Result(method="srcnn", label="SRCNN", dataset="Set5", image="bird", scale=2, psnr=None, ssim=None,
               seconds=None, device="cuda", protocol="matlab", status="failed", error="boom", key="k3"),
        Result(method="srcnn", label="SRCNN", dataset="Set5", image="baby", scale=2, psnr=35.9, ssim=0.94,
               seconds=0.02, device="cpu", protocol="matlab-rgb", key="k4"),
    ]  # fmt: skip
    with ResultStore(path) as store:
        store.put_run(run)
        for r in rows:
            store.put(r)


def test_load_results_gives_one_row_per_result_with_its_run(tmp_path):
    path = tmp_path / "s.sqlite"
    _fill(path)
    frame = srbench.load_results(path)
    assert isinstance(frame, pd.DataFrame) and len(frame) == 4
    assert list(frame.columns[:3]) == ["method", "label", "dataset"]
    for column in ("psnr", "ssim", "seconds", "device", "protocol", "run", "cpu", "gpu", "revision", "run_started",
                   "parameters", "macs", "peak_mb", "output_path"):  # fmt: skip
        assert column in frame.columns, column
    assert frame.psnr.dtype == "float64" and str(frame.parameters.dtype) == "Int64"
    srcnn = frame[(frame.method == "srcnn") & (frame.image == "baby") & (frame.protocol == "matlab")].iloc[0]
    assert srcnn.parameters == 8032 and srcnn.gpu == "Test GPU" and srcnn.cpu == "Test CPU"
    bicubic = frame[frame.method == "bicubic"].iloc[0]
    assert pd.isna(bicubic.parameters) and bicubic.gpu == ""  # the GPU only beside CUDA rows
    assert bicubic.output_path.endswith(".png") and bicubic.run_started.year == 2023
    failed = frame[frame.status == "failed"].iloc[0]
    assert np.isnan(failed.psnr) and failed.error == "boom" and pd.isna(failed.cpu)  # no run recorded
    # Filters, as ResultStore.results takes them.
    assert set(srbench.load_results(path, protocol="matlab-rgb").method) == {"srcnn"}
    assert len(srbench.load_results(path, methods=["BICUBIC"])) == 1
    assert len(srbench.load_results(path, status="ok")) == 3
    # What analysts do with it.
    means = frame[frame.status == "ok"].groupby(["protocol", "method"]).psnr.mean()
    assert means[("matlab", "srcnn")] == 36.0


def test_load_results_needs_an_existing_store(tmp_path):
    with pytest.raises(StoreError, match="no result store"):
        srbench.load_results(tmp_path / "missing.sqlite")
    assert not (tmp_path / "missing.sqlite").exists()
    with ResultStore(tmp_path / "empty.sqlite") as store:
        assert srbench.load_results(store).empty


def _open_store(path, start, answers):
    start.wait()
    try:
        ResultStore(path).close()
        answers.put("ok")
    except Exception as exc:  # noqa: BLE001 - reported to the test
        answers.put(repr(exc))


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="forks the openers")
def test_processes_opening_one_new_store_together_all_open_it(tmp_path):
    # Turning a new file to WAL does not wait for a lock: without a retry, one of three
    # processes opening a new store at once failed in about one try in five.
    import multiprocessing

    context = multiprocessing.get_context("fork")
    for attempt in range(12):
        path = tmp_path / f"s{attempt}.sqlite"
        start, answers = context.Barrier(3), context.Queue()
        openers = [context.Process(target=_open_store, args=(path, start, answers)) for _ in range(3)]
        for opener in openers:
            opener.start()
        for opener in openers:
            opener.join(60)
        assert [answers.get(timeout=10) for _ in openers] == ["ok"] * 3
