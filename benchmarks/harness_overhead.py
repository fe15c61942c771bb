"""How much of a cold benchmark run is the harness, and where that time goes.

    python benchmarks/harness_overhead.py [--datasets Set5,Set14] [--methods a,b,...]
                                          [--scales 2,3,4] [--jobs 1]

Runs the grid cold, in this process's :class:`srbench.runner.Runner`, into a fresh store in a
temporary folder (nothing cached, outputs saved as ``srbench bench`` saves them), exactly as
``srbench bench`` computes cells; the report is not written. The harness's share is the run's
wall time less the method time the workers measured (the sum of the stored per-call seconds):
everything that is not a method's own upscale. It is then split by what the driver did, timed
around the functions that do it:

- worker calls: the round trips to the workers less the calls they timed (sending inputs and
  outputs, worker start-up, each method's one-time ``prepare`` for a scale);
- inputs: reading the images, making ground truth and LR inputs;
- scoring: checking and scoring each output (PSNR, SSIM) and writing it as a PNG, which is
  done on another thread meanwhile (the PNG's own time is printed beside it);
- store: the result rows;
- the rest: planning, the progress display, Python between these.

Run it on a quiet machine: the method time is part of the same run.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from srbench import isolation, runner, store
from srbench.registry import get_registry


class _Clock:
    """Seconds spent inside wrapped functions, by label (re-entrant calls counted once)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.method_seconds = 0.0
        self.round_trips: dict[str, list[float]] = defaultdict(list)

    def wrap(self, owner, name: str, label: str) -> None:
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - start

        setattr(owner, name, timed)

    def wrap_worker_calls(self) -> None:
        original = isolation.WorkerPool.run
        clock = self

        def run(pool, spec, scale, x, repeat, **options):
            start = time.perf_counter()
            answer = original(pool, spec, scale, x, repeat, **options)
            elapsed = time.perf_counter() - start
            # The worker's own timing of the call(s): repeat calls, their median stored.
            called = answer.get("seconds", 0.0) * repeat
            clock.method_seconds += called
            clock.seconds["worker calls"] += elapsed - called
            clock.round_trips[spec.registered].append(elapsed - called)
            return answer

        isolation.WorkerPool.run = run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="Set5,Set14")
    parser.add_argument("--methods", default="", help="comma-separated (default: every built-in method)")
    parser.add_argument("--scales", default="2,3,4")
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()

    registry = get_registry()
    builtins = sorted(name for name, entry in registry.entries.items() if entry.builtin)
    methods = [m for m in args.methods.split(",") if m] or builtins
    clock = _Clock()
    if args.jobs == 1:
        clock.wrap_worker_calls()
        clock.wrap(runner._Inputs, "get", "inputs")
        clock.wrap(runner.Runner, "_score", "scoring")
        clock.wrap(runner, "save_output", "outputs")
        clock.wrap(store.ResultStore, "put", "store")
    with tempfile.TemporaryDirectory() as folder:
        results = store.ResultStore(Path(folder) / "results.sqlite")
        config = runner.RunConfig(
            methods=methods,
            datasets=[d for d in args.datasets.split(",") if d],
            scales=[int(s) for s in args.scales.split(",")],
            data_dir=os.environ.get("SRBENCH_DATA"),
            device="cpu",
            jobs=args.jobs,
        )
        start = time.perf_counter()
        summary = runner.Runner(results).run(config)
        wall = time.perf_counter() - start
        rows = [r for r in results.results() if r.status == "ok"]
        method_time = sum(r.seconds for r in rows)
        by_method: dict[str, float] = defaultdict(float)
        for r in rows:
            by_method[r.label] += r.seconds
        results.close()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
          f"{len(methods)} methods on {args.datasets} at x{args.scales}, --jobs {args.jobs}")
    print(summary.line())
    print(f"wall {wall:.1f} s; method time {method_time:.1f} s; harness {wall - method_time:.1f} s "
          f"({100 * (wall - method_time) / wall:.1f}% of the run)")
    if args.jobs == 1:
        # Outputs are written while the cell is scored: inside the scoring's time.
        accounted = sum(v for k, v in clock.seconds.items() if k != "outputs")
        for label in ("worker calls", "inputs", "scoring", "store"):
            print(f"  {label:13s} {clock.seconds[label]:7.2f} s")
            if label == "scoring":
                print(f"    (writing outputs alongside: {clock.seconds['outputs']:.2f} s)")
        print(f"  {'the rest':13s} {wall - method_time - accounted:7.2f} s")
        trips = sorted(clock.round_trips.items(), key=lambda kv: -sum(kv[1]))
        print("worker calls by method, total (median per call): " + ", ".join(
            f"{name} {sum(t):.2f} s ({1e3 * sorted(t)[len(t) // 2]:.1f} ms)" for name, t in trips))
    print("method time by method (s): " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(by_method.items(), key=lambda kv: -kv[1])))


if __name__ == "__main__":
    main()
