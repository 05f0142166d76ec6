"""Experiments on a real Slurm cluster: states, kill, retries, re-attaching, and how often Slurm is asked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.run.conftest import wait_until
from tests.run.tasks import log_lines
from tests.slurm.conftest import commands

PRELUDE = """
from xpm import experiment, tag
from xpm.launchers.slurm import SlurmLauncher, SlurmOptions
from tests.run.tasks import Record, Resume

slurm = SlurmLauncher(SlurmOptions(time="0:10:00"), interval=1)
alone = SlurmLauncher(SlurmOptions(time="0:10:00"), interval=1, array_size=1)
"""


def jobs(ws: Path) -> dict[str, tuple[str, str | None]]:
    out = subprocess.run([sys.executable, "-m", "xpm", "jobs", "list", "--workdir", str(ws), "--json"],
                         capture_output=True, text=True, check=True).stdout
    return {job["tags"].get("key", job["task_id"]): (job["state"], job["failure_reason"]) for job in json.loads(out)}


def kill_when_running(ws: Path, key: str, timeout: float) -> None:
    """Waits until the job tagged ``key`` runs on the cluster, then kills it with ``jobs kill``."""
    wait_until(lambda: (ws / "index").exists() and jobs(ws).get(key, ("",))[0] == "RUNNING", timeout=timeout,
               what=f"the {key} job to run on the cluster")
    killed = subprocess.run([sys.executable, "-m", "xpm", "jobs", "kill", "--workdir", str(ws), "--filter",
                             f"key = {key}", "--perform"], capture_output=True, text=True)
    assert killed.returncode == 0 and killed.stdout.startswith("KILLED "), killed.stdout + killed.stderr


def test_dependencies_failure_kill_and_retries(slurm, ws: Path, tmp_path: Path, start_script, slurm_log) -> None:
    log, go = tmp_path / "log", tmp_path / "go"
    script = start_script(PRELUDE + f"""
with experiment({str(ws)!r}, "cluster", launcher=alone) as xp:
    first = Record.C(key=tag("first"), log={str(log)!r}).submit()
    Record.C(key=tag("second"), log={str(log)!r}).add_dependencies(first.job).submit()
    Record.C(key=tag("bad"), log={str(log)!r}, fail=True).submit()
    Record.C(key=tag("stuck"), log={str(log)!r}, wait_for={str(go)!r}).submit()
    Resume.C(timeouts=tag(2)).submit(max_retries=3)
""")
    kill_when_running(ws, "stuck", timeout=60)
    _, err = script.communicate(timeout=120)
    assert script.returncode == 1 and "Traceback" not in err
    assert jobs(ws) == {
        "first": ("DONE", None),
        "second": ("DONE", None),
        "bad": ("ERROR", "failed"),
        "stuck": ("ERROR", "cancelled"),
        "test.resume": ("DONE", None),
    }
    assert [line[0] for line in log_lines(log) if line[1] == "end"].count("first") == 1
    resume = next((ws / "jobs" / "test.resume").iterdir())
    assert (resume / "attempts").read_text() == "3"
    used = commands(slurm_log)
    # One submission per attempt: 4 Record jobs and 3 attempts of the resumable one.
    assert used.count("sbatch") == 7
    assert "scancel" in used


def test_many_jobs_in_one_job_array(slurm, ws: Path, tmp_path: Path, start_script, slurm_log) -> None:
    """30 jobs, one sbatch: each job runs in its own element, with its own logs and state; killing one
    element stops that job only."""
    log, go = tmp_path / "log", tmp_path / "go"
    script = start_script(PRELUDE + f"""
with experiment({str(ws)!r}, "array", launcher=slurm) as xp:
    for i in range(29):
        Record.C(key=tag(f"job{{i}}"), log={str(log)!r}).submit()
    Record.C(key=tag("stuck"), log={str(log)!r}, wait_for={str(go)!r}).submit()
""")
    kill_when_running(ws, "stuck", timeout=90)
    _, err = script.communicate(timeout=180)
    assert script.returncode == 1 and "Traceback" not in err
    expected = {f"job{i}": ("DONE", None) for i in range(29)}
    expected["stuck"] = ("ERROR", "cancelled")
    assert jobs(ws) == expected
    used = commands(slurm_log)
    # Submitted in one loop, gathered into one array (the loop may rarely pause long enough to split it).
    assert 1 <= used.count("sbatch") <= 2, used
    cancelled = [line.split()[3] for line in slurm_log.read_text().splitlines() if line.split()[2] == "scancel"]
    assert len(cancelled) == 1 and "_" in cancelled[0]  # the element, not the whole array
    ids = set()
    for folder in (ws / "jobs" / "test.record").iterdir():
        record = json.loads((folder / ".xpm" / "state.json").read_text())
        ids.add(record["process"]["jobid"])
        if record["state"] == "done":
            assert (folder / "record.out").read_text().startswith("record job")
    assert len(ids) == 30 and all("_" in jobid for jobid in ids)


def test_restarted_experiment_reattaches_without_submitting_again(
    slurm, ws: Path, tmp_path: Path, start_script, slurm_log
) -> None:
    log, go = tmp_path / "log", tmp_path / "go"
    source = PRELUDE + f"""
with experiment({str(ws)!r}, "again", launcher=slurm) as xp:
    Record.C(key=tag("long"), log={str(log)!r}, wait_for={str(go)!r}).submit()
"""
    first = start_script(source, name="first.py")
    wait_until(lambda: (ws / "index").exists() and jobs(ws).get("long", ("",))[0] == "RUNNING", timeout=60,
               what="the job to run on the cluster")
    first.kill()
    first.wait()
    second = start_script(source, name="second.py")
    go.write_text("go")
    _, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    assert jobs(ws) == {"long": ("DONE", None)}
    assert commands(slurm_log).count("sbatch") == 1
    assert [line[:2] for line in log_lines(log)] == [["long", "start"], ["long", "end"]]


def test_resumable_job_at_its_time_limit_is_submitted_again(slurm, ws: Path, start_script, slurm_log) -> None:
    """Slurm stops the job at its time limit (1 minute, the shortest): the job runs again and resumes."""
    script = start_script(PRELUDE + f"""
from tests.slurm.tasks import SlowOnce

short = slurm.config(time="0:01:00")
with experiment({str(ws)!r}, "limit", launcher=short) as xp:
    SlowOnce.C(seconds=600).submit(max_retries=2)
""")
    _, err = script.communicate(timeout=240)
    assert script.returncode == 0, err
    (folder,) = (ws / "jobs" / "test.slowonce").iterdir()
    assert "resumed from the checkpoint" in (folder / "slowonce.out").read_text()
    record = json.loads((folder / ".xpm" / "state.json").read_text())
    assert record["state"] == "done" and record["retry_count"] == 1
    assert commands(slurm_log).count("sbatch") == 2


def test_remaining_time_inside_a_slurm_job(slurm, ws: Path, start_script, slurm_log) -> None:
    script = start_script(PRELUDE + f"""
from tests.slurm.tasks import TimeLeft

with experiment({str(ws)!r}, "left", launcher=slurm) as xp:
    TimeLeft.C().submit()
""")
    _, err = script.communicate(timeout=120)
    assert script.returncode == 0, err
    (folder,) = (ws / "jobs" / "test.timeleft").iterdir()
    first, second = (float(value) for value in (folder / "left").read_text().split())
    assert 500 < first <= 600 and first - 3 < second < first  # the 10-minute limit, counted down
    # One squeue -j for the job, whatever the number of calls.
    assert sum(1 for line in slurm_log.read_text().splitlines() if " -j " in line) == 1
