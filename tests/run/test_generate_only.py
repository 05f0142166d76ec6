"""GENERATE_ONLY: a new job folder is written with one mkdir and params.json, nothing read in it;
a job folder that exists is reported as the workspace has it, and never rewritten."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.run.tasks import Sum
from xpm import RunMode, experiment


def test_a_new_job_is_unscheduled_and_an_existing_one_keeps_its_state(
    ws: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with experiment(ws, "normal"):
        done = Sum.C(value=1).submit()
    params = Path(done.jobpath) / "params.json"
    before = params.stat()
    capsys.readouterr()
    with experiment(ws, "gen", run_mode=RunMode.GENERATE_ONLY) as xp:
        again = Sum.C(value=1).submit()
        new = Sum.C(value=2).submit()
    assert capsys.readouterr().out.split() == ["DONE", again.job.name, "UNSCHEDULED", new.job.name]
    assert [job.state for job in xp.jobs.values()] == ["done", "unscheduled"]
    assert all(job.finished for job in xp.jobs.values())
    assert params.stat().st_ino == before.st_ino, "params.json is written once"
    assert sorted(p.name for p in Path(new.jobpath).iterdir()) == ["params.json"]
    assert new.result == Path(new.jobpath) / "result.txt"


def test_generate_only_twice_writes_nothing_the_second_time(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with experiment(ws, "gen", run_mode=RunMode.GENERATE_ONLY):
        first = Sum.C(value=3).submit()
    params = Path(first.jobpath) / "params.json"
    inode = params.stat().st_ino
    with experiment(ws, "gen", run_mode=RunMode.GENERATE_ONLY):
        second = Sum.C(value=3).submit()
    assert second.job.name == first.job.name
    assert params.stat().st_ino == inode
    assert capsys.readouterr().out.split() == ["UNSCHEDULED", first.job.name] * 2
