"""Launchers that start ready jobs together (Slurm job arrays): the scheduler gathers ready jobs into
batches, each job keeps its own lock, state and logs, and a failed batch submission fails its jobs
instead of leaving the experiment waiting."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.run.tasks import Record, log_lines
from xpm import experiment
from xpm.errors import XpmError
from xpm.launchers import Launched, LaunchRequest
from xpm.launchers.local import LocalLauncher
from xpm.launchers.slurm import SlurmLauncher


class Batching(LocalLauncher):
    """Local processes, launched in batches: records the size of each batch."""

    def __init__(self, batch_size: int):
        super().__init__()
        self.batch_size = batch_size
        self.batches: list[int] = []

    def launch_many(self, requests: list[LaunchRequest]) -> list[Launched | Exception]:
        self.batches.append(len(requests))
        return super().launch_many(requests)


def test_ready_jobs_are_launched_in_batches(ws: Path, tmp_path: Path) -> None:
    log = tmp_path / "log"
    launcher = Batching(batch_size=8)
    with experiment(ws, "batches", launcher=launcher, max_jobs=20) as xp:
        tasks = [Record.C(key=f"job{i}", log=log).submit() for i in range(20)]
    # Submitted in one loop: gathered into full batches (a batch never exceeds batch_size).
    assert sum(launcher.batches) == 20 and max(launcher.batches) == 8 and len(launcher.batches) <= 4
    assert sorted(line[0] for line in log_lines(log) if line[1] == "end") == sorted(f"job{i}" for i in range(20))
    for task in tasks:
        assert task.stdout().read_text() == f"record {task.key}\n"
        assert json.loads((task.jobpath / ".xpm" / "state.json").read_text())["state"] == "done"
    assert all(job.state == "done" for job in xp.jobs.values())


def test_batches_respect_the_free_slots(ws: Path, tmp_path: Path) -> None:
    launcher = Batching(batch_size=8)
    with experiment(ws, "slots", launcher=launcher, max_jobs=3):
        for i in range(7):
            Record.C(key=f"job{i}", log=tmp_path / "log", sleep=0.2).submit()
    assert sum(launcher.batches) == 7 and max(launcher.batches) <= 3


def write_tool(path: Path, body: str) -> None:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_a_refused_submission_fails_the_jobs_and_the_experiment_ends(
    ws: Path, tmp_path: Path, monkeypatch: Any
) -> None:
    """sbatch refuses the array (a site limit): every job of it ends in error(failed), nothing hangs."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    bin = tmp_path / "bin"
    bin.mkdir()
    write_tool(bin / "sbatch", 'echo "sbatch: error: QOSMaxSubmitJobPerUserLimit" >&2\nexit 1\n')
    write_tool(bin / "squeue", "exit 0\n")
    launcher = SlurmLauncher(binpath=str(bin), interval=1)
    with pytest.raises(XpmError):
        with experiment(ws, "refused", launcher=launcher) as xp:
            for i in range(5):
                Record.C(key=f"job{i}", log=tmp_path / "log").submit()
    assert [(job.state, job.failure_reason) for job in xp.jobs.values()] == [("error", "failed")] * 5
    assert not (tmp_path / "log").exists()
