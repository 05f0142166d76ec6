"""Transient tasks: a job that runs only when a task that runs needs it, and whose folder may be
removed once the experiment ends well. Every job runs in its own real process."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Callable

import pytest

from tests.run.submit_tasks import Stage, lines
from xpm import FailedExperiment, experiment
from xpm.runmode import TransientMode
from xpm.state import JobState

Start = Callable[..., "subprocess.Popen[str]"]


def test_a_transient_task_that_no_task_needs_does_not_run(ws: Path, tmp_path: Path) -> None:
    log = tmp_path / "log"
    with experiment(ws, "alone") as xp:
        alone = Stage.C(key="alone", log=log).submit(transient=TransientMode.TRANSIENT)
        kept = Stage.C(key="kept", log=log).submit()
    assert lines(log) == ["kept"]
    job = alone.job
    assert job.state == JobState.UNSCHEDULED and job.state.is_unscheduled()
    assert job.scheduler_state == JobState.TRANSIENT
    assert alone.wait() is False, "waiting for a job that does not run ends at once"
    assert not Path(job.jobpath).exists(), "nothing is written for it"
    assert kept.job.state == JobState.DONE
    assert [j.name for j in xp.wait()] == []


def test_a_transient_task_runs_when_a_task_that_runs_needs_it(ws: Path, tmp_path: Path) -> None:
    log = tmp_path / "log"
    with experiment(ws, "needed"):
        first = Stage.C(key="first", log=log).submit(transient=TransientMode.TRANSIENT)
        second = Stage.C(key="second", previous=first, log=log).submit(transient=TransientMode.TRANSIENT)
        last = Stage.C(key="last", previous=second, log=log).submit()
    assert lines(log) == ["first", "second", "last"], "a chain of transient jobs runs for the task at its end"
    assert all(t.job.state == JobState.DONE for t in (first, second, last))
    assert Path(first.jobpath, "out.txt").read_text() == "first"


def test_a_chain_of_transient_tasks_alone_does_not_run(ws: Path, tmp_path: Path) -> None:
    log = tmp_path / "log"
    with experiment(ws, "chain"):
        first = Stage.C(key="first", log=log).submit(transient=TransientMode.TRANSIENT)
        second = Stage.C(key="second", previous=first, log=log).submit(transient=TransientMode.REMOVE)
    assert lines(log) == []
    assert first.job.state.is_unscheduled() and second.job.state.is_unscheduled()


def test_submitted_again_as_not_transient_it_runs(ws: Path, tmp_path: Path) -> None:
    log = tmp_path / "log"
    with experiment(ws, "merge"):
        one = Stage.C(key="merged", log=log).submit(transient=TransientMode.REMOVE)
        assert one.job.scheduler_state == JobState.TRANSIENT
        two = Stage.C(key="merged", log=log).submit(transient=TransientMode.NONE)
        assert one.job is two.job and one.job.transient is TransientMode.NONE
    assert lines(log) == ["merged"]
    assert Path(one.jobpath).is_dir(), "the mode that keeps the job won: not removed"


def test_remove_deletes_the_folder_once_the_experiment_ended_well_and_nothing_runs_again(
    ws: Path, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    for run in range(2):
        with experiment(ws, "remove"):
            data = Stage.C(key="data", log=log).submit(transient=TransientMode.REMOVE)
            model = Stage.C(key="model", previous=data, log=log).submit()
        assert model.job.state == JobState.DONE
        assert not Path(data.jobpath).exists(), f"run {run}: the REMOVE job's folder is deleted"
        assert Path(model.jobpath, "out.txt").read_text() == "model"
    assert lines(log) == ["data", "model"], "the second run needs nothing: every job ran once"
    assert data.job.state.is_unscheduled(), "in the second run, the transient job was not needed"


def test_remove_keeps_the_folder_when_the_experiment_failed(ws: Path, tmp_path: Path) -> None:
    log = tmp_path / "log"
    with pytest.raises(FailedExperiment):
        with experiment(ws, "kept"):
            data = Stage.C(key="data", log=log).submit(transient=TransientMode.REMOVE)
            Stage.C(key="model", previous=data, fail=True, log=log).submit()
    assert data.job.state == JobState.DONE
    assert Path(data.jobpath, "out.txt").read_text() == "data", "kept for the next run"
    with experiment(ws, "kept"):
        again = Stage.C(key="data", log=log).submit(transient=TransientMode.REMOVE)
        Stage.C(key="model", previous=again, log=log).submit()
    assert lines(log) == ["data", "model", "model"], "the done transient job did not run again"
    assert not Path(again.jobpath).exists()


def test_a_failed_dependency_of_a_transient_job_nobody_needs_changes_nothing(ws: Path, tmp_path: Path) -> None:
    log = tmp_path / "log"
    with pytest.raises(FailedExperiment) as info:
        with experiment(ws, "deps"):
            bad = Stage.C(key="bad", fail=True, log=log).submit()
            after = Stage.C(key="after", previous=bad, log=log).submit(transient=TransientMode.TRANSIENT)
    assert [job.name for job in info.value.failed] == [bad.job.name]
    assert after.job.state.is_unscheduled() and not Path(after.jobpath).exists()


EXPERIMENT = """
import sys
from pathlib import Path
from xpm import experiment
from xpm.runmode import TransientMode
from tests.run.submit_tasks import Stage

log = Path({log!r})
with experiment({ws!r}, "twice") as xp:
    data = Stage.C(key="data", log=log).submit(transient=TransientMode.REMOVE)
    cache = Stage.C(key="cache", log=log).submit(transient=TransientMode.TRANSIENT)
    model = Stage.C(key="model", previous=data, log=log).submit()

    def evaluate():
        print("completed", model.job.name, flush=True)
        Stage.C(key="evaluate", previous=model, log=log).submit()

    model.on_completed(evaluate)
print("final", data.job.scheduler_state, cache.job.scheduler_state, model.job.state, flush=True)
"""


def test_an_experiment_run_twice_runs_each_job_once(tmp_path: Path, start_script: Start) -> None:
    """Two processes, one after the other: a REMOVE job, a transient job nobody needs, and a
    callback that submits an evaluation; every job runs exactly once over both runs."""
    ws, log = tmp_path / "ws", tmp_path / "log"
    outputs = []
    for name in ("first.py", "second.py"):
        proc = start_script(EXPERIMENT.format(log=str(log), ws=str(ws)), name)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outputs.append(out.splitlines())
    assert sorted(lines(log)) == ["data", "evaluate", "model"], "each job ran once over the two runs"
    first, second = outputs
    assert first[0].startswith("completed test.submit.stage/") and second[0] == first[0], "the callback ran each run"
    assert first[-1] == "final done transient done"
    assert second[-1] == "final transient transient done", "the second run needed no transient job"
    kept = sorted(p.read_text() for p in (ws / "jobs" / "test.submit.stage").glob("*/out.txt"))
    assert kept == ["evaluate", "model"], "the REMOVE job's folder is gone, the transient one was never made"
