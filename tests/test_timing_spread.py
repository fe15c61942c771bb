"""The spread of repeated timings (schema 4): measured, stored, migrated, merged, loaded, reported."""

import sqlite3

import pytest
from PIL import Image

from srbench.merge import merge_stores
from srbench.report import write_report
from srbench.report.data import build_report_data
from srbench.results import load_results
from srbench.runner import RunConfig, Runner
from srbench.store import SCHEMA_VERSION, Result, ResultStore, StoreError
from tests.conftest import natural_image

# The results table exactly as schema 3 wrote it (before the fastest and slowest call were kept).
V3_RESULTS = (
    "CREATE TABLE results (key TEXT PRIMARY KEY, method TEXT, label TEXT, dataset TEXT, image TEXT, "
    "scale INTEGER, psnr REAL, ssim REAL, seconds REAL, device TEXT, protocol TEXT, status TEXT, "
    "error TEXT, method_version TEXT, params TEXT, artifact_hash TEXT, image_hash TEXT, repeat INTEGER, "
    "jobs INTEGER, created REAL, run TEXT, peak_mb REAL, parameters INTEGER, macs INTEGER, output TEXT)"
)
V3_RUNS = (
    "CREATE TABLE runs (id TEXT PRIMARY KEY, started REAL, cpu TEXT, cores INTEGER, system TEXT, gpu TEXT, "
    "python TEXT, libraries TEXT, revision TEXT, jobs INTEGER, executor TEXT)"
)
V3_COLUMNS = [
    "key", "method", "label", "dataset", "image", "scale", "psnr", "ssim", "seconds", "device",
    "protocol", "status", "error", "method_version", "params", "artifact_hash", "image_hash", "repeat",
    "jobs", "created", "run", "peak_mb", "parameters", "macs", "output",
]  # fmt: skip


def _v3_store(path, results):
    """A store as schema 3 left it, holding ``results`` (their spread is not written)."""
    db = sqlite3.connect(path)
    db.execute(V3_RESULTS)
    db.execute(V3_RUNS)
    db.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT)")
    db.execute("INSERT INTO meta VALUES ('schema_version', '3')")
    for r in results:
        db.execute(
            f"INSERT INTO results ({', '.join(V3_COLUMNS)}) VALUES ({', '.join('?' for _ in V3_COLUMNS)})",
            [getattr(r, c) for c in V3_COLUMNS],
        )
    db.commit()
    db.close()
    return path


def _columns(path):
    db = sqlite3.connect(path)
    try:
        version = db.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()[0]
        return version, {row[1] for row in db.execute("PRAGMA table_info(results)")}
    finally:
        db.close()


def _cell(image, *, method="bicubic", label="Bicubic", seconds=0.2, spread=(0.1, 0.4), repeat=3, created=1.0):
    low, high = spread if spread is not None else (None, None)
    return Result(method=method, label=label, dataset="Set5", image=image, scale=2, psnr=30.0, ssim=0.9,
                  seconds=seconds, seconds_min=low, seconds_max=high, repeat=repeat, device="cpu",
                  protocol="matlab", created=created, key=f"{method}-{image}")  # fmt: skip


@pytest.fixture
def tiny_folder(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for seed in range(2):
        Image.fromarray(natural_image((36, 42), seed=seed)).save(folder / f"im{seed}.png")
    return folder


@pytest.mark.parametrize("jobs", [1, 2], ids=["serial", "pool"])
def test_a_repeated_run_stores_the_fastest_and_slowest_call(tmp_path, tiny_folder, jobs):
    store_path = tmp_path / "s.sqlite"
    with ResultStore(store_path) as store:
        summary = Runner(store).run(RunConfig(methods=["bicubic"], datasets=[f"folder:{tiny_folder}"], scales=[2],
                                              repeat=3, jobs=jobs, save_outputs=False))  # fmt: skip
        assert (summary.run, summary.failed) == (2, 0)
        results = store.results()
    assert len(results) == 2
    for r in results:
        assert r.repeat == 3
        assert r.seconds_min is not None and r.seconds_max is not None
        assert 0 < r.seconds_min <= r.seconds <= r.seconds_max

    frame = load_results(store_path)
    assert frame.seconds_min.dtype == "float64" and frame.seconds_max.dtype == "float64"
    assert sorted(frame.seconds_min) == sorted(r.seconds_min for r in results)
    assert list(frame.columns[:10]) == ["method", "label", "dataset", "image", "scale", "psnr", "ssim",
                                        "seconds", "device", "protocol"]  # fmt: skip

    html = write_report(tmp_path / "rep", store_path=store_path, figure_images=0).read_text()
    assert "spread is not shown" not in html
    assert "the range after it is the fastest and the slowest of them" in html
    low = sum(r.seconds_min for r in results) / 2
    assert f'<span class="spread">({low:.3f}–' in html, "the summary row's spread: the mean of the fastest calls"
    assert 'class="whisker"' in html


def test_one_call_shows_no_spread(tmp_path):
    data = build_report_data([_cell("baby", repeat=1, spread=(0.2, 0.2)), _cell("bird", repeat=1, spread=(0.2, 0.2))])
    (row,) = data.sections[0].rows
    assert row.spread is None and data.sections[0].timing_notes == []
    assert data.sections[0].per_image["baby"]["Bicubic"].spread is None


def test_the_summary_spread_is_the_mean_of_the_extremes_and_needs_every_image():
    data = build_report_data([_cell("baby", spread=(0.1, 0.4)), _cell("bird", seconds=0.4, spread=(0.3, 0.6))])
    (row,) = data.sections[0].rows
    assert row.seconds == pytest.approx(0.3) and row.spread == pytest.approx((0.2, 0.5))
    assert "fastest of each image's calls average 0.2 s, the slowest 0.5 s" in row.timing_words
    cell = data.sections[0].per_image["bird"]["Bicubic"]
    assert cell.spread == (0.3, 0.6) and "median of 3 calls, fastest 0.3 s, slowest 0.6 s" in cell.timing_words
    # One image stored without its spread (an older srbench): no row spread, and the note says why.
    data = build_report_data([_cell("baby"), _cell("bird", spread=None)])
    (row,) = data.sections[0].rows
    assert row.spread is None
    (note,) = data.sections[0].timing_notes
    assert "not kept for 1 of them (Bicubic: stored by an older srbench), so their spread is not shown" in note


def test_a_schema_3_store_is_migrated_in_place_with_no_spread(tmp_path):
    old = _v3_store(tmp_path / "old.sqlite", [_cell("baby", spread=None, repeat=5), _cell("bird", spread=None, repeat=5)])
    assert _columns(old) == ("3", set(V3_COLUMNS))
    with ResultStore(old) as store:
        assert store.migrated_from == 3
        kept = store.results()
        assert [(r.image, r.seconds, r.seconds_min, r.seconds_max) for r in kept] == [
            ("baby", 0.2, None, None), ("bird", 0.2, None, None)
        ]
        assert store.cached_keys(["bicubic-baby", "bicubic-bird"]) == {"bicubic-baby", "bicubic-bird"}
        store.put(_cell("head"))  # a new row keeps its spread beside the migrated ones
    version, columns = _columns(old)
    assert version == str(SCHEMA_VERSION) == "4" and {"seconds_min", "seconds_max"} <= columns
    with ResultStore(old) as store:
        assert store.migrated_from is None, "migrated once"
        assert {r.image: r.seconds_max for r in store.results()} == {"baby": None, "bird": None, "head": 0.4}
    frame = load_results(old)
    assert frame.seconds_min.isna().sum() == 2
    html = write_report(tmp_path / "rep", store_path=old, figure_images=0).read_text()
    assert "not kept for 2 of them" in html


def test_a_store_newer_than_schema_4_is_refused(tmp_path):
    newer = _v3_store(tmp_path / "newer.sqlite", [])
    db = sqlite3.connect(newer)
    db.execute("UPDATE meta SET value = '5' WHERE name = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="schema version 5, newer than this srbench reads \\(4\\)"):
        ResultStore(newer)


def test_merge_carries_the_spread_and_leaves_it_null_from_an_older_store(tmp_path):
    new = tmp_path / "new.sqlite"
    with ResultStore(new) as store:
        store.put(_cell("baby", spread=(0.11, 0.33)))
    old = _v3_store(tmp_path / "old.sqlite", [_cell("bird", spread=None)])
    summary = merge_stores([new, old], tmp_path / "c.sqlite")
    assert summary.total == 2 and _columns(old)[0] == "3", "the source is read, not migrated"
    with ResultStore(tmp_path / "c.sqlite") as store:
        got = {r.image: (r.seconds_min, r.seconds_max) for r in store.results()}
    assert got == {"baby": (0.11, 0.33), "bird": (None, None)}
    # The same cell with and without its spread differs: the newer row wins, whole.
    newer = tmp_path / "newer.sqlite"
    with ResultStore(newer) as store:
        store.put(_cell("bird", spread=(0.15, 0.25), created=2.0))
    summary = merge_stores([newer], tmp_path / "c.sqlite")
    assert summary.sources[0].replaced == 1
    with ResultStore(tmp_path / "c.sqlite") as store:
        assert {r.image: r.seconds_min for r in store.results()}["bird"] == 0.15
