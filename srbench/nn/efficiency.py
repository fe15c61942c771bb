"""Efficiency figures as the efficient-SR challenges report them (imports torch).

Parameters are counted from the module; multiply-accumulates (MACs) for a 256x256 LR input
are counted by torch's own FLOP counter (``torch.utils.flop_counter``, maintained with
torch), which sees every convolution, matrix product and attention the forward pass runs,
whatever the module's layers are called. MACs are half its FLOPs. Importing that counter
imports ``torch._dynamo`` (about a second), so networks made only of convolution and linear
modules, as srbench's own are, may be counted by :func:`count_layer_macs` instead: the same
formulas, from forward hooks on those modules.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MAC_INPUT_SIZE", "count_layer_macs", "count_macs", "count_parameters"]

#: The LR input the challenges count MACs for.
MAC_INPUT_SIZE = 256


def count_parameters(module: Any) -> int:
    """Number of parameters (learned tensors' elements) of ``module``."""
    return int(sum(p.numel() for p in module.parameters()))


def count_macs(forward: Any, channels: int, *, size: int = MAC_INPUT_SIZE) -> int:
    """Multiply-accumulates of one ``forward`` call on a ``(1, channels, size, size)`` input.

    ``forward`` is the module itself or a function around it; it runs once on the CPU.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(1, channels, size, size)
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        forward(x)
    return int(counter.get_total_flops() // 2)


def count_layer_macs(forward: Any, module: Any, channels: int, *, size: int = MAC_INPUT_SIZE) -> int:
    """Multiply-accumulates of the convolution and linear modules in ``module`` during one
    ``forward`` call on a ``(1, channels, size, size)`` input, counted by forward hooks.

    Each is counted as torch's FLOP counter counts it (its weight's elements times the
    positions it is applied at: the output's for a convolution, the input's for a transposed
    one, every row for a linear layer). Products computed outside such modules (a functional
    ``F.conv2d``, a matrix product in ``forward``) are not seen: use :func:`count_macs` for
    networks that have them.
    """
    import torch
    from torch import nn

    total = 0

    def count(layer: Any, inputs: tuple, output: Any) -> None:
        nonlocal total
        x = inputs[0]
        if isinstance(layer, nn.Linear):
            total += (x.numel() // x.shape[-1]) * layer.weight.numel()
            return
        transposed = isinstance(layer, nn.modules.conv._ConvTransposeNd)
        positions = (x if transposed else output).shape[2:].numel()
        total += x.shape[0] * positions * layer.weight.numel()

    kinds = (nn.Linear, nn.modules.conv._ConvNd)
    hooks = [m.register_forward_hook(count) for m in module.modules() if isinstance(m, kinds)]
    try:
        with torch.inference_mode():
            forward(torch.zeros(1, channels, size, size))
    finally:
        for hook in hooks:
            hook.remove()
    return int(total)
