"""Operations on the file system per job, for each command: what a network file system would pay.

Each command runs under ``strace -f -c`` (the experiment, its fork server and its job processes
included) on a workspace of N1 and then N2 jobs; the calls per job are the difference divided by
N2 - N1, so that the start-up of Python (thousands of ``stat`` calls of imports) cancels out.
Counted: the calls that name a file or walk a folder (strace's ``%file`` class: ``openat``,
``newfstatat``/``statx``, ``mkdir``, ``rename``, ``unlink``...; and ``getdents64``) — on NFS or
Lustre each is a round trip to the server, 1 to 10 ms — and, apart, ``read``/``write``/``fsync``
(data, which the client caches and batches).

Run: ``python scripts/bench/fsops.py [--small 1000] [--large 3000] [--run 50 150]`` (strace
must be installed: ``apt-get install strace``). Prints a table; docs/performance.md quotes it.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
METADATA = "%file,getdents64"
DATA = "read,write,pread64,pwrite64,fsync,fdatasync"


def strace(command: list[str], cwd: Path) -> Counter[str]:
    """The system calls of ``command`` (and its children), by name."""
    with tempfile.NamedTemporaryFile(suffix=".strace") as out:
        subprocess.run(["strace", "-f", "-c", "-o", out.name, "-e", f"trace={METADATA},{DATA}", *command],
                       cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        calls: Counter[str] = Counter()
        for line in Path(out.name).read_text().splitlines():
            fields = line.split()
            # % time, seconds, usecs/call, calls, [errors], syscall
            if len(fields) >= 5 and re.fullmatch(r"[\d.]+", fields[0]) and fields[-1] != "total":
                calls[fields[-1]] += int(fields[3])
        return calls


def split(calls: Counter[str]) -> tuple[int, int]:
    """(metadata calls, data calls)."""
    data = {"read", "write", "pread64", "pwrite64", "fsync", "fdatasync"}
    metadata = sum(n for name, n in calls.items() if name not in data)
    return metadata, sum(n for name, n in calls.items() if name in data)


def workload(name: str, n: int, root: Path) -> list[str]:
    return [sys.executable, str(HERE / "compare_workload.py"), "--tool", "xpm", "--result", str(root / "r.json"),
            "--workdir", str(root / "ws"), name, str(n)]


def xpm(*args: str) -> list[str]:
    return [sys.executable, "-m", "xpm", *args]


def measure(n: int, run_jobs: int) -> dict[str, Counter[str]]:
    """The calls of each command on a workspace of ``n`` jobs (``run_jobs`` for the run)."""
    found: dict[str, Counter[str]] = {}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        ws = str(root / "ws")
        found["plan (GENERATE_ONLY)"] = strace(workload("plan", n, root), root)
        subprocess.run(workload("mark-done", n, root), check=True, cwd=root)
        found["submit again, all done"] = strace(workload("resubmit", n, root), root)
        found["jobs list"] = strace(xpm("jobs", "list", "--workdir", ws), root)
        found["experiments list (summary built)"] = strace(xpm("experiments", "list", "--workdir", ws), root)
        found["experiments list (summary read)"] = strace(xpm("experiments", "list", "--workdir", ws), root)
        found["jobs clean --perform"] = strace(xpm("jobs", "clean", "--workdir", ws, "--perform"), root)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        found["run trivial jobs, 2 at a time"] = strace(workload("run", run_jobs, root), root)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=3_000)
    parser.add_argument("--run", type=int, nargs=2, default=(50, 150), metavar=("M1", "M2"))
    parser.add_argument("--json", help="also write the counts here")
    args = parser.parse_args()
    if shutil.which("strace") is None:
        raise SystemExit("strace is not installed (apt-get install strace)")
    small, large = measure(args.small, args.run[0]), measure(args.large, args.run[1])
    print(f"| command | metadata calls per job | data calls per job | metadata at {args.large:,} jobs |")
    print("|---|---:|---:|---:|")
    rows = {}
    for what in small:
        jobs = (args.run[1] - args.run[0]) if what.startswith("run") else (args.large - args.small)
        (m1, d1), (m2, d2) = split(small[what]), split(large[what])
        rows[what] = {"metadata_per_job": (m2 - m1) / jobs, "data_per_job": (d2 - d1) / jobs, "metadata": m2,
                      "by_call": {k: (large[what][k] - small[what][k]) / jobs for k in large[what]}}
        print(f"| {what} | {(m2 - m1) / jobs:.1f} | {(d2 - d1) / jobs:.1f} | {m2:,} |")
    for what, row in rows.items():
        top = sorted(row["by_call"].items(), key=lambda kv: -kv[1])[:5]
        print(f"{what}: " + ", ".join(f"{name} {per:.1f}" for name, per in top if per >= 0.05))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
