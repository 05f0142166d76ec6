"""Fault injection: the experiment process is killed (SIGKILL) at random points, again and again.

A run of 40 jobs with dependencies is started, killed at a random moment, and started again, 20
times (a fixed seed), then left to finish. Jobs already launched go on while their experiment is
dead; each new run follows them. At the end every job ran exactly once and is done, and
`workspace check` finds nothing wrong.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from tests.run.conftest import script_env
from tests.run.tasks import log_lines

SCRIPT = """
import sys
from xpm import experiment, tag
from tests.run.tasks import Record

with experiment(sys.argv[1], "faults") as xp:
    jobs = []
    for i in range(40):
        task = Record.C(key=tag(f"job{i:02d}"), log=sys.argv[2], sleep=0.05 * (i % 3))
        # Chains of four, each chain also waiting for the one five jobs back: a lattice.
        for back in (1, 5):
            if i - back >= 0 and (back == 5 or i % 4):
                task.add_dependencies(jobs[i - back].job)
        jobs.append(task.submit())
"""


def xpm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "xpm", *args], capture_output=True, text=True, timeout=120,
                          env=script_env())


def test_sigkill_at_random_points_then_every_job_ran_exactly_once(tmp_path: Path):
    ws, log = tmp_path / "ws", tmp_path / "log"
    script = tmp_path / "faults.py"
    script.write_text(SCRIPT)
    rng = random.Random(20261204)
    for _ in range(20):
        experiment = subprocess.Popen([sys.executable, str(script), str(ws), str(log)], env=script_env(),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, 1.2))
        os.kill(experiment.pid, signal.SIGKILL)
        experiment.wait()
    final = subprocess.run([sys.executable, str(script), str(ws), str(log)], env=script_env(),
                           capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr
    starts = Counter(line[0] for line in log_lines(log) if line[1] == "start")
    ends = Counter(line[0] for line in log_lines(log) if line[1] == "end")
    expected = {f"job{i:02d}": 1 for i in range(40)}
    assert dict(starts) == expected, "a job ran twice (or never)"
    assert dict(ends) == expected
    listed = json.loads(xpm("jobs", "list", "--workdir", str(ws), "--json").stdout)
    assert len(listed) == 40 and {job["state"] for job in listed} == {"DONE"}
    check = xpm("workspace", "check", "--workdir", str(ws))
    assert check.returncode == 0, check.stdout + check.stderr


SHARED = """
import sys
from xpm import experiment, tag
from tests.run.tasks import Record

first = int(sys.argv[3])
with experiment(sys.argv[1], f"shared{first}") as xp:
    previous = None
    for i in range(first, first + 20):
        task = Record.C(key=tag(f"job{i:02d}"), log=sys.argv[2], sleep=0.05)
        if previous is not None and i % 3:
            task.add_dependencies(previous.job)
        previous = task.submit()
"""


def test_four_experiments_at_once_share_their_jobs(tmp_path: Path):
    """Four experiments, started together, submit overlapping jobs: each job runs once, and every
    experiment sees all of its jobs done."""
    ws, log = tmp_path / "ws", tmp_path / "log"
    script = tmp_path / "shared.py"
    script.write_text(SHARED)
    experiments = [
        subprocess.Popen([sys.executable, str(script), str(ws), str(log), str(first)], env=script_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for first in (0, 5, 10, 15)
    ]
    for experiment in experiments:
        _, err = experiment.communicate(timeout=600)
        assert experiment.returncode == 0, err
    starts = Counter(line[0] for line in log_lines(log) if line[1] == "start")
    assert dict(starts) == {f"job{i:02d}": 1 for i in range(35)}


def server_of(pid: int) -> int | None:
    """The fork server the experiment process ``pid`` started (a child running xpm.runner.forkserver)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = next((line.split()[1] for line in status.splitlines() if line.startswith("PPid:")), "")
        if parent == str(pid) and b"xpm.runner.forkserver" in cmdline:
            return int(entry.name)
    return None


def test_sigkill_of_the_fork_server_loses_no_job(tmp_path: Path):
    """The fork server dies while its jobs run: they go on, their ends are still seen, the next jobs
    start (through a new server, or Popen), and each job runs once."""
    ws, log = tmp_path / "ws", tmp_path / "log"
    script = tmp_path / "faults.py"
    script.write_text(SCRIPT)
    experiment = subprocess.Popen([sys.executable, str(script), str(ws), str(log)], env=script_env(),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = 0
    deadline = time.monotonic() + 60
    while killed < 3 and time.monotonic() < deadline and experiment.poll() is None:
        server = server_of(experiment.pid)
        if server is not None and len(log_lines(log)) > 10 * killed:
            os.kill(server, signal.SIGKILL)
            killed += 1
        time.sleep(0.05)
    _, err = experiment.communicate(timeout=600)
    assert killed >= 1, "no fork server was seen"
    assert experiment.returncode == 0, err
    starts = Counter(line[0] for line in log_lines(log) if line[1] == "start")
    assert dict(starts) == {f"job{i:02d}": 1 for i in range(40)}
