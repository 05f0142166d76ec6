"""Exactly once, whatever happens: experiments and jobs in real processes, killed for real."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Callable

from tests.run.conftest import wait_until
from tests.run.tasks import log_lines

Start = Callable[..., "subprocess.Popen[str]"]


def experiment_script(ws: Path, name: str, log: Path, go: Path, key: str = "shared") -> str:
    """An experiment that submits one Record job waiting for ``go``, and prints the job's states."""
    return f"""
        import sys
        from pathlib import Path
        from xpm import experiment
        from tests.run.tasks import Record

        with experiment({str(ws)!r}, {name!r}) as xp:
            task = Record.C(key={key!r}, log=Path({str(log)!r}), wait_for=Path({str(go)!r})).submit()
            print("submitted", task.job.state, flush=True)
        print("final", task.job.state, flush=True)
    """


def job_state(ws: Path, task_id: str = "test.record") -> dict:  # type: ignore[type-arg]
    (folder,) = (ws / "jobs" / task_id).iterdir()
    return json.loads((folder / ".xpm" / "state.json").read_text())


def started(log: Path) -> list[list[str]]:
    return [line for line in log_lines(log) if line[1] == "start"]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_two_experiments_submit_the_same_job(tmp_path: Path, start_script: Start) -> None:
    ws, log, go = tmp_path / "ws", tmp_path / "log", tmp_path / "go"
    first = start_script(experiment_script(ws, "first", log, go), "first.py")
    wait_until(lambda: len(started(log)) == 1, what="the job to start")
    second = start_script(experiment_script(ws, "second", log, go), "second.py")
    assert second.stdout is not None
    assert second.stdout.readline().split() in (["submitted", "scheduled"], ["submitted", "running"])
    go.touch()
    for proc in (first, second):
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert out.splitlines()[-1] == "final done"
    assert [line[1] for line in log_lines(log)] == ["start", "end"], "the job ran once"


def test_killed_experiment_leaves_jobs_running_and_a_new_run_follows_them(tmp_path: Path, start_script: Start) -> None:
    ws, log, go = tmp_path / "ws", tmp_path / "log", tmp_path / "go"
    crashed = start_script(experiment_script(ws, "crash", log, go), "crash.py")
    wait_until(lambda: len(started(log)) == 1, what="the job to start")
    job_pid = int(started(log)[0][3])
    crashed.send_signal(signal.SIGKILL)
    crashed.wait(timeout=10)
    assert pid_alive(job_pid), "the job outlives its experiment process"
    assert job_state(ws)["state"] == "running"

    again = start_script(experiment_script(ws, "crash", log, go), "again.py")
    assert again.stdout is not None
    assert again.stdout.readline().split() == ["submitted", "running"], "the new run follows the running job"
    go.touch()
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    assert out.splitlines()[-1] == "final done"
    assert [line[1] for line in log_lines(log)] == ["start", "end"], "no second process ran the job"
    assert job_state(ws)["process"]["pid"] == job_pid


def test_killed_job_ends_in_error_and_runs_again(tmp_path: Path, start_script: Start) -> None:
    ws, log, go = tmp_path / "ws", tmp_path / "log", tmp_path / "go"
    proc = start_script(experiment_script(ws, "killed", log, go), "killed.py")
    wait_until(lambda: len(started(log)) == 1, what="the job to start")
    os.kill(int(started(log)[0][3]), signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "Traceback" not in err
    assert "Error: experiment killed failed: 1 job(s) ended in error" in err
    record = job_state(ws)
    assert (record["state"], record["failure_reason"], record["exit_code"]) == ("error", "failed", -9)

    go.touch()
    proc = start_script(experiment_script(ws, "killed", log, go), "killed.py")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert [line[1] for line in log_lines(log)] == ["start", "start", "end"]
    assert job_state(ws)["state"] == "done"


def test_second_run_of_an_experiment_waits_for_the_lock(tmp_path: Path, start_script: Start) -> None:
    ws, log, go = tmp_path / "ws", tmp_path / "log", tmp_path / "go"
    holder = start_script(experiment_script(ws, "locked", log, go), "holder.py")
    wait_until(lambda: len(started(log)) == 1, what="the job to start")
    waiter = start_script(experiment_script(ws, "locked", log, go), "waiter.py")
    assert waiter.stderr is not None
    line = waiter.stderr.readline()
    assert f"experiment locked is running (host {os.uname().nodename}, pid {holder.pid}); waiting" in line
    assert waiter.poll() is None
    go.touch()
    for proc in (holder, waiter):
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert out.splitlines()[-1] == "final done"
    # `out` is the waiter's: it ran after the holder, and found the job done.
    assert out.splitlines()[0] == "submitted done", "the second run finds the job done: it does not run it"
    assert [line[1] for line in log_lines(log)] == ["start", "end"]


def test_tasks_defined_in_the_main_script(tmp_path: Path, start_script: Start) -> None:
    ws = tmp_path / "ws"
    proc = start_script(
        f"""
        from xpm import Task, Param, experiment

        class Greet(Task):
            name: Param[str]

            def execute(self):
                print(f"hello {{self.name}}")

        if __name__ == "__main__":
            print("planning")
            with experiment({str(ws)!r}, "main") as xp:
                task = Greet.C(name="world").submit()
            print(task.stdout().read_text().strip())
        """,
        "main_script.py",
    )
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.splitlines() == ["planning", "hello world"]
    params = json.loads(next((ws / "jobs" / "__main__.greet").iterdir()).joinpath("params.json").read_text())
    assert params["objects"][-1]["file"] == str(tmp_path / "main_script.py")
