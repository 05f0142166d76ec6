"""The job process: ``python -m xpm run <job folder>`` runs one task.

The job process records its own state in the workspace (``running``, then
``done`` or ``error``), so a job's state never depends on the experiment process
that launched it staying alive. Every state change is a compare-and-swap under the
job lock (:meth:`xpm.store.jobs.JobStore.transition`): a job process only starts a
job that nobody else runs, and only ends a job it runs itself.

This module is imported by every job, so it imports little: no click, no fsspec.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from xpm.schema import JobStateRecord

#: The states from which a job may start: never run, waiting, or ended in error
STARTABLE = frozenset({"unscheduled", "waiting", "ready", "error"})
#: Exit statuses of the job process
EXIT_DONE, EXIT_FAILED, EXIT_NOT_RUN = 0, 1, 3


class _Current:
    """The job this process runs, for :func:`progress`."""

    store: Any = None
    task_id = ""
    identifier = ""
    #: per progress level: (value, desc, time) of the last recorded event
    last: dict[int, tuple[float, str | None, float]] = {}


def progress(value: float, level: int = 0, desc: str | None = None) -> None:
    """Reports the progress of the running task (``value`` from 0 to 1).

    The progress goes to the job's event log, where the monitors read it. Calls
    that change nothing visible (less than 1% since the last recorded value at
    this level, same description, less than 10 s later) are not recorded, so a
    tight loop may call this freely. Outside a job (in the experiment process),
    it does nothing.
    """
    store = _Current.store
    if store is None:
        return
    value = min(1.0, max(0.0, float(value)))
    now = time.time()
    last = _Current.last.get(level)
    if last is not None:
        last_value, last_desc, last_time = last
        if abs(value - last_value) < 0.01 and desc == last_desc and now - last_time < 10 and value < 1.0:
            return
    _Current.last[level] = (value, desc, now)
    store.progress(_Current.task_id, _Current.identifier, value, level=level, desc=desc)


def local_process(pid: int) -> dict[str, Any]:
    """How other processes find a process of this host (the ``process`` of a job record).

    With the process's start time where the system tells it (Linux), so that a
    later process that reuses the pid is not taken for the job's.
    """
    process: dict[str, Any] = {"type": "local", "pid": pid, "host": socket.gethostname()}
    start = process_start(pid)
    if start is not None:
        process["start"] = start
    return process


def proc_stat(pid: int) -> list[bytes] | None:
    """The fields of ``/proc/<pid>/stat`` after the command (Linux): state first; None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            # The command may hold spaces and parentheses: split after its last ')'.
            return f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot, Linux), or None when unknown."""
    fields = proc_stat(pid)
    try:
        return int(fields[19]) if fields else None  # starttime, the 22nd field of the line
    except (IndexError, ValueError):
        return None


#: Set by the Slurm launcher's job script to the Slurm job id: the job process is that Slurm job
SLURM_JOB_VARIABLE = "XPM_SLURM_JOB_ID"


def this_process() -> dict[str, Any]:
    """How other processes find this one (recorded in the job's state).

    A job the Slurm launcher submitted is known as its Slurm job, so that it is
    followed and killed through Slurm from any host.
    """
    jobid = os.environ.get(SLURM_JOB_VARIABLE)
    if jobid:
        return {"type": "slurm", "jobid": jobid}
    return local_process(os.getpid())


class _TimeLimit:
    """The time limit of this job process, asked once: (monotonic time asked, seconds left then)."""

    known: tuple[float, float | None] | None = None


def remaining_time() -> float | None:
    """Seconds before this job's time limit; None without one (local jobs, Slurm without limit).

    Slurm is asked once per job process (one ``squeue``); later calls count down
    from that answer, so a task may call this in its training loop.
    """
    jobid = os.environ.get(SLURM_JOB_VARIABLE)
    if not jobid:
        return None
    if _TimeLimit.known is None:
        from xpm.launchers.slurm_status import time_left

        _TimeLimit.known = (time.monotonic(), time_left(jobid))
    asked, left = _TimeLimit.known
    return None if left is None else max(0.0, left - (time.monotonic() - asked))


def _is_process(process: dict[str, Any] | None, pid: int) -> bool:
    """Whether a job record's ``process`` is this process (``pid``, or its Slurm job)."""
    return process is not None and process in (local_process(pid), this_process())


def process_alive(process: dict[str, Any] | None) -> bool | None:
    """Whether the process of a job record is alive: None when this host cannot tell."""
    if not process or process.get("type") != "local":
        return None
    if process.get("host") != socket.gethostname():
        return None
    from xpm.locks import pid_alive

    pid = process.get("pid")
    if not (isinstance(pid, int) and pid_alive(pid)):
        return False
    # The pid may have been reused since the job's process ended.
    start = process.get("start")
    return start is None or process_start(pid) in (start, None)


def may_start(record: JobStateRecord | None, pid: int) -> bool:
    """Whether process ``pid`` may start the job whose state is ``record``.

    It may when the scheduler launched it (the record names it), when the job
    never ran or ended in error, or when the process recorded as running it is
    dead. A job that is done, or that a live process runs, is not started again.
    """
    if record is None:
        return True
    if record.state == "done":
        return False
    if record.state == "error" and record.failure_reason == "cancelled" and _is_process(record.process, pid):
        return False  # killed (`jobs kill`) between its launch and its start
    if _is_process(record.process, pid):
        return True
    if record.state in STARTABLE:
        return True
    return process_alive(record.process) is False


def _runs_it(record: JobStateRecord | None, pid: int) -> bool:
    return record is not None and record.state == "running" and _is_process(record.process, pid)


def _on_sigterm(signum: int, frame: Any) -> None:
    from xpm.errors import TaskCancelled

    raise TaskCancelled(f"the job received signal {signum}")


def instances(task: Any) -> tuple[Any, list[Any]]:
    """The task object and its init task objects, sharing the objects of their parameters.

    Init tasks typically prepare an object the task also holds (load weights into
    a model): both must see the same Python object.
    """
    from xpm.config.base import _instance

    memo: dict[int, Any] = {}
    inits = [_instance(init, memo) for init in task.__xpm__.init_tasks]
    return _instance(task, memo), inits


def run(jobdir: Path) -> int:
    """Runs the job of ``jobdir`` in this process; returns the exit status."""
    from xpm import layout
    from xpm.errors import GracefulTimeout, TaskCancelled
    from xpm.serialize import loads
    from xpm.store.jobs import JobStore
    from xpm.workspace import LocalWorkspace

    jobdir = jobdir.resolve()
    task_id, identifier = jobdir.parent.name, jobdir.name
    store = JobStore(LocalWorkspace(str(jobdir.parent.parent.parent)))
    pid = os.getpid()
    started = store.transition(
        task_id,
        identifier,
        lambda record: may_start(record, pid),
        "running",
        process=this_process(),
        started_at=time.time(),
        ended_at=None,
        exit_code=None,
    )
    if started is None:
        print(f"xpm: {task_id}/{identifier} is done or run by another process; not running it", file=sys.stderr)
        return EXIT_NOT_RUN

    _Current.store, _Current.task_id, _Current.identifier = store, task_id, identifier
    signal.signal(signal.SIGTERM, _on_sigterm)
    state, reason, code = "done", None, EXIT_DONE
    try:
        params = (jobdir / layout.PARAMS_FILE).read_bytes()
        task = loads(params, jobpath=jobdir, source=str(jobdir / layout.PARAMS_FILE))
        obj, inits = instances(task)
        for init in inits:
            init.execute()
        obj.execute()
    except GracefulTimeout:
        state, reason, code = "error", "timeout", EXIT_FAILED
        print("xpm: the task stopped before its time limit (GracefulTimeout)", file=sys.stderr)
    except (TaskCancelled, KeyboardInterrupt):
        state, reason, code = "error", "cancelled", EXIT_FAILED
        print("xpm: the job was cancelled", file=sys.stderr)
    except BaseException:  # noqa: BLE001 - whatever the task raised, the job failed
        traceback.print_exc()
        state, reason, code = "error", "failed", EXIT_FAILED
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        sys.stdout.flush()
        sys.stderr.flush()
    # Only the process that runs the job ends it: a `jobs kill` that already
    # recorded "cancelled" keeps its reason.
    store.transition(
        task_id,
        identifier,
        lambda record: _runs_it(record, pid),
        state,
        reason,
        ended_at=time.time(),
        exit_code=code,
    )
    return code


def main(argv: list[str]) -> int:
    """``python -m xpm run JOBDIR``."""
    if len(argv) != 1:
        print("usage: python -m xpm run JOB_FOLDER", file=sys.stderr)
        return 2
    return run(Path(argv[0]))
