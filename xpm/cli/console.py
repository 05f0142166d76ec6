"""The console monitor from the command line: ``experiments monitor --console`` and ``run-experiment --console``."""

from __future__ import annotations

import contextlib
import io
import sys
import threading
import time
from typing import Any, Callable

from xpm.errors import XpmError


def monitor(workspace: Any, experiment: str | None = None) -> None:
    """Opens the console monitor on a workspace until the user presses q."""
    from xpm.monitor.app import run

    run(workspace, experiment=experiment)


def run_with_monitor(body: Callable[[], None], location: str, experiment_id: str) -> None:
    """Runs an experiment (``body``) while the console monitor shows it in this terminal.

    The experiment runs in a thread; the monitor owns the terminal, so what the
    experiment prints meanwhile is kept and printed once the monitor is left.
    The experiment goes on after ``q`` (its progress shows as usual) until its
    jobs end, as without the monitor.
    """
    from xpm.monitor.app import NoTerminal

    # Before anything runs: an experiment must not start and then lose its terminal.
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise NoTerminal()
    failure: list[BaseException] = []

    def guarded() -> None:
        try:
            body()
        except BaseException as exc:  # noqa: BLE001 - given back to the main thread
            failure.append(exc)

    printed = io.StringIO()
    thread = threading.Thread(target=guarded, name="xpm-experiment", daemon=True)
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        thread.start()
        _wait_for_workspace(location, thread)
        if not failure:
            _run_monitor(location, experiment_id)
    _replay(printed.getvalue(), experiment_id)
    try:
        while thread.is_alive():
            thread.join(0.2)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    if failure:
        raise failure[0]


def _run_monitor(location: str, experiment_id: str) -> None:
    from xpm.monitor.app import run
    from xpm.workspace import Workspace

    screen: Any = None
    if sys.__stdout__ is not None and sys.__stdout__.isatty():
        import urwid

        # The real terminal: sys.stdout is redirected while the monitor runs.
        screen = urwid.display.raw.Screen(input=sys.__stdin__, output=sys.__stdout__)
    run(Workspace.open(location), experiment=experiment_id, screen=screen)


def _wait_for_workspace(location: str, thread: threading.Thread) -> None:
    """Waits until the experiment created its workspace (or ended)."""
    from xpm.workspace import Workspace

    while thread.is_alive():
        try:
            Workspace.open(location)
            return
        except XpmError:
            time.sleep(0.05)


def _replay(text: str, experiment_id: str) -> None:
    """Prints what the experiment printed while the monitor ran, its progress lines but the last."""
    progress = f"xpm: {experiment_id}: "
    lines = text.splitlines()
    last = max((i for i, line in enumerate(lines) if line.startswith(progress)), default=-1)
    for i, line in enumerate(lines):
        if not line.startswith(progress) or i == last:
            sys.stderr.write(line + "\n")
