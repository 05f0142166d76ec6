"""Acting on jobs from outside their experiment: kill and clean (the CLI and the monitor).

Each action is decided under the job lock right after reading the job's state
record, as every state change is (spec/workspace.md, "Running a job"): a job
cannot start, end or be cleaned by someone else between the decision and the
action.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable, NamedTuple

from xpm import layout
from xpm.errors import XpmError
from xpm.launchers import CannotStop, ProcessHandler, process_alive, process_handler
from xpm.schema import IndexRemoved, JobStateRecord
from xpm.store.index import JobKey
from xpm.store.jobs import JobStore

#: States in which a job may be killed: an experiment will start it, or a process runs it
ACTIVE = ("waiting", "ready", "scheduled", "running")
#: States in which a job folder may be deleted: it ended. Not "unscheduled": an
#: experiment writes params.json before it records the job's first state, so a job
#: without a state record may be one an experiment is submitting.
CLEANABLE = ("done", "error")
#: How long killed jobs have to stop (they get TaskCancelled) before they are killed outright
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


class _Stopping(NamedTuple):
    key: JobKey
    handler: ProcessHandler
    process: dict[str, Any]


def kill(
    store: JobStore, keys: Iterable[JobKey], report: Callable[[Outcome], None], *, grace: float = KILL_GRACE
) -> None:
    """Stops jobs and records them as ``error(cancelled)``; ``report`` gets each outcome.

    A job that has not started yet is cancelled: the experiment that waits to
    start it will not. A running job is recorded as cancelled first, then its
    process is asked to stop (SIGTERM: the task gets ``TaskCancelled``); the
    processes still there after ``grace`` seconds, counted once for all jobs,
    are killed. Whatever a killed job records afterwards, it stays cancelled.
    """
    stopping: list[_Stopping] = []
    for key in keys:
        report(_guarded(key, lambda key=key: _cancel(store, key, stopping)))
    deadline = time.monotonic() + grace
    while stopping:
        stopping = [s for s in stopping if s.handler.alive(s.process)]
        if not stopping or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    for late in stopping:
        late.handler.kill(late.process)


def _cancel(store: JobStore, key: JobKey, stopping: list[_Stopping]) -> Outcome:
    """Records a job as cancelled and sends SIGTERM to its process (added to ``stopping``)."""
    if not store.workspace.isdir(layout.job_dir(*key)):
        return _already_deleted(store, key)
    with store.lock(*key):
        record = store.state(*key)
        state = record.state if record is not None else "unscheduled"
        if record is None or state not in ACTIVE:
            return Outcome(key, "skipped", f"not running ({state.upper()})")
        process = record.process if state in ("scheduled", "running") else None
        handler = process_handler(process)
        alive = handler.alive(process) if handler is not None and process is not None else False
        if process is not None and alive is None:
            where = process.get("host") or process.get("type")
            return Outcome(key, "failed", f"cannot tell from here whether its process runs ({where})")
        if alive:
            assert handler is not None and process is not None
            try:
                handler.check_stoppable(process)
            except CannotStop as exc:
                return Outcome(key, "failed", str(exc))
        store.record_state(*key, "error", "cancelled", ended_at=time.time())
    if not alive:
        return Outcome(key, "cancelled")
    assert handler is not None and process is not None
    handler.terminate(process)
    stopping.append(_Stopping(key, handler, process))
    return Outcome(key, "killed")


def _guarded(key: JobKey, action: Callable[[], Outcome]) -> Outcome:
    """The outcome of an action on one job; an error (a damaged record...) fails that job only."""
    try:
        return action()
    except (XpmError, OSError) as exc:
        return Outcome(key, "failed", str(exc))


def clean_all(store: JobStore, keys: Iterable[JobKey], report: Callable[[Outcome], None]) -> None:
    """Cleans jobs one by one (:func:`clean`); ``report`` gets each outcome as it comes."""
    for key in keys:
        report(_guarded(key, lambda key=key: clean(store, key)))


def not_cleanable(state: str) -> str:
    """Why a job in ``state`` is not cleaned (the same words wherever it is said)."""
    return f"{state.upper()} (only finished jobs are cleaned)"


def clean(store: JobStore, key: JobKey) -> Outcome:
    """Deletes a finished job's folder (and forgets it in the index); refuses any other job."""
    ws = store.workspace
    if not ws.isdir(layout.job_dir(*key)):
        return _already_deleted(store, key)
    with store.lock(*key):
        record = store.state(*key)
        if record is None and not ws.exists(layout.job_params(*key)):
            # Deleted by someone else while we waited for the lock: only our lock is left.
            gone = True
        else:
            gone = False
            refusal = _refusal(record)
            if refusal is not None:
                return Outcome(key, "skipped", refusal)
            ws.remove_job_folder(*key)
            # Under the lock: a resubmission's first entry (with the tags) must come after.
            store.index.append(IndexRemoved(ts=time.time(), task_id=key[0], identifier=key[1]))
    if gone:
        store.remove_leftover_lock(*key)
        return _already_deleted(store, key)
    return Outcome(key, "cleaned")


def _refusal(record: JobStateRecord | None) -> str | None:
    """Why a job may not be deleted now, or None."""
    if record is None or record.state not in CLEANABLE:
        return not_cleanable(record.state if record is not None else "unscheduled")
    if record.failure_reason == "cancelled" and record.process:
        # Killed: recorded before its process stopped, which may still be writing in the folder.
        alive = process_alive(record.process)
        if alive:
            return "killed, but its process has not stopped yet"
        if alive is None:
            return f"killed, and its process may still run ({record.process.get('host')}): clean it from there"
    return None


def _already_deleted(store: JobStore, key: JobKey) -> Outcome:
    store.index.append(IndexRemoved(ts=time.time(), task_id=key[0], identifier=key[1]))
    return Outcome(key, "skipped", "already deleted")
