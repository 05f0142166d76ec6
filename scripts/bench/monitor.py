"""Benchmark: the console monitor on workspaces of 1,000, 10,000 and 100,000 indexed jobs (warm cache).

For each size, a temporary local workspace holds an index of N jobs (rebuilt as
``experiments sync`` writes it, with its snapshot) and one experiment whose run
submitted all of them. Times, as medians:

- first screen: building the model, its first refresh, and rendering the first
  page of the experiments screen (what ``run()`` shows first);
- open jobs: selecting the experiment and rendering the first page of its jobs;
- refresh, no change: one refresh when nothing changed (the cost paid every second);
- refresh, one change: one job changes state (one line appended to the index);
- full read: a new model's first refresh (what a monitor that read everything
  again would pay at each refresh), and its ratio to a no-change refresh.

Run: ``python scripts/bench/monitor.py [--jobs 1000 10000 100000] [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from urwid.testing import render_text  # noqa: E402

from xpm import codec, layout  # noqa: E402
from xpm.monitor.model import MonitorModel  # noqa: E402
from xpm.monitor.view import MonitorView  # noqa: E402
from xpm.schema import RECORD_VERSION, IndexEntry, JobSubmitted, RunRecord  # noqa: E402
from xpm.store.index import IndexedJob, JobIndex  # noqa: E402
from xpm.workspace import Workspace  # noqa: E402

SIZE = (120, 40)
STATES = ("done", "done", "done", "running", "error", "waiting")


def build(root: str, n: int) -> Workspace:
    ws = Workspace.open(root, create=True)
    jobs = [
        IndexedJob(f"bench.task{i % 7}", f"{i:064x}", STATES[i % len(STATES)], None,
                   {"lr": i % 10 / 10, "model": "bm25"}, 1_000.0 + i)
        for i in range(n)
    ]
    JobIndex(ws).rewrite(jobs)
    run = ("bench", "20250101_000000")
    record = RunRecord(version=RECORD_VERSION, experiment_id=run[0], run_id=run[1], hostname="node1", pid=1,
                       started_at=1_000.0, status="running")
    ws.write_atomic(layout.run_record(*run), codec.encode(record))
    ws.append(layout.run_jobs(*run), b"".join(
        codec.encode_line(JobSubmitted(ts=1_000.0 + i, task_id=j.task_id, identifier=j.identifier, tags=j.tags))
        for i, j in enumerate(jobs)
    ))
    return ws


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def measure(ws: Workspace, repeat: int) -> dict[str, float]:
    first, opened, quiet, change, full = [], [], [], [], []
    for r in range(repeat):
        holder: dict[str, object] = {}

        def first_screen() -> None:
            model = MonitorModel(ws)
            model.refresh()
            view = MonitorView(model)
            render_text(view, SIZE, focus=True)
            holder["model"], holder["view"] = model, view

        first.append(timed(first_screen))
        model, view = holder["model"], holder["view"]
        assert isinstance(model, MonitorModel) and isinstance(view, MonitorView)

        def open_jobs() -> None:
            view.open_experiment("bench")
            render_text(view, SIZE, focus=True)

        opened.append(timed(open_jobs))
        model.refresh()  # reads the events of the rows drawn (none exist here)
        quiet.extend(timed(model.refresh) for _ in range(20))
        for i in range(5):
            key = (f"bench.task{i % 7}", f"{i:064x}")
            JobIndex(ws).append(IndexEntry(ts=9e9 + r * 10 + i, task_id=key[0], identifier=key[1], state="running"))
            change.append(timed(model.refresh))
        full.append(timed(lambda: MonitorModel(ws).refresh()))
    return {
        "first screen": statistics.median(first),
        "open jobs": statistics.median(opened),
        "refresh, no change": statistics.median(quiet),
        "refresh, one change": statistics.median(change),
        "full read": statistics.median(full),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{'jobs':>8} {'first screen':>13} {'open jobs':>10} {'no-change':>10} {'one change':>11} "
          f"{'full read':>10} {'full/no-change':>15}")
    for n in args.jobs:
        with tempfile.TemporaryDirectory() as root:
            ws = build(root, n)
            MonitorModel(ws).refresh()  # warm the page cache
            t = measure(ws, args.repeat)
            ratio = t["full read"] / t["refresh, no change"]
            print(f"{n:>8,} {t['first screen'] * 1e3:>10.1f} ms {t['open jobs'] * 1e3:>7.1f} ms "
                  f"{t['refresh, no change'] * 1e6:>7.0f} µs {t['refresh, one change'] * 1e3:>8.2f} ms "
                  f"{t['full read'] * 1e3:>7.1f} ms {ratio:>14,.0f}x")


if __name__ == "__main__":
    main()
