"""srbench export: the long table for analysis, the per-image tables papers print, the summary."""

import csv
import json

import pandas as pd
import pytest

from srbench.report.tables import (
    image_tables,
    image_tables_frame,
    image_tables_markdown,
    write_images,
)
from srbench.results import results_frame
from srbench.store import Result, ResultStore, export
from tests.conftest import srbench_cli


def _result(method, label, image, psnr, *, dataset="Set5", scale=2, status="ok", repeat=3):
    ok = status == "ok"
    seconds = {"bicubic": 0.002, "aplus": 0.5}[method]
    return Result(method=method, label=label, dataset=dataset, image=image, scale=scale,
                  psnr=psnr if ok else None, ssim=0.9 + psnr / 1000 if ok else None,
                  seconds=seconds if ok else None, seconds_min=0.8 * seconds if ok else None,
                  seconds_max=1.5 * seconds if ok else None, repeat=repeat, device="cpu", protocol="matlab",
                  status=status, error="" if ok else "boom", key=f"{method}-{dataset}-{scale}-{image}")  # fmt: skip


def _results():
    """Set5 x2 (A+ failed on woman) and x3: Bicubic and A+ on three images each."""
    rows = []
    for scale in (2, 3):
        for i, image in enumerate(("baby", "bird", "woman")):
            rows.append(_result("bicubic", "Bicubic", image, 30.0 + i - scale, scale=scale))
            failed = scale == 2 and image == "woman"
            rows.append(_result("aplus", "A+", image, 31.0 + i - scale, scale=scale, status="failed" if failed else "ok"))
    return rows


@pytest.fixture
def store(tmp_path, isolated_env):
    path = tmp_path / "s.sqlite"
    with ResultStore(path) as opened:
        for r in _results():
            opened.put(r)
    return path


def test_per_image_tables_are_images_by_methods_with_a_mean_and_the_timing():
    tables = image_tables(results_frame(_results()), ["bicubic", "aplus"])
    assert [(t.dataset, t.scale, t.headers, len(t.rows)) for t in tables] == [
        ("Set5", 2, ["Bicubic", "A+"], 3), ("Set5", 3, ["Bicubic", "A+"], 3),
    ]  # fmt: skip
    x2 = tables[0]
    assert [v.error for v in x2.rows[2][1]] == ["", "boom"]
    assert x2.average[1].coverage == "2/3" and x2.average[1].psnr == pytest.approx(29.5)
    assert x2.timing[1].seconds == pytest.approx(0.5) and x2.timing[1].spread == pytest.approx((0.4, 0.75))

    text = image_tables_markdown(tables, ["run abcdefgh: somewhere"])
    assert text.count("| Image | Bicubic | A+ |") == 2
    assert "**Set5 ×2, protocol matlab: PSNR (dB) / SSIM per image; best PSNR of each image in bold.**" in text
    assert "| baby | 28.00 / 0.9280 | **29.00** / 0.9290 |" in text
    assert "| woman | **30.00** / 0.9300 | failed |" in text
    assert "| **Average** | 29.00 / 0.9290 | 29.50 / 0.9295 (2/3) |" in text
    assert "| Seconds | 0.002 (0.002–0.003) | 0.500 (0.400–0.750) |" in text
    assert "each the median of 3 calls; in brackets the mean of each image's fastest and of its slowest call" in text
    assert text.rstrip().endswith("run abcdefgh: somewhere")


def test_per_image_csv_and_parquet_are_the_same_wide_table(store, tmp_path):
    frame = image_tables_frame(image_tables(results_frame(_results()), ["bicubic", "aplus"]))
    assert list(frame.columns) == [
        "protocol", "dataset", "scale", "image",
        "Bicubic_psnr", "Bicubic_ssim", "Bicubic_seconds", "Bicubic_seconds_min", "Bicubic_seconds_max",
        "A+_psnr", "A+_ssim", "A+_seconds", "A+_seconds_min", "A+_seconds_max",
    ]  # fmt: skip
    assert list(frame.image) == ["baby", "bird", "woman", "Average"] * 2
    average = frame[(frame.scale == 2) & (frame.image == "Average")].iloc[0]
    assert average["A+_psnr"] == pytest.approx(29.5) and average["A+_seconds_max"] == pytest.approx(0.75)
    assert frame[(frame.scale == 2) & (frame.image == "woman")]["A+_psnr"].isna().all(), "a failed cell is empty"

    out = srbench_cli("export", "--table", "images", "-f", "csv", "-o", str(tmp_path / "i.csv"), "--store", str(store))
    assert out.returncode == 0 and "in 2 tables" in out.stdout, out.stderr
    with open(tmp_path / "i.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["image"] for r in rows] == ["baby", "bird", "woman", "Average"] * 2
    assert (rows[0]["Bicubic_psnr"], rows[0]["A+_psnr"], rows[2]["A+_psnr"]) == ("28.0", "29.0", "")
    write_images(image_tables(results_frame(_results()), ["bicubic", "aplus"]), "parquet", tmp_path / "i.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "i.parquet"), frame)
    # Tables of one call each have no spread columns.
    single = [_result("bicubic", "Bicubic", "baby", 30.0, repeat=1)]
    assert "Bicubic_seconds_min" not in image_tables_frame(image_tables(results_frame(single)))


def test_the_format_decides_the_table_unless_told(store, tmp_path):
    out = srbench_cli("export", "-f", "markdown", "-o", str(tmp_path / "r.md"), "--store", str(store))
    assert out.returncode == 0, out.stderr
    assert "| **Average** | 29.00 / 0.9290 | 29.50 / 0.9295 (2/3) |" in (tmp_path / "r.md").read_text()

    out = srbench_cli("export", "-f", "json", "-o", str(tmp_path / "r.json"), "--store", str(store))
    assert out.returncode == 0 and "wrote 12 rows" in out.stdout, out.stderr
    rows = json.loads((tmp_path / "r.json").read_text())
    assert len(rows) == 12 and {"seconds", "seconds_min", "seconds_max", "repeat", "status"} <= set(rows[0])
    assert pd.read_json(tmp_path / "r.json").shape == (12, len(rows[0])), "pandas loads it as it is"
    failed = next(r for r in rows if r["status"] == "failed")
    assert failed["psnr"] is None and failed["error"] == "boom"


def test_the_long_table_keeps_the_spread_in_every_format(tmp_path):
    results = _results()
    export(results, "csv", tmp_path / "r.csv")
    with open(tmp_path / "r.csv") as handle:
        header = next(csv.reader(handle))
    assert header[:10] == ["method", "label", "dataset", "image", "scale", "psnr", "ssim", "seconds",
                           "seconds_min", "seconds_max"]  # fmt: skip
    frame = pd.read_csv(tmp_path / "r.csv")
    assert frame.seconds_min.notna().sum() == 11
    export(results, "parquet", tmp_path / "r.parquet")
    assert pd.read_parquet(tmp_path / "r.parquet").seconds_max.max() == pytest.approx(0.75)
    export(results, "markdown", tmp_path / "r.md")
    assert "| A+ | Set5 | baby | 2 | 29.00 | 0.9290 | 0.500 (0.400–0.750, 3 repeats) |" in (tmp_path / "r.md").read_text()
    export(results, "latex", tmp_path / "r.tex")
    assert "Ssim" not in (tmp_path / "r.tex").read_text()
    export([_result("bicubic", "Bicubic", "baby", float("inf"))], "json", tmp_path / "inf.json")
    assert json.loads((tmp_path / "inf.json").read_text())[0]["psnr"] is None, "JSON has no infinity"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--table", "images", "-f", "json"), "--table images is written as csv, parquet, markdown, latex; not 'json'"),
        (("--table", "summary", "-f", "parquet"), "--table summary is written as latex, markdown, csv"),
        (("--table", "pivot", "-f", "csv"), "unknown --table 'pivot'; choose results, images, summary"),
        (("-f", "xlsx"), "unknown export format 'xlsx'"),
    ],
)
def test_a_table_and_format_that_do_not_go_together_are_one_line(store, tmp_path, args, message):
    out = srbench_cli("export", *args, "-o", str(tmp_path / "x"), "--store", str(store))
    assert out.returncode == 1
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], out.stderr
    assert not (tmp_path / "x").exists()
