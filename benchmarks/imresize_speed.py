"""Speed of the MATLAB-exact ``imresize``: scipy's sparse products against the compiled kernels.

Run: ``.venv/bin/python benchmarks/imresize_speed.py [--size 512] [--repeats 20] [--threads 2]``.
Each case is timed through both paths of :func:`srbench.protocol.imresize` in the same run,
alternating calls (best of ``repeats`` each), and the outputs are checked to be identical
bit for bit. Cases: shrinking a ``size`` x ``size`` float32 image by 1/2, 1/3, 1/4 (the
harness's LR making) and enlarging the result back; a 170x170 image enlarged x3 (SRCNN's
input); a uint8 RGB image shrunk by 1/3 (the RGB protocol); and a 1000x800 3-channel float32
photo enlarged x4 to 4000x3200 (the chroma and bicubic paths of ``srbench upscale``).
``--threads`` sets ``OMP_NUM_THREADS``, which the kernels follow; the weight matrices are
cached per size as in a benchmark grid (built before timing).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from srbench import resize_kernel
from srbench.protocol import _imresize


def best_pair(first, second, repeats: int) -> tuple[float, float]:
    """Best of ``repeats`` for each of two calls, alternated so both see the same machine."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, kept in ((first, times[0]), (second, times[1])):
            start = time.perf_counter()
            fn()
            kept.append(time.perf_counter() - start)
    return min(times[0]), min(times[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0, help="OMP_NUM_THREADS for the kernels")
    args = parser.parse_args()
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    if not resize_kernel.available():
        raise SystemExit("numba is not installed: only the scipy path exists")
    start = time.perf_counter()
    resize_kernel.warm_up()
    print(f"numba kernels loaded (or compiled) in {time.perf_counter() - start:.2f} s")

    rng = np.random.default_rng(0)
    image = rng.random((args.size, args.size)).astype(np.float32)
    cases = []
    for scale in (2, 3, 4):
        cases.append((f"shrink 1/{scale}", image, 1 / scale, args.repeats))
        lr = _imresize(image, 1 / scale, None, True, False)
        cases.append((f"enlarge x{scale}", lr, scale, args.repeats))
    cases.append(("SRCNN input x3", rng.random((170, 170)).astype(np.float32), 3, args.repeats))
    rgb = (rng.random((args.size, args.size, 3)) * 255).astype(np.uint8)
    cases.append(("uint8 RGB 1/3", rgb, 1 / 3, args.repeats))
    photo = rng.random((800, 1000, 3)).astype(np.float32)
    cases.append(("photo x4", photo, 4, max(3, args.repeats // 5)))

    threads = os.environ.get("OMP_NUM_THREADS", "all")
    print(f"imresize, scipy path against the compiled kernels ({threads} threads; best of each)")
    print(f"{'case':>15} {'input':>12} {'output':>14} {'scipy ms':>9} {'kernel ms':>9} {'ratio':>6}")
    for name, source, scale, repeats in cases:
        old = _imresize(source, scale, None, True, False)
        new = _imresize(source, scale, None, True, True)
        if not (old.dtype == new.dtype and np.array_equal(old, new)):
            raise SystemExit(f"{name}: the kernels' output differs from scipy's")
        t_old, t_new = best_pair(
            lambda s=source, f=scale: _imresize(s, f, None, True, False),
            lambda s=source, f=scale: _imresize(s, f, None, True, True),
            repeats,
        )
        shape_in = "x".join(str(v) for v in (source.shape[1], source.shape[0], *source.shape[2:]))
        shape_out = "x".join(str(v) for v in (new.shape[1], new.shape[0], *new.shape[2:]))
        print(
            f"{name:>15} {shape_in:>12} {shape_out:>14} {t_old * 1e3:9.2f} {t_new * 1e3:9.2f} "
            f"{t_old / t_new:6.2f}"
        )
    print("outputs identical bit for bit in every case")


if __name__ == "__main__":
    main()
