"""FSRCNN's banded CPU pass against the layer-by-layer CPU pass it replaced, in one process.

Usage::

    python benchmarks/fsrcnn_layers.py [--threads 2 1] [--repeat 9] [--size 1000x800]
    python benchmarks/fsrcnn_layers.py --check [--scales 2 3 4]

Timing (the default): through FSRCNN's public ``upscale`` with its shipped weights, the
two passes take turns within every round (the order alternating from round to round) and
the median of ``repeat`` rounds is reported, so both see the same machine load; on a shared
machine only such ratios mean anything. Measured at each ``--threads`` count:

* a random LR image of ``--size`` (width x height) at ``--big-scale`` (x4);
* the mean time per Set5 image at ``--scale`` (x3), LR made by the protocol's
  degradation, with SRCNN's time per image in the same rounds for the speed ratio.

``--check`` compares the two passes' outputs, rounded to uint8 as the benchmark scores
them, on T91 (the training images; never a test set), each image modcropped and degraded
by the protocol: the number of differing pixels and the largest PSNR change, per scale.

The previous pass is :func:`layer_by_layer`, kept here only to measure against.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def layer_by_layer(net, x, pad: bool = False):
    """FSRCNN's CPU pass before the banded one: each layer over the whole image.

    The first layer as im2col + GEMM, the 1x1 layers as GEMMs and the deconvolution as a
    sub-pixel convolution (oneDNN) and pixel shuffle, each on the whole feature map.
    """
    import torch
    import torch.nn.functional as F
    from srbench._methods.cnn.models import (
        _DECONV_REACH,
        _first_layer,
        _pad,
        subpixel_deconv,
    )
    from torch import nn

    def pointwise(conv, x):
        batch, c_in, height, width = x.shape
        pixels = x.permute(0, 2, 3, 1).reshape(-1, c_in)
        out = torch.addmm(conv.bias, pixels, conv.weight.reshape(conv.out_channels, c_in).t())
        return out.view(batch, height, width, conv.out_channels).permute(0, 3, 1, 2)

    x = x.contiguous(memory_format=torch.channels_last)
    for layer in net.body:
        if pad and isinstance(layer, nn.Conv2d):
            x = _pad(x, layer.kernel_size[0])
        if isinstance(layer, nn.Conv2d) and layer.in_channels == 1:
            x = _first_layer(layer, x)
        elif isinstance(layer, nn.Conv2d) and layer.kernel_size == (1, 1):
            x = pointwise(layer, x)
        else:
            x = layer(x)
    if pad:
        r = _DECONV_REACH
        return subpixel_deconv(net.deconv, F.pad(x, (r, r, r, r), mode="replicate"), crop=r)
    c = net.hr_crop
    y = subpixel_deconv(net.deconv, x, crop=c // net.scale)
    c %= net.scale
    return y[..., c : y.shape[-2] - c, c : y.shape[-1] - c]


def _method(name: str, scale: int):
    from srbench.registry import get_registry
    from srbench.runner import instantiate

    method, _ = instantiate(get_registry().get(name), "cpu", {})
    method.load(scales=[scale])
    method.prepare(scale)
    return method


def _use(method, scale: int, previous: bool) -> None:
    """Make the method's network run the previous pass (or its own)."""
    net, _ = method._network(scale)
    if previous:
        net.forward = lambda x, pad=False: layer_by_layer(net, x, pad)
    else:
        net.__dict__.pop("forward", None)


def _lr_images(name: str, scale: int) -> list[np.ndarray]:
    from srbench.datasets import load_dataset
    from srbench.protocol import degrade, modcrop

    dataset = load_dataset(name, download=False)
    return [degrade(modcrop(image.luminance(), scale), scale) for image in dataset.images]


def timing(args) -> None:
    import torch

    width, height = (int(v) for v in args.size.split("x"))
    big = np.random.default_rng(0).random((height, width)).astype(np.float32)
    set5 = _lr_images("Set5", args.scale)
    fsrcnn = {s: _method("fsrcnn", s) for s in {args.scale, args.big_scale}}
    srcnn = _method("srcnn", args.scale)

    def per_image(method, images, scale):
        return lambda: [method.upscale(image, scale) for image in images]

    big_method, set5_method = fsrcnn[args.big_scale], fsrcnn[args.scale]
    cases = {  # name -> (method, scale, call, images per call)
        f"{width}x{height} x{args.big_scale}": (
            big_method, args.big_scale, per_image(big_method, [big], args.big_scale), 1),
        f"Set5 x{args.scale} per image": (
            set5_method, args.scale, per_image(set5_method, set5, args.scale), len(set5)),
    }
    print(f"load average (1 min) {os.getloadavg()[0]:.2f} before; torch {torch.__version__}; "
          f"median of {args.repeat} rounds, previous and banded alternating")
    for threads in args.threads:
        torch.set_num_threads(threads)
        for name, (method, scale, call, count) in cases.items():
            times = {"previous": [], "banded": []}
            for flag in (True, False):  # warm-up of both
                _use(method, scale, flag)
                call()
            for round_ in range(args.repeat):
                order = ("previous", "banded") if round_ % 2 == 0 else ("banded", "previous")
                for which in order:
                    _use(method, scale, which == "previous")
                    start = time.perf_counter()
                    call()
                    times[which].append((time.perf_counter() - start) / count)
            _use(method, scale, False)
            old, new = statistics.median(times["previous"]), statistics.median(times["banded"])
            print(f"{threads} thread(s), {name}: previous {old * 1e3:8.2f} ms, banded "
                  f"{new * 1e3:8.2f} ms, {old / new:.2f}x")
        call = per_image(srcnn, set5, args.scale)
        call()
        seconds = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            call()
            seconds.append((time.perf_counter() - start) / len(set5))
        print(f"{threads} thread(s), SRCNN Set5 x{args.scale} per image: "
              f"{statistics.median(seconds) * 1e3:8.2f} ms")
    print(f"load average (1 min) {os.getloadavg()[0]:.2f} after")


def check(args) -> None:
    from srbench.method import MethodError
    from srbench.metrics import psnr

    images = _lr_hr_pairs(args)
    for scale in args.scales:
        method = _method("fsrcnn", scale)
        differing, pixels, worst_psnr, worst_value, failed = 0, 0, 0.0, 0, 0
        for lr, hr in images[scale]:
            outputs = []
            for previous in (True, False):
                _use(method, scale, previous)
                try:
                    outputs.append(method.upscale(lr, scale))
                except MethodError:
                    outputs.append(None)
            if outputs[0] is None or outputs[1] is None:
                # Both passes fail alike on the smallest LR images (run_model infers the
                # scale from the output width, which the valid pass's margin skews).
                assert outputs[0] is None and outputs[1] is None
                failed += 1
                continue
            old, new = outputs
            worst_value = max(worst_value, float(np.abs(old - new).max()))
            # uint8 as MATLAB's uint8(255 * x) rounds (half away from zero), as scored.
            old8, new8 = (np.floor(y * 255 + 0.5).astype(np.uint8) for y in (old, new))
            differing += int((old8 != new8).sum())
            pixels += old8.size
            change = abs(psnr(old, hr, border=scale) - psnr(new, hr, border=scale))
            worst_psnr = max(worst_psnr, change)
        print(f"x{scale}: {len(images[scale]) - failed} T91 images ({failed} too small for "
              f"upscale), {differing} of {pixels} uint8 pixels differ, largest float difference "
              f"{worst_value:.2e}, largest PSNR change {worst_psnr:.2e} dB")


def _lr_hr_pairs(args) -> dict[int, list[tuple[np.ndarray, np.ndarray]]]:
    from srbench.datasets import load_dataset
    from srbench.protocol import degrade, modcrop

    dataset = load_dataset(f"folder:{args.t91}", download=False)
    out = {}
    for scale in args.scales:
        hrs = [modcrop(image.luminance(), scale) for image in dataset.images]
        out[scale] = [(degrade(hr, scale), hr) for hr in hrs]
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--size", default="1000x800", help="LR width x height of the large image")
    parser.add_argument("--big-scale", type=int, default=4)
    parser.add_argument("--scale", type=int, default=3, help="scale of the Set5 timing")
    parser.add_argument("--check", action="store_true", help="compare outputs on T91 instead")
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--t91", default=os.path.join(os.environ.get("SRBENCH_DATA", "."), "T91"))
    args = parser.parse_args(argv)
    if args.check:
        check(args)
    else:
        timing(args)


if __name__ == "__main__":
    main()
