"""Wall time of ``srbench upscale`` on a colour photograph, as a user runs it.

Usage::

    python benchmarks/upscale_speed.py [--methods bicubic,aplus,fsrcnn] [--scale 4]
                                       [--image PATH] [--size 1000x800] [--rounds 4]

Each round runs the command once per method, in a fresh process (``srbench upscale METHOD
IMAGE OUT -s SCALE``, the PNG written to a temporary folder), the methods one after another,
so that every method sees the same machine load; the table gives each method's fastest,
median and slowest round, and the first round apart (its files may not be in the page cache
yet). Everything the command does counts: Python starting, imports, loading the method,
reading the image, the method, the chroma, the colour conversion, writing the PNG.

Without ``--image`` the input is a held-out training image, T91's ``t1``, tiled (mirrored)
to ``--size``: a colour photograph of the size the speed target names, from no test set.
The 1-minute load average is printed before and after.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _photograph(size: tuple[int, int], folder: Path) -> Path:
    from srbench.imageio import read_image, write_image

    data = os.environ.get("SRBENCH_DATA")
    if not data:
        raise SystemExit("set SRBENCH_DATA (or pass --image)")
    tile = read_image(Path(data) / "T91" / "t1.png")
    width, height = size
    # Mirrored tiles: no seams a method would treat as edges.
    row = np.concatenate([tile, tile[:, ::-1]], axis=1)
    block = np.concatenate([row, row[::-1]], axis=0)
    reps = (-(-height // block.shape[0]), -(-width // block.shape[1]), 1)
    image = np.ascontiguousarray(np.tile(block, reps)[:height, :width])
    path = folder / f"t1_{width}x{height}.png"
    write_image(path, image)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="bicubic,aplus,fsrcnn")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--image", type=Path)
    parser.add_argument("--size", default="1000x800", help="WIDTHxHEIGHT of the default input")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()

    methods = [m for m in args.methods.split(",") if m]
    # The installed command, as users run it (``-m srbench.cli`` would compile the CLI
    # module afresh every time: a __main__ module gets no cached bytecode).
    script = Path(sys.executable).with_name("srbench")
    srbench = [str(script)] if script.exists() else [sys.executable, "-m", "srbench.cli"]
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        if args.image is None:
            width, height = (int(v) for v in args.size.lower().split("x"))
            image = _photograph((width, height), folder)
        else:
            image = args.image
        print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; {image.name}, x{args.scale}")
        print(f"load average (1 min) {os.getloadavg()[0]:.2f} before")
        seconds: dict[str, list[float]] = {m: [] for m in methods}
        for _ in range(args.rounds):
            for method in methods:
                out = folder / f"{method}.png"
                start = time.perf_counter()
                subprocess.run([*srbench, "upscale", method, str(image), str(out), "-s", str(args.scale)],
                               check=True, stdout=subprocess.DEVNULL)  # fmt: skip
                seconds[method].append(time.perf_counter() - start)
                out.unlink()
        print(f"load average (1 min) {os.getloadavg()[0]:.2f} after\n")
        print("| method | fastest s | median s | slowest s | first round s |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for method, times in seconds.items():
            print(f"| {method} | {min(times):.2f} | {statistics.median(times):.2f} | {max(times):.2f} | {times[0]:.2f} |")


if __name__ == "__main__":
    main()
