"""What running methods in isolated worker processes costs, against the methods' own time.

    python benchmarks/isolation_overhead.py [--scale 3] [--dataset Set5] [--methods a,b,...]

For every method, each image of the dataset is upscaled twice: in this process, timing the
call alone, and through srbench's cached worker (:class:`srbench.isolation.WorkerPool`),
timing the whole round trip (sending the input, the call, sending the output back). The
difference is the isolation overhead. The worker's start (importing the method, loading its
model) is shown apart: it is paid once per method and run, not per image.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

from srbench.datasets import load_dataset
from srbench.isolation import MethodSpec, WorkerPool
from srbench.protocols import get_protocol
from srbench.registry import get_registry
from srbench.runner import instantiate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=3)
    parser.add_argument("--dataset", default="Set5")
    parser.add_argument("--methods", default="")
    args = parser.parse_args()

    registry = get_registry()
    names = args.methods.split(",") if args.methods else [n for n, e in registry.entries.items() if e.builtin]
    protocol = get_protocol("matlab")
    images = []
    for image in load_dataset(args.dataset).images:
        hr = protocol.ground_truth(image.pixels(), args.scale)
        images.append(protocol.degrade(hr, args.scale))

    print(f"machine: {platform.processor() or platform.machine()}, {args.dataset} x{args.scale}, {len(images)} images")
    print(f"{'method':12s} {'process s':>9s} {'worker s':>9s} {'round trip':>11s} {'overhead s':>11s} "
          f"{'overhead %':>11s} {'start s':>9s}")  # fmt: skip
    total_method = total_overhead = total_start = 0.0
    with WorkerPool() as pool:
        for name in sorted(names):
            cls = registry.get(name)
            method, device = instantiate(cls, "cpu")
            spec = MethodSpec(cls.name, (), device, (), (), cls.version)
            start = time.perf_counter()
            pool.run(spec, args.scale, images[0], 1)  # starts the worker, loads, warms up
            startup = time.perf_counter() - start
            method.prepare(args.scale)
            inside, round_trip, in_worker = [], [], []
            for lr in images:
                t0 = time.perf_counter()
                method.upscale(lr, args.scale)
                inside.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                answer = pool.run(spec, args.scale, lr, 1)
                round_trip.append(time.perf_counter() - t0)
                in_worker.append(answer["seconds"])
            # The harness's cost is the round trip minus the call the worker timed: sending the
            # input, pickling the output back, the memory marks. Comparing with the in-process
            # call as well shows whether the method itself runs slower in a worker.
            own, trip, timed = sum(inside), sum(round_trip), sum(in_worker)
            overhead = max(0.0, trip - timed)
            total_method += timed
            total_overhead += overhead
            total_start += startup
            print(f"{name:12s} {own:9.3f} {timed:9.3f} {trip:11.3f} {overhead:11.4f} "
                  f"{100 * overhead / timed:10.2f}% {startup:9.2f}")  # fmt: skip
            print(f"{'':12s} median per image: in process {statistics.median(inside) * 1000:.1f} ms, "
                  f"in worker {statistics.median(in_worker) * 1000:.1f} ms, "
                  f"round trip {statistics.median(round_trip) * 1000:.1f} ms")  # fmt: skip
    print(f"all methods: method time in workers {total_method:.2f} s, per-image isolation overhead "
          f"{total_overhead:.3f} s ({100 * total_overhead / total_method:.2f}%); worker starts "
          f"{total_start:.1f} s, paid once per method and run")  # fmt: skip


if __name__ == "__main__":
    main()
