"""Throughput of the MATLAB-exact ``imresize`` (megapixels per second).

Run: ``.venv/bin/python benchmarks/imresize_speed.py [--size 512] [--colour]``. Shrinking is
timed on a ``size`` x ``size`` image; enlarging on the LR image that shrinking produced, up to
``size`` x ``size`` again. Megapixels are given for output and for input pixels. The sparse
weight matrices are cached per size, as in a benchmark grid; the first (cold) call, which
builds them, is reported separately. ``--colour`` also times a 3-channel image against three
2-D calls on its channels (the colour path of ``srbench upscale``: they should cost the same
per channel).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from srbench.protocol import _resize_weights, imresize


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--colour", action="store_true", help="also time 3-channel images")
    args = parser.parse_args()
    image = np.random.default_rng(0).random((args.size, args.size)).astype(np.float32)
    print(f"imresize throughput on a {args.size}x{args.size} float32 image (best of {args.repeats})")
    print(f"{'scale':>5} {'direction':>9} {'output':>9} {'cold ms':>8} {'warm ms':>8} {'out MP/s':>9} {'in MP/s':>8}")
    for scale in (2, 3, 4):
        lr = imresize(image, 1 / scale)
        for direction, source, factor in (("shrink", image, 1 / scale), ("enlarge", lr, scale)):
            _resize_weights.cache_clear()
            start = time.perf_counter()
            out = imresize(source, factor)
            cold = time.perf_counter() - start
            warm = best_of(lambda s=source, f=factor: imresize(s, f), args.repeats)
            print(
                f"{'x' + str(scale):>5} {direction:>9} {out.shape[1]:>4}x{out.shape[0]:<4} "
                f"{cold * 1e3:8.2f} {warm * 1e3:8.2f} {out.size / 1e6 / warm:9.1f} "
                f"{source.size / 1e6 / warm:8.1f}"
            )
    pair = best_of(lambda: imresize(imresize(image, 1 / 3), 3), args.repeats)
    print(f"shrink + enlarge at x3 ({args.size}x{args.size}): {pair * 1e3:.2f} ms")
    if args.colour:
        rgb = np.random.default_rng(1).random((args.size // 4, args.size // 4, 3)).astype(np.float32)
        channels = [np.ascontiguousarray(rgb[..., c]) for c in range(3)]
        whole = best_of(lambda: imresize(rgb, 4), args.repeats)
        apart = best_of(lambda: [imresize(c, 4) for c in channels], args.repeats)
        print(f"x4 enlarge to {args.size}x{args.size}x3: one 3-D call {whole * 1e3:.2f} ms, "
              f"three 2-D calls {apart * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
