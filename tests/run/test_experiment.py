"""Experiments run in the test process; every job runs in its own real process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.run.tasks import Data, Env, UseData, Model, Record, Resume, SetScale, Sum, Train, UseModel, WithOutputs, log_lines
from xpm import CounterToken, FailedExperiment, RunMode, experiment, tag
from xpm.errors import ConfigError, XpmError
from xpm.store.jobs import JobStore
from xpm.store.log import EventLog
from xpm.workspace import Workspace
from xpm import layout


def state(ws: Path, job) -> dict:  # type: ignore[no-untyped-def]
    return json.loads((Path(job.jobpath) / ".xpm" / "state.json").read_text())


def test_dependencies_run_in_order_and_pass_results(ws: Path) -> None:
    with experiment(ws, "chain") as xp:
        first = Sum.C(value=1).submit()
        second = Sum.C(value=10, previous=first).submit()
        third = Sum.C(value=100, previous=second).submit()
        assert third.job.dependencies == [second.job]
    assert third.result.read_text() == "111"
    assert [job.state for job in xp.jobs.values()] == ["done"] * 3
    assert third.jobpath == ws / "jobs" / "test.sum" / third.job.identifier
    assert state(ws, third.job)["state"] == "done"
    assert state(ws, third.job)["exit_code"] == 0


def test_submitted_task_exposes_its_job(ws: Path, tmp_path: Path) -> None:
    with experiment(ws, "job-api") as xp:
        task = Record.C(key="a", log=tmp_path / "log").submit()
        assert task.wait() is True
        assert task.stdout() == task.jobpath / "record.out"
        assert task.stdout().read_text() == "record a\n"
        assert task.stderr() == task.jobpath / "record.err"
        assert task.job.state == "done"
        assert xp.workdir == ws / "experiments" / "job-api" / xp.run_id
        assert xp.jobspath == ws / "jobs"


def test_same_identifier_twice_is_one_job(ws: Path, tmp_path: Path) -> None:
    log = tmp_path / "log"
    with experiment(ws, "twice") as xp:
        one = Record.C(key="same", log=log).submit()
        two = Record.C(key="same", log=log).submit()
        assert one is not two and one.job is two.job
    assert len(xp.jobs) == 1
    assert [line[:2] for line in log_lines(log)] == [["same", "start"], ["same", "end"]]


def test_submitting_the_same_object_twice_is_an_error(ws: Path, tmp_path: Path) -> None:
    with experiment(ws, "same-object"):
        task = Record.C(key="x", log=tmp_path / "log")
        task.submit()
        with pytest.raises(ConfigError, match="already submitted"):
            task.submit()


def test_done_job_never_runs_again(ws: Path, tmp_path: Path) -> None:
    log = tmp_path / "log"
    for _ in range(2):
        with experiment(ws, "again") as xp:
            task = Record.C(key="once", log=log).submit()
        assert task.job.state == "done"
    assert [line[1] for line in log_lines(log)] == ["start", "end"]
    runs = sorted(p.name for p in (ws / "experiments" / "again").iterdir())
    assert len(runs) == 2 and xp.run_id == runs[-1]


def test_failed_job_and_its_dependents(ws: Path, tmp_path: Path) -> None:
    log = tmp_path / "log"
    with pytest.raises(FailedExperiment) as info:
        with experiment(ws, "failing"):
            bad = Record.C(key="bad", fail=True, log=log).submit()
            after = Sum.C(value=1, previous=None).submit()
            dependent = UseModel.C(model=Model.C(size=1)).add_dependencies(bad.job).submit()
    message = str(info.value)
    assert "experiment failing failed: 2 job(s)" in message
    assert f"{bad.job.name}: failed, see {bad.stderr()}" in message
    assert f"{dependent.job.name}: not run, a job it depends on failed" in message
    assert "fails on purpose" in bad.stderr().read_text()
    assert after.job.state == "done"
    record = state(ws, dependent.job)
    assert (record["state"], record["failure_reason"]) == ("error", "dependency")
    assert not Path(dependent.jobpath, "usemodel.out").exists(), "a job whose dependency failed never runs"


def test_error_job_runs_again_when_submitted_again(ws: Path, tmp_path: Path) -> None:
    log, needed = tmp_path / "log", tmp_path / "needed"
    with pytest.raises(FailedExperiment):
        with experiment(ws, "retry"):
            bad = Record.C(key="r", log=log, needs=needed).submit()
    assert bad.job.state == "error"
    needed.touch()
    with experiment(ws, "retry"):
        again = Record.C(key="r", log=log, needs=needed).submit()
    assert again.job.identifier == bad.job.identifier
    assert again.job.state == "done"
    assert [line[1] for line in log_lines(log)] == ["start", "start", "end"], "the job in error ran again"
    assert "needs" in Path(again.jobpath, "record.err.1").read_text(), "the logs of the first attempt are kept"
    assert Path(again.jobpath, "record.out").read_text() == "record r\n"


def test_init_tasks_run_before_the_task_on_shared_objects(ws: Path) -> None:
    with experiment(ws, "init"):
        model = Model.C(size=3)
        task = UseModel.C(model=model).submit(init_tasks=[SetScale.C(model=model, scale=7)])
        plain = UseModel.C(model=Model.C(size=3)).submit()
    assert task.stdout().read_text() == "scale=7 size=3\n"
    assert plain.stdout().read_text() == "scale=1 size=3\n"
    assert task.job.identifier != plain.job.identifier, "init tasks are part of the identifier"


def test_task_outputs_make_dependencies(ws: Path) -> None:
    with experiment(ws, "outputs"):
        model = WithOutputs.C(size=5).submit()
        assert isinstance(model, Model)
        use = UseModel.C(model=model).submit()
        assert [dep.task_id for dep in use.job.dependencies] == ["test.withoutputs"]
    assert use.stdout().read_text() == "scale=1 size=5\n"


def test_counter_token_limits_concurrent_jobs(ws: Path, tmp_path: Path) -> None:
    log = tmp_path / "log"
    token = CounterToken("one", tmp_path / "token", 1)
    with experiment(ws, "token"):
        for key in "abc":
            token(1, Record.C(key=key, log=log, sleep=0.3)).submit()
    intervals = {}
    for key, _what, when, _pid in log_lines(log):
        intervals.setdefault(key, []).append(float(when))
    spans = sorted(intervals.values())
    assert len(spans) == 3
    for (_start1, end1), (start2, _end2) in zip(spans, spans[1:], strict=False):
        assert end1 <= start2, "two jobs held the 1-unit token at once"
    assert list((tmp_path / "token" / "holders").iterdir()) == [], "every job released the token"


def test_max_jobs_limits_local_concurrency(ws: Path, tmp_path: Path) -> None:
    log = tmp_path / "log"
    with experiment(ws, "limit", max_jobs=1):
        for key in "ab":
            Record.C(key=key, log=log, sleep=0.2).submit()
    events = [(float(when), what) for _key, what, when, _pid in log_lines(log)]
    running = peak = 0
    for _when, what in sorted(events):
        running += 1 if what == "start" else -1
        peak = max(peak, running)
    assert peak == 1


def test_resumable_task_runs_again_after_timeouts(ws: Path) -> None:
    with experiment(ws, "resume"):
        task = Resume.C(timeouts=2).submit(max_retries=3)
    assert task.job.state == "done"
    assert Path(task.jobpath, "attempts").read_text() == "3"
    assert state(ws, task.job)["retry_count"] == 2


def test_resumable_task_out_of_retries_ends_in_timeout(ws: Path) -> None:
    with pytest.raises(FailedExperiment, match="timeout"):
        with experiment(ws, "resume-out"):
            task = Resume.C(timeouts=5).submit(max_retries=1)
    assert Path(task.jobpath, "attempts").read_text() == "2"
    record = state(ws, task.job)
    assert (record["state"], record["failure_reason"], record["retry_count"]) == ("error", "timeout", 1)
    # A higher max_retries lets it go on, from where it stopped.
    with experiment(ws, "resume-out"):
        task = Resume.C(timeouts=5).submit(max_retries=5)
    assert Path(task.jobpath, "attempts").read_text() == "6"


def test_progress_is_recorded_in_the_job_events(ws: Path, tmp_path: Path) -> None:
    with experiment(ws, "progress"):
        task = Record.C(key="p", log=tmp_path / "log").submit()
    events = EventLog(Workspace.open(ws), layout.job_events(task.job.task_id, task.job.identifier)).read().events
    progress = [(e.value, e.desc) for e in events if e.__struct_config__.tag == "progress"]
    assert progress == [(0.25, "started"), (1.0, "finished")]
    states = [e.state for e in events if e.__struct_config__.tag == "state"]
    assert states == ["waiting", "scheduled", "running", "done"]


def test_environment_of_jobs(ws: Path) -> None:
    with experiment(ws, "env") as xp:
        xp.setenv("XPM_TEST_VALUE", "42")
        task = Env.C(names=["XPM_TEST_VALUE"]).submit()
    assert task.stdout().read_text() == "XPM_TEST_VALUE=42\n"


def test_prepare_runs_once_before_the_jobs(ws: Path, tmp_path: Path) -> None:
    log = tmp_path / "log"
    with experiment(ws, "prepare"):
        data = Data.C(name="d", log=log)
        one = Train.C(data=data).submit()
        two = Train.C(data=Data.C(name="d", log=log)).submit()
    assert log.read_text() == "prepare d\n"
    assert one.stdout().read_text() == two.stdout().read_text() == "trained on d\n"


def test_run_records(ws: Path, tmp_path: Path) -> None:
    with experiment(ws, "records") as xp:
        task = Record.C(key="t", log=tmp_path / "log").submit()
    run = json.loads((xp.workdir / "run.json").read_text())
    assert (run["experiment_id"], run["run_id"], run["status"]) == ("records", xp.run_id, "done")
    assert run["ended_at"] >= run["started_at"]
    environment = json.loads((xp.workdir / "environment.json").read_text())
    assert environment["python"] and "msgspec" in environment["packages"]
    ref = json.loads((ws / "refs" / "experiments" / "records" / "current.json").read_text())
    assert ref["value"] == xp.run_id
    lines = EventLog(Workspace.open(ws), layout.run_jobs("records", xp.run_id)).read().events
    assert [(e.task_id, e.identifier) for e in lines] == [(task.job.task_id, task.job.identifier)]


def test_run_ids_get_a_suffix_on_a_clash(ws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import xpm.runs as module

    monkeypatch.setattr(module.time, "strftime", lambda fmt, t=None: "20260101_120000")
    ids = []
    for _ in range(3):
        with experiment(ws, "clash") as xp:
            pass
        ids.append(xp.run_id)
    assert ids == ["20260101_120000", "20260101_120000.1", "20260101_120000.2"]


def test_tags_reach_the_run_log_and_the_index(ws: Path, tmp_path: Path) -> None:
    with experiment(ws, "tags"):
        task = Record.C(key=tag("k"), log=tmp_path / "log").submit()
    assert task.job.tags == {"key": "k"}
    snapshot = JobStore(Workspace.open(ws)).index.load()
    (entry,) = [j for j in snapshot.jobs.values() if j.identifier == task.job.identifier]
    assert (entry.state, entry.tags) == ("done", {"key": "k"})


def test_dry_run_prints_and_writes_nothing(ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with experiment(ws, "dry", run_mode=RunMode.DRY_RUN):
        first = Sum.C(value=tag(1)).submit()
        Sum.C(value=2, previous=first).submit()
    assert not ws.exists()
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["UNSCHEDULED", first.job.name, "value=1"]
    assert out[1].startswith("UNSCHEDULED test.sum/")
    assert out[2].split() == ["depends", "on", first.job.name]


def test_dry_run_shows_states_from_the_workspace(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with experiment(ws, "dry2"):
        Sum.C(value=1).submit()
    capsys.readouterr()
    before = sorted(str(p) for p in ws.rglob("*"))
    with experiment(ws, "dry2", run_mode="dry_run") as xp:
        task = Sum.C(value=1).submit()
    assert capsys.readouterr().out.split() == ["DONE", task.job.name]
    assert sorted(str(p) for p in ws.rglob("*")) == before
    assert xp.run_id is None


def test_generate_only_writes_job_folders_and_runs_nothing(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with experiment(ws, "gen", run_mode=RunMode.GENERATE_ONLY):
        task = Sum.C(value=3).submit()
    assert (Path(task.jobpath) / "params.json").exists()
    assert not (Path(task.jobpath) / ".xpm" / "state.json").exists()
    assert not (ws / "experiments" / "gen").exists()
    assert capsys.readouterr().out.split() == ["UNSCHEDULED", task.job.name]


def test_prepare_mode_runs_only_prepares(ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "log"
    with experiment(ws, "prep", run_mode=RunMode.PREPARE):
        task = Train.C(data=Data.C(name="p", log=log)).submit()
        UseData.C(data=Data.C(name="p", log=log)).submit()
    assert log.read_text() == "prepare p\n", "a Prepare runs once per identifier"
    assert not Path(task.jobpath).exists()
    assert capsys.readouterr().out.startswith("[prepare] Preparing test.data/")


def test_submit_outside_an_experiment_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(XpmError, match="inside `with experiment"):
        Record.C(key="x", log=tmp_path / "log").submit()


def test_bad_experiment_id(ws: Path) -> None:
    with pytest.raises(XpmError, match="invalid experiment id"):
        experiment(ws, "../escape")


def test_settings_give_the_jobs_environment_and_the_local_limit(
    ws: Path, tmp_path: Path, own_settings: Path
) -> None:
    (own_settings / "settings.yaml").write_text(
        "env: {XPM_GLOBAL: g, XPM_BOTH: global}\n"
        "max_jobs: 1\n"
        f"workspaces:\n  - id: main\n    path: {ws}\n    env: {{XPM_BOTH: workspace}}\n"
    )
    log = tmp_path / "log"
    with experiment(ws, "settings") as xp:
        xp.setenv("XPM_MINE", "m")
        task = Env.C(names=["XPM_GLOBAL", "XPM_BOTH", "XPM_MINE"]).submit()
        for key in "ab":
            Record.C(key=key, log=log, sleep=0.2).submit()
    assert task.stdout().read_text() == "XPM_GLOBAL=g\nXPM_BOTH=workspace\nXPM_MINE=m\n"
    assert xp.scheduler.max_jobs == 1
    events = sorted((float(when), what) for _key, what, when, _pid in log_lines(log))
    assert [what for _when, what in events] == ["start", "end", "start", "end"]


def test_invalid_settings_stop_the_experiment(ws: Path, own_settings: Path) -> None:
    (own_settings / "settings.yaml").write_text("max_jobs: zero\n")
    with pytest.raises(XpmError, match="max_jobs: expected an integer"):
        with experiment(ws, "bad-settings"):
            pass


def test_a_script_without_the_main_guard_fails_at_once(ws: Path, start_script) -> None:
    """The job process imports the script to load its task; a script that runs its experiment when
    imported would make the job wait forever for the experiment that launched it: it fails at once,
    and says how to fix the script."""
    script = start_script(f"""
        from xpm import Task, Param, experiment

        class Unguarded(Task):
            x: Param[int]

            def execute(self):
                print("ran", self.x)

        with experiment({str(ws)!r}, "unguarded") as xp:
            job = Unguarded.C(x=1).submit()
    """)
    _, err = script.communicate(timeout=60)
    assert script.returncode == 1 and "ended in error" in err and "Traceback" not in err
    (stderr,) = list((ws / "jobs").glob("*/*/unguarded.err"))
    assert 'put the experiment under `if __name__ == "__main__":`' in stderr.read_text()
    assert "ran 1" not in stderr.read_text()
