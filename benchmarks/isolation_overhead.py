"""What running methods in isolated worker processes costs, against the methods' own time.

    python benchmarks/isolation_overhead.py [--scale 3] [--dataset Set5] [--methods a,b,...]
                                            [--rounds 1] [--startup-only]

Worker start-up: every method's worker is started through :class:`srbench.isolation.WorkerPool`
both ways, in the same run so that the two are measured under the same load: as a fresh
interpreter (``spawn``) and forked from the pool's zygote (``zygote``, the default where fork
is available). A worker's start is timed to its method being built (artifacts loaded); then
its first image's round trip less the call the worker timed: the one-time work of a first
call (``prepare``'s warm-up, counting a network's MACs, what a method imports only when
first called). Their sum is what a run pays once per method and scale. The zygote's own
start is paid by the first worker of its pool, and torch's import by its first network:
they are in those workers' figures. With ``--rounds N`` the two ways alternate in order and
each figure is the median over the rounds.

Per image: each image of the dataset is upscaled twice, in this process (timing the call
alone) and through the pool's cached worker (timing the whole round trip: sending the
input, the call, sending the output back). The round trip minus the call the worker timed
is the isolation overhead.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

from srbench.datasets import load_dataset
from srbench.isolation import MethodSpec, WorkerPool
from srbench.protocols import get_protocol
from srbench.registry import get_registry
from srbench.runner import instantiate


def start_up(specs: dict[str, MethodSpec], images: list, scale: int, zygote: bool) -> tuple[dict, float, str]:
    """Per method: (seconds to a built worker, one-time seconds of its first call); close time; mode.

    Methods start in order in one pool, as a run starts them.
    """
    figures = {}
    pool = WorkerPool(zygote=zygote)
    try:
        for name, spec in specs.items():
            t0 = time.perf_counter()
            pool.start(spec)
            t1 = time.perf_counter()
            answer = pool.run(spec, scale, images[0], 1)
            figures[name] = (t1 - t0, time.perf_counter() - t1 - answer["seconds"])
        mode = "zygote" if pool.zygote_error is None else f"spawn ({pool.zygote_error})"
    finally:
        t0 = time.perf_counter()
        pool.close()
        closing = time.perf_counter() - t0
    return figures, closing, mode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=3)
    parser.add_argument("--dataset", default="Set5")
    parser.add_argument("--methods", default="")
    parser.add_argument("--rounds", type=int, default=1, help="start-up rounds per way (default 1)")
    parser.add_argument("--startup-only", action="store_true", help="skip the per-image measurement")
    args = parser.parse_args()

    registry = get_registry()
    names = args.methods.split(",") if args.methods else [n for n, e in registry.entries.items() if e.builtin]
    protocol = get_protocol("matlab")
    images = []
    for image in load_dataset(args.dataset).images:
        hr = protocol.ground_truth(image.pixels(), args.scale)
        images.append(protocol.degrade(hr, args.scale))
    specs = {}
    for name in sorted(names):
        cls = registry.get(name)
        _, device = instantiate(cls, "cpu")  # as the runner does: artifacts checked (torch imported) here
        specs[name] = MethodSpec(cls.name, (), device, (), (), cls.version)

    load = os.getloadavg()[0]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load average "
          f"{load:.2f} at start; {args.dataset} x{args.scale}, {len(images)} images")  # fmt: skip

    # ------------------------------------------------------------------ worker start-up
    runs: dict[bool, list] = {False: [], True: []}
    modes = {}
    for round_ in range(max(1, args.rounds)):
        for zygote in (False, True) if round_ % 2 == 0 else (True, False):
            figures, closing, modes[zygote] = start_up(specs, images, args.scale, zygote)
            runs[zygote].append((figures, closing))

    def median(zygote: bool, name: str, part: int) -> float:
        return statistics.median(figures[name][part] for figures, _ in runs[zygote])

    print(f"\nworker start-up, median of {len(runs[True])} round(s); spawn: {modes[False]}; zygote: {modes[True]}")
    print(f"{'method':12s} {'spawn start':>11s} {'1st call':>10s} {'zygote start':>12s} {'1st call':>10s} "
          f"{'ratio':>6s}")  # fmt: skip
    totals = {False: 0.0, True: 0.0}
    for name in specs:
        row = f"{name:12s}"
        for zygote in (False, True):
            start, first = median(zygote, name, 0), median(zygote, name, 1)
            totals[zygote] += start + first
            row += f" {start:{11 if not zygote else 12}.3f} {first:10.3f}"
        ratio = (median(True, name, 0) + median(True, name, 1)) / (median(False, name, 0) + median(False, name, 1))
        print(f"{row} {ratio:6.2f}")
    closing = {z: statistics.median(c for _, c in runs[z]) for z in runs}
    print(f"all {len(specs)} workers, start + first call: spawn {totals[False]:.2f} s, zygote {totals[True]:.2f} s "
          f"(zygote's start included), ratio {totals[True] / totals[False]:.2f}; closing the pool: spawn "
          f"{closing[False]:.2f} s, zygote {closing[True]:.2f} s")  # fmt: skip
    print(f"load average {os.getloadavg()[0]:.2f} at the end of the start-up measurement")
    if args.startup_only:
        return

    # ------------------------------------------------------------------ per image
    print("\nper image, through the default pool")
    print(f"{'method':12s} {'process s':>9s} {'worker s':>9s} {'round trip':>11s} {'overhead s':>11s} "
          f"{'overhead %':>11s}")  # fmt: skip
    total_method = total_overhead = 0.0
    with WorkerPool() as pool:
        for name, spec in specs.items():
            method, _ = instantiate(registry.get(name), "cpu")
            pool.run(spec, args.scale, images[0], 1)  # starts the worker, loads, warms up
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
            print(f"{name:12s} {own:9.3f} {timed:9.3f} {trip:11.3f} {overhead:11.4f} "
                  f"{100 * overhead / timed:10.2f}%")  # fmt: skip
            print(f"{'':12s} median per image: in process {statistics.median(inside) * 1000:.1f} ms, "
                  f"in worker {statistics.median(in_worker) * 1000:.1f} ms, "
                  f"round trip {statistics.median(round_trip) * 1000:.1f} ms")  # fmt: skip
    print(f"all methods: method time in workers {total_method:.2f} s, per-image isolation overhead "
          f"{total_overhead:.3f} s ({100 * total_overhead / total_method:.2f}%); worker start-up as above, "
          f"paid once per method and run")  # fmt: skip


if __name__ == "__main__":
    main()
