"""Benchmark: reading the state and tags of N jobs from the derived index (warm cache).

Writes N index entries (as a rebuilt index holds them) into a temporary local
workspace, then times a full fold of the index, side by side with reading one
state record per job (what a listing without the index would do, on 2% of N).
Run: ``python scripts/bench/index.py [--jobs 100000]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from xpm import codec, layout  # noqa: E402
from xpm.schema import RECORD_VERSION, JobStateRecord  # noqa: E402
from xpm.store.index import IndexedJob, JobIndex  # noqa: E402
from xpm.store.jobs import JobStore  # noqa: E402
from xpm.workspace import Workspace  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        ws = Workspace.open(root, create=True)
        jobs = [
            IndexedJob(f"bench.task{i % 7}", f"{i:064x}", "done", None, {"lr": i % 10 / 10, "model": "bm25"}, 1.0)
            for i in range(args.jobs)
        ]
        JobIndex(ws).rewrite(jobs)
        sample = jobs[: max(1, args.jobs // 50)]
        for job in sample:
            record = JobStateRecord(version=RECORD_VERSION, task_id=job.task_id, identifier=job.identifier, state="done")
            ws.write_atomic(layout.job_state(job.task_id, job.identifier), codec.encode(record))
        JobIndex(ws).load()  # warm the page cache
        index_times, file_times = [], []
        for _ in range(args.repeat):
            start = time.perf_counter()
            snapshot = JobIndex(ws).load()
            index_times.append(time.perf_counter() - start)
            assert len(snapshot.jobs) == args.jobs
            store = JobStore(ws)
            start = time.perf_counter()
            for job in sample:
                store.state(job.task_id, job.identifier)
            file_times.append((time.perf_counter() - start) * args.jobs / len(sample))
        size = ws.size(layout.JOB_INDEX) or 0
        i, f = statistics.median(index_times), statistics.median(file_times)
        print(f"{args.jobs:,} jobs, index {size / 1e6:.1f} MB: fold {i:.3f} s; one state file per job "
              f"(extrapolated from {len(sample):,}) {f:.3f} s; ratio index/files {i / f:.2f}")


if __name__ == "__main__":
    main()
