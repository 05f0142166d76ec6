"""This host's processes, and how a job record names the process that runs a job.

A job's state record says which process runs it (its ``process`` field), so
that any process of the workspace can tell whether that process is alive. On the
wire it stays a plain JSON object with a ``type``: an older xpm reads a record
with a process type it does not know, and a newer type never makes a whole
record unreadable. In Python it is typed by :data:`ProcessRef`.

This module reads nothing but this host's ``/proc``: the job process, the
launchers and the scheduler all ask it, and it imports no other xpm module.
"""

from __future__ import annotations

import os
from typing import Any, Literal, Mapping, TypedDict

__all__ = [
    "SLURM_JOB_VARIABLE",
    "hostname",
    "LocalProcessRef",
    "SlurmProcessRef",
    "ProcessRef",
    "local_process",
    "slurm_process",
    "this_process",
    "is_this_process",
    "proc_stat",
    "process_start",
    "pid_alive",
    "alive_here",
]


def hostname() -> str:
    """This host's name, as ``hostname()`` gives it.

    Through ``os.uname()``, the same gethostname(2): importing socket would add
    2 ms to the start-up of every command that takes a lock or writes a file.
    """
    return os.uname().nodename


class _LocalProcessRequired(TypedDict):
    type: Literal["local"]
    pid: int
    host: str


class LocalProcessRef(_LocalProcessRequired, total=False):
    """A process of a host: its pid, its host name, and when it started (Linux: clock ticks
    since boot), so that a later process that reuses the pid is not taken for it."""

    start: int


class SlurmProcessRef(TypedDict):
    """A Slurm job (``N``, or ``N_i`` for element ``i`` of a job array)."""

    type: Literal["slurm"]
    jobid: str


#: A job record's ``process``, as read: a known type (LocalProcessRef, SlurmProcessRef), or any
#: other object with a ``type`` (a newer xpm's); handlers read the keys of their own type
ProcessRef = Mapping[str, Any]

#: Set by the Slurm launcher's job script to the Slurm job id: the job process is that Slurm job
SLURM_JOB_VARIABLE = "XPM_SLURM_JOB_ID"


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


def local_process(pid: int) -> LocalProcessRef:
    """How other processes find a process of this host (the ``process`` of a job record).

    With the process's start time where the system tells it (Linux), so that a
    later process that reuses the pid is not taken for the job's.
    """
    process: LocalProcessRef = {"type": "local", "pid": pid, "host": hostname()}
    start = process_start(pid)
    if start is not None:
        process["start"] = start
    return process


def slurm_process(jobid: str) -> SlurmProcessRef:
    """How other processes find a Slurm job."""
    return {"type": "slurm", "jobid": jobid}


def this_process() -> ProcessRef:
    """How other processes find this one (recorded in the job's state).

    A job the Slurm launcher submitted is known as its Slurm job, so that it is
    followed and killed through Slurm from any host.
    """
    jobid = os.environ.get(SLURM_JOB_VARIABLE)
    if jobid:
        return slurm_process(jobid)
    return local_process(os.getpid())


def is_this_process(process: ProcessRef | None, pid: int) -> bool:
    """Whether a job record's ``process`` is process ``pid`` of this host, or its Slurm job."""
    return process is not None and process in (local_process(pid), this_process())


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def alive_here(process: ProcessRef | None) -> bool | None:
    """Whether a local process of a job record is alive: None when this host cannot tell
    (no process, another type, another host)."""
    if not process or process.get("type") != "local":
        return None
    if process.get("host") != hostname():
        return None
    pid = process.get("pid")
    if not (isinstance(pid, int) and pid_alive(pid)):
        return False
    # The pid may have been reused since the job's process ended.
    start = process.get("start")
    return start is None or process_start(pid) in (start, None)
