"""Benchmark: the web monitor on workspaces of 1,000, 10,000 and 100,000 indexed jobs (warm cache).

The workspaces are those of ``scripts/bench/monitor.py`` (an index of N jobs and one
experiment whose run submitted all of them). For each size, as medians:

- first page: from starting ``experiments monitor --port 0`` (a new process: Python,
  aiohttp, the first refresh) to the answers a page needs first (the page, the
  experiments, the first 50 jobs of the experiment);
- page of jobs: one ``/api/jobs`` request for 50 rows, the server already warm;
- push, no change: the server's refresh when nothing changed (the cost paid every second,
  50 rows on the page followed);
- push, one change: one job changes state; the refresh, then what the page of the
  experiment's jobs fetches again (its 50 rows);
- experiments after a change: what the page of the experiments fetches after a change (the
  model counts the jobs of each run by state again);
- full read: a new model's first refresh (what re-reading everything would cost each
  second), and its ratio to a push with no change;
- server memory: the resident size of the server process after the first page.

Run: ``python scripts/bench/web_monitor.py [--jobs 1000 10000 100000] [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from monitor import build  # noqa: E402 - the console monitor benchmark's workspaces

from xpm.monitor.model import MonitorModel  # noqa: E402
from xpm.schema import IndexEntry  # noqa: E402
from xpm.store.index import JobIndex  # noqa: E402
from xpm.web.push import Hub  # noqa: E402
from xpm.workspace import Workspace  # noqa: E402

PAGE = "/api/jobs?experiment=bench&limit=50"


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def get(conn: http.client.HTTPConnection, path: str, token: str) -> bytes:
    conn.request("GET", path, headers={"X-Xpm-Token": token})
    response = conn.getresponse()
    body = response.read()
    assert response.status == 200, (path, response.status, body[:200])
    return body


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def first_page(root: str) -> tuple[float, float, int]:
    """Seconds to the first page from the command's start, one warm page of jobs, server RSS (KiB)."""
    start = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "xpm", "experiments", "monitor", "--workdir", root, "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )
    try:
        line = server.stdout.readline()  # type: ignore[union-attr]
        url = line.split("open ", 1)[1].strip()
        port = int(url.split(":")[2].split("/")[0])
        token = url.split("token=")[1]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        get(conn, "/", token)
        get(conn, "/api/experiments", token)
        get(conn, PAGE, token)
        first = time.perf_counter() - start
        warm = statistics.median(timed(lambda: get(conn, PAGE, token)) for _ in range(10))
        memory = rss_kib(server.pid)
        conn.close()
        return first, warm, memory
    finally:
        server.terminate()
        server.wait(timeout=30)


def pushes(ws: Workspace, repeat: int) -> tuple[float, float, float, float]:
    """Medians: a refresh with no change, a change and the page's fetch, the experiments after it, a full read."""
    from xpm.web import views

    hub = Hub(MonitorModel(ws))
    hub.refresh()
    views.jobs(hub, {"experiment": "bench", "limit": "50"})
    hub.refresh()
    quiet = [timed(hub.refresh) for _ in range(20 * repeat)]
    change, counts = [], []
    for i in range(5 * repeat):
        key = (f"bench.task{i % 7}", f"{i:064x}")
        JobIndex(ws).append(IndexEntry(ts=9e9 + i, task_id=key[0], identifier=key[1], state="running"))

        def push() -> None:
            assert hub.refresh()
            views.jobs(hub, {"experiment": "bench", "limit": "50"})

        change.append(timed(push))
        counts.append(timed(lambda: views.experiments(hub)))
    full = [timed(lambda: MonitorModel(ws).refresh()) for _ in range(repeat)]
    hub._executor.shutdown()
    return statistics.median(quiet), statistics.median(change), statistics.median(counts), statistics.median(full)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{'jobs':>8} {'first page':>11} {'jobs page':>10} {'push, none':>11} {'push, one':>10} "
          f"{'experiments':>12} {'full read':>10} {'full/none':>10} {'server RSS':>11}")
    for n in args.jobs:
        with tempfile.TemporaryDirectory() as root:
            ws = build(root, n)
            MonitorModel(ws).refresh()  # warm the page cache (and write the index snapshot)
            firsts, warms, memories = [], [], []
            for _ in range(max(1, args.repeat // 2)):
                first, warm, memory = first_page(root)
                firsts.append(first)
                warms.append(warm)
                memories.append(memory)
            quiet, change, counts, full = pushes(ws, args.repeat)
            print(f"{n:>8,} {statistics.median(firsts) * 1e3:>8.0f} ms {statistics.median(warms) * 1e3:>7.1f} ms "
                  f"{quiet * 1e6:>8.0f} µs {change * 1e3:>7.2f} ms {counts * 1e3:>9.1f} ms "
                  f"{full * 1e3:>7.1f} ms {full / quiet:>9,.0f}x "
                  f"{max(memories) / 1024:>8.0f} MiB")


if __name__ == "__main__":
    main()
