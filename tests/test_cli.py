import numpy as np
from PIL import Image

from tests.conftest import natural_image, srbench_cli


def test_unknown_method_is_one_clear_line(isolated_env):
    out = srbench_cli("check", "bicubik", env=isolated_env)
    assert out.returncode == 1
    assert out.stderr.strip().count("\n") == 0
    assert "did you mean 'bicubic'" in out.stderr


def test_missing_dataset_is_one_clear_line(isolated_env, tmp_path):
    out = srbench_cli("run", "-m", "bicubic", "-d", "Set5", "--data-dir", str(tmp_path), env=isolated_env)
    assert out.returncode == 1
    assert "put its images" in out.stderr and "Traceback" not in out.stderr


def test_check_bicubic_passes(isolated_env):
    out = srbench_cli("check", "bicubic", env=isolated_env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "passes the plugin contract" in out.stdout


def test_list_datasets(isolated_env):
    out = srbench_cli("list", "datasets", env=isolated_env)
    assert out.returncode == 0 and "Set14" in out.stdout and "folder:PATH" in out.stdout


def test_upscale_writes_a_colour_image(tmp_path, isolated_env):
    rgb = np.dstack([natural_image((30, 40), seed=s) for s in range(3)])
    Image.fromarray(rgb).save(tmp_path / "in.png")
    out = srbench_cli("upscale", "bicubic", str(tmp_path / "in.png"), str(tmp_path / "out.png"), "-s", "3", env=isolated_env)
    assert out.returncode == 0, out.stderr
    result = np.asarray(Image.open(tmp_path / "out.png"))
    assert result.shape == (90, 120, 3)
    # colour survives: the channels are not all equal
    assert np.abs(result[..., 0].astype(int) - result[..., 2]).mean() > 5


def test_export_needs_a_known_format(tmp_path, isolated_env):
    out = srbench_cli("export", "--format", "xlsx", "--out", str(tmp_path / "x"), env=isolated_env)
    assert out.returncode == 1 and "unknown export format" in out.stderr


def test_train_fits_the_base_scale_first_and_saves_artifacts(tmp_path, isolated_env):
    import json

    from tests import plugin_sources

    plugin = tmp_path / "orderly.py"
    plugin.write_text(plugin_sources.ORDERLY)
    train_dir = tmp_path / "train"
    train_dir.mkdir()
    for seed in range(2):
        Image.fromarray(natural_image((48, 48), seed=seed)).save(train_dir / f"t{seed}.png")
    env = {**isolated_env, "ORDER_LOG": str(tmp_path / "order.txt")}
    out = srbench_cli(
        "train", "orderly", "-s", "2,3,4", "--plugin", str(plugin),
        "--train-dir", str(train_dir), "--out", str(tmp_path / "w"), env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "order.txt").read_text() == "3,2,4,"
    manifest = json.loads((tmp_path / "w" / "x2.json").read_text())
    assert manifest["images_seen"] == 2 and manifest["training_images"] == 2
    assert len(manifest["training_data_sha256"]) == 64 and manifest["artifact_sha256"]
    assert (tmp_path / "w" / "x4.safetensors").exists()


def test_train_set_overrides_parameters_with_their_types(tmp_path, isolated_env):
    import json

    from tests import plugin_sources

    plugin = tmp_path / "orderly.py"
    plugin.write_text(plugin_sources.ORDERLY)
    train_dir = tmp_path / "train"
    train_dir.mkdir()
    Image.fromarray(natural_image((48, 48), seed=0)).save(train_dir / "t0.png")
    env = {**isolated_env, "ORDER_LOG": str(tmp_path / "order.txt")}
    common = ("--plugin", str(plugin), "--train-dir", str(train_dir), "--out", str(tmp_path / "w"))
    out = srbench_cli("train", "orderly", "-s", "3", "--set", "gain=1.5", *common, env=env)
    assert out.returncode == 0, out.stderr
    manifest = json.loads((tmp_path / "w" / "x3.json").read_text())
    assert manifest["params"]["gain"] == 1.5

    for bad, message in (("gain=fast", "expected a float"), ("speed=2", "unknown parameter"),
                         ("gain", "expected KEY=VALUE")):
        out = srbench_cli("train", "orderly", "-s", "3", "--set", bad, *common, env=env)
        assert out.returncode == 1 and message in out.stderr, out.stderr
        assert "Traceback" not in out.stderr
    out = srbench_cli("train", "orderly", "-s", "3", "--warm-start", *common, env=env)
    assert out.returncode == 1 and "no --warm-start option" in out.stderr
    out = srbench_cli("train", "orderly", "-s", "3", "--time-budget", "60", *common, env=env)
    assert out.returncode == 1 and "no --time-budget option" in out.stderr


def test_run_set_prints_the_variant_and_rejects_a_typo(tmp_path, isolated_env):
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(natural_image((48, 48))).save(folder / "a.png")
    grid = ("run", "-m", "ne_lle", "-d", f"folder:{folder}", "-s", "2")
    out = srbench_cli(*grid, "--set", "neighbors=12", env=isolated_env)
    assert out.returncode == 0, out.stderr
    assert "NE+LLE (neighbors=12)" in out.stdout and "1 run" in out.stdout
    # The stored variant name, given back to -m, is the same variant: nothing to compute.
    again = srbench_cli("run", "-m", "ne_lle[neighbors=12]", *grid[3:], env=isolated_env)
    assert again.returncode == 0 and "1 cached, 0 run" in again.stdout, again.stderr
    typo = srbench_cli(*grid, "--set", "neighbours=12", env=isolated_env)
    assert typo.returncode == 1 and "unknown parameter 'neighbours'" in typo.stderr
    assert typo.stderr.strip().count("\n") == 0


def table_rows(text: str) -> dict[str, list[str]]:
    """A rich table's body rows by first cell, each cell's wrapped lines joined by spaces."""
    rows: dict[str, list[str]] = {}
    last: list[str] | None = None
    for line in text.splitlines():
        if line.count("│") < 3:
            continue
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if cells[0] or last is None:
            last = rows.setdefault(cells[0], cells)
        else:  # a wrapped row goes on
            last[:] = [f"{a} {b}".strip() for a, b in zip(last, cells, strict=True)]
    return rows


def test_list_methods_shows_what_run_can_set(isolated_env):
    out = srbench_cli("list", "methods", env=isolated_env)
    assert out.returncode == 0, out.stderr
    rows = table_rows(out.stdout)
    assert "border=layers" in rows["srcnn"][5] and "border=symmetric" in rows["fsrcnn"][5]
    assert "neighborhood=40" in rows["anr"][5] and "=" not in rows["aplus"][5]
