"""Acting on jobs from outside their experiment: kill and clean (the CLI and the monitor).

Each action is decided under the job lock right after reading the job's state
record, as every state change is (spec/workspace.md, "Running a job"): a job
cannot start, end or be cleaned by someone else between the decision and the
action.

On an SSH workspace, a job's process is asked about and stopped on the
workspace's host, through ssh (:class:`HostProcessHandler`): ``kill`` of its
process group there, or ``scancel`` there for a Slurm job.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Callable, Iterable, NamedTuple

from xpm import layout, state
from xpm.errors import XpmError
from xpm.launchers import CannotStop, ProcessHandler, process_handler
from xpm.process import ProcessRef
from xpm.schema import IndexRemoved
from xpm.sshworkspace import SSHWorkspace
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
    handlers = Handlers(store)
    for key in keys:
        report(_guarded(key, partial(_cancel, store, key, stopping, handlers)))
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


def _cancel(store: JobStore, key: JobKey, stopping: list[_Stopping], handlers: Handlers) -> Outcome:
    """Records a job as cancelled and sends SIGTERM to its process (added to ``stopping``)."""
    refused = _not_actionable(store, key)
    if refused is not None:
        return refused
    with store.lock(*key):
        record = store.state(*key)
        # A process of a type this xpm does not know cannot be stopped from here: as if dead.
        decision = state.kill(record, handlers.alive)
        if decision is state.Decision.SKIP:
            known = record.state if record is not None else state.UNSCHEDULED
            return Outcome(key, "skipped", f"not running ({known.upper()})")
        assert record is not None
        process = record.process
        if decision is state.Decision.UNKNOWN:
            assert process is not None
            where = process.get("host") or process.get("type")
            if handlers.host is not None and process.get("host"):
                there = handlers.host.workspace.hostname()
                where = f"{where}, not {there}, the workspace's host: run the command on {where}"
            return Outcome(key, "failed", f"cannot tell from here whether its process runs ({where})")
        handler = handlers.handler(process) if decision is state.Decision.STOP else None
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


def _guarded(key: JobKey, action: Callable[[], Outcome]) -> Outcome:
    """The outcome of an action on one job; an error (a damaged record...) fails that job only."""
    try:
        return action()
    except (XpmError, OSError) as exc:
        return Outcome(key, "failed", str(exc))


def clean_all(store: JobStore, keys: Iterable[JobKey], report: Callable[[Outcome], None]) -> None:
    """Cleans jobs one by one (:func:`clean`); ``report`` gets each outcome as it comes."""
    handlers = Handlers(store)
    for key in keys:
        report(_guarded(key, partial(clean, store, key, handlers)))


def clean(store: JobStore, key: JobKey, handlers: Handlers | None = None) -> Outcome:
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
            refusal = state.clean_refusal(record, (handlers or Handlers(store)).alive_or_unknown)
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


class Handlers:
    """The handlers of the job processes of a workspace's jobs: this host's (:func:`process_handler`),
    or, on an SSH workspace, the workspace's host's (:class:`HostProcessHandler`)."""

    def __init__(self, store: JobStore):
        ws = store.workspace
        self.host = HostProcessHandler(ws) if isinstance(ws, SSHWorkspace) else None

    def handler(self, process: ProcessRef | None) -> ProcessHandler | None:
        if self.host is not None and process and process.get("type") in ("local", "slurm"):
            return self.host
        return process_handler(process)

    def alive(self, process: ProcessRef | None) -> bool | None:
        """Liveness for [state.kill]: a process of a type this xpm does not know cannot be stopped
        from here (as if dead)."""
        handler = self.handler(process)
        return handler.alive(process) if handler is not None and process is not None else False

    def alive_or_unknown(self, process: ProcessRef | None) -> bool | None:
        """Liveness for [state.clean]: None when this host cannot tell."""
        handler = self.handler(process)
        return None if handler is None or process is None else handler.alive(process)


#: Prints the fields of /proc/<pid>/stat after the command (state first), or "alive"/"dead" without /proc
_HOST_STAT = r"""
if [ -r "/proc/$1/stat" ]; then sed 's/.*) //' "/proc/$1/stat" 2>/dev/null || echo dead
elif kill -0 "$1" 2>/dev/null; then echo alive; else echo dead; fi
"""
#: Sends signal $1 to the group that process $2 leads, or else to the process alone
_HOST_SIGNAL = r"""kill -s "$1" -- "-$2" 2>/dev/null || kill -s "$1" "$2" 2>/dev/null || true"""


class HostProcessHandler(ProcessHandler):
    """Job processes of an SSH workspace's host, asked about and stopped through ssh.

    A local job process is known by its pid on the host that ran it: only when that
    host is the workspace's host can it be reached (else :meth:`check_stoppable` says
    where to run the command). A Slurm job is asked about with ``squeue`` and
    stopped with ``scancel`` on the workspace's host (a cluster's login node).
    """

    def __init__(self, workspace: SSHWorkspace):
        self.workspace = workspace

    def _here(self, process: ProcessRef) -> bool:
        return process.get("host") == self.workspace.hostname()

    def alive(self, process: ProcessRef) -> bool | None:
        ws = self.workspace
        if process.get("type") == "slurm":
            from xpm.launchers.slurm_status import LIVE as SLURM_LIVE

            status, out, _ = ws.run('squeue -h -j "$1" -o %T 2>/dev/null', str(process["jobid"]))
            if status != 0 and not out.strip():
                # squeue forgets ended jobs ("Invalid job id"); no squeue at all: cannot tell
                return None if ws.run("command -v squeue")[0] != 0 else False
            return bool(out.split()) and out.split()[0] in SLURM_LIVE
        if not self._here(process):
            return None
        pid = process.get("pid")
        if not isinstance(pid, int):
            return False
        fields = ws.run(_HOST_STAT, str(pid))[1].split()
        if not fields or fields[0] in ("dead", "Z", "X"):
            return False
        start = process.get("start")
        # The pid may have been reused since the job's process ended.
        return start is None or len(fields) < 20 or fields[19] == str(start)

    def check_stoppable(self, process: ProcessRef) -> None:
        ws = self.workspace
        if process.get("type") == "slurm":
            if ws.run("command -v scancel")[0] != 0:
                raise CannotStop(f"scancel is not on {ws.host}: run the command on the cluster")
            return
        if not self._here(process):
            raise CannotStop(
                f"its process runs on host {process.get('host')}, not on {ws.hostname()}: run the command there"
            )

    def _signal(self, process: ProcessRef, signal: str) -> None:
        if process.get("type") == "slurm":
            self.workspace.run('scancel "$1"', str(process["jobid"]))
        else:
            self.workspace.run(_HOST_SIGNAL, signal, str(process["pid"]))

    def terminate(self, process: ProcessRef) -> None:
        self._signal(process, "TERM")

    def kill(self, process: ProcessRef) -> None:
        self._signal(process, "KILL")
