"""MAC counts: the hook counter against torch's FLOP counter."""

import pytest

torch = pytest.importorskip("torch")

from srbench.nn.efficiency import count_layer_macs, count_macs  # noqa: E402


@pytest.mark.parametrize("name", ["srcnn", "srcnn_955", "fsrcnn", "espcn"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_hooks_count_the_shipped_networks_as_torchs_flop_counter_does(name, scale):
    from srbench.registry import get_registry
    from srbench.runner import instantiate

    method, _ = instantiate(get_registry().get(name), "cpu")
    if scale not in method.fitted_scales:
        pytest.skip(f"{name} has no x{scale} weights")
    net, _ = method._network(scale)
    counted = getattr(net, "architecture_forward", None)

    def forward(x):
        return counted(x) if counted else net(x, pad=True)

    fast, net.fast_inference = net.fast_inference, False
    try:
        assert count_layer_macs(forward, net, 1, size=20) == count_macs(forward, 1, size=20) > 0
    finally:
        net.fast_inference = fast


def test_hooks_count_linear_grouped_and_transposed_layers():
    from torch import nn

    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, groups=1),
        nn.Conv2d(8, 8, 3, stride=2, groups=4),
        nn.ConvTranspose2d(8, 4, 4, stride=2, groups=2),
        nn.Flatten(1),
    )
    with torch.inference_mode():
        width = net(torch.zeros(1, 3, 17, 17)).shape[1]
    net.append(nn.Linear(width, 10))
    assert count_layer_macs(net, net, 3, size=17) == count_macs(net, 3, size=17) > 0
