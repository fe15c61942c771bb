"""Speed of the classical coding methods (SC, NE+NNLS, NE+LLE), optionally against a revision.

Usage::

    python benchmarks/classical_speed.py [--methods sc,ne_nnls,ne_lle] [--dataset Set5]
                                         [--scales 2,3,4] [--images N] [--repeat 3]
                                         [--against REV] [--threads N] [--clock wall|cpu]

Each method upscales every image of the dataset (``$SRBENCH_DATA``, LR made by the
benchmark's protocol) through its public ``upscale``, ``repeat`` times after a warm-up
call; the median per image is kept and the table gives the mean seconds per image and the
megapixels of HR output per second.

``--against REV`` loads the same methods from a git revision of this checkout (their
packages as they were at ``REV``, with today's shipped artifacts) and times old and new
code alternately on the same inputs (old, new, new, old, ...), so that both see the same
machine load; it prints the ratio of the mean times and the largest difference between
the two outputs. ``--threads N`` caps the BLAS/OpenMP threads (``threadpoolctl``), and
``--clock cpu`` times with ``time.process_time`` (CPU seconds of the process, all threads)
instead of the wall clock: on a shared machine both make the ratios steadier. The 1-minute
load average is printed before and after.
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

#: Method name -> (package under methods/, module, class name).
METHODS = {
    "sc": ("sparse", "sc", "SC"),
    "ne_nnls": ("neighbor_embedding", "methods", "NENNLS"),
    "ne_lle": ("neighbor_embedding", "methods", "NELLE"),
}


def _current(name: str):
    package, module, cls = METHODS[name]
    return getattr(importlib.import_module(f"srbench._methods.{package}.{module}"), cls)


def _checkout(rev: str, folder: Path) -> None:
    """Copy the sparse and neighbour-embedding packages at ``rev`` into importable packages.

    They become ``_rev_sparse`` and ``_rev_neighbor_embedding`` in ``folder`` (relative
    imports between the two rewritten), with links to today's ``weights/`` folders.
    """
    for package in ("sparse", "neighbor_embedding"):
        target = folder / f"_rev_{package}"
        target.mkdir()
        listing = subprocess.run(
            ["git", "ls-tree", "--name-only", f"{rev}:methods/{package}"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout.split()
        for name in listing:
            if not name.endswith(".py"):
                continue
            text = subprocess.run(
                ["git", "show", f"{rev}:methods/{package}/{name}"],
                cwd=ROOT, capture_output=True, text=True, check=True,
            ).stdout
            text = text.replace("from ..sparse", "from _rev_sparse")
            (target / name).write_text(text)
        (target / "weights").symlink_to(ROOT / "methods" / package / "weights")


def _old(name: str):
    package, module, cls = METHODS[name]
    return getattr(importlib.import_module(f"_rev_{package}.{module}"), cls)


def _inputs(dataset: str, scale: int, count: int | None):
    from srbench.datasets import load_dataset
    from srbench.protocol import degrade, modcrop

    images = load_dataset(dataset, download=False).images[:count]
    out = []
    for image in images:
        hr = modcrop(image.luminance(), scale)
        out.append((image.name, hr.shape, degrade(hr, scale)))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="sc,ne_nnls,ne_lle")
    parser.add_argument("--dataset", default="Set5")
    parser.add_argument("--scales", default="2,3,4")
    parser.add_argument("--images", type=int, default=None, help="first N images only")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--against", metavar="REV", help="git revision to compare with")
    parser.add_argument("--threads", type=int, default=None, help="BLAS/OpenMP threads")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    args = parser.parse_args(argv)

    if args.threads:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    methods = args.methods.split(",")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise SystemExit(f"unknown method(s) {', '.join(unknown)}; known: {', '.join(METHODS)}")
    tmp = None
    if args.against:
        tmp = tempfile.TemporaryDirectory()
        _checkout(args.against, Path(tmp.name))
        sys.path.insert(0, tmp.name)
    print(f"{args.dataset}, {args.clock} clock, median of {args.repeat} after a warm-up, "
          f"threads: {args.threads or 'library default'}; "
          f"load average {os.getloadavg()[0]:.2f}")
    header = f"{'method':8s} {'scale':>5s} {'s/image':>8s} {'MP/s':>7s}"
    if args.against:
        header += f" {'old s/image':>11s} {'speed-up':>8s} {'max |diff|':>10s}"
    print(header)
    for name in methods:
        variants = {"new": _current(name)()}
        if args.against:
            variants["old"] = _old(name)()
        for method in variants.values():
            method.load()
        for scale in [int(s) for s in args.scales.split(",")]:
            times = {key: [] for key in variants}
            pixels, diff = 0, 0.0
            for _, shape, lr in _inputs(args.dataset, scale, args.images):
                pixels += shape[0] * shape[1]
                outputs, per_image = {}, {key: [] for key in variants}
                for method in variants.values():
                    method.upscale(lr, scale)  # warm-up: imports, caches
                order = list(variants)
                for r in range(args.repeat):
                    for key in order if r % 2 == 0 else order[::-1]:
                        start = clock()
                        outputs[key] = variants[key].upscale(lr, scale)
                        per_image[key].append(clock() - start)
                for key in variants:
                    times[key].append(statistics.median(per_image[key]))
                if args.against:
                    difference = np.abs(np.asarray(outputs["new"], np.float64)
                                        - np.asarray(outputs["old"], np.float64)).max()
                    diff = max(diff, float(difference))
            count = len(times["new"])
            new = sum(times["new"]) / count
            line = f"{name:8s} {'x' + str(scale):>5s} {new:8.3f} {pixels / 1e6 / sum(times['new']):7.3f}"
            if args.against:
                old = sum(times["old"]) / count
                line += f" {old:11.3f} {old / new:7.2f}x {diff:10.1e}"
            print(line, flush=True)
    print(f"load average {os.getloadavg()[0]:.2f}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
