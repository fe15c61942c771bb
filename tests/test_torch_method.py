"""TorchMethod and the --model path: tiling, self-ensemble, loading errors, efficiency."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from srbench.method import MethodError  # noqa: E402
from srbench.nn.efficiency import count_macs, count_parameters  # noqa: E402
from srbench.nn.loading import ModelError, fit_state_dict, load_module_class, load_state_dict  # noqa: E402
from srbench.nn.tiling import dihedral, self_ensemble, tiled  # noqa: E402
from srbench.nn.torch_method import module_method  # noqa: E402

NET_SOURCE = '''
import torch
from torch import nn


class Net(nn.Module):
    """Receptive-field radius 2 + 1 + 1 = 4 LR pixels."""

    def __init__(self, scale=2, width=8):
        super().__init__()
        self.scale = scale
        self.conv1 = nn.Conv2d(3, width, 5, padding=2)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.conv3 = nn.Conv2d(width, 3 * scale * scale, 3, padding=1)
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x):
        y = self.conv3(torch.tanh(self.conv2(torch.tanh(self.conv1(x)))))
        return torch.sigmoid(self.shuffle(y))


class Wrong(Net):
    def forward(self, x):
        return super().forward(x)[..., :-1, :]
'''


@pytest.fixture
def net_file(tmp_path):
    path = tmp_path / "my_net.py"
    path.write_text(NET_SOURCE)
    return path


def _saved(tmp_path, module, suffix=".safetensors"):
    path = tmp_path / f"w{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(path))
    else:
        torch.save(module.state_dict(), path)
    return path


def test_tiled_equals_untiled_when_the_overlap_covers_the_receptive_field(net_file):
    Net = load_module_class(f"{net_file}:Net")
    torch.manual_seed(0)
    net = Net(scale=3).eval()
    x = torch.rand(1, 3, 37, 29)
    with torch.no_grad():
        whole = net(x)
        covered = tiled(net, x, 3, tile=10, overlap=4)
        short = tiled(net, x, 3, tile=10, overlap=1)
    assert covered.shape == whole.shape == (1, 3, 111, 87)
    assert float((covered - whole).abs().max()) < 1e-5
    # Too little context changes the seams: the equality above is not vacuous.
    assert float((short - whole).abs().max()) > 1e-3


def test_dihedral_inverse_and_self_ensemble():
    x = torch.rand(1, 3, 5, 7)
    for k in range(8):
        assert torch.equal(dihedral(dihedral(x, k), k, inverse=True), x)
    # Nearest-neighbour enlargement commutes with flips and rotations: the mean is itself.
    def nearest(t):
        return t.repeat_interleave(2, -1).repeat_interleave(2, -2)

    assert torch.allclose(self_ensemble(nearest, x), nearest(x))
    # A function that is not equivariant: the ensemble is the mean of the 8 turned-back outputs.
    weights = torch.arange(35.0).view(5, 7)

    def skewed(t):
        return t * weights if t.shape[-2:] == (5, 7) else t * weights.T

    expected = sum(dihedral(skewed(dihedral(x, k)), k, inverse=True) for k in range(8)) / 8
    assert torch.allclose(self_ensemble(skewed, x), expected)


def test_module_method_scores_rgb_with_its_weights_hash(net_file, tmp_path):
    Net = load_module_class(f"{net_file}:Net")
    torch.manual_seed(1)
    weights = _saved(tmp_path, Net(scale=2))
    cls = module_method(Net, weights, name="mynet", scales={2}, model_args={"scale": 2})
    method = cls(device="cpu")
    lr = np.random.default_rng(0).random((13, 17, 3)).astype(np.float32)
    out = method.upscale(lr, 2)
    assert out.shape == (26, 34, 3) and out.dtype == np.float32
    assert method.artifact_hash(2) and method.artifact_hash(2) == cls(device="cpu").artifact_hash(2)
    tiled_method = cls(device="cpu", tile=6, tile_overlap=4)
    assert np.abs(tiled_method.upscale(lr, 2) - out).max() < 1e-5
    with pytest.raises(MethodError, match=r"expected an \(h, w, 3\) RGB image"):
        method.upscale(lr[..., 0], 2)
    # Constructor arguments are part of the version, so of the result key.
    other = module_method(Net, weights, name="mynet", scales={2}, model_args={"scale": 2, "width": 8})
    assert other.version != cls.version


def test_input_range_and_mean_shift_are_undone_around_the_network(tmp_path):
    class Identity(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gain = torch.nn.Parameter(torch.ones(1))

        def forward(self, x):
            return (x * self.gain).repeat_interleave(2, -1).repeat_interleave(2, -2)

    seen = []
    weights = _saved(tmp_path, Identity())
    cls = module_method(Identity, weights, name="ident", scales={2}, input_range=255.0, rgb_mean=(0.4, 0.5, 0.6))
    method = cls(device="cpu")
    net, _ = method._network(2)
    net.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    lr = np.full((4, 4, 3), 0.5, np.float32)
    out = method.upscale(lr, 2)
    np.testing.assert_allclose(out, 0.5, atol=1e-6)
    # The network saw [0, 255] intensities with the mean taken off.
    np.testing.assert_allclose(seen[0][0, :, 0, 0].numpy(), [25.5, 0.0, -25.5], atol=1e-4)


def test_loading_problems_are_one_clear_line(net_file, tmp_path):
    Net = load_module_class(f"{net_file}:Net")
    with pytest.raises(ModelError, match="no such file"):
        load_module_class(f"{tmp_path / 'nope.py'}:Net")
    with pytest.raises(ModelError, match="has no class 'Nett'; it defines Net, Wrong"):
        load_module_class(f"{net_file}:Nett")
    with pytest.raises(ModelError, match="expected FILE.py:ClassName"):
        load_module_class(str(net_file))
    small = _saved(tmp_path, Net(scale=2, width=4))
    with pytest.raises(ModelError, match=r"does not fit Net: wrong shape: conv1.weight is \(4, 3, 5, 5\)"):
        fit_state_dict(Net(scale=2), load_state_dict(small), source="w")
    state = load_state_dict(_saved(tmp_path, Net(scale=2), ".pth"))
    del state["conv3.bias"]
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(ModelError, match=r"1 missing key \(conv3.bias\); 1 unexpected key \(extra.weight\)"):
        fit_state_dict(Net(scale=2), state, source="w")
    pickled = tmp_path / "evil.pth"
    import argparse

    # Any object beyond tensors and containers needs code to unpickle: refused.
    torch.save({"state_dict": Net(scale=2).state_dict(), "args": argparse.Namespace(lr=1)}, pickled)
    with pytest.raises(ModelError, match=r"weights_only=True\) refuses it"):
        load_state_dict(pickled)
    with pytest.raises(ModelError, match="unknown weights format"):
        load_state_dict(net_file)


def test_a_module_with_the_wrong_output_shape_is_a_method_error(net_file, tmp_path):
    Wrong = load_module_class(f"{net_file}:Wrong")
    cls = module_method(Wrong, _saved(tmp_path, Wrong(scale=2)), name="wrong", scales={2})
    with pytest.raises(MethodError, match=r"output shape \(19, 20, 3\), expected \(20, 20, 3\)"):
        cls(device="cpu").upscale(np.zeros((10, 10, 3), np.float32), 2)


def test_fp16_needs_cuda(net_file, tmp_path):
    Net = load_module_class(f"{net_file}:Net")
    cls = module_method(Net, _saved(tmp_path, Net()), name="half", scales={2})
    with pytest.raises(MethodError, match="fp16 needs a CUDA device"):
        cls(device="cpu", fp16=True).upscale(np.zeros((8, 8, 3), np.float32), 2)


def test_parameters_and_macs_are_counted_from_the_layers(net_file):
    Net = load_module_class(f"{net_file}:Net")
    net = Net(scale=2, width=8)
    weights = 3 * 8 * 25 + 8 * 8 * 9 + 8 * 12 * 9
    assert count_parameters(net) == weights + 8 + 8 + 12
    assert count_macs(net, 3, size=16) == 16 * 16 * weights
