"""Benchmark: ``experiments ssh-monitor`` on a workspace of 10,000 jobs over ssh to 127.0.0.1, in both modes.

The workspace (built as scripts/bench/monitor.py builds it: an index of N jobs, one experiment that
submitted them all, a sixth of them running) is a folder of this machine reached through the test sshd
(scripts/ci/start-sshd.sh; the variables XPM_TEST_SSH_HOST/PORT/USER/KEY say where it is).

- agentless: the workspace opened over SFTP (``ssh://``) and the local monitor's model on it; every call
  to the SFTP filesystem is counted (each is one SFTP request, a listing a few);
- server mode: ``experiments monitor-server`` run on the host through ssh (``--remote-python``, this
  Python) and :class:`RemoteModel`; every request is counted (one round trip each).

Figures, as medians: first screen (connecting, the first refresh and drawing the experiments screen),
open jobs (the experiment's jobs drawn), and one refresh with no change on the jobs screen, with the
round trips each costs.

Run: ``python scripts/bench/ssh_monitor.py [--jobs 10000] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from monitor import build  # noqa: E402
from urwid.testing import render_text  # noqa: E402

from xpm.cli.sshmonitor import open_target, remote_command, resolve_target, start_server  # noqa: E402
from xpm.monitor.model import MonitorModel  # noqa: E402
from xpm.monitor.view import MonitorView  # noqa: E402

SIZE = (120, 40)


class CountedFS:
    """The SFTP filesystem of a workspace, counting its calls (one SFTP request each, a listing a few)."""

    def __init__(self, fs: Any):
        self._fs = fs
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._fs, name)
        if name.startswith("_") or not callable(value):
            return value

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return value(*args, **kwargs)

        return counted


def ssh_target(root: str) -> Any:
    host = os.environ.get("XPM_TEST_SSH_HOST", "127.0.0.1")
    port = os.environ.get("XPM_TEST_SSH_PORT", "2222")
    user = os.environ.get("XPM_TEST_SSH_USER", "root")
    key = os.environ.get("XPM_TEST_SSH_KEY", "/tmp/xpm-sshd/client_key")
    return resolve_target(f"{user}@{host}", root, [f"-p {port}", f"-i {key}", "-o StrictHostKeyChecking=no"])


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def session(open_model: Callable[[], tuple[Any, Callable[[], int], Callable[[], None]]]) -> dict[str, float]:
    """One monitor session: first screen, open jobs, quiet refreshes (times and round trips)."""
    start = time.perf_counter()
    model, trips, close = open_model()
    model.refresh()
    view = MonitorView(model)
    render_text(view, SIZE, focus=True)
    first = time.perf_counter() - start
    first_trips = trips()
    try:
        before = trips()
        opened, _ = timed(lambda: (view.open_experiment("bench"), render_text(view, SIZE, focus=True)))
        open_trips = trips() - before
        # The rows drawn have their events read once; then a refresh finds nothing new.
        for _ in range(3):
            model.refresh()
            view.update()
            render_text(view, SIZE, focus=True)
        quiet, quiet_trips = [], []
        for _ in range(5):
            before = trips()
            elapsed, changed = timed(model.refresh)
            view.update()
            render_text(view, SIZE, focus=True)
            quiet.append(elapsed)
            quiet_trips.append(trips() - before)
        assert not changed
    finally:
        close()
    return {"first": first, "first trips": first_trips, "open": opened, "open trips": open_trips,
            "quiet": statistics.median(quiet), "quiet trips": statistics.median(quiet_trips)}


def agentless(root: str) -> tuple[Any, Callable[[], int], Callable[[], None]]:
    import fsspec

    # A new connection each session, as a new ssh-monitor makes (fsspec would reuse the last one).
    fsspec.get_filesystem_class("ssh").clear_instance_cache()
    ws = open_target(ssh_target(root))
    counted = ws.fs = CountedFS(ws.fs)
    return MonitorModel(ws), lambda: counted.calls, lambda: None


def server_mode(root: str) -> tuple[Any, Callable[[], int], Callable[[], None]]:
    model = start_server(ssh_target(root), remote_command(root, remote_python=sys.executable), 60, None)
    return model, lambda: model.connection.requests, model.close


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, nargs="+", default=[10_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{'jobs':>7} {'mode':<10} {'first screen':>18} {'open jobs':>16} {'refresh, no change':>22}")
    for n in args.jobs:
        with tempfile.TemporaryDirectory(prefix="xpm-bench-ssh-") as root:
            build(root, n)
            for name, opener in (("agentless", agentless), ("server", server_mode)):
                runs = [session(lambda: opener(root)) for _ in range(args.repeat)]

                def med(field: str, runs: list[dict[str, float]] = runs) -> float:
                    return statistics.median(r[field] for r in runs)

                unit = "SFTP calls" if name == "agentless" else "requests"
                print(f"{n:>7,} {name:<10} {med('first') * 1e3:>7.0f} ms {med('first trips'):>4.0f} rt "
                      f"{med('open') * 1e3:>7.0f} ms {med('open trips'):>3.0f} rt "
                      f"{med('quiet') * 1e3:>9.1f} ms {med('quiet trips'):>4.0f} rt  ({unit})")


if __name__ == "__main__":
    main()
