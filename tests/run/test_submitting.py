"""Submitting: run modes per task and outside experiments, ``__submit__``, ``on_completed``,
preparations as dependencies, job states as objects, the keywords of ``experiment``, and bad
input. Every job runs in its own real process."""

from __future__ import annotations

import shutil
import subprocess
import threading
import warnings
from pathlib import Path

import pytest

from tests.run.submit_tasks import Learn, Marked, Score, Slow, Stage, UsePrep, Weights, lines
from xpm import FailedExperiment, RunMode, experiment
from xpm.errors import XpmError
from xpm.runmode import TransientMode
from xpm.runs import DirtyGitError
from xpm.scheduler.prepare import PrepareStep
from xpm.state import JobFailureStatus, JobState, JobStateError

# --- job states -------------------------------------------------------------------------------


def test_jobs_states_are_job_state_objects(ws: Path, tmp_path: Path) -> None:
    log = tmp_path / "log"
    with pytest.raises(FailedExperiment):
        with experiment(ws, "states"):
            good = Stage.C(key="good", log=log).submit()
            bad = Stage.C(key="bad", fail=True, log=log).submit()
            after = Stage.C(key="after", previous=bad, log=log).submit()
    assert good.job.state == JobState.DONE and good.job.state.finished() and good.job.state == "done"
    assert good.job.scheduler_state is JobState.DONE
    assert isinstance(bad.job.state, JobStateError) and bad.job.state == JobState.ERROR
    assert bad.job.state.failure_reason is JobFailureStatus.FAILED
    assert after.job.state.failure_reason is JobFailureStatus.DEPENDENCY == after.job.failure_reason
    assert not after.job.state.notstarted() and after.job.state.is_error()


# --- run modes ---------------------------------------------------------------------------------


def test_a_dry_run_outside_an_experiment_computes_the_job_and_writes_nothing(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = Learn.C(size=3, log=tmp_path / "log").submit(run_mode=RunMode.DRY_RUN, workspace=ws)
    assert isinstance(weights, Weights) and weights.size == 3
    learn = weights.__xpm__.task
    assert learn.jobpath == ws / "jobs" / "test.submit.learn" / learn.job.identifier
    assert weights.path == learn.jobpath / "weights.txt", "generated paths are in the job folder"
    assert learn.job.state == JobState.UNSCHEDULED
    assert not ws.exists(), "nothing is written, not even the workspace"
    assert capsys.readouterr().out.split() == ["UNSCHEDULED", learn.job.name]


def test_a_dry_run_outside_an_experiment_uses_the_default_workspace_and_sees_done_jobs(
    ws: Path, tmp_path: Path, own_settings: Path
) -> None:
    (own_settings / "settings.yaml").write_text(f"workspaces:\n  - id: main\n    path: {ws}\n")
    log = tmp_path / "log"
    with experiment(ws, "done"):
        Stage.C(key="s", log=log).submit()
    before = sorted(ws.rglob("*"))
    seen = Stage.C(key="s", log=log).submit(run_mode="dry_run")
    assert seen.job.state == JobState.DONE and seen.jobpath.parent == ws / "jobs" / "test.submit.stage"
    assert sorted(ws.rglob("*")) == before
    assert lines(log) == ["s"]


def test_generate_only_outside_an_experiment_writes_the_job_folder(ws: Path, tmp_path: Path) -> None:
    task = Stage.C(key="g", log=tmp_path / "log").submit(run_mode=RunMode.GENERATE_ONLY, workspace=str(ws))
    assert (task.jobpath / "params.json").is_file() and not (task.jobpath / ".xpm" / "state.json").exists()


def test_a_task_shown_in_a_running_experiment_is_not_run(
    ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "log"
    with experiment(ws, "mixed") as xp:
        shown = Stage.C(key="shown", log=log).submit(run_mode=RunMode.DRY_RUN)
        Stage.C(key="run", log=log).submit()
    assert lines(log) == ["run"]
    assert not Path(shown.jobpath).exists()
    assert f"UNSCHEDULED {shown.job.name}" in capsys.readouterr().out
    assert len(xp.scheduler.jobs) == 1


# --- __submit__ ----------------------------------------------------------------------------------


def test_submit_hook_gives_the_output_and_actions(ws: Path, tmp_path: Path) -> None:
    log = tmp_path / "log"
    with experiment(ws, "hook") as xp:
        weights = Learn.C(size=4, log=log).submit()
        score = Score.C(weights=weights, log=log).submit()
        learn = weights.__xpm__.task
        assert score.job.dependencies == [learn.job]
    assert xp.actions == ["inspect 4"]
    assert lines(log) == ["learn", "score"]
    assert "score size=4" in (tmp_path / "log").read_text()


# --- on_completed --------------------------------------------------------------------------------


def test_callbacks_run_in_the_experiment_once_the_job_is_done(ws: Path, tmp_path: Path) -> None:
    log, calls = tmp_path / "log", []

    def record(what: str):  # type: ignore[no-untyped-def]
        return lambda: calls.append((what, threading.current_thread().name))

    with pytest.raises(FailedExperiment):
        with experiment(ws, "callbacks"):
            early = Stage.C(key="early", log=log)
            early.on_completed(record("before submit"))
            early.submit()
            early.on_completed(record("after submit"))
            bad = Stage.C(key="bad", fail=True, log=log)
            bad.on_completed(record("failed job"))
            bad.submit()
    assert sorted(calls) == [("after submit", "xpm-callbacks"), ("before submit", "xpm-callbacks")]


def test_a_callback_may_submit_tasks_and_the_experiment_waits_for_them(ws: Path, tmp_path: Path) -> None:
    log = tmp_path / "log"
    with experiment(ws, "chained"):
        first = Stage.C(key="first", log=log).submit()
        first.on_completed(lambda: Stage.C(key="then", previous=first, log=log).submit())
    assert lines(log) == ["first", "then"]
    # The job is done: given again, the callback runs at once (in the callbacks' thread), each run.
    with experiment(ws, "chained"):
        done = Stage.C(key="first", log=log).submit()
        done.on_completed(lambda: Stage.C(key="then", previous=done, log=log).submit())
    assert lines(log) == ["first", "then"], "every job ran once"


def test_a_callback_that_raises_fails_the_experiment(ws: Path, tmp_path: Path) -> None:
    def broken() -> None:
        raise ValueError("no luck")

    with pytest.raises(FailedExperiment) as info:
        with experiment(ws, "broken"):
            task = Stage.C(key="k", log=tmp_path / "log").submit()
            task.on_completed(broken)
    message = str(info.value)
    assert "experiment broken failed: 1 callback(s) raised" in message
    assert f"{task.job.name}: on_completed callback " in message and "raised ValueError: no luck" in message


# --- preparations ----------------------------------------------------------------------------------


def test_preparations_are_dependencies_and_run_concurrently(ws: Path, tmp_path: Path) -> None:
    log, prep_log = tmp_path / "log", tmp_path / "prep"
    with experiment(ws, "prep"):
        one = UsePrep.C(prep=Slow.C(name="a", log=prep_log, sleep=0.6), log=log).submit()
        two = UsePrep.C(prep=Slow.C(name="b", log=prep_log, sleep=0.6), log=log).submit()
        three = UsePrep.C(prep=Slow.C(name="a", log=prep_log, sleep=0.6), variant=3, log=log).submit()
        (step,) = one.job.dependencies
        assert isinstance(step, PrepareStep) and step.name.startswith("prepare test.submit.slow/")
        assert three.job is not one.job and three.job.dependencies == [step], "one preparation per identifier"
    times = {}
    for line in prep_log.read_text().splitlines():
        name, what, when = line.split()
        times.setdefault(name, {})[what] = float(when)
    assert sorted(times) == ["a", "b"]
    assert max(t["start"] for t in times.values()) < min(t["end"] for t in times.values()), "they overlapped"
    assert lines(log) == ["useprep"] * 3 and two.job.state == JobState.DONE


def test_a_failed_preparation_fails_the_jobs_that_need_it(ws: Path, tmp_path: Path) -> None:
    log = tmp_path / "log"
    with pytest.raises(FailedExperiment) as info:
        with experiment(ws, "badprep"):
            task = UsePrep.C(prep=Slow.C(name="x", log=log, fail=True), log=log).submit()
    assert task.job.state.failure_reason is JobFailureStatus.DEPENDENCY
    assert "its prepare test.submit.slow/" in str(info.value) and "preparing x fails on purpose" in str(info.value)
    assert lines(log) == ["x"], "the task never ran"


def test_a_preparation_runs_only_when_a_job_needs_it_and_not_when_it_is_prepared(ws: Path, tmp_path: Path) -> None:
    log, marker = tmp_path / "log", tmp_path / "marker"
    with experiment(ws, "lazy"):
        UsePrep.C(prep=Marked.C(marker=marker, log=log), log=log).submit()
    assert lines(log) == ["marked", "useprep"]
    with experiment(ws, "lazy"):
        UsePrep.C(prep=Marked.C(marker=marker, log=log), log=log).submit()
    assert lines(log) == ["marked", "useprep"], "the job is done: nothing to prepare"


def test_is_prepared_skips_the_preparation(ws: Path, tmp_path: Path) -> None:
    log, marker = tmp_path / "log", tmp_path / "marker"
    marker.write_text("made elsewhere")
    with experiment(ws, "prepared"):
        UsePrep.C(prep=Marked.C(marker=marker, log=log), log=log).submit()
    assert lines(log) == ["useprep"]
    marker.unlink()
    with experiment(ws, "prepared"):
        UsePrep.C(prep=Marked.C(marker=marker, log=log), variant=1, log=log).submit()
    assert lines(log) == ["useprep", "marked", "useprep"], "a new job: prepared, since is_prepared() says no"


def test_a_dry_run_lists_the_preparations(ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with experiment(ws, "dryprep", run_mode=RunMode.DRY_RUN):
        UsePrep.C(prep=Slow.C(name="d", log=tmp_path / "prep"), log=tmp_path / "log").submit()
    out = capsys.readouterr().out.splitlines()
    assert out[1].split()[:3] == ["depends", "on", "prepare"] and "test.submit.slow/" in out[1]
    assert not (tmp_path / "prep").exists()


# --- experiment keywords -----------------------------------------------------------------------------


def test_web_monitor_keywords_are_accepted(ws: Path) -> None:
    # A negative port asks for no web monitor (tests/web covers the one a port serves); the
    # reference's other keywords change nothing.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        xp = experiment(ws, "web", port=-1, token="t", no_environmental_impact=True, register_signals=False,
                        no_db=True)
    with xp:
        assert xp._monitor is None
        assert xp.workspace.path == ws and xp.workspace.jobspath == xp.jobspath == ws / "jobs"
        assert xp.workspace.location == str(ws) and xp.workspace.run_mode is RunMode.NORMAL


def test_the_workspace_path_of_a_dry_run_of_a_missing_workspace(ws: Path) -> None:
    with experiment(ws, "dry", run_mode=RunMode.DRY_RUN) as xp:
        assert xp.workspace.path == ws and xp.workspace.workspace is None
    assert not ws.exists()


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_dirty_git(ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "code.py").write_text("x = 1\n")
    for command in (["init", "-q"], ["add", "code.py"], ["-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q",
                                                          "-m", "x"]):
        subprocess.run(["git", *command], cwd=project, check=True)
    (project / "code.py").write_text("x = 2\n")  # a change not committed
    with pytest.raises(DirtyGitError, match="uncommitted changes: .*project"):
        with experiment(ws, "git", project_paths=[project], dirty_git="error"):
            pass
    assert not (ws / "experiments" / "git").exists(), "refused before any run was recorded"
    with experiment(ws, "git", project_paths=[project], dirty_git="warn"):
        pass
    assert "xpm: warning: the project's git repository has uncommitted changes" in capsys.readouterr().err


# --- bad input ---------------------------------------------------------------------------------------


def test_bad_submissions_name_the_task_and_the_value(ws: Path, tmp_path: Path) -> None:
    log, other = tmp_path / "log", tmp_path / "other"
    with experiment(ws, "bad") as xp:
        for kwargs, message in [
            ({"run_mode": "sideways"}, r"^Stage.submit: unknown run mode 'sideways'"),
            ({"transient": "forever"}, r"^Stage.submit: unknown transient mode 'forever'"),
            ({"max_retries": -1}, r"^Stage.submit: max_retries=-1 is not a number of retries"),
            ({"workspace": other}, rf"^Stage.submit: workspace={other} is not the workspace of experiment bad"),
            ({"workspace": 3}, r"^Stage.submit: workspace=3 is not a workspace"),
        ]:
            with pytest.raises(XpmError, match=message):
                Stage.C(key="x", log=log).submit(**kwargs)
        Stage.C(key="x", log=log).submit(workspace=ws)
        Stage.C(key="y", log=log).submit(workspace=xp.workspace)
    with experiment(ws, "dry", run_mode=RunMode.DRY_RUN):
        with pytest.raises(XpmError, match=r"^Stage.submit: run_mode=NORMAL in an experiment run in DRY_RUN mode"):
            Stage.C(key="x", log=log).submit(run_mode=RunMode.NORMAL)
        with pytest.raises(XpmError, match=r"run_mode=GENERATE_ONLY in an experiment run in DRY_RUN mode"):
            Stage.C(key="y", log=log).submit(run_mode=RunMode.GENERATE_ONLY)
    with experiment(ws, "twice"):
        Stage.C(key="z", log=log).submit(run_mode=RunMode.DRY_RUN)
        with pytest.raises(XpmError, match=r"was submitted with run_mode=DRY_RUN in this experiment"):
            Stage.C(key="z", log=log).submit()
    with pytest.raises(XpmError, match=r"^Stage.submit: submit\(\) needs a running experiment"):
        Stage.C(key="x", log=log).submit(transient=TransientMode.REMOVE)
    with pytest.raises(XpmError, match=r"unknown run mode 'bogus'"):
        experiment(ws, "bad", run_mode="bogus")
    with pytest.raises(XpmError, match=r"experiment\(dirty_git='maybe'\): expected one of IGNORE, WARN, ERROR"):
        experiment(ws, "bad", dirty_git="maybe")


def test_graceful_exit_and_set_launcher(ws: Path, tmp_path: Path) -> None:
    from xpm.launchers.local import LocalLauncher
    from xpm.runs import GracefulExperimentExit, set_launcher

    log = tmp_path / "log"
    own = LocalLauncher(max_jobs=1)
    with experiment(ws, "graceful") as xp:
        set_launcher(own)
        assert xp.launcher is own
        stage = Stage.C(key="left", log=log).submit()
        assert stage.job.launcher is own
        raise GracefulExperimentExit()  # leaves the block at once, without an error
    # The job went on (or is followed by the next run): it runs once in all
    with experiment(ws, "graceful"):
        again = Stage.C(key="left", log=log).submit()
    assert again.job.state == JobState.DONE
    assert lines(log) == ["left"]
    with pytest.raises(XpmError, match="needs a running experiment"):
        set_launcher(own)
