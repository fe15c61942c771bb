"""`srbench train` for the CNNs: recipe overrides, run controls and where artifacts go."""

import hashlib
import json

import pytest
from PIL import Image

from tests.conftest import natural_image, srbench_cli

pytest.importorskip("torch")

TINY = ("--set", "holdout=1", "--set", "batch_size=8", "--set", "patch_size=20",
        "--set", "stride=10", "--epochs", "1")  # fmt: skip


def _train_dir(tmp_path):
    folder = tmp_path / "train"
    folder.mkdir()
    for seed in range(3):
        Image.fromarray(natural_image((64, 64), seed=seed)).save(folder / f"t{seed}.png")
    return folder


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_train_writes_to_the_cache_and_leaves_the_shipped_weights_alone(tmp_path, isolated_env):
    from srbench._methods.cnn.methods import ESPCNMethod

    shipped = ESPCNMethod.weights_dir() / "x3.safetensors"
    before = _digest(shipped) if shipped.exists() else None
    out = srbench_cli(
        "train", "espcn", "-s", "3", "--device", "cpu", "--train-dir", str(_train_dir(tmp_path)),
        *TINY, "--set", "lr=3e-4", env=isolated_env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    written = tmp_path / "cache" / "weights" / "espcn"
    manifest = json.loads((written / "x3.json").read_text())
    # --set and --epochs change the recipe the manifest records, not the method's parameters.
    assert manifest["recipe"]["lr"] == 3e-4 and manifest["recipe"]["epochs"] == 1
    assert manifest["hyperparameters"]["lr"] == 3e-4
    assert set(manifest["params"]) == {"border", "device", "threads"}
    if before is not None:
        assert _digest(shipped) == before


def test_train_rejects_an_unknown_setting_and_a_clash_of_outputs(tmp_path, isolated_env):
    common = ("train", "espcn", "-s", "3", "--train-dir", str(_train_dir(tmp_path)))
    out = srbench_cli(*common, "--set", "learning_rate=1", env=isolated_env)
    assert out.returncode == 1 and "unknown training setting 'learning_rate'" in out.stderr
    assert "Traceback" not in out.stderr
    out = srbench_cli(*common, "--out", str(tmp_path / "w"), "--overwrite-shipped", env=isolated_env)
    assert out.returncode == 1 and "exclude each other" in out.stderr


def test_a_fine_tune_builds_on_the_x3_network_in_the_output_folder(tmp_path, isolated_env):
    folder = tmp_path / "w"
    common = ("train", "espcn", "--device", "cpu", "--train-dir", str(_train_dir(tmp_path)),
              "--out", str(folder), *TINY, "--set", "finetune_epochs=1")  # fmt: skip
    assert srbench_cli(*common, "-s", "3", env=isolated_env).returncode == 0
    x3 = json.loads((folder / "x3.json").read_text())["artifact_sha256"]
    out = srbench_cli(*common, "-s", "2", env=isolated_env)
    assert out.returncode == 0, out.stderr
    manifest = json.loads((folder / "x2.json").read_text())
    from safetensors.numpy import load_file

    from srbench._methods.cnn.methods import ESPCNMethod

    own = ESPCNMethod().load(folder, scales=[3])
    assert manifest["init"]["from_artifact"] == own.artifact_hash(3)
    assert json.loads((folder / "x3.json").read_text())["artifact_sha256"] == x3
    assert load_file(str(folder / "x2.safetensors"))
