"""What running code asks of its surroundings (xpm.context), and this host's processes (xpm.process)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from xpm import context, process
from xpm.errors import XpmError


class Recorder:
    def __init__(self) -> None:
        self.submitted: list[Any] = []

    def submit(self, task: Any, **options: Any) -> Any:
        self.submitted.append(task)
        return task


def test_submit_goes_to_the_innermost_experiment():
    outer, inner = Recorder(), Recorder()
    context.push_experiment(outer)
    context.push_experiment(inner)
    try:
        assert context.current_experiment() is inner
        context.pop_experiment(inner)
        assert context.current_experiment() is outer
    finally:
        context.pop_experiment(inner)  # nothing when it is not there
        context.pop_experiment(outer)
    with pytest.raises(XpmError, match="submit\\(\\) needs a running experiment"):
        context.current_experiment()


def test_progress_outside_a_job_does_nothing_and_inside_it_skips_what_changes_nothing():
    context.enter_job(None)
    context.progress(0.5)  # no job: nothing to record, no error
    reported: list[tuple[float, int, str | None]] = []
    context.enter_job(context.JobContext(lambda value, level, desc: reported.append((value, level, desc))))
    try:
        for value in (0.1, 0.105, 0.2, 2.0):
            context.progress(value)
        context.progress(0.2, level=1, desc="inner")
    finally:
        context.enter_job(None)
    assert reported == [(0.1, 0, None), (0.2, 0, None), (1.0, 0, None), (0.2, 1, "inner")]


def test_remaining_time_asks_once_then_counts_down():
    asked: list[int] = []

    def time_left() -> float | None:
        asked.append(1)
        return 100.0

    assert context.remaining_time() is None  # no job
    context.enter_job(context.JobContext(lambda *args: None, time_left))
    try:
        first, second = context.remaining_time(), context.remaining_time()
    finally:
        context.enter_job(None)
    assert asked == [1]
    assert first is not None and second is not None and 99.0 < second <= first <= 100.0
    context.enter_job(context.JobContext(lambda *args: None, None))  # a job without a time limit
    try:
        assert context.remaining_time() is None
    finally:
        context.enter_job(None)


def test_this_process_is_known_by_pid_and_start_or_by_its_slurm_job(monkeypatch):
    monkeypatch.delenv(process.SLURM_JOB_VARIABLE, raising=False)
    me = process.this_process()
    assert me["type"] == "local" and me["pid"] == os.getpid()
    assert process.is_this_process(me, os.getpid())
    assert process.alive_here(me) is True
    assert not process.is_this_process(None, os.getpid())
    monkeypatch.setenv(process.SLURM_JOB_VARIABLE, "42_3")
    assert process.this_process() == {"type": "slurm", "jobid": "42_3"}
    assert process.is_this_process({"type": "slurm", "jobid": "42_3"}, os.getpid())
    assert process.alive_here({"type": "slurm", "jobid": "42_3"}) is None  # this host cannot tell


def test_a_dead_or_reused_pid_is_not_alive():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    ref = process.local_process(child.pid)
    child.wait()
    assert process.alive_here(ref) is False
    me = process.local_process(os.getpid())
    if "start" in me:
        # This pid with a later start time: the pid was reused, it is not that process.
        assert process.alive_here({**me, "start": me["start"] + 1}) is False
    assert process.alive_here({**ref, "host": "another-host"}) is None


def test_an_experiment_is_refused_while_a_job_loads_its_task():
    context.check_not_loading_task()  # nothing is being loaded
    with context.loading_task("/ws/jobs/t/abc"):
        with pytest.raises(context.ExperimentInJobLoad, match='if __name__ == "__main__":') as caught:
            context.check_not_loading_task()
    assert caught.value.jobdir == "/ws/jobs/t/abc"
    context.check_not_loading_task()  # the load ended
