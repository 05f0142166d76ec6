"""When Slurm does not answer, nothing is concluded: jobs keep waiting, the host backs off together.

Fake ``squeue``/``sacct`` at the seam fail (a busy controller's "Socket timed out"), hang, and come
back; the real single-node cluster with its controller stopped is in test_slurm_real.py.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest

import xpm.launchers.slurm_status as slurm_status
from tests.run.conftest import wait_until
from tests.slurm.conftest import cluster_up, commands
from xpm.launchers.slurm import SlurmJob
from xpm.launchers.slurm_status import StatusTracker, backoff, reset_trackers

TIMED_OUT = "slurm_load_jobs error: Socket timed out on send/recv operation"


def fake_commands(folder: Path, listing: str) -> Path:
    """squeue and sacct that answer, fail, or hang as the files ``mode.squeue``/``mode.sacct`` say
    (``ok``, ``fail`` or ``hang``), and count their calls."""
    folder.mkdir()
    for name, answer in {"squeue": f'cat "{folder}/listing"', "sacct": 'echo "$5|COMPLETED"'}.items():
        path = folder / name
        path.write_text(
            "#!/bin/sh\n"
            f'echo x >> "{folder}/{name}.calls"\n'
            f'mode=$(cat "{folder}/mode.{name}" 2>/dev/null || echo ok)\n'
            f'if [ "$mode" = fail ]; then echo "{TIMED_OUT}" >&2; exit 1; fi\n'
            'if [ "$mode" = hang ]; then exec sleep 30; fi\n'
            f"{answer}\n"
        )
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    (folder / "listing").write_text(listing)
    return folder


def set_mode(folder: Path, name: str, mode: str) -> None:
    (folder / f"mode.{name}").write_text(mode)


def calls(folder: Path, name: str) -> int:
    path = folder / f"{name}.calls"
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    reset_trackers()
    yield
    reset_trackers()


def jobs_in(tmp_path: Path, fake: Path, count: int, interval: float) -> list[SlurmJob]:
    jobs = []
    for i in range(count):
        jobdir = tmp_path / "ws" / "jobs" / "m.train" / f"{i:064x}"
        (jobdir / ".xpm").mkdir(parents=True)
        jobs.append(SlurmJob(str(i), jobdir, str(fake), interval))
    return jobs


def test_the_back_off_doubles_up_to_the_interval():
    assert [backoff(n, 60) for n in range(1, 8)] == [2, 4, 8, 16, 32, 60, 60]
    assert backoff(1000, 60) == 60


def test_a_failed_query_ends_no_job_and_costs_one_command_for_all(tmp_path: Path, monkeypatch):
    """20 running jobs, squeue fails: no job ends (before: every one ended in error), and the 20
    followers, in three processes, ask Slurm once per back-off, not once each."""
    now = [time.time()]
    monkeypatch.setattr(slurm_status.time, "time", lambda: now[0])
    fake = fake_commands(tmp_path / "bin", "".join(f"{i}|RUNNING\n" for i in range(20)))
    jobs = jobs_in(tmp_path, fake, 20, interval=60)
    assert [job.poll() for job in jobs] == [None] * 20
    assert calls(fake, "squeue") == 1
    set_mode(fake, "squeue", "fail")
    now[0] += 61  # the answer is older than the interval: Slurm is asked again, and fails
    others = [StatusTracker(str(fake), interval=60) for _ in range(2)]
    for _ in range(3):
        assert [job.poll() for job in jobs] == [None] * 20
        assert [other.state(str(i)) for other in others for i in range(20)] == [None] * 40
    assert calls(fake, "squeue") == 2, "one failed query, then the whole host waits for its back-off"
    assert calls(fake, "sacct") == 0, "a job is not taken for forgotten when Slurm did not answer"


def test_slurm_coming_back_is_taken_at_the_end_of_the_back_off(tmp_path: Path, monkeypatch):
    fake = fake_commands(tmp_path / "bin", "1|RUNNING\n2|PENDING\n")
    tracker = StatusTracker(str(fake), interval=3600)
    set_mode(fake, "squeue", "fail")
    now = [time.time()]
    monkeypatch.setattr(slurm_status.time, "time", lambda: now[0])
    assert tracker.state("1") is None and tracker.failures == 1
    now[0] += 1.0  # within the first back-off (2 s): no command
    assert tracker.state("1") is None and calls(fake, "squeue") == 1
    now[0] += 1.5  # the back-off is over: asked again, fails again: now 4 s
    assert tracker.state("1") is None and tracker.failures == 2 and calls(fake, "squeue") == 2
    set_mode(fake, "squeue", "ok")
    now[0] += 3.0
    assert tracker.state("1") is None and calls(fake, "squeue") == 2  # 4 s are not over
    now[0] += 1.5
    assert tracker.state("1") == "RUNNING" and tracker.state("2") == "PENDING"
    assert calls(fake, "squeue") == 3
    cached = tracker._read_cache()
    assert cached is not None and cached.failures == 0  # the count starts again


def test_a_hanging_command_is_a_failure_not_a_hang(tmp_path: Path, monkeypatch):
    fake = fake_commands(tmp_path / "bin", "1|RUNNING\n")
    set_mode(fake, "squeue", "hang")
    monkeypatch.setattr(slurm_status, "COMMAND_TIMEOUT", 0.5)
    (job,) = jobs_in(tmp_path, fake, 1, interval=3600)
    started = time.monotonic()
    assert job.poll() is None
    assert time.monotonic() - started < 10
    assert job.poll() is None and calls(fake, "squeue") == 1  # backing off


def test_a_failed_accounting_query_is_asked_again_not_taken_as_an_answer(tmp_path: Path):
    """A job the controller no longer lists is asked of sacct; when sacct fails, the job keeps
    waiting and sacct is asked again later (before: it was remembered as UNKNOWN, and ended)."""
    fake = fake_commands(tmp_path / "bin", "")
    set_mode(fake, "sacct", "fail")
    (job,) = jobs_in(tmp_path, fake, 1, interval=3600)
    assert job.poll() is None
    set_mode(fake, "sacct", "ok")
    assert job.poll() == 0  # accounting: COMPLETED
    assert calls(fake, "sacct") == 2


def test_a_recorded_end_needs_no_answer_from_slurm(tmp_path: Path):
    """The job's own record ends it, whatever Slurm says (or does not)."""
    from xpm import codec
    from xpm.schema import RECORD_VERSION, JobStateRecord

    fake = fake_commands(tmp_path / "bin", "")
    set_mode(fake, "squeue", "fail")
    (job,) = jobs_in(tmp_path, fake, 1, interval=3600)
    assert job.poll() is None
    record = JobStateRecord(version=RECORD_VERSION, task_id="m.train", identifier="0" * 64, state="done",
                            updated_at=1.0, process=job.process)
    job._state_file.write_bytes(codec.encode(record))
    assert job.poll() == 0


# --- the real cluster, its controller stopped for a while ---------------------------------------

SLURM_STATE = Path(os.environ.get("SLURM_STATE", "/tmp/xpm-slurm"))


def stop_controller() -> None:
    pid = int((SLURM_STATE / "slurmctld.pid").read_text())
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not Path(f"/proc/{pid}").exists(), timeout=30, what="slurmctld to stop")


def start_controller() -> None:
    subprocess.run(["/usr/sbin/slurmctld"], check=True)  # it reads the jobs it saved when it stopped
    wait_until(cluster_up, timeout=60, what="slurmctld to answer again")


def test_a_running_job_outlives_a_stopped_controller(slurm, ws: Path, tmp_path: Path, start_script, slurm_log):
    """slurmctld stops while a job runs: squeue fails for a while; the job is not marked failed, the
    experiment backs off (a bounded number of queries), and once the controller is back the job ends
    done."""
    if not (SLURM_STATE / "slurmctld.pid").exists():
        pytest.skip("the cluster was not started by scripts/ci/start-slurm.sh")
    log, go = tmp_path / "log", tmp_path / "go"
    script = start_script(f"""
from xpm import experiment, tag
from xpm.launchers.slurm import SlurmLauncher, SlurmOptions
from tests.run.tasks import Record

slurm = SlurmLauncher(SlurmOptions(time="0:10:00"), interval=1, array_size=1)
with experiment({str(ws)!r}, "outage", launcher=slurm) as xp:
    Record.C(key=tag("long"), log={str(log)!r}, wait_for={str(go)!r}).submit()
""")
    wait_until(lambda: log.exists() and "long start" in log.read_text(), timeout=60, what="the job to start")
    before = commands(slurm_log).count("squeue")
    stop_controller()
    try:
        time.sleep(12)  # the experiment asks, fails, backs off: 2, 4, 8 s
        assert script.poll() is None, "the experiment ended while the controller was away"
        record = json.loads(next((ws / "jobs" / "test.record").iterdir()).joinpath(".xpm", "state.json").read_text())
        assert record["state"] == "running"
    finally:
        start_controller()
    during = commands(slurm_log).count("squeue") - before
    assert during <= 6, f"{during} squeue commands in 12 s without a controller: no back-off"
    go.write_text("go")
    _, err = script.communicate(timeout=120)
    assert script.returncode == 0, err
    assert "Slurm does not answer" in err  # said once
    assert err.count("Slurm does not answer") == 1


def test_the_monitor_says_when_slurm_does_not_answer(tmp_path: Path, monkeypatch):
    from xpm.monitor.model import MonitorModel
    from xpm.workspace import Workspace

    fake = fake_commands(tmp_path / "bin", "1|RUNNING\n")
    model = MonitorModel(Workspace.open(tmp_path / "ws", create=True))
    model.refresh()
    assert model.problems == []
    set_mode(fake, "squeue", "fail")
    assert StatusTracker(str(fake), interval=60).state("1") is None
    model.refresh()
    assert [p for p in model.problems if p.startswith("Slurm does not answer (")] and TIMED_OUT in model.problems[0]
    set_mode(fake, "squeue", "ok")
    later = time.time() + 3  # the first back-off (2 s) is over: Slurm is asked again, and answers
    monkeypatch.setattr(slurm_status.time, "time", lambda: later)
    assert StatusTracker(str(fake), interval=60).state("1") == "RUNNING"
    model.refresh()
    assert model.problems == []
