"""Benchmark: planning jobs and running trivial local jobs, side by side with the floor.

* plan: submit N distinct jobs (int, float and str parameters and a nested
  configuration) in GENERATE_ONLY mode (identifier, job folder, params.json);
* run: run M trivial jobs with the local launcher, two at a time, next to the
  floor: M ``python -c pass`` processes, two at a time, and M ``python -m xpm run``
  start-ups.

Run: ``python scripts/bench/run.py [--plan 10000] [--run 200] [--repeat 3]``.
Figures are medians; the ratio is xpm over the floor, measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

from bench_tasks import Inner, Trivial  # noqa: E402

from xpm import RunMode, experiment  # noqa: E402


def plan(n: int, root: str) -> float:
    start = time.perf_counter()
    with experiment(root, "plan", run_mode=RunMode.GENERATE_ONLY):
        for i in range(n):
            Trivial.C(index=i, lr=i / n, label=f"job{i}", inner=Inner.C(size=i % 10, name="x")).submit()
    return time.perf_counter() - start


def run_jobs(m: int, root: str, offset: int) -> float:
    start = time.perf_counter()
    with experiment(root, "run", max_jobs=2):
        for i in range(m):
            Trivial.C(index=offset + i, lr=0.1, label="run", inner=Inner.C(size=1, name="y")).submit()
    return time.perf_counter() - start


def floor(m: int) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda _: subprocess.run([sys.executable, "-c", "pass"], check=True), range(m)))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--plan", type=int, default=10_000)
    parser.add_argument("--run", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    devnull = open(os.devnull, "w")
    plans, runs, floors = [], [], []
    for r in range(args.repeat):
        with tempfile.TemporaryDirectory() as root:
            stdout, sys.stdout = sys.stdout, devnull
            try:
                plans.append(plan(args.plan, root))
            finally:
                sys.stdout = stdout
        with tempfile.TemporaryDirectory() as root:
            floors.append(floor(args.run))
            stderr, sys.stderr = sys.stderr, devnull
            try:
                runs.append(run_jobs(args.run, root, r * args.run))
            finally:
                sys.stderr = stderr
    p, j, f = statistics.median(plans), statistics.median(runs), statistics.median(floors)
    print(f"plan {args.plan} jobs (GENERATE_ONLY): {p:.2f} s ({args.plan / p:,.0f} jobs/s)")
    print(f"run {args.run} trivial jobs, 2 at a time: {j:.2f} s ({j / args.run * 1000:.0f} ms/job)")
    print(f"floor: {args.run} `python -c pass`, 2 at a time: {f:.2f} s ({f / args.run * 1000:.0f} ms/process)")
    print(f"ratio run/floor: {j / f:.2f}")


if __name__ == "__main__":
    main()
