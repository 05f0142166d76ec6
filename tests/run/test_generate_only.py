"""GENERATE_ONLY: a new job folder is written with one mkdir and params.json, nothing read in it;
a job folder that exists is reported as the workspace has it, and never rewritten."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.run.conftest import script_env
from tests.run.tasks import Sum
from xpm import RunMode, experiment, tag


def cli(*args: str) -> list[str]:
    done = subprocess.run([sys.executable, "-m", "xpm", *args], env=script_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_planned_jobs_are_listed_at_once_and_jobs_clean_deletes_them(ws: Path) -> None:
    with experiment(ws, "gen", run_mode=RunMode.GENERATE_ONLY):
        planned = Sum.C(value=tag(5)).submit()
    short = f"{planned.job.task_id}/{planned.job.identifier[:12]}"
    # In the index from the start: no `experiments sync` needed to see them.
    assert cli("jobs", "list", "--workdir", str(ws), "--tags") == [f"UNSCHEDULED {short} value=5"]
    assert cli("jobs", "clean", "--workdir", str(ws), "--perform") == [f"CLEANED {short}"]
    assert not Path(planned.jobpath).exists()
    assert cli("jobs", "list", "--workdir", str(ws)) == ["No jobs found."]


def test_a_job_cleaned_before_its_first_record_is_written_again_under_its_lock(ws: Path) -> None:
    """The experiment found the planned job's folder, then `jobs clean` deleted it before the
    experiment took the job's lock: under the lock, the folder is written again, and the job runs."""
    with experiment(ws, "gen", run_mode=RunMode.GENERATE_ONLY):
        planned = Sum.C(value=7).submit()
    params = (Path(planned.jobpath) / "params.json").read_bytes()
    with experiment(ws, "normal") as xp:
        store = xp.scheduler.store
        real_lock, cleaned = store.lock, []

        def clean_then_lock(task_id: str, identifier: str):  # a `jobs clean` just before the lock
            if not cleaned:
                cleaned.append(shutil.rmtree(Path(planned.jobpath)))
            return real_lock(task_id, identifier)

        store.lock = clean_then_lock
        again = Sum.C(value=7).submit()
    assert cleaned
    assert again.job.state == "done"
    assert (Path(again.jobpath) / "params.json").read_bytes() == params
    assert (Path(again.jobpath) / "result.txt").read_text() == "7"


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
