"""Throughput of each CNN method: megapixels of HR output per second, on CPU and CUDA.

Usage::

    python benchmarks/cnn_speed.py [--scale 3] [--size 512] [--repeat 5] [--threads N]

Each method runs through its public ``upscale`` (so SRCNN's bicubic enlargement is
included, as it is in the benchmark's timings) on a random image whose HR output is
``size`` x ``size``. Shipped weights are used when present; otherwise a freshly initialised
network of the same architecture is timed (speed does not depend on the weight values).
The median of ``repeat`` timed calls after one warm-up call is reported.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _method(cls, scale: int, device: str):
    """The method with shipped weights, or with a freshly initialised network."""
    method = cls(device=device)
    try:
        method.load(scales=[scale])
        source = "shipped"
    except Exception:  # no shipped weights yet: time an untrained network of the same shape
        from srbench._methods.cnn import models

        net = models.build_model(cls.arch, scale, **cls.arch_kwargs)
        tensors = {k: v.detach().numpy() for k, v in net.state_dict().items()}
        method._store_artifacts(scale, tensors, {"source": "random"})
        source = "random init"
    return method, source


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=3)
    parser.add_argument("--size", type=int, default=512, help="HR output side in pixels")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)

    import torch

    from srbench._methods.cnn.methods import ESPCNMethod, FSRCNNMethod, SRCNN955Method, SRCNNMethod

    if args.threads:
        torch.set_num_threads(args.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    side = args.size // args.scale
    lr = np.random.default_rng(0).random((side, side)).astype(np.float32)
    megapixels = (side * args.scale) ** 2 / 1e6
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
          f"x{args.scale}, output {side * args.scale}x{side * args.scale}")
    for device in devices:
        label = torch.cuda.get_device_name(0) if device == "cuda" else "CPU"
        for cls in (SRCNNMethod, SRCNN955Method, FSRCNNMethod, ESPCNMethod):
            method, source = _method(cls, args.scale, device)
            method.prepare(args.scale)
            method.upscale(lr, args.scale)  # warm-up: allocator and kernel selection
            times = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                method.upscale(lr, args.scale)  # synchronises on CUDA before returning
                times.append(time.perf_counter() - start)
            seconds = statistics.median(times)
            print(f"{device:4s} {label:24s} {cls.label:12s} {megapixels / seconds:9.2f} MP/s "
                  f"({seconds * 1000:8.1f} ms per image, {source} weights)")


if __name__ == "__main__":
    main()
