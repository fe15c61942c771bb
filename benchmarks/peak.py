"""This machine's fp32 peak and how close each CNN gets to it, measured in one run.

Usage::

    python benchmarks/peak.py [--threads N] [--scale 3] [--size 510] [--repeat 7]
                              [--matmul 4096] [--no-set5]

Measured, round-robin so that every figure sees the same machine load:

* the matmul peak: GFLOP/s of an ``N x N`` fp32 ``torch.matmul`` (``2 N^3`` FLOP);
* the convolution peak: GFLOP/s of a 3x3, 64 -> 64 channel convolution (channels-last,
  1 x 64 x 256 x 256, oneDNN), the best case for a CNN layer;
* each CNN's throughput in megapixels of HR output per second, through its public
  ``upscale`` (SRCNN's bicubic enlargement included) and for the network pass alone
  (``run_model``), on a random image whose output is ``size`` x ``size``;
* its achieved GFLOP/s (network pass) = MP/s x FLOP per output pixel, and that as a
  fraction of both peaks. FLOP per output pixel is 2 x the multiply-adds of the layers of
  the network in ``methods/cnn/models.py`` (bias, activations and padding not counted; the
  transposed convolution counted as ``C_in x k^2`` multiply-adds per LR pixel);
* with the Set5 images found (``$SRBENCH_DATA``), the mean time per Set5 image at ``scale``
  through ``upscale``, as the benchmark times it.

Each figure is the median of ``repeat`` rounds after a warm-up. The 1-minute load average
is printed before and after: on a shared machine, compare figures from one run only.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from srbench.runner import _cpu_name  # the CPU name runs record, read the same way


def flops_per_output_pixel(net) -> float:
    """2 x multiply-adds per HR output pixel of a network's convolution layers."""
    from torch import nn

    macs = 0
    for layer in net.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            k_h, k_w = layer.kernel_size
            macs += layer.in_channels * layer.out_channels * k_h * k_w // layer.groups
    # Every layer runs once per input-grid pixel (the transposed convolution too: per LR
    # pixel); an LR-space network has scale^2 output pixels per input pixel.
    return 2.0 * macs / getattr(net, "scale", 1) ** 2


def _method(cls, scale: int):
    """The method with shipped weights, or with a freshly initialised network."""
    method = cls(device="cpu")
    try:
        method.load(scales=[scale])
        return method, "shipped"
    except Exception:  # timing does not depend on the weight values
        from srbench._methods.cnn import models

        net = models.build_model(cls.arch, scale, **cls.arch_kwargs)
        tensors = {k: v.detach().numpy() for k, v in net.state_dict().items()}
        method._store_artifacts(scale, tensors, {"source": "random"})
        return method, "random init"


def _set5(scale: int) -> list[np.ndarray]:
    from srbench.datasets import load_dataset
    from srbench.protocol import degrade, modcrop

    dataset = load_dataset("Set5", download=False)
    return [degrade(modcrop(image.luminance(), scale), scale) for image in dataset.images]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--scale", type=int, default=3)
    parser.add_argument("--size", type=int, default=510, help="HR output side in pixels")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--matmul", type=int, default=4096, help="matmul side N")
    parser.add_argument("--no-set5", action="store_true", help="skip the per-Set5-image times")
    args = parser.parse_args(argv)

    import torch
    import torch.nn.functional as F

    from srbench._methods.cnn.methods import ESPCNMethod, FSRCNNMethod, SRCNN955Method, SRCNNMethod
    from srbench.nn.infer import run_model

    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    load_before = os.getloadavg()[0]
    scale, side = args.scale, args.size // args.scale
    lr = np.random.default_rng(0).random((side, side)).astype(np.float32)
    out_mp = (side * scale) ** 2 / 1e6

    n = args.matmul
    a, b = torch.randn(n, n), torch.randn(n, n)
    conv_x = torch.randn(1, 64, 258, 258).contiguous(memory_format=torch.channels_last)
    conv_w = torch.randn(64, 64, 3, 3).contiguous(memory_format=torch.channels_last)
    tasks = {  # name -> (callable, FLOP per call)
        "matmul": (lambda: torch.matmul(a, b), 2.0 * n**3),
        "conv": (lambda: F.conv2d(conv_x, conv_w), 2.0 * 64 * 64 * 9 * 256 * 256),
    }
    rows = []
    try:
        set5 = [] if args.no_set5 else _set5(scale)
    except Exception as err:  # no local Set5: the table simply lacks that column
        print(f"(no per-Set5-image times: {err})")
        set5 = []
    for cls in (SRCNNMethod, SRCNN955Method, FSRCNNMethod, ESPCNMethod):
        method, source = _method(cls, scale)
        method.prepare(scale)
        net, dev = method._network(scale)
        border = method._border()
        net_input = method._network_input(lr, scale)
        flops = flops_per_output_pixel(net) * out_mp * 1e6
        tasks[f"{cls.name}:upscale"] = (lambda m=method: m.upscale(lr, scale), flops)
        tasks[f"{cls.name}:network"] = (
            lambda net=net, dev=dev, x=net_input, border=border: run_model(net, x, dev, border=border),
            flops,
        )
        if set5:
            tasks[f"{cls.name}:set5"] = (
                lambda m=method: [m.upscale(image, scale) for image in set5],
                None,
            )
        rows.append((cls, source, flops / (out_mp * 1e6)))

    times: dict[str, list[float]] = {name: [] for name in tasks}
    with torch.inference_mode():
        for fn, _ in tasks.values():
            fn()  # warm-up: allocator, oneDNN kernel selection, imresize weights
        for _ in range(args.repeat):
            for name, (fn, _) in tasks.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    seconds = {name: statistics.median(ts) for name, ts in times.items()}
    matmul_peak = tasks["matmul"][1] / seconds["matmul"] / 1e9
    conv_peak = tasks["conv"][1] / seconds["conv"] / 1e9
    load_after = os.getloadavg()[0]

    print(f"{_cpu_name()}, {os.cpu_count()} logical CPUs; torch {torch.__version__}, "
          f"{threads} torch threads; {platform.system()} {platform.release()}")
    print(f"load average (1 min) {load_before:.2f} before, {load_after:.2f} after; "
          f"median of {args.repeat} rounds")
    print(f"fp32 matmul peak ({n}x{n}): {matmul_peak:7.1f} GFLOP/s")
    print(f"fp32 conv peak (3x3 64->64, 256x256, channels-last): {conv_peak:7.1f} GFLOP/s")
    print()
    print(f"x{scale}, {side * scale}x{side * scale} output")
    header = ("| method | FLOP/px | upscale MP/s | network MP/s | network GFLOP/s "
              "| % matmul peak | % conv peak |" + (" ms per Set5 image |" if set5 else ""))
    print(header)
    print("|" + " --- |" * (header.count("|") - 1))
    for cls, source, per_pixel in rows:
        up = out_mp / seconds[f"{cls.name}:upscale"]
        net_mps = out_mp / seconds[f"{cls.name}:network"]
        gflops = net_mps * per_pixel / 1e3
        line = (f"| {cls.label}{'' if source == 'shipped' else ' (random init)'} | {per_pixel:,.0f} "
                f"| {up:.2f} | {net_mps:.2f} | {gflops:.1f} | {100 * gflops / matmul_peak:.0f}% "
                f"| {100 * gflops / conv_peak:.0f}% |")
        if set5:
            line += f" {1e3 * seconds[f'{cls.name}:set5'] / len(set5):.1f} |"
        print(line)
    if set5:
        base = seconds["srcnn:set5"]
        ratios = ", ".join(
            f"{cls.label} {base / seconds[f'{cls.name}:set5']:.2f}x" for cls, _, _ in rows[1:]
        )
        print(f"\nper Set5 image at x{scale}, speed relative to SRCNN: {ratios}")


if __name__ == "__main__":
    main()
