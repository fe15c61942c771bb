"""Peak memory (RSS) of every built-in method on one big image, each scale in a fresh process.

Usage::

    python benchmarks/peak_memory.py [--image PATH] [--methods sc,ne_nnls,...]
                                     [--scales 2,3,4] [--limit-gb 6]

By default the image is the largest of ``$SRBENCH_DATA/Urban100`` (by pixel count; the
set's images reach 1280 x 960) and the methods are all the registered ones (srbench's own
and installed plugins), run on the CPU. For each method and scale a new Python process
loads the method's shipped artifacts, makes the LR input by the benchmark's protocol
(luminance, modcrop, MATLAB bicubic downscaling) and upscales it once; it reports
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` after loading (libraries, artifacts, input)
and after the upscale call (the peak of the whole process), and the seconds of the call.
A fresh process per cell keeps one method's allocations out of the next one's peak.

Only memory and time are printed, never a score: Urban100 is a test set.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _peak_mb() -> float:
    # Linux reports ru_maxrss in KiB (macOS in bytes).
    scale = 1.0 if sys.platform == "darwin" else 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def _child(method_name: str, scale: int, image: str) -> None:
    """Run one cell and print a JSON line (in the fresh process)."""
    import numpy as np

    from srbench.imageio import luminance, read_image
    from srbench.protocol import degrade, modcrop
    from srbench.registry import get_registry

    registry = get_registry().discover()
    cls = registry.get(method_name)
    method = cls()
    if "device" in method.get_params():
        method.set_params(device="cpu")
    if method.trainable:
        method.load(scales=[scale])
    hr = modcrop(luminance(read_image(image)), scale)
    lr = degrade(hr, scale)
    method.prepare(scale)
    loaded = _peak_mb()
    start = time.perf_counter()
    out = method.upscale(lr, scale)
    seconds = time.perf_counter() - start
    assert np.asarray(out).shape == hr.shape
    print(json.dumps({"method": method_name, "scale": scale, "lr": list(lr.shape),
                      "loaded_mb": loaded, "peak_mb": _peak_mb(), "seconds": seconds}))


def _largest_image(folder: Path) -> Path:
    from PIL import Image

    images = [p for p in folder.iterdir() if p.suffix.lower() in {".png", ".bmp", ".jpg"}]
    if not images:
        raise SystemExit(f"no images in {folder}")

    def pixels(path: Path) -> int:
        with Image.open(path) as im:
            return im.size[0] * im.size[1]

    return max(images, key=lambda p: (pixels(p), p.name))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", help="image file (default: the largest Urban100 image)")
    parser.add_argument("--methods", help="comma-separated method names (default: all)")
    parser.add_argument("--scales", default="2,3,4")
    parser.add_argument("--limit-gb", type=float, default=6.0, help="flag peaks above this")
    parser.add_argument("--child", nargs=3, metavar=("METHOD", "SCALE", "IMAGE"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child[0], int(args.child[1]), args.child[2])
        return

    if args.image:
        image = Path(args.image)
    else:
        data = os.environ.get("SRBENCH_DATA")
        if not data:
            raise SystemExit("set SRBENCH_DATA (or pass --image)")
        image = _largest_image(Path(data) / "Urban100")
    if args.methods:
        methods = args.methods.split(",")
    else:
        from srbench.registry import get_registry

        methods = sorted(get_registry().discover().entries)
    scales = [int(s) for s in args.scales.split(",")]
    from PIL import Image

    with Image.open(image) as im:
        size = im.size
    print(f"{image.name} ({size[0]}x{size[1]}), one fresh process per cell; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'method':12s} {'scale':>5s} {'LR':>9s} {'after load MB':>14s} "
          f"{'peak MB':>9s} {'seconds':>8s}")
    over = []
    for name in methods:
        for scale in scales:
            result = subprocess.run(
                [sys.executable, str(Path(__file__).resolve()), "--child", name, str(scale),
                 str(image)],
                capture_output=True, text=True, cwd=ROOT, check=False,
            )
            lines = [ln for ln in result.stdout.splitlines() if ln.startswith("{")]
            if result.returncode or not lines:
                error = (result.stderr.strip().splitlines() or ["no output"])[-1]
                print(f"{name:12s} {scale:5d}  failed: {error}")
                continue
            cell = json.loads(lines[-1])
            lr = "x".join(str(v) for v in cell["lr"])
            flag = "  over the limit" if cell["peak_mb"] > args.limit_gb * 1024 else ""
            print(f"{name:12s} {scale:5d} {lr:>9s} {cell['loaded_mb']:14.0f} "
                  f"{cell['peak_mb']:9.0f} {cell['seconds']:8.1f}{flag}", flush=True)
            if flag:
                over.append((name, scale))
    print(f"load average {os.getloadavg()[0]:.2f}; peaks over {args.limit_gb:g} GB: "
          f"{', '.join(f'{n} x{s}' for n, s in over) or 'none'}")


if __name__ == "__main__":
    main()
