"""Efficiency figures as the efficient-SR challenges report them (imports torch).

Parameters are counted from the module; multiply-accumulates (MACs) for a 256x256 LR input
are counted by torch's own FLOP counter (``torch.utils.flop_counter``, maintained with
torch), which sees every convolution, matrix product and attention the forward pass runs,
whatever the module's layers are called. MACs are half its FLOPs.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MAC_INPUT_SIZE", "count_macs", "count_parameters"]

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
