"""``jobs kill``, ``jobs clean`` and ``jobs log`` on a workspace written through the store."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.commands.conftest import Maker, dead_pid, local
from xpm import layout
from xpm.schema import IndexEntry
from xpm.store.jobs import JobStore


def state(maker: Maker, key) -> tuple[str, str | None]:
    record = JobStore(maker.ws).state(*key)
    return record.state, record.failure_reason


def alive_in_group(pgid: int) -> list[int]:
    """The processes of a group that have not ended (zombies waiting for a reaper do not count)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        # After the command: state, ppid, pgrp...
        if int(fields[2]) == pgid and fields[0] != b"Z":
            alive.append(int(entry.name))
    return alive


# --- kill ------------------------------------------------------------------------------------


def test_kill_is_a_dry_run_without_perform(maker: Maker, xpm_cli):
    waiting = maker.job("m.train", 1, "waiting")
    maker.job("m.train", 2, "done")
    result = xpm_cli("jobs", "kill", "--workdir", "{ws}")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "KILLING m.train/000000000000 (dry run)",
        "1 job(s) would be killed: add --perform to kill them.",
    ]
    assert state(maker, waiting) == ("waiting", None)


def test_kill_cancels_a_job_that_has_not_started(maker: Maker, xpm_cli):
    waiting = maker.job("m.train", 1, "waiting")
    result = xpm_cli("jobs", "kill", "--workdir", "{ws}", "--perform")
    assert result.exit_code == 0 and result.stdout.splitlines() == ["CANCELLED m.train/000000000000"]
    assert state(maker, waiting) == ("error", "cancelled")
    listed = xpm_cli("jobs", "list", "--workdir", "{ws}").stdout
    assert listed.splitlines() == ["ERROR       m.train/000000000000"]


def test_kill_stops_a_local_process_and_its_children(maker: Maker, xpm_cli, tmp_path: Path):
    # A job process (its own session, as the launcher makes it) with a child of its own.
    proc = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys; subprocess.run(['sleep', '60'])"],
        start_new_session=True,
    )
    try:
        key = maker.job("m.train", 1, "running", process=local(proc.pid))
        time.sleep(0.2)
        assert len(alive_in_group(proc.pid)) == 2
        result = xpm_cli("jobs", "kill", "--workdir", "{ws}", "--filter", '@state = "RUNNING"', "--perform")
        assert result.exit_code == 0 and result.stdout.splitlines() == ["KILLED m.train/000000000000"]
        assert proc.wait(timeout=5) != 0
        assert state(maker, key) == ("error", "cancelled")
        time.sleep(0.1)
        assert alive_in_group(proc.pid) == []
    finally:
        if proc.poll() is None:
            proc.kill()


def test_kill_of_a_job_whose_process_is_gone_records_cancelled(maker: Maker, xpm_cli):
    key = maker.job("m.train", 1, "running", process=local(dead_pid()))
    result = xpm_cli("jobs", "kill", "--workdir", "{ws}", "--perform")
    assert result.stdout.splitlines() == ["CANCELLED m.train/000000000000"]
    assert state(maker, key) == ("error", "cancelled")


def test_kill_of_a_process_on_another_host_fails_clearly(maker: Maker, xpm_cli):
    key = maker.job("m.train", 1, "running", process={"type": "local", "pid": 12, "host": "elsewhere"})
    result = xpm_cli("jobs", "kill", "--workdir", "{ws}", "--perform")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "KILL FAILED m.train/000000000000: cannot tell from here whether its process runs (elsewhere)"
    ]
    assert state(maker, key) == ("running", None)


def test_kill_with_nothing_running(maker: Maker, xpm_cli):
    maker.job("m.train", 1, "done")
    result = xpm_cli("jobs", "kill", "--workdir", "{ws}", "--perform")
    assert result.exit_code == 0 and result.stdout == "No running jobs found.\n"


def test_kill_skips_a_job_that_ended_since_the_index_said_running(maker: Maker, xpm_cli):
    key = maker.job("m.train", 1, "done")
    JobStore(maker.ws).index.append(IndexEntry(ts=time.time() + 10, task_id=key[0], identifier=key[1], state="running"))
    result = xpm_cli("jobs", "kill", "--workdir", "{ws}", "--perform")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == ["SKIPPED m.train/000000000000: not running (DONE)"]
    assert state(maker, key) == ("done", None)


# --- clean -----------------------------------------------------------------------------------


@pytest.fixture
def mixed(maker: Maker):
    keys = {
        "done": maker.job("m.train", 1, "done"),
        "error": maker.job("m.train", 2, "error", reason="failed"),
        "running": maker.job("m.train", 3, "running", process=local(dead_pid())),
        "waiting": maker.job("m.eval", 4, "waiting"),
    }
    (maker.root / "experiments").mkdir(exist_ok=True)
    (maker.root / "experiments" / "keep.txt").write_text("not a job")
    return keys


def test_clean_is_a_dry_run_without_perform(maker: Maker, mixed, xpm_cli):
    before = sorted(str(p) for p in maker.root.rglob("*"))
    result = xpm_cli("jobs", "clean", "--workdir", "{ws}")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "SKIPPED m.eval/000000000000: WAITING (only jobs that ended or never started are cleaned)",
        "SKIPPED m.train/000000000000: RUNNING (only jobs that ended or never started are cleaned)",
        "CLEANING m.train/000000000000 (dry run)",
        "CLEANING m.train/000000000000 (dry run)",
        "2 job(s) would be deleted: add --perform to delete them.",
    ]
    assert sorted(str(p) for p in maker.root.rglob("*")) == before


def test_clean_deletes_finished_jobs_only(maker: Maker, mixed, xpm_cli):
    result = xpm_cli("jobs", "clean", "--workdir", "{ws}", "--filter", '@state = "DONE" or @state = "ERROR"',
                     "--perform")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == ["CLEANED m.train/000000000000", "CLEANED m.train/000000000000"]
    assert not maker.path(mixed["done"]).exists() and not maker.path(mixed["error"]).exists()
    assert maker.path(mixed["running"]).exists() and maker.path(mixed["waiting"]).exists()
    assert (maker.root / "experiments" / "keep.txt").read_text() == "not a job"
    listed = xpm_cli("jobs", "list", "--workdir", "{ws}").stdout.splitlines()
    assert listed == ["WAITING     m.eval/000000000000", "RUNNING     m.train/000000000000"]
    # Everything else is refused, even when asked for by name.
    result = xpm_cli("jobs", "clean", "--workdir", "{ws}", "--perform")
    assert result.stdout.splitlines() == [
        "SKIPPED m.eval/000000000000: WAITING (only jobs that ended or never started are cleaned)",
        "SKIPPED m.train/000000000000: RUNNING (only jobs that ended or never started are cleaned)",
    ]


def test_clean_rechecks_the_state_under_the_lock(maker: Maker, xpm_cli):
    """The index said done, but the job runs again (an experiment resubmitted it): it stays."""
    key = maker.job("m.train", 1, "running", process=local(dead_pid()))
    JobStore(maker.ws).index.append(IndexEntry(ts=time.time() + 10, task_id=key[0], identifier=key[1], state="done"))
    result = xpm_cli("jobs", "clean", "--workdir", "{ws}", "--perform")
    assert result.stdout.splitlines() == ["SKIPPED m.train/000000000000: RUNNING (only jobs that ended or never started are cleaned)"]
    assert maker.path(key).exists()


def test_clean_by_experiment(maker: Maker, xpm_cli):
    run = ("xp", maker.run("xp"))
    mine = maker.job("m.train", 1, "done", experiment=run)
    other = maker.job("m.train", 2, "done")
    result = xpm_cli("jobs", "clean", "--workdir", "{ws}", "--experiment", "xp", "--perform")
    assert result.stdout.splitlines() == ["CLEANED m.train/000000000000"]
    assert not maker.path(mine).exists() and maker.path(other).exists()
    assert xpm_cli("jobs", "list", "--workdir", "{ws}", "--experiment", "xp").stdout == "No jobs found.\n"


# --- log -------------------------------------------------------------------------------------


def test_log_prints_stderr_or_stdout(maker: Maker, xpm_cli):
    key = maker.job("m.train", 1, "done")
    (maker.path(key) / "train.err").write_text("an error line\n")
    (maker.path(key) / "train.out").write_text("an output line\n")
    jobid = f"m.train/{key[1]}"
    assert xpm_cli("jobs", "log", "--workdir", "{ws}", jobid).stdout == "an error line\n"
    assert xpm_cli("jobs", "log", "--std", "--workdir", "{ws}", jobid).stdout == "an output line\n"
    assert xpm_cli("jobs", "log", "-f", "--workdir", "{ws}", jobid[:20]).stdout == "an error line\n"


def test_log_and_path_of_the_one_job_a_selection_gives(maker: Maker, xpm_cli):
    """The common options of the job commands: --filter and --experiment select the job."""
    run = ("xp", maker.run("xp"))
    bm25 = maker.job("m.train", 1, "done", tags={"model": "bm25"}, experiment=run)
    maker.job("m.train", 2, "error", tags={"model": "splade"}, experiment=run)
    maker.job("m.train", 3, "done", tags={"model": "bm25"})  # not in the experiment
    (maker.path(bm25) / "train.err").write_text("bm25's log\n")
    selected = ("--experiment", "xp", "--filter", 'model = "bm25"')
    assert xpm_cli("jobs", "log", "--workdir", "{ws}", *selected).stdout == "bm25's log\n"
    assert xpm_cli("jobs", "path", "--workdir", "{ws}", *selected).stdout == f"{maker.path(bm25)}\n"
    # With a JOBID, the job must match the selection.
    assert xpm_cli("jobs", "path", "--workdir", "{ws}", *selected, f"m.train/{bm25[1]}").exit_code == 0
    refused = xpm_cli("jobs", "log", "--workdir", "{ws}", "--filter", 'model = "bm25"', f"m.train/{'0' * 63}2")
    assert refused.exit_code == 1
    assert refused.stderr == f"Error: job m.train/{'0' * 63}2 does not match --filter 'model = \"bm25\"'\n"
    # No job, or several: one line, and a non-zero exit.
    none = xpm_cli("jobs", "log", "--workdir", "{ws}", "--filter", 'model = "colbert"')
    assert none.exit_code == 1 and none.stderr == "Error: no job matches --filter 'model = \"colbert\"'\n"
    many = xpm_cli("jobs", "path", "--workdir", "{ws}", "--filter", 'model = "bm25"')
    assert many.exit_code == 1
    assert many.stderr.startswith("Error: 2 jobs match --filter 'model = \"bm25\"' (m.train/")
    assert many.stderr.endswith("): give a JOBID, or narrow the selection\n")
    bare = xpm_cli("jobs", "path", "--workdir", "{ws}")
    assert bare.exit_code == 2 and "give a JOBID, or --experiment/--filter that select one job" in bare.stderr


def test_log_of_a_job_without_log(maker: Maker, xpm_cli):
    key = maker.job("m.train", 1, "done")
    result = xpm_cli("jobs", "log", "--workdir", "{ws}", f"m.train/{key[1]}")
    assert result.exit_code == 1
    err = maker.root / layout.job_stderr(*key)
    assert result.stderr.splitlines() == [f"Error: job m.train/{key[1]} has no standard error log ({err})"]


def test_log_follow_until_the_job_ends(maker: Maker):
    key = maker.job("m.train", 1, "running", process=local(dead_pid()))
    log = maker.path(key) / "train.err"
    log.write_text("first\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "xpm", "jobs", "log", "-f", "--workdir", str(maker.root), f"m.train/{key[1][:12]}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        time.sleep(1.0)
        assert proc.poll() is None, "log -f ended while the job runs"
        with open(log, "a") as f:
            f.write("second\n")
        time.sleep(0.5)
        with open(log, "a") as f:
            f.write("last\n")
        JobStore(maker.ws).record_state(*key, "done")
        out, err = proc.communicate(timeout=10)
        assert (out, err, proc.returncode) == ("first\nsecond\nlast\n", "", 0)
    finally:
        if proc.poll() is None:
            proc.kill()


# --- what the review of the first version found ------------------------------------------------


def sleeper(ignore_term: bool = False) -> subprocess.Popen[bytes]:
    """A process in its own session, as the launcher starts jobs (optionally deaf to SIGTERM)."""
    code = "import signal, time\n"
    if ignore_term:
        code += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    code += "print('ready', flush=True)\ntime.sleep(60)\n"
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True, stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    return proc


def test_kill_never_signals_a_process_that_reused_the_pid(maker: Maker, xpm_cli):
    other = sleeper()
    try:
        process = {**local(other.pid), "start": 1}  # the job's process started at another time
        key = maker.job("m.train", 1, "running", process=process)
        result = xpm_cli("jobs", "kill", "--workdir", "{ws}", "--perform")
        assert result.stdout.splitlines() == ["CANCELLED m.train/000000000000"]
        assert other.poll() is None and state(maker, key) == ("error", "cancelled")
    finally:
        other.kill()


def test_kill_gives_all_jobs_one_grace_period_then_kills(maker: Maker):
    from xpm.control import kill
    from xpm.process import local_process

    deaf = [sleeper(ignore_term=True) for _ in range(2)]
    try:
        keys = [maker.job("m.train", i, "running", process=local_process(p.pid)) for i, p in enumerate(deaf)]
        outcomes = []
        kill(JobStore(maker.ws), keys, outcomes.append, grace=0.5)
        assert [o.result for o in outcomes] == ["killed", "killed"]
        assert [p.wait(timeout=5) for p in deaf] == [-9, -9]
    finally:
        for p in deaf:
            p.kill()


def test_clean_keeps_a_killed_job_whose_process_still_runs(maker: Maker, xpm_cli):
    from xpm.process import local_process

    still = sleeper(ignore_term=True)
    try:
        key = maker.job("m.train", 1, "error", reason="cancelled", process=local_process(still.pid))
        result = xpm_cli("jobs", "clean", "--workdir", "{ws}", "--perform")
        assert result.stdout.splitlines() == [
            "SKIPPED m.train/000000000000: killed, but its process has not stopped yet"
        ]
        assert maker.path(key).exists()
        still.kill()
        still.wait()
        result = xpm_cli("jobs", "clean", "--workdir", "{ws}", "--perform")
        assert result.stdout.splitlines() == ["CLEANED m.train/000000000000"]
    finally:
        still.kill()


def test_clean_reports_each_job_and_goes_on_after_an_error(maker: Maker, xpm_cli):
    first = maker.job("m.train", 1, "done")
    damaged = maker.job("m.train", 2, "done")
    last = maker.job("m.train", 3, "done")
    (maker.root / layout.job_state(*damaged)).write_text("{not json")
    result = xpm_cli("jobs", "clean", "--workdir", "{ws}", "--perform")
    assert result.exit_code == 1
    out = result.stdout.splitlines()
    assert out[0] == "CLEANED m.train/000000000000" and out[2] == "CLEANED m.train/000000000000"
    assert out[1].startswith("CLEAN FAILED m.train/000000000000: ") and "state.json" in out[1]
    assert not maker.path(first).exists() and not maker.path(last).exists() and maker.path(damaged).exists()


def test_clean_of_a_folder_deleted_by_hand(maker: Maker, xpm_cli):
    import shutil

    key = maker.job("m.train", 1, "done")
    shutil.rmtree(maker.path(key))
    result = xpm_cli("jobs", "clean", "--workdir", "{ws}", "--perform")
    assert result.stdout.splitlines() == ["SKIPPED m.train/000000000000: already deleted"]
    assert not maker.path(key).exists()
    assert xpm_cli("jobs", "list", "--workdir", "{ws}").stdout == "No jobs found.\n"
