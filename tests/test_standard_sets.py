"""The four standard test sets (issue 15): suites, missing and broken BSD100 copies, progress.

Nothing here runs the standard grid: suites are checked by what they resolve to (and by the
missing-data error a bench without data stops at), BSD100 by a small fake catalogue entry.
"""

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

import srbench.datasets as ds
from srbench.datasets import DatasetError, DatasetSpec, suite_datasets
from srbench.imageio import pixel_hash
from srbench.runner import RunConfig, Runner
from srbench.store import ResultStore
from tests.conftest import ROOT, natural_image, srbench_cli
from tests.test_cli_errors import one_line_error

STANDARD = ["Set5", "Set14", "BSD100", "Urban100"]


# ---------------------------------------------------------------------- suites
def test_suites_name_their_datasets():
    assert suite_datasets("paper") == ["Set5", "Set14"]
    assert suite_datasets("Standard") == STANDARD
    assert all(name.lower() in ds.CATALOG for suite in ds.SUITES.values() for name in suite)


def test_an_unknown_suite_is_one_line_naming_the_suites(tmp_path, isolated_env):
    with pytest.raises(DatasetError, match=r"unknown suite 'standrad'; did you mean 'standard'\?"):
        suite_datasets("standrad")
    out = srbench_cli("bench", "--suite", "all", "-o", str(tmp_path / "reports"), env=isolated_env)
    line = one_line_error(out)
    assert line == "error: unknown suite 'all'; choose paper (Set5, Set14) or standard (Set5, Set14, BSD100, Urban100)"
    assert not (tmp_path / "reports").exists(), "nothing is made for a command that cannot run"
    line = one_line_error(srbench_cli("bench", "--suite", "paper", "-d", "Set5", env=isolated_env))
    assert line == "error: --suite and --datasets exclude each other; give one"


@pytest.mark.parametrize(("args", "sets"), [((), ["Set5", "Set14"]), (("--suite", "standard"), STANDARD)])
def test_bench_runs_the_suite_s_datasets(tmp_path, isolated_env, args, sets):
    """Without data the bench stops before any cell, naming every set its suite needs."""
    env = {**isolated_env, "SRBENCH_DATA": str(tmp_path / "empty")}
    line = one_line_error(srbench_cli("bench", *args, "-o", str(tmp_path / "reports"), env=env))
    listed = ", ".join(sets[:-1]) + f" and {sets[-1]}"
    assert line.startswith(f"error: {listed} not found: SRBENCH_DATA is {tmp_path / 'empty'}, which has no complete "), line
    assert not Path(env["SRBENCH_STORE"]).exists()


def test_make_bench_standard_runs_the_standard_suite_into_its_own_folder(tmp_path, isolated_env):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    (tmp_path / "stamp").touch()  # the venv given as installed: make runs the bench alone
    dry = subprocess.run(["make", "-s", "-n", "-C", str(ROOT), "bench-standard", f"STAMP={tmp_path / 'stamp'}"],
                         check=False, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert dry.stdout.strip().endswith("srbench bench --suite standard --out reports/standard"), dry.stdout
    # And for real, with a data folder holding none of the four sets: it stops at the data.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srbench").write_text(f'#!/bin/sh\nexec {sys.executable} -m srbench.cli "$@"\n')
    (bin_dir / "srbench").chmod(0o755)
    data = tmp_path / "no-data-here"
    out = subprocess.run(
        ["make", "-s", "-C", str(ROOT), "bench-standard", f"DATA={data}", f"STAMP={tmp_path / 'stamp'}", f"BIN={bin_dir}"],
        check=False, capture_output=True, text=True, env=isolated_env, timeout=600,
    )  # fmt: skip
    assert out.returncode != 0
    assert f"SRBENCH_DATA is {data}, which has no complete Set5/, Set14/, BSD100/ and Urban100/" in out.stderr, out.stderr


# ---------------------------------------------------------------------- BSD100 missing or broken
def test_bsd100_offline_without_a_copy_fails_fast_in_one_line(tmp_path, isolated_env):
    data = tmp_path / "data"
    (data / "Set5").mkdir(parents=True)  # a data folder, but no BSD100 in it
    env = {**isolated_env, "SRBENCH_DATA": str(data), "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    out = srbench_cli("run", "-d", "BSD100", env=env)
    seconds = time.perf_counter() - start
    line = one_line_error(out)
    assert line == (
        f"error: BSD100 not found: SRBENCH_DATA is {data}, which has no complete BSD100/; it is not in the "
        f"cache {Path(env['SRBENCH_CACHE']) / 'datasets'}; the download failed: the Hugging Face hub is not "
        f"reachable (offline?); put its images (100 images, img_001 ... img_100) in {data / 'BSD100'}/"
    )
    # Not a speed test (that figure, about 1 s, is measured by hand): the bound only catches a
    # run that waits on the network or retries, and stays loose for a loaded CI machine.
    assert seconds < 10.0, f"{seconds:.2f} s (interpreter start included)"
    assert not (Path(env["SRBENCH_CACHE"]) / "datasets" / "BSD100").exists()


@pytest.fixture
def fake_bsd100(monkeypatch, tmp_path):
    """A BSD100 catalogue entry of three small images, with a data folder holding them."""
    images = {f"img_{i:03d}": natural_image((48, 40 + 4 * i), seed=i) for i in (1, 2, 3)}
    spec = DatasetSpec(
        name="BSD100", hashes={n: pixel_hash(a) for n, a in images.items()},
        hf_repo="eugenesiow/BSD100", hf_archive="data/BSD100_HR.tar.gz", citation="", description="",
        shapes={n: a.shape for n, a in images.items()},
    )  # fmt: skip
    monkeypatch.setitem(ds.CATALOG, "bsd100", spec)
    folder = tmp_path / "data" / "BSD100"
    folder.mkdir(parents=True)
    for name, array in images.items():
        Image.fromarray(array).save(folder / f"{name}.png")
    return folder


def test_a_corrupt_bsd100_image_fails_alone_with_its_name(tmp_path, isolated_env, fake_bsd100):
    (fake_bsd100 / "img_002.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    Image.fromarray(natural_image((47, 48), seed=9)).save(fake_bsd100 / "img_003.png")  # another crop
    lines = []
    with ResultStore(tmp_path / "s.sqlite") as store:
        summary = Runner(store, log=lines.append).run(
            RunConfig(methods=["bicubic"], datasets=["bsd100"], scales=[2], data_dir=fake_bsd100.parent)
        )
        by_image = {r.image: r for r in store.results()}
    assert (summary.run, summary.bad_images) == (1, 2)
    assert by_image["img_001"].status == "ok" and by_image["img_001"].psnr > 20
    assert by_image["img_002"].status == "bad_image"
    assert lines[0].startswith("bicubic BSD100/img_002 x2: img_002.png: corrupt or truncated image"), lines
    assert lines[1] == (
        "bicubic BSD100/img_003 x2: img_003.png: not the catalogued BSD100 image img_003 "
        "(48x47 grayscale here, catalogued 52x48 grayscale)"
    )


def test_the_cli_names_the_corrupt_image_and_runs_the_others(tmp_path, isolated_env, fake_bsd100, monkeypatch):
    from typer.testing import CliRunner

    from srbench.cli import app

    (fake_bsd100 / "img_002.png").write_bytes(b"")
    for key, value in isolated_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("COLUMNS", "400")
    out = CliRunner().invoke(app, ["run", "-d", "BSD100", "-s", "2", "--data-dir", str(fake_bsd100.parent)])
    assert out.exit_code == 0, out.output
    assert "failed: bicubic BSD100/img_002 x2: img_002.png: empty file" in out.output
    assert "2 run, 1 bad images" in out.output


# ---------------------------------------------------------------------- progress
class _Recorder:
    def __init__(self, total):
        self.total, self.events = total, []

    def working(self, text):
        self.events.append(("working", text))

    def advance(self, text=""):
        self.events.append(("done", text))

    def close(self):
        self.events.append(("close", ""))


@pytest.mark.parametrize("jobs", [1, 2])
def test_progress_names_the_cell_being_computed(tmp_path, isolated_env, jobs):
    folder = tmp_path / "pics"
    folder.mkdir()
    Image.fromarray(natural_image((61, 50))).save(folder / "wide.png")
    Image.fromarray(natural_image((40, 40), seed=1)).save(folder / "small.png")
    bars = []
    with ResultStore(tmp_path / "s.sqlite") as store:
        Runner(store, progress=lambda total: bars.append(_Recorder(total)) or bars[-1]).run(
            RunConfig(methods=["bicubic"], datasets=[f"folder:{folder}"], scales=[3], jobs=jobs)
        )
    events = bars[0].events
    working = [text for kind, text in events if kind == "working"]
    if jobs == 1:
        # The workers' start is named first; then each cell before it is computed, with its
        # size after modcrop.
        assert events[0] == ("working", "starting 1 method worker")
        assert events[1:3] == [("working", "computing Bicubic pics/small x3 (39x39)"), ("done", "Bicubic pics/small x3")]
        assert events[3:5] == [("working", "computing Bicubic pics/wide x3 (48x60)"), ("done", "Bicubic pics/wide x3")]
    else:
        # A pool says which cell it waits on: the oldest one not finished.
        assert working[0] == "waiting on Bicubic pics/small x3 (39x39)"
        assert set(working) <= {"waiting on Bicubic pics/small x3 (39x39)", "waiting on Bicubic pics/wide x3 (48x60)"}
    assert events[-1] == ("close", "")


def test_the_cli_bar_shows_the_cell_being_computed():
    from srbench.cli import _Bar

    bar = _Bar(3, "srbench run")
    try:
        bar.working("computing SC Urban100/img_004 x2 (1024x680)")
        assert bar.progress.tasks[0].fields["current"] == "computing SC Urban100/img_004 x2 (1024x680)"
        assert bar.progress.tasks[0].completed == 0
        bar.advance("SC Urban100/img_004 x2")
        assert bar.progress.tasks[0].completed == 1
    finally:
        bar.close()
