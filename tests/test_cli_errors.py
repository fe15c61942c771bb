"""Errors and rough edges a new user meets on the command line (issue 19, section 2).

Each failure must be one line on stderr, no traceback, exit code 1.
"""

import re
from pathlib import Path

from tests.conftest import srbench_cli
from tests.test_cli import table_rows


def one_line_error(out) -> str:
    """The single stderr line of a failed command, after checking the exit code."""
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    return lines[0]


def suggestions(line: str) -> list[str]:
    match = re.search(r"did you mean (.*)\?", line)
    assert match, line
    return re.findall(r"'([^']*)'", match.group(1))


def test_suggestions_are_method_names_each_once(isolated_env):
    # "SC" is the label of sc: a name and a label that lowercase alike are one suggestion.
    line = one_line_error(srbench_cli("check", "SCC", env=isolated_env))
    found = suggestions(line)
    assert found[0] == "sc" and len(found) == len(set(found)), line
    line = one_line_error(srbench_cli("check", "bicubik", env=isolated_env))
    assert suggestions(line) == ["bicubic"], line
    # Close only to a label ("A+"): the suggestion is the name -m takes.
    line = one_line_error(srbench_cli("check", "a+x", env=isolated_env))
    assert suggestions(line) == ["aplus"], line


def folder_of_images(tmp_path, count=1):
    from PIL import Image

    from tests.conftest import natural_image

    folder = tmp_path / "imgs"
    folder.mkdir(exist_ok=True)
    for seed in range(count):
        Image.fromarray(natural_image((48, 48), seed=seed)).save(folder / f"im{seed}.png")
    return folder


def test_a_store_path_that_cannot_be_made_is_one_line(tmp_path, isolated_env):
    # A file where the store's folder should be: /dev/null/x.sqlite on any machine.
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    folder = folder_of_images(tmp_path)
    for store in (blocker / "x.sqlite", blocker / "deeper" / "x.sqlite"):
        out = srbench_cli("run", "-d", f"folder:{folder}", "-s", "2", "--store", str(store), env=isolated_env)
        line = one_line_error(out)
        assert line == f"error: cannot create result store {store}: {blocker} is not a folder", line
    # A folder given as the store.
    line = one_line_error(srbench_cli("run", "-d", f"folder:{folder}", "-s", "2", "--store", str(tmp_path), env=isolated_env))
    assert f"cannot create result store {tmp_path}: it is a folder" in line
    # $SRBENCH_STORE goes through the same check.
    env = {**isolated_env, "SRBENCH_STORE": str(blocker / "x.sqlite")}
    line = one_line_error(srbench_cli("run", "-d", f"folder:{folder}", "-s", "2", env=env))
    assert f"{blocker} is not a folder" in line


def test_export_and_report_need_an_existing_store_and_do_not_create_one(tmp_path, isolated_env):
    typo = tmp_path / "resluts.sqlite"
    for args in (("export", "-f", "csv", "-o", str(tmp_path / "out.csv")), ("report", "-o", str(tmp_path / "rep"))):
        line = one_line_error(srbench_cli(*args, "--store", str(typo), env=isolated_env))
        assert line.startswith(f"error: no result store at {typo};"), line
        assert not typo.exists()
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "rep").exists()
    # The default store ($SRBENCH_STORE here) too: nothing has been run yet.
    line = one_line_error(srbench_cli("report", "-o", str(tmp_path / "rep"), env=isolated_env))
    assert f"no result store at {isolated_env['SRBENCH_STORE']}" in line
    assert not Path(isolated_env["SRBENCH_STORE"]).exists()


def test_export_and_report_outputs_that_cannot_be_made_are_one_line(tmp_path, isolated_env):
    folder = folder_of_images(tmp_path)
    store = tmp_path / "s.sqlite"
    out = srbench_cli("run", "-d", f"folder:{folder}", "-s", "2", "--store", str(store), env=isolated_env)
    assert out.returncode == 0, out.stderr
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    line = one_line_error(srbench_cli("export", "-f", "csv", "-o", str(blocker / "r.csv"), "--store", str(store), env=isolated_env))
    assert line == f"error: cannot write {blocker / 'r.csv'}: {blocker} is not a folder", line
    line = one_line_error(srbench_cli("report", "-o", str(blocker / "rep"), "--store", str(store), env=isolated_env))
    assert line == f"error: cannot write the report to {blocker / 'rep'}: {blocker} is not a folder", line
    exported = srbench_cli("export", "-f", "csv", "-o", str(tmp_path / "r.csv"), "--store", str(store), env=isolated_env)
    assert exported.returncode == 0 and "wrote 1 rows" in exported.stdout, exported.stderr


def test_a_grid_no_method_can_run_names_the_supported_scales(tmp_path, isolated_env):
    from srbench.registry import get_registry

    folder = folder_of_images(tmp_path)
    bicubic, anr = get_registry().get("bicubic").scales, get_registry().get("anr").scales
    unsupported = min(set(range(2, 20)) - bicubic)
    grid = ("-d", f"folder:{folder}", "-s", str(unsupported))
    line = one_line_error(srbench_cli("run", *grid, env=isolated_env))
    assert line == f"error: nothing to run at x{unsupported}: bicubic supports {_xs(bicubic)}", line
    line = one_line_error(srbench_cli("run", "-m", "anr,bicubic", *grid, env=isolated_env))
    assert line == (
        f"error: nothing to run at x{unsupported}: anr supports {_xs(anr)}; bicubic supports {_xs(bicubic)}"
    ), line
    assert not Path(isolated_env["SRBENCH_STORE"]).exists()
    # Some cells can run: they do, and the rest are counted as skipped, as before.
    only_bicubic = str(min(bicubic - anr))
    out = srbench_cli("run", "-m", "anr,bicubic", "-d", f"folder:{folder}", "-s", only_bicubic, env=isolated_env)
    assert out.returncode == 0, out.stderr
    assert "1 run, 1 skipped (scale not supported)" in out.stdout


def _xs(scales) -> str:
    return ", ".join(f"x{s}" for s in sorted(scales))


def cli_at_80_columns(*args: str, env: dict, check: bool = True):
    """The CLI as a new user sees it in an 80-column terminal."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "srbench.cli", *args],
        capture_output=True, text=True, env={**env, "COLUMNS": "80"}, timeout=600,
    )  # fmt: skip
    if not check:
        return out
    assert out.returncode == 0, out.stderr
    assert "…" not in out.stdout, out.stdout
    # The table fits; notes below it are single lines (paths) the terminal may wrap.
    table = [line for line in out.stdout.splitlines() if line[:1] in "┏┃┡│└"]
    assert table and max(len(line) for line in table) <= 80, out.stdout
    return out


def test_list_methods_is_whole_at_80_columns(tmp_path, isolated_env):
    from srbench.registry import get_registry
    from srbench.variants import settable_defaults
    from tests import plugin_sources

    plugin = tmp_path / "nearest_plugin.py"
    plugin.write_text(plugin_sources.GOOD.format(name="nearest", label="Nearest neighbour"))
    out = cli_at_80_columns("list", "methods", "--plugin", str(plugin), env=isolated_env)
    rows = table_rows(out.stdout)
    registry = get_registry()
    assert set(rows) == set(registry.names()) | {"nearest"}
    for name in registry.names():
        cls = registry.get(name)
        label, scales, settable = rows[name][1], rows[name][2], rows[name][5]
        assert label == cls.label, rows[name]
        assert scales == ", ".join(str(s) for s in sorted(cls.scales)), rows[name]
        assert settable == " ".join(f"{k}={v}" for k, v in settable_defaults(cls).items()), rows[name]
    assert rows["nearest"][1] == "Nearest neighbour"
    # The plugin's origin, a long path, is one whole line below the table.
    assert f"nearest comes from {plugin}" in out.stdout.splitlines()


def test_list_datasets_shows_every_entry_t91_and_local_copies(tmp_path, isolated_env):
    from PIL import Image

    from srbench.datasets import list_datasets
    from tests.conftest import natural_image

    env = {k: v for k, v in isolated_env.items() if k != "SRBENCH_DATA"}
    out = cli_at_80_columns("list", "datasets", env=env)
    rows = table_rows(out.stdout)
    for spec in list_datasets():
        assert rows[spec.name][1:] == [str(len(spec.hashes)), spec.description, f"hub {spec.hf_repo}", "no"]
    assert rows["T91"][1] == "–" and "training data" in rows["T91"][2] and rows["T91"][4] == "no"
    assert "data dir: none (SRBENCH_DATA is not set and no --data-dir given)" in out.stdout
    assert "T91: no training data: pass --train-dir or set SRBENCH_DATA" in out.stdout

    # A data folder with T91 only: T91 is found and counted, the benchmark sets are not.
    (tmp_path / "data" / "T91").mkdir(parents=True)
    for seed in range(3):
        Image.fromarray(natural_image((40, 40), seed=seed)).save(tmp_path / "data" / "T91" / f"t{seed}.png")
    env["SRBENCH_DATA"] = str(tmp_path / "data")
    out = cli_at_80_columns("list", "datasets", env=env)
    rows = table_rows(out.stdout)
    assert rows["T91"][1] == "3" and rows["T91"][4] == "data dir"
    assert all(rows[spec.name][4] == "no" for spec in list_datasets())
    assert f"data dir: {tmp_path / 'data'} ($SRBENCH_DATA)" in out.stdout.splitlines()


def test_list_datasets_finds_copies_in_the_data_dir_and_the_cache(data_dir, isolated_env):
    import shutil

    env = {k: v for k, v in isolated_env.items() if k != "SRBENCH_DATA"}
    rows = table_rows(cli_at_80_columns("list", "datasets", "--data-dir", str(data_dir), env=env).stdout)
    assert rows["Set5"][4] == "data dir" and rows["Set14"][4] == "data dir"
    shutil.copytree(data_dir / "Set5", Path(env["SRBENCH_CACHE"]) / "datasets" / "Set5")
    rows = table_rows(cli_at_80_columns("list", "datasets", env=env).stdout)
    assert rows["Set5"][4] == "cache" and rows["Set14"][4] == "no"


def test_bench_without_data_names_every_missing_set_and_where_to_put_it(tmp_path, isolated_env):
    env = {k: v for k, v in isolated_env.items() if k != "SRBENCH_DATA"}
    cache = Path(env["SRBENCH_CACHE"]) / "datasets"
    line = one_line_error(srbench_cli("bench", "-o", str(tmp_path / "reports"), env=env))
    assert line.startswith(
        f"error: Set5 and Set14 not found: SRBENCH_DATA is not set; they are not in the cache {cache}; "
        "the download failed: "
    ), line
    assert line.endswith(
        f"; put their images in {cache / 'Set5'}/ and {cache / 'Set14'}/ (`srbench list datasets` names them), "
        "or set SRBENCH_DATA to a folder holding Set5/ and Set14/"
    ), line
    assert not Path(env["SRBENCH_STORE"]).exists()

    # SRBENCH_DATA set, Set5 there: Set14 alone is missing, and its folder is named.
    from PIL import Image

    from srbench.datasets import CATALOG
    from tests.conftest import natural_image

    data = tmp_path / "data"
    (data / "Set5").mkdir(parents=True)
    for name in CATALOG["set5"].hashes:
        Image.fromarray(natural_image((40, 40))).save(data / "Set5" / f"{name}.png")
    line = one_line_error(srbench_cli("bench", "-o", str(tmp_path / "reports"), env={**env, "SRBENCH_DATA": str(data)}))
    assert line.startswith(f"error: Set14 not found: SRBENCH_DATA is {data}, which has no complete Set14/; "), line
    assert line.endswith(f"; put its images ({', '.join(CATALOG['set14'].hashes)}) in {data / 'Set14'}/"), line


def test_make_bench_passes_data_to_srbench(tmp_path, isolated_env):
    import shutil
    import subprocess
    import sys

    from tests.conftest import ROOT

    if shutil.which("make") is None:
        import pytest

        pytest.skip("make is not installed")
    # A stand-in for .venv/bin (the installed stamp given as up to date): this interpreter's srbench.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srbench").write_text(f'#!/bin/sh\nexec {sys.executable} -m srbench.cli "$@"\n')
    (bin_dir / "srbench").chmod(0o755)
    (tmp_path / "stamp").touch()
    env = {k: v for k, v in isolated_env.items() if k != "SRBENCH_DATA"}
    data = tmp_path / "no-data-here"
    out = subprocess.run(
        ["make", "-s", "-C", str(ROOT), "bench", f"DATA={data}", f"STAMP={tmp_path / 'stamp'}", f"BIN={bin_dir}"],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert out.returncode != 0
    assert f"SRBENCH_DATA is {data}, which has no complete Set5/ and Set14/" in out.stderr, out.stderr


def test_run_summary_means_the_good_images_and_says_how_many(tmp_path, isolated_env):
    import csv

    folder = folder_of_images(tmp_path, count=3)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    out = srbench_cli("run", "-m", "bicubic", "-d", f"folder:{folder}", "-s", "2", env=isolated_env)
    assert out.returncode == 0, out.stderr  # a bad image is recorded; the run goes on
    row = table_rows(out.stdout)[folder.name]
    exported = tmp_path / "r.csv"
    assert srbench_cli("export", "-f", "csv", "-o", str(exported), env=isolated_env).returncode == 0
    good = [r for r in csv.DictReader(exported.open()) if r["status"] == "ok"]
    assert len(good) == 3
    psnr = sum(float(r["psnr"]) for r in good) / 3
    ssim = sum(float(r["ssim"]) for r in good) / 3
    assert row[3:5] == [f"{psnr:.2f} (3/4)", f"{ssim:.4f} (3/4)"], row
    assert row[6] == "3/4"
    # Every image good: the plain mean, no count (a fresh store: the old one keeps the bad row).
    (folder / "broken.png").unlink()
    grid = ("-m", "bicubic", "-d", f"folder:{folder}", "-s", "2", "--store", str(tmp_path / "fresh.sqlite"))
    out = srbench_cli("run", *grid, env=isolated_env)
    assert table_rows(out.stdout)[folder.name][3] == f"{psnr:.2f}"


def test_errors_and_failures_stay_one_line_in_a_narrow_terminal(tmp_path, isolated_env):
    deep = tmp_path / ("a-long-folder-name-" * 4) / "blocker"
    deep.parent.mkdir()
    deep.write_text("")
    folder = folder_of_images(tmp_path)
    out = cli_at_80_columns("run", "-d", f"folder:{folder}", "-s", "2", "--store", str(deep / "x.sqlite"), env=isolated_env, check=False)
    assert one_line_error(out) == f"error: cannot create result store {deep / 'x.sqlite'}: {deep} is not a folder"
    (folder / "broken.png").write_bytes(b"not an image")
    out = cli_at_80_columns("run", "-d", f"folder:{folder}", "-s", "2", env=isolated_env)
    failed = [line for line in out.stderr.splitlines() if line.startswith("failed:")]
    assert len(failed) == 1 and str(folder / "broken.png") in failed[0], out.stderr
    assert any(line.endswith(f"store {isolated_env['SRBENCH_STORE']})") for line in out.stdout.splitlines())


def test_upscale_onto_its_own_input_is_refused_before_any_work(tmp_path, isolated_env):
    source = folder_of_images(tmp_path) / "im0.png"
    before = source.read_bytes()
    line = one_line_error(srbench_cli("upscale", "bicubic", str(source), str(source), "-s", "2", env=isolated_env))
    assert "overwrite the input" in line
    assert source.read_bytes() == before
