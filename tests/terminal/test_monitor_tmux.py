"""The console monitor in a real terminal (tmux): what a person sees while an experiment runs.

CI installs tmux and sets XPM_REQUIRE_TMUX=1 (a missing tmux fails there); elsewhere the test skips
without tmux.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Callable

import pytest

from tests.run.conftest import own_settings, script_env, start_script, ws  # noqa: F401 - fixtures


@pytest.fixture
def tmux(tmp_path: Path):
    """A tmux session of 120x40 running a command; yields (start, screen, keys)."""
    if shutil.which("tmux") is None:
        if os.environ.get("XPM_REQUIRE_TMUX") == "1":
            pytest.fail("XPM_REQUIRE_TMUX=1 but tmux is not installed")
        pytest.skip("tmux is not installed")
    name = f"xpm-{uuid.uuid4().hex[:8]}"
    socket = str(tmp_path / "tmux.sock")

    def run(*args: str) -> str:
        return subprocess.run(["tmux", "-S", socket, *args], capture_output=True, text=True, check=True).stdout

    def start(command: list[str], env: dict[str, str]) -> None:
        passed = ("PYTHONPATH", "XPM_CONFIG_DIR", "NO_COLOR")
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items() if k in passed)
        shell = f"env {exports} TERM=xterm-256color {shlex.join(command)}; echo MONITOR-EXITED $?; sleep 60"
        run("new-session", "-d", "-s", name, "-x", "120", "-y", "40", shell)

    def screen(escapes: bool = False) -> str:
        return run("capture-pane", "-p", *(["-e"] if escapes else []), "-t", name)

    def keys(*sequence: str) -> None:
        for key in sequence:
            run("send-keys", "-t", name, key)
            time.sleep(0.15)

    yield start, screen, keys
    subprocess.run(["tmux", "-S", socket, "kill-server"], capture_output=True)


def wait_screen(screen: Callable[[], str], condition: Callable[[str], bool], what: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    shown = screen()
    while not condition(shown):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; the screen shows:\n{shown}")
        time.sleep(0.2)
        shown = screen()
    return shown


def line_with(text: str, shown: str) -> str:
    return next((line for line in shown.splitlines() if text in line), "")


def test_follow_an_experiment_in_the_console_monitor(ws: Path, tmp_path: Path, start_script, tmux) -> None:
    start, screen, keys = tmux
    go, never = tmp_path / "go", tmp_path / "never"
    log = tmp_path / "log"
    experiment = start_script(f"""
        from xpm import experiment, tag
        from tests.run.tasks import Record

        with experiment({str(ws)!r}, "watched") as xp:
            Record.C(key=tag("quick"), log={str(log)!r}).submit()
            Record.C(key=tag("slow"), log={str(log)!r}, wait_for={str(go)!r}).submit()
            Record.C(key=tag("doomed"), log={str(log)!r}, wait_for={str(never)!r}).submit()
    """)
    while not (ws / "index").exists():
        time.sleep(0.05)
    start([sys.executable, "-m", "xpm", "experiments", "monitor", "--workdir", str(ws), "--console"], script_env())

    # The experiments view names the experiment; Enter opens its jobs.
    wait_screen(screen, lambda s: "watched" in s, "the experiment in the list")
    keys("Enter")
    shown = wait_screen(screen, lambda s: "RUNNING" in line_with("key=slow", s), "the slow job running")
    assert "DONE" in line_with("key=quick", shown) or "RUNNING" in line_with("key=quick", shown)

    # A job's state changes from RUNNING to DONE while the monitor is open.
    go.write_text("go")
    wait_screen(screen, lambda s: "DONE" in line_with("key=slow", s), "the slow job done")

    # The job detail shows its log (stdout after 'o').
    keys("/")
    keys(*"key = slow", "Enter")
    wait_screen(screen, lambda s: "key=doomed" not in s and "key=slow" in s, "the filtered list")
    keys("Enter")
    keys("o")
    wait_screen(screen, lambda s: "record slow" in s, "the job's output in its detail")
    keys("Escape")

    # A bad filter shows its error in place.
    keys("/")
    keys(*"key = ", "Enter")
    wait_screen(screen, lambda s: "expected a value" in s, "the filter's error")
    keys("Escape")

    # Kill the doomed job, with a confirmation that names it.
    kill_doomed_and_quit(screen, keys, experiment, lambda s: "RUNNING" in line_with("key=doomed", s))


def kill_doomed_and_quit(screen: Callable[[], str], keys: Callable[..., None], experiment: subprocess.Popen[str],
                         alone: Callable[[str], bool]) -> None:
    """Filters the jobs to ``key = doomed`` (``alone`` says the screen shows it so), kills it with K and y,
    sees it in error; then q leaves the terminal clean and the experiment fails with the killed job."""
    keys("/")
    keys("C-u")
    keys(*"key = doomed", "Enter")
    wait_screen(screen, alone, "the doomed job alone")
    keys("K")
    wait_screen(screen, lambda s: "test.record/" in s and ("Kill" in s or "kill" in s), "the kill confirmation")
    keys("y")
    wait_screen(screen, lambda s: "ERROR" in line_with("key=doomed", s), "the killed job in error", timeout=40)

    # q leaves the terminal clean: the shell's next line, no traceback.
    keys("q")
    shown = wait_screen(screen, lambda s: "MONITOR-EXITED" in s, "the monitor to quit")
    assert "MONITOR-EXITED 0" in shown and "Traceback" not in shown
    experiment.communicate(timeout=60)
    assert experiment.returncode == 1  # the killed job failed the experiment


def test_without_colours_the_cursor_row_still_stands_out(ws: Path, tmp_path: Path, start_script, tmux) -> None:
    """NO_COLOR: no colour at all, but the cursor row and the header are in reverse video."""
    start, screen, keys = tmux
    done = start_script(f"""
        from xpm import experiment, tag
        from tests.run.tasks import Record

        with experiment({str(ws)!r}, "plain") as xp:
            Record.C(key=tag("one"), log={str(tmp_path / "log")!r}).submit()
    """)
    assert done.wait(timeout=60) == 0
    start(
        [sys.executable, "-m", "xpm", "experiments", "monitor", "--workdir", str(ws), "--console"],
        {**script_env(), "NO_COLOR": "1"},
    )
    wait_screen(screen, lambda s: "plain" in s, "the experiment in the list")
    shown = screen(escapes=True)
    row = line_with("plain", shown)
    assert "\x1b[7m" in row, row  # the cursor row: reverse video
    # No colour anywhere (30-38, 40-48, 90-107; 39 and 49 are the defaults).
    codes = re.findall(r"\x1b\[([0-9;]*)m", shown)
    numbers = [int(p) for c in codes for p in c.split(";") if p.isdigit()]
    coloured = [n for n in numbers if n not in (39, 49) and (30 <= n <= 49 or 90 <= n <= 107)]
    assert coloured == [], coloured


def test_run_experiment_with_the_console_monitor(tmp_path: Path, tmux) -> None:
    """run-experiment --console: the experiment runs while the monitor shows it; q gives the shell back."""
    start, screen, keys = tmux
    go = tmp_path / "go"
    (tmp_path / "xp.py").write_text(f"""
from xpm import tag
from xpm.experiments import ExperimentHelper, ConfigurationBase, configuration
from tests.run.tasks import Record

@configuration
class Configuration(ConfigurationBase):
    pass

def run(helper: ExperimentHelper, cfg: Configuration):
    Record.C(key=tag("console"), log={str(tmp_path / 'log')!r}, wait_for={str(go)!r}).submit()
""")
    (tmp_path / "xp.yaml").write_text("id: viaconsole\nfile: xp.py\n")
    ws = tmp_path / "ws"
    start([sys.executable, "-m", "xpm", "run-experiment", "--workdir", str(ws), "--console",
           str(tmp_path / "xp.yaml")], script_env())
    # The monitor opens on the experiment's own jobs (no Enter: that would open the job's detail).
    wait_screen(screen, lambda s: "viaconsole" in s, "the experiment in the monitor")
    wait_screen(screen, lambda s: "RUNNING" in line_with("key=console", s), "its job running")
    go.write_text("go")
    wait_screen(screen, lambda s: "DONE" in line_with("key=console", s), "its job done")
    keys("q")
    shown = wait_screen(screen, lambda s: "MONITOR-EXITED" in s, "run-experiment to end")
    assert "MONITOR-EXITED 0" in shown and "Traceback" not in shown


def test_open_an_older_run_in_the_console_monitor(tmp_path: Path, tmux) -> None:
    """h lists the runs of the experiment (newest first, with counts and tags); Enter opens the older one's jobs."""
    from tests.monitor.runs import run_twice

    start, screen, keys = tmux
    twice = run_twice(tmp_path / "twice")
    start([sys.executable, "-m", "xpm", "experiments", "monitor", "--workdir", str(twice.ws), "--console"],
          script_env())
    wait_screen(screen, lambda s: "twice" in s, "the experiment in the list")
    keys("Enter")
    wait_screen(screen, lambda s: "key=new" in s and f"(run {twice.runs[1]})" in s, "the current run's jobs")

    keys("h")
    shown = wait_screen(screen, lambda s: "Runs of twice" in s and f"{twice.runs[0]} " in s, "the runs")
    # (the ids may differ by a suffix only: 20261204_101500 and 20261204_101500.1)
    new, old = line_with(f"{twice.runs[1]} ", shown), line_with(f"{twice.runs[0]} ", shown)
    assert "(current)" in new and "1/1 done" in new
    assert "(current)" not in old and "2/3 done  1 error" in old and "baseline" in old
    assert shown.index(new) < shown.index(old)  # newest first

    keys("j", "Enter")
    shown = wait_screen(screen, lambda s: "key=old-a" in s, "the older run's jobs")
    assert f"run {twice.runs[0]} (not the current run)" in shown
    assert "key=new" not in shown and "ERROR" in line_with("key=old-bad", shown)
    assert [line for line in shown.splitlines() if line.rstrip().endswith("key=old-b")][0].startswith("DONE")

    # Esc goes back to the experiments; Enter opens the current run again.
    keys("Escape")
    wait_screen(screen, lambda s: "All jobs" in s, "the experiments")
    keys("Enter")
    wait_screen(screen, lambda s: "key=new" in s and "key=old-a" not in s, "the current run's jobs again")
    keys("q")
    shown = wait_screen(screen, lambda s: "MONITOR-EXITED" in s, "the monitor to quit")
    assert "MONITOR-EXITED 0" in shown and "Traceback" not in shown
