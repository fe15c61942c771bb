"""How much a number moves with the protocol: bicubic under matlab and matlab-rgb, image by image.

    python examples/protocol_difference.py [--datasets Set5,Set14,BSD100] [--store FILE]

Runs (or finds cached) bicubic at x2-x4 under both protocols and prints every image's PSNR
under each, their difference, and the mean difference per dataset and scale.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

from srbench.store import ResultStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="Set5,Set14,BSD100")
    parser.add_argument("--store", default=str(Path("protocol_difference.sqlite")))
    args = parser.parse_args()
    for protocol in ("matlab", "matlab-rgb"):
        subprocess.run(
            [sys.executable, "-m", "srbench.cli", "run", "-m", "bicubic", "-d", args.datasets, "-s", "2,3,4",
             "-p", protocol, "--store", args.store, "--no-outputs"],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    with ResultStore(args.store) as store:
        rows = [r for r in store.results(methods=["bicubic"]) if r.status == "ok"]
    psnr = {(r.protocol, r.dataset, r.scale, r.image): r.psnr for r in rows}
    for dataset in args.datasets.split(","):
        for scale in (2, 3, 4):
            images = sorted(i for p, d, s, i in psnr if p == "matlab" and d == dataset and s == scale)
            diffs = []
            print(f"\n{dataset} x{scale}: image, matlab, matlab-rgb, difference")
            for image in images:
                a, b = psnr[("matlab", dataset, scale, image)], psnr.get(("matlab-rgb", dataset, scale, image))
                if b is None:
                    continue
                diffs.append(b - a)
                print(f"  {image:12s} {a:8.3f} {b:8.3f} {b - a:+7.3f}")
            print(f"  mean difference {statistics.mean(diffs):+.4f} dB over {len(diffs)} images "
                  f"(min {min(diffs):+.3f}, max {max(diffs):+.3f})")  # fmt: skip


if __name__ == "__main__":
    main()
