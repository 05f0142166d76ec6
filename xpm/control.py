"""Acting on jobs from outside their experiment: kill and clean (the CLI and the monitor).

Each action is decided under the job lock right after reading the job's state
record, as every state change is (spec/workspace.md, "Running a job"): a job
cannot start, end or be cleaned by someone else between the decision and the
action.
"""

from __future__ import annotations

import time
from typing import NamedTuple

from xpm.launchers import CannotStop, process_handler
from xpm.schema import IndexRemoved
from xpm.store.index import JobKey
from xpm.store.jobs import JobStore

#: States in which a job may be killed: an experiment will start it, or a process runs it
ACTIVE = ("waiting", "ready", "scheduled", "running")
#: States in which a job folder may be deleted: it ended, so no process runs it. Not
#: "unscheduled": an experiment writes params.json before it records the job's first
#: state, so a job without a state record may be one an experiment is submitting.
CLEANABLE = ("done", "error")
#: How long a killed job has to stop (it gets TaskCancelled) before it is killed outright
KILL_GRACE = 10.0


class Outcome(NamedTuple):
    """What an action did to one job.

    Attributes:
        key: the job.
        result: ``killed``, ``cancelled`` (it had not started), ``cleaned``;
            ``skipped`` when there was nothing to do (the job ended meanwhile...),
            ``failed`` when the action could not be carried out.
        detail: why it was skipped or failed.
    """

    key: JobKey
    result: str
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.result == "failed"


def kill(store: JobStore, key: JobKey, *, grace: float = KILL_GRACE) -> Outcome:
    """Stops a job and records it as ``error(cancelled)``.

    A job that has not started yet is cancelled: the experiment that waits to
    start it will not. A running job is recorded as cancelled first, then its
    process is asked to stop (SIGTERM, so the task gets ``TaskCancelled``) and
    is killed after ``grace`` seconds; whatever it records afterwards, the job
    stays cancelled.
    """
    with store.lock(*key):
        record = store.state(*key)
        state = record.state if record is not None else "unscheduled"
        if record is None or state not in ACTIVE:
            return Outcome(key, "skipped", f"not running ({state})")
        process = record.process if state in ("scheduled", "running") else None
        handler = process_handler(process)
        alive = handler.alive(process) if handler is not None and process is not None else False
        if process is not None and alive is None:
            where = process.get("host") or process.get("type")
            return Outcome(key, "failed", f"cannot tell from here whether its process runs ({where})")
        if alive and handler is not None and process is not None:
            try:
                handler.check_stoppable(process)
            except CannotStop as exc:
                return Outcome(key, "failed", str(exc))
        store.record_state(*key, "error", "cancelled", ended_at=time.time())
    if alive and handler is not None and process is not None:
        handler.stop(process, grace)
        return Outcome(key, "killed")
    return Outcome(key, "cancelled")


def clean(store: JobStore, key: JobKey) -> Outcome:
    """Deletes a finished job's folder (and forgets it in the index); refuses any other job."""
    with store.lock(*key):
        record = store.state(*key)
        state = record.state if record is not None else "unscheduled"
        if state not in CLEANABLE:
            return Outcome(key, "skipped", f"{state} (only finished jobs are cleaned)")
        store.workspace.remove_job_folder(*key)
    store.index.append(IndexRemoved(ts=time.time(), task_id=key[0], identifier=key[1]))
    return Outcome(key, "cleaned")
