"""The scheduler: runs each submitted job once, in dependency order.

One scheduler thread per experiment process starts jobs whose dependencies are
done, follows them to their end, and records what the job process could not
(a process killed before it recorded its end, a dependency that failed).

Exactly once, across processes: every decision that could race with another
experiment (start a job, mark it failed) is taken under the job lock after
reading the job's state record. A job that is done is never started again; a job
that a live process runs is followed (*attached*), not started again; a job in
error, or whose recorded process is dead, is started again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable

from xpm import layout
from xpm.jobprocess import STARTABLE
from xpm.launchers import LaunchRequest, end_reason, process_alive
from xpm.scheduler.job import FINAL_STATES, Job, run_prepares
from xpm.schema import JobStateRecord
from xpm.store.jobs import JobStore

logger = logging.getLogger("xpm.scheduler")

#: How often jobs run by other processes, and tokens, are checked (seconds)
POLL_INTERVAL = 0.5


class Scheduler:
    """Schedules the jobs of one experiment process.

    Args:
        store: the job records of the (local) workspace.
        env: environment variables for every job.
        python_path: folders the job processes need on ``sys.path``.
        max_jobs: how many jobs a launcher without its own limit runs at once.
        on_change: called (from any thread) with a job whose state changed.
    """

    def __init__(
        self,
        store: JobStore,
        *,
        env: dict[str, str],
        python_path: list[str],
        max_jobs: int,
        on_change: Callable[[Job], None] | None = None,
    ):
        self.store = store
        self.workspace = store.workspace
        self.env = env
        self.python_path = python_path
        self.max_jobs = max_jobs
        self.on_change = on_change
        self.jobs: dict[str, Job] = {}
        self._cond = threading.Condition(threading.RLock())
        #: ready jobs, one queue per launcher (by id), so that a full launcher costs nothing to skip
        self._ready: dict[int, deque[Job]] = {}
        self._exited: deque[tuple[Job, int]] = deque()
        self._attached: list[Job] = []
        self._running: dict[int, int] = {}
        self._prepared: set[str] = set()  # identifiers of the Prepare configurations run
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._last_poll = 0.0

    # --- submission (experiment thread) -------------------------------------------

    def submit(self, job: Job) -> Job:
        """Registers a new job (the experiment gives each identifier once)."""
        with self._cond:
            self.jobs[job.name] = job
            failed = False
            for dep in job.dependencies:
                if not dep.finished:
                    job.waiting_on.add(dep)
                    dep.dependents.append(job)
                elif dep.state != "done":
                    failed = True
            self._admit(job, failed)
            self._cond.notify_all()
        return job

    def _admit(self, job: Job, dependency_failed: bool) -> None:
        """Looks at the job on disk: done, run by a live process, or to be run."""
        record = self.store.state(job.task_id, job.identifier)
        if record is not None and record.state == "done":
            self._finish(job, "done")
            return
        with self.store.lock(job.task_id, job.identifier):
            record = self.store.state(job.task_id, job.identifier)
            if self._taken_care_of(job, record):
                return
            job.retry_count = _kept_retries(record)
            if record is not None and self._exhausted(job, record):
                self._finish(job, "error", record.failure_reason)
                return
            self._set(job, "waiting", tags=job.tags, retry_count=job.retry_count)
        if dependency_failed:
            self._fail_dependency(job)
        elif not job.waiting_on:
            self._make_ready(job)

    # --- the scheduler thread -----------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="xpm-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stops scheduling; jobs already launched keep running."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        all_blocked = False
        while True:
            with self._cond:
                if self._stopping:
                    return
                # Jobs blocked on tokens held by other processes: look again at
                # the next poll, not in a busy loop.
                if not self._exited and (all_blocked or not self._startable()):
                    self._cond.wait(POLL_INTERVAL)
                exited = list(self._exited)
                self._exited.clear()
            try:
                for job, code in exited:
                    self._on_exit(job, code)
                now = time.monotonic()
                if now - self._last_poll >= POLL_INTERVAL:
                    self._last_poll = now
                    self._poll_attached()
                all_blocked = self._start_ready()
            except Exception:  # noqa: BLE001 - the scheduler must survive a bad job
                logger.exception("scheduler error")

    def _startable(self) -> bool:
        return any(queue and self._has_capacity(queue[0]) for queue in self._ready.values())

    def _limit(self, job: Job) -> int:
        return job.launcher.max_jobs or self.max_jobs

    def _has_capacity(self, job: Job) -> bool:
        return self._running.get(id(job.launcher), 0) < self._limit(job)

    def _start_ready(self) -> bool:
        """Starts what can start; True when some ready jobs were tried and none could start.

        Only launchers with a free slot are looked at; their jobs are tried in
        order while slots remain (a job whose tokens are taken stays ready).
        """
        with self._cond:
            queues = [queue for queue in self._ready.values() if queue]
        tried = blocked = 0
        for queue in queues:
            retry: list[Job] = []
            while True:
                with self._cond:
                    if not queue or not self._has_capacity(queue[0]):
                        break
                    job = queue.popleft()
                if job.finished:
                    continue
                tried += 1
                if not self._start(job):
                    retry.append(job)
                    blocked += 1
            with self._cond:
                queue.extendleft(reversed(retry))
        return tried > 0 and blocked == tried

    def _take_tokens(self, job: Job) -> bool:
        taken = []
        for dep in job.tokens:
            if not dep.token.try_acquire(job.task_id, job.identifier, dep.count):
                for other in taken:
                    other.token.release(job.task_id, job.identifier)
                return False
            taken.append(dep)
        return True

    def _release_tokens(self, job: Job) -> None:
        for dep in job.tokens:
            dep.token.release(job.task_id, job.identifier)

    def _start(self, job: Job) -> bool:
        """Launches a ready job; False when its tokens are not free (it stays ready)."""
        try:
            run_prepares(job, self._prepared)
        except Exception:  # noqa: BLE001 - a failed prepare fails the job, with its traceback
            logger.exception("prepare of %s failed", job.name)
            with self.store.lock(job.task_id, job.identifier):
                self._set(job, "error", "failed")
            self._finish(job, "error", "failed")
            return True
        if not self._take_tokens(job):
            return False
        launched = self._launch(job)
        if launched is None:
            return True
        pid = launched.process.get("pid")
        for dep in job.tokens:
            if isinstance(pid, int):
                dep.token.set_holder(job.task_id, job.identifier, dep.count, pid)
        job.launched = launched
        with self._cond:
            self._running[id(job.launcher)] = self._running.get(id(job.launcher), 0) + 1
        waiter = threading.Thread(
            target=self._wait_process, args=(job, launched), name=f"xpm-wait-{job.identifier[:8]}", daemon=True
        )
        waiter.start()
        return True

    def _launch(self, job: Job) -> Any:
        """Launches the job under its lock, unless it is done or run elsewhere (then None)."""
        with self.store.lock(job.task_id, job.identifier):
            record = self.store.state(job.task_id, job.identifier)
            if _run_elsewhere(record):
                self._release_tokens(job)
                self._attach(job, record)
                return None
            if not (_ended(record) or _cancelled(record)):
                launched = self._launch_locked(job)
                if launched is not None:
                    return launched
        # Done meanwhile (by another experiment), cancelled by `jobs kill` (and
        # maybe cleaned) while it waited, or the launch failed: the job ends here,
        # outside the lock (its dependents take their own locks).
        self._release_tokens(job)
        if record is None:
            self.store.remove_leftover_lock(job.task_id, job.identifier)
        if _ended(record) or _cancelled(record):
            self._finish(job, *_end_of(record))
        else:
            self._finish(job, "error", "failed")
        return None

    def _launch_locked(self, job: Job) -> Any:
        self._rotate_logs(job)
        request = LaunchRequest(
            jobdir=Path(job.jobpath),
            task_id=job.task_id,
            identifier=job.identifier,
            stdout=Path(job.stdout),
            stderr=Path(job.stderr),
            env=self.env,
            python_path=self.python_path,
        )
        try:
            launched = job.launcher.launch(request)
        except OSError as exc:
            logger.error("cannot launch %s: %s", job.name, exc)
            self._set(job, "error", "failed")
            return None
        self._set(
            job,
            "scheduled",
            process=launched.process,
            retry_count=job.retry_count,
            started_at=None,
            ended_at=None,
            exit_code=None,
        )
        return launched

    def _wait_process(self, job: Job, launched: Any) -> None:
        code = launched.wait()
        with self._cond:
            self._exited.append((job, code))
            self._cond.notify_all()

    def _rotate_logs(self, job: Job) -> None:
        """Keeps the logs of an earlier attempt as ``<name>.err.1``, ``.2``...: nothing is overwritten."""
        ws = self.workspace
        logs = {"out": layout.job_stdout(job.task_id, job.identifier), "err": layout.job_stderr(job.task_id, job.identifier)}
        if not any(ws.size(rel) for rel in logs.values()):
            return
        n = 1
        while any(ws.exists(layout.job_rotated_log(job.task_id, job.identifier, s, n)) for s in logs):
            n += 1
        for suffix, rel in logs.items():
            if ws.exists(rel):
                ws.rename(rel, layout.job_rotated_log(job.task_id, job.identifier, suffix, n))

    # --- following jobs -----------------------------------------------------------

    def _on_exit(self, job: Job, code: int) -> None:
        """The process this experiment launched ended."""
        with self._cond:
            self._running[id(job.launcher)] -= 1
            self._cond.notify_all()
        process = job.launched.process if job.launched else None
        job.launched = None
        record = self._end_if_dead(job, process, code)
        self._release_tokens(job)
        self._settle(job, record)

    def _end_if_dead(self, job: Job, process: dict[str, Any] | None, code: int | None) -> JobStateRecord | None:
        """Records ``error(failed)`` for a job whose process ended without recording its end."""

        reason = end_reason(process)

        def unfinished(record: JobStateRecord | None) -> bool:
            if record is None or record.process != process:
                return False
            # A Slurm job stopped at its time limit records "cancelled" (it got
            # SIGTERM like any kill): Slurm knows better.
            return record.state in ("scheduled", "running") or (
                reason == "timeout" and record.state == "error" and record.failure_reason == "cancelled"
            )

        ended = self.store.transition(
            job.task_id, job.identifier, unfinished, "error", reason, ended_at=time.time(), exit_code=code
        )
        if ended is not None:
            logger.warning("job %s ended without recording its state (exit status %s)", job.name, code)
            if self.on_change is not None:
                self.on_change(job)
            return ended
        return self.store.state(job.task_id, job.identifier)

    def _settle(self, job: Job, record: JobStateRecord | None) -> None:
        """Decides what follows an attempt: the end, a retry, or following another process."""
        if record is None:
            # Admission recorded a state: a job without one was killed and cleaned.
            self._finish(job, "error", "cancelled")
            return
        if record.state not in FINAL_STATES:
            if _run_elsewhere(record):
                self._attach(job, record)
            else:
                self._make_ready(job)
            return
        if record.state == "error" and record.failure_reason == "timeout" and job.resumable:
            if record.retry_count < job.max_retries:
                job.retry_count = record.retry_count + 1
                logger.info("job %s stopped on a timeout: running it again (retry %d)", job.name, job.retry_count)
                with self.store.lock(job.task_id, job.identifier):
                    self._set(job, "waiting", retry_count=job.retry_count)
                self._make_ready(job)
                return
        self._finish(job, record.state, record.failure_reason)

    def _attach(self, job: Job, record: JobStateRecord | None) -> None:
        job.attached = record.process if record is not None else None
        job.state = record.state if record is not None else job.state
        logger.info("job %s is run by another process (%s): following it", job.name, job.attached)
        with self._cond:
            self._attached.append(job)
        if self.on_change is not None:
            self.on_change(job)

    def _poll_attached(self) -> None:
        with self._cond:
            attached = list(self._attached)
        for job in attached:
            record = self.store.state(job.task_id, job.identifier)
            if record is not None and record.state not in FINAL_STATES:
                if record.state != job.state:
                    job.state = record.state
                    if self.on_change is not None:
                        self.on_change(job)
                if process_alive(record.process) is not False:
                    continue
                record = self._end_if_dead(job, record.process, None)
            with self._cond:
                self._attached.remove(job)
            job.attached = None
            self._settle(job, record)

    # --- state changes ------------------------------------------------------------

    def _set(self, job: Job, state: str, reason: str | None = None, **fields: Any) -> None:
        """Records a state (the caller holds the job lock) and tells the listener."""
        self.store.record_state(job.task_id, job.identifier, state, reason, **fields)
        job.state, job.failure_reason = state, reason
        if self.on_change is not None:
            self.on_change(job)

    def _make_ready(self, job: Job) -> None:
        job.state = "ready"
        with self._cond:
            self._ready.setdefault(id(job.launcher), deque()).append(job)
            self._cond.notify_all()

    def _exhausted(self, job: Job, record: JobStateRecord) -> bool:
        """A resumable job whose timeouts used up its retries stays in error (until max_retries grows)."""
        return (
            record.state == "error"
            and record.failure_reason == "timeout"
            and job.resumable
            and record.retry_count >= job.max_retries
        )

    def _taken_care_of(self, job: Job, record: JobStateRecord | None) -> bool:
        """Under the job lock: a done job is finished, a job run elsewhere is followed (True)."""
        if record is not None and record.state == "done":
            self._finish(job, "done")
            return True
        if _run_elsewhere(record):
            self._attach(job, record)
            return True
        return False

    def _fail_dependency(self, job: Job) -> None:
        """A dependency failed: the job ends in error without running, unless done or run elsewhere."""
        with self.store.lock(job.task_id, job.identifier):
            if self._taken_care_of(job, self.store.state(job.task_id, job.identifier)):
                return
            self._set(job, "error", "dependency")
        self._finish(job, "error", "dependency")

    def _finish(self, job: Job, state: str, reason: str | None = None) -> None:
        with self._cond:
            if job.finished:
                return
            job.state, job.failure_reason = state, reason
            job._finished.set()
            dependents = list(job.dependents)
            self._cond.notify_all()
        if self.on_change is not None:
            self.on_change(job)
        for dependent in dependents:
            dependent.waiting_on.discard(job)
            if dependent.finished:
                continue
            if state != "done":
                self._fail_dependency(dependent)
            elif not dependent.waiting_on:
                self._make_ready(dependent)

    # --- for the experiment ---------------------------------------------------------

    def wait_all(self, report: Callable[[], None] | None = None, interval: float = 0.5) -> None:
        """Blocks until every job ended, calling ``report`` at most every ``interval`` seconds."""
        while True:
            with self._cond:
                if all(job.finished for job in self.jobs.values()):
                    return
                self._cond.wait(interval)
            if report is not None:
                report()


def _run_elsewhere(record: JobStateRecord | None) -> bool:
    """Whether a live process (or one this host cannot check) runs the job."""
    if record is None or record.state not in ("scheduled", "running"):
        return False
    return process_alive(record.process) is not False


def _ended(record: JobStateRecord | None) -> bool:
    """Done, or gone: this experiment admitted the job (recorded ``waiting``), so no record
    means that it was killed and its folder cleaned since."""
    return record is None or record.state == "done"


def _cancelled(record: JobStateRecord | None) -> bool:
    """Killed (``jobs kill``) since this experiment admitted the job: it must not start."""
    return record is not None and record.state == "error" and record.failure_reason == "cancelled"


def _end_of(record: JobStateRecord | None) -> tuple[str, str | None]:
    """The state and reason a job ends with, given its ended or cancelled record."""
    if record is None:
        return "error", "cancelled"
    return record.state, record.failure_reason


def _kept_retries(record: JobStateRecord | None) -> int:
    """Retries count only along timeouts: another error starts the count again."""
    if record is not None and record.state == "error" and record.failure_reason == "timeout":
        return record.retry_count
    return 0


__all__ = ["Scheduler", "POLL_INTERVAL", "STARTABLE"]
