"""Benchmark: the job commands over large workspaces, as a user runs them (one process per command).

* list: ``experimaestro jobs list`` over N indexed jobs, without and with a
  filter, and ``experiments list``; the first listing after many state changes
  folds the JSON log (and leaves a snapshot), the next ones read the snapshot;
* clean: ``jobs clean --perform`` of M finished job folders;
* floor: ``python -c pass`` and ``experimaestro --version`` (the start-up of
  Python, and of the command line).

Run: ``python scripts/bench/jobs_cli.py [--jobs 10000 100000] [--clean 1000] [--repeat 3]``.
Figures are medians of wall-clock time; ratios are measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from xpm import codec, layout  # noqa: E402
from xpm.schema import RECORD_VERSION, IndexEntry, JobSubmitted, JobStateRecord, RunRecord  # noqa: E402
from xpm.store.log import EventLog  # noqa: E402
from xpm.store.refs import RefStore  # noqa: E402
from xpm.workspace import Workspace  # noqa: E402

STATES = ("done",) * 6 + ("error", "running", "waiting", "scheduled")
MODELS = ("bm25", "splade", "colbert", "dpr")


def make_index(root: str, n: int) -> None:
    """N jobs as a busy workspace's index holds them: three entries per job, in time order."""
    ws = Workspace.open(root, create=True)
    lines = []
    for step in ("waiting", "running", None):
        for i in range(n):
            state = step or STATES[i % len(STATES)]
            tags = {"model": MODELS[i % 4], "epochs": 10 * (i % 5), "lr": (i % 7) / 1000} if step == "waiting" else {}
            lines.append(codec.encode_line(IndexEntry(
                ts=1e9 + i, task_id=f"bench.task{i % 7}", identifier=f"{i:064x}", state=state, tags=tags)))
    ws.write_atomic(layout.JOB_INDEX, b"".join(lines))
    run_id = "20250101_000000"
    ws.makedirs(layout.run_dir("bench", run_id))
    record = RunRecord(version=RECORD_VERSION, experiment_id="bench", run_id=run_id, hostname="bench", pid=1,
                       started_at=1e9)
    ws.write_atomic(layout.run_record("bench", run_id), codec.encode(record))
    EventLog(ws, layout.run_jobs("bench", run_id)).append(
        *(JobSubmitted(ts=1e9, task_id=f"bench.task{i % 7}", identifier=f"{i:064x}") for i in range(n)))
    RefStore(ws).set_if_equals(layout.current_run_ref("bench"), None, run_id)


def make_finished(root: str, m: int) -> None:
    """M finished job folders, each with its files (params, state, events, logs)."""
    ws = Workspace.open(root, create=True)
    entries = []
    for i in range(m):
        task_id, identifier = "bench.done", f"{i:064x}"
        # A params.json that records the job's identifier: clean checks it before deleting a folder.
        task = {"id": 0, "type": "bench:T", "typeid": task_id, "identifier": identifier}
        params = {"version": 1, "xpm": "bench", "objects": [task], "root": {"$": "config", "id": 0}}
        ws.write_atomic(layout.job_params(task_id, identifier), json.dumps(params).encode())
        record = JobStateRecord(version=RECORD_VERSION, task_id=task_id, identifier=identifier, state="done")
        ws.write_atomic(layout.job_state(task_id, identifier), codec.encode(record))
        ws.append(layout.job_events(task_id, identifier), b"")
        ws.write_atomic(layout.job_stderr(task_id, identifier), b"log line\n" * 100)
        entries.append(IndexEntry(ts=1e9 + i, task_id=task_id, identifier=identifier, state="done"))
    EventLog(ws, layout.JOB_INDEX).append(*entries)


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def median(command: list[str], repeat: int) -> float:
    return statistics.median(timed(command) for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--clean", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    xpm = [sys.executable, "-m", "xpm"]
    python_floor = median([sys.executable, "-c", "pass"], args.repeat)
    cli_floor = median([*xpm, "--version"], args.repeat)
    print(f"python -c pass            {python_floor * 1000:7.0f} ms")
    print(f"experimaestro --version   {cli_floor * 1000:7.0f} ms")
    flt = '@state = "DONE" and model in ["bm25", "splade"] and epochs = 20'
    for n in args.jobs:
        with tempfile.TemporaryDirectory() as root:
            make_index(root, n)
            size = Path(root, layout.JOB_INDEX).stat().st_size / 1e6
            first = timed([*xpm, "jobs", "list", "--workdir", root])
            plain = median([*xpm, "jobs", "list", "--workdir", root], args.repeat)
            filtered = median([*xpm, "jobs", "list", "--workdir", root, "--filter", flt], args.repeat)
            counted = median([*xpm, "jobs", "list", "--workdir", root, "-c", "10"], args.repeat)
            experiments = median([*xpm, "experiments", "list", "--workdir", root], args.repeat)
            print(f"{n:,} jobs ({3 * n:,} index lines, {size:.0f} MB):")
            print(f"  jobs list, first after the changes (full fold)  {first * 1000:7.0f} ms")
            print(f"  jobs list                                       {plain * 1000:7.0f} ms"
                  f"  ({plain / python_floor:.1f}x python -c pass)")
            print(f"  jobs list --filter '{flt}'")
            print(f"                                                  {filtered * 1000:7.0f} ms")
            print(f"  jobs list -c 10                                 {counted * 1000:7.0f} ms")
            print(f"  experiments list                                {experiments * 1000:7.0f} ms")
    times = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as root:
            make_finished(root, args.clean)
            times.append(timed([*xpm, "jobs", "clean", "--workdir", root, "--filter", '@state="DONE"', "--perform"]))
            assert not list(Path(root, "jobs", "bench.done").iterdir())
    clean = statistics.median(times)
    print(f"jobs clean --perform of {args.clean:,} finished jobs  {clean * 1000:7.0f} ms"
          f"  ({clean / args.clean * 1000:.2f} ms/job)")


if __name__ == "__main__":
    main()
