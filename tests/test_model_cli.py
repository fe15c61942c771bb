"""srbench run --model: any PyTorch module in one command, every misfit one clear line."""

import sqlite3

import pytest

from tests.conftest import srbench_cli

torch = pytest.importorskip("torch")

NET = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, scale=2, width=8):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1)
        self.out = nn.Conv2d(width, 3 * scale * scale, 3, padding=1)
        self.shuffle = nn.PixelShuffle(scale)
        self.scale = scale

    def forward(self, x):
        up = x.repeat_interleave(self.scale, -1).repeat_interleave(self.scale, -2)
        return up + 0.01 * self.shuffle(self.out(torch.relu(self.conv(x))))


class Cropped(Net):
    def forward(self, x):
        return super().forward(x)[..., 1:, :]
'''


@pytest.fixture
def model_files(tmp_path):
    from safetensors.torch import save_file

    source = tmp_path / "my_net.py"
    source.write_text(NET)
    namespace: dict = {}
    exec(compile(NET, str(source), "exec"), namespace)
    torch.manual_seed(0)
    net = namespace["Net"](scale=2)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_path / "net.safetensors"))
    torch.save(net.state_dict(), tmp_path / "net.pth")
    return source, tmp_path


def _rows(store):
    if not store.exists():
        return []
    with sqlite3.connect(store) as db:
        return db.execute("select method, status, protocol, psnr, parameters, macs, peak_mb from results").fetchall()


def test_one_command_scores_a_module_under_the_rgb_protocol(model_files, data_dir, isolated_env, tmp_path):
    source, folder = model_files
    store = tmp_path / "s.sqlite"
    out = srbench_cli(
        "run", "--model", f"{source}:Net", "--weights", str(folder / "net.pth"), "--model-arg", "scale=2",
        "-s", "2", "-d", "Set5", "--data-dir", str(data_dir), "--store", str(store), "--name", "mynet",
        env=isolated_env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "protocol matlab-rgb" in out.stdout and "5 run" in out.stdout
    rows = _rows(store)
    assert {r[:3] for r in rows} == {("mynet", "ok", "matlab-rgb")}
    weights = 3 * 8 * 9 + 8 + 8 * 12 * 9 + 12
    assert all(r[4] == weights and r[5] > 0 and r[6] is not None for r in rows)
    # The same module from the .safetensors file is the same network: same numbers.
    again = srbench_cli(
        "run", "--model", f"{source}:Net", "--weights", str(folder / "net.safetensors"), "--model-arg", "scale=2",
        "-s", "2", "-d", "Set5", "--data-dir", str(data_dir), "--store", str(store), "--name", "mynet",
        env=isolated_env,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "{dir}/nope.py:Net", "--weights", "{dir}/net.pth"], "no such file"),
        (["--model", "{dir}/my_net.py:Nett", "--weights", "{dir}/net.pth"], "has no class 'Nett'; it defines Cropped, Net"),
        (["--model", "{dir}/my_net.py:Net", "--weights", "{dir}/net.pth", "--model-arg", "width=4"],
         "does not fit Net: wrong shape: conv.weight is (8, 3, 3, 3) in the file, (4, 3, 3, 3) in the module"),
        (["--model", "{dir}/my_net.py:Net", "--weights", "{dir}/net.pth", "--model-arg", "scale=3"],
         "does not fit Net: wrong shape: out.weight"),
        (["--model", "{dir}/my_net.py:Net", "--weights", "{dir}/extra.pth"], "1 unexpected key (extra)"),
        (["--model", "{dir}/my_net.py:Net", "--weights", "{dir}/partial.pth"], "1 missing key (out.bias)"),
        (["--model", "{dir}/my_net.py:Net", "--weights", "{dir}/pickled.pth"], "torch.load(weights_only=True) refuses it"),
        (["--model", "{dir}/my_net.py:Net"], "--model needs --weights"),
    ],
)
def test_a_bad_model_is_one_line_and_stores_nothing(model_files, data_dir, isolated_env, tmp_path, args, message):
    import argparse

    source, folder = model_files
    state = torch.load(folder / "net.pth", weights_only=True)
    torch.save({**state, "extra": torch.zeros(1)}, folder / "extra.pth")
    torch.save({k: v for k, v in state.items() if k != "out.bias"}, folder / "partial.pth")
    torch.save({"state_dict": state, "args": argparse.Namespace(lr=1)}, folder / "pickled.pth")
    store = tmp_path / "s.sqlite"
    filled = [a.format(dir=folder) for a in args]
    out = srbench_cli("run", *filled, "-s", "2", "-d", "Set5", "--data-dir", str(data_dir), "--store", str(store),
                      env=isolated_env)  # fmt: skip
    assert out.returncode == 1, out.stdout + out.stderr
    assert message in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert _rows(store) == []


def test_a_module_returning_the_wrong_shape_fails_its_cells_only(model_files, data_dir, isolated_env, tmp_path):
    source, folder = model_files
    store = tmp_path / "s.sqlite"
    out = srbench_cli(
        "run", "--model", f"{source}:Cropped", "--weights", str(folder / "net.pth"), "-s", "2", "-d", "Set5",
        "--data-dir", str(data_dir), "--store", str(store), env=isolated_env,
    )  # fmt: skip
    assert "output shape" in out.stderr and "expected" in out.stderr
    assert {r[1] for r in _rows(store)} == {"failed"}
