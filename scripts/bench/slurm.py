"""Benchmark: how many Slurm commands xpm issues while jobs run on a real cluster.

Runs N trivial jobs through the Slurm launcher, split between P experiment
processes started together on this host, with every Slurm command logged
(``XPM_SLURM_LOG``). Prints the commands by kind and the status queries per
interval, beside experimaestro's approach at the same interval (one ``sacct``
per interval per experiment process, whatever the number of jobs): xpm's count
does not grow with the number of processes.

Also per job-hour (hours the jobs ran, from their state records): with jobs
that last (``--sleep``), the figure that matters on a cluster.

Needs a running Slurm cluster (``scripts/ci/start-slurm.sh`` as root).
Run: ``python scripts/bench/slurm.py [--jobs 200] [--processes 2] [--interval 10] [--sleep 0]``.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys
from xpm import experiment
from xpm.launchers.slurm import SlurmLauncher
sys.path.insert(0, {here!r})
from bench_tasks import Inner, Sleep, Trivial

launcher = SlurmLauncher(interval={interval})
with experiment({ws!r}, "slurm{index}", launcher=launcher):
    for i in range({first}, {last}):
        if {sleep}:
            Sleep.C(index=i, seconds={sleep}).submit()
        else:
            Trivial.C(index=i, lr=0.1, label="slurm", inner=Inner.C(size=1, name="s")).submit()
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--sleep", type=float, default=0.0, help="seconds each job sleeps (0: a trivial job)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        log = Path(root) / "commands.log"
        env = dict(os.environ, XPM_SLURM_LOG=str(log), TMPDIR=root,
                   PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
        per = args.jobs // args.processes
        procs = []
        start = time.time()
        for index in range(args.processes):
            script = Path(root) / f"xp{index}.py"
            script.write_text(textwrap.dedent(SCRIPT.format(
                here=str(ROOT / "scripts" / "bench"), interval=args.interval, ws=f"{root}/ws", index=index, sleep=args.sleep,
                first=index * per, last=(index + 1) * per)))
            procs.append(subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.PIPE, text=True))
        for proc in procs:
            _, err = proc.communicate()
            if proc.returncode != 0:
                raise SystemExit(f"an experiment failed:\n{err}")
        elapsed = time.time() - start
        lines = [line.split() for line in log.read_text().splitlines()]
        kinds = collections.Counter(parts[2] for parts in lines)
        queries = kinds["squeue"] + kinds["sacct"]
        last_sbatch = max(float(p[0]) for p in lines if p[2] == "sbatch")
        steady = [p for p in lines if p[2] == "squeue" and float(p[0]) > last_sbatch + 8]
        steady_span = max(1e-9, (max(float(p[0]) for p in steady) - (last_sbatch + 8)) if steady else 0)
        print(f"{args.jobs} jobs in {args.processes} experiment processes, interval {args.interval:g} s: "
              f"{elapsed:.0f} s")
        print("commands: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
        if steady:
            print(f"steady state (after the first-query burst of the last submission): {len(steady)} squeue "
                  f"in {steady_span:.0f} s = {len(steady) / (steady_span / args.interval):.2f} per interval")
        hours = elapsed / 3600
        intervals = elapsed / args.interval
        theirs = args.processes * intervals  # one query per interval per experiment process
        print(f"status queries: xpm {queries} over {intervals:.1f} intervals ({queries / intervals:.2f} per "
              f"interval, first-query burst included); one per interval per experiment process "
              f"(experimaestro's approach) would be {theirs:.0f}")
        print(f"per hour at this interval: xpm {queries / hours:.0f}, one-per-process {theirs / hours:.0f}; "
              f"per job: xpm {queries / args.jobs:.3f}")
        job_hours = ran_hours(Path(root) / "ws")
        print(f"per job-hour ({job_hours:.3f} job-hours ran): xpm {queries / job_hours:.1f} status queries "
              f"({sum(kinds.values()) / job_hours:.1f} commands of any kind), one-per-process "
              f"{theirs / job_hours:.1f}; ratio {queries / theirs:.2f}")


def ran_hours(ws: Path) -> float:
    """The hours the jobs ran, summed (started_at to ended_at of their state records)."""
    import json

    total = 0.0
    for state in ws.glob("jobs/*/*/.xpm/state.json"):
        record = json.loads(state.read_text())
        if record.get("started_at") and record.get("ended_at"):
            total += record["ended_at"] - record["started_at"]
    return max(total, 1e-9) / 3600


if __name__ == "__main__":
    main()
