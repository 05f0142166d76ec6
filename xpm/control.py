"""Acting on jobs from outside their experiment: kill and clean (the CLI and the monitor).

Each action is decided under the job lock right after reading the job's state
record, as every state change is (spec/workspace.md, "Running a job"): a job
cannot start, end or be cleaned by someone else between the decision and the
action.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable, NamedTuple

from xpm import layout, state
from xpm.errors import XpmError
from xpm.launchers import CannotStop, ProcessHandler, process_alive, process_handler
from xpm.process import ProcessRef
from xpm.schema import IndexRemoved
from xpm.store.index import JobKey
from xpm.store.jobs import JobStore

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
    process: ProcessRef


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


def _not_actionable(store: JobStore, key: JobKey) -> Outcome | None:
    """The outcome of an action on a job whose folder is gone, or is not a job folder of the
    workspace (left alone: nothing is written in it, nothing deleted); None to go on."""
    folder = layout.job_dir(*key)
    if not store.workspace.isdir(folder) and not store.workspace.is_link(folder):
        return _already_deleted(store, key)
    problem = store.folder_problem(*key)
    return None if problem is None else Outcome(key, "failed", f"not a job folder, left alone: {problem}")


def _cancel(store: JobStore, key: JobKey, stopping: list[_Stopping]) -> Outcome:
    """Records a job as cancelled and sends SIGTERM to its process (added to ``stopping``)."""
    refused = _not_actionable(store, key)
    if refused is not None:
        return refused
    with store.lock(*key):
        record = store.state(*key)
        # A process of a type this xpm does not know cannot be stopped from here: as if dead.
        decision = state.kill(record, lambda process: _handler_alive(process_handler(process), process))
        if decision is state.Decision.SKIP:
            known = record.state if record is not None else state.UNSCHEDULED
            return Outcome(key, "skipped", f"not running ({known.upper()})")
        assert record is not None
        process = record.process
        if decision is state.Decision.UNKNOWN:
            assert process is not None
            where = process.get("host") or process.get("type")
            return Outcome(key, "failed", f"cannot tell from here whether its process runs ({where})")
        handler = process_handler(process) if decision is state.Decision.STOP else None
        if handler is not None:
            assert process is not None
            try:
                handler.check_stoppable(process)
            except CannotStop as exc:
                return Outcome(key, "failed", str(exc))
        store.record_state(*key, state.ERROR, state.CANCELLED, ended_at=time.time())
    if handler is None:
        return Outcome(key, "cancelled")
    assert process is not None
    handler.terminate(process)
    stopping.append(_Stopping(key, handler, process))
    return Outcome(key, "killed")


def _handler_alive(handler: ProcessHandler | None, process: ProcessRef | None) -> bool | None:
    return handler.alive(process) if handler is not None and process is not None else False


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


def clean(store: JobStore, key: JobKey) -> Outcome:
    """Deletes a finished job's folder (and forgets it in the index); refuses any other job."""
    ws = store.workspace
    refused = _not_actionable(store, key)
    if refused is not None:
        return refused
    with store.lock(*key):
        record = store.state(*key)
        if record is None and not ws.exists(layout.job_params(*key)):
            # Deleted by someone else while we waited for the lock: only our lock is left.
            gone = True
        else:
            gone = False
            refusal = state.clean_refusal(record, process_alive)
            if refusal is not None:
                return Outcome(key, "skipped", refusal)
            ws.remove_job_folder(*key)
            # Under the lock: a resubmission's first entry (with the tags) must come after.
            store.index.append(IndexRemoved(ts=time.time(), task_id=key[0], identifier=key[1]))
    if gone:
        store.remove_leftover_lock(*key)
        return _already_deleted(store, key)
    return Outcome(key, "cleaned")


def _already_deleted(store: JobStore, key: JobKey) -> Outcome:
    store.index.append(IndexRemoved(ts=time.time(), task_id=key[0], identifier=key[1]))
    return Outcome(key, "skipped", "already deleted")
