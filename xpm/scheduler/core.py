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

import contextlib
import logging
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable

from xpm import state
from xpm.errors import XpmError, os_error_text
from xpm.launchers import LaunchRequest, end_reason, process_alive
from xpm.launchers.listeners import Listeners
from xpm.process import ProcessRef
from xpm.scheduler.callbacks import Callbacks
from xpm.scheduler.job import Job
from xpm.scheduler.prepare import PrepareStep
from xpm.schema import JobStateRecord
from xpm.store.jobs import JobStore

logger = logging.getLogger("xpm.scheduler")

#: How often jobs run by other processes, and tokens, are checked (seconds)
POLL_INTERVAL = 0.5
#: The limit of launchers with none, whose jobs do not run on this host
UNLIMITED = 1 << 30
#: How long ready jobs gather before a launcher that starts jobs together takes them (seconds)
GATHER_DELAY = 0.2


class SchedulerStopped(XpmError):
    """The scheduler stopped before every job ended: a job's record could not be read or written."""

    def __init__(self, cause: BaseException):
        self.cause = cause
        if isinstance(cause, OSError):
            what = f"the workspace cannot be written: {os_error_text(cause)}"
        else:
            what = f"the scheduler failed ({type(cause).__name__}: {cause})"
        super().__init__(f"{what}; the experiment stops, and its running jobs go on (run it again to follow them)")


class Scheduler:
    """Schedules the jobs of one experiment process.

    Args:
        store: the job records of the (local) workspace.
        env: environment variables for every job.
        python_path: folders the job processes need on ``sys.path``.
        max_jobs: how many jobs a local launcher without its own limit runs at once.
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
        #: told of submitted jobs and of state changes: the experiment's progress first, then
        #: the user's listeners (``xp.scheduler.addlistener``)
        self.listeners = Listeners(on_change)
        self.on_change: Callable[[Job], None] | None = self.listeners.state_changed
        self.addlistener, self.removelistener = self.listeners.add, self.listeners.discard
        self.jobs: dict[str, Job] = {}
        self._cond = threading.Condition(threading.RLock())
        #: ready jobs, one queue per launcher (by id), so that a full launcher costs nothing to skip
        self._ready: dict[int, deque[Job]] = {}
        #: when each launcher's queue last grew (ready jobs gather for launchers that batch)
        self._ready_at: dict[int, float] = {}
        self._exited: deque[tuple[Job, int]] = deque()
        self._attached: list[Job] = []
        self._running: dict[int, int] = {}
        #: what other threads hand to the scheduler thread (a preparation that ended)
        self._posted: deque[Callable[[], None]] = deque()
        #: the on_completed callbacks of the jobs, run in a thread of their own
        self.callbacks = Callbacks(self._cond)
        self._stopping = False
        #: why the scheduler stopped before every job ended (see :meth:`wait_all`)
        self.failure: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._last_poll = 0.0

    # --- submission (experiment thread) -------------------------------------------

    def submit(self, job: Job, *, new: bool = False) -> Job:
        """Registers a new job (the experiment gives each identifier once).

        ``new``: this experiment just created the job's folder (so it cannot be
        done yet: no need to look before taking its lock).
        """
        with self._cond:
            self.jobs[job.name] = job
            job.scheduler = self
            failed = False
            for dep in job.dependencies:
                if not dep.finished:
                    job.waiting_on.add(dep)
                    dep.dependents.append(job)
                elif dep.state != state.DONE:
                    failed = True
            self._admit(job, failed, new)
            self._cond.notify_all()
        self.listeners.submitted(job)
        return job

    def need(self, job: Job) -> None:
        """A transient job is submitted again as not transient: it runs (if it did not already)."""
        with self._cond:
            job.needed = True
            if job.dormant:
                self._wake(job)
            self._cond.notify_all()

    def add_on_completed(self, job: Job, callback: Callable[[], Any]) -> None:
        """Calls ``callback`` once ``job`` is done: queued now if it is, kept for its end otherwise."""
        with self._cond:
            if job.finished and job.state == state.DONE:
                self.callbacks.put(job.name, [callback])
            else:
                job.on_completed = (*job.on_completed, callback)

    def _admit(self, job: Job, dependency_failed: bool, new: bool) -> None:
        """Looks at the job on disk: done, run by a live process, or to be run (or, for a
        transient job that no task needs, left alone)."""
        record = None
        if not new:
            # Done jobs (the common case when an experiment runs again) need no lock.
            record = self.store.state(job.task_id, job.identifier)
            if record is not None and record.state == state.DONE:
                if job.tags:
                    self.store.add_tags(job.task_id, job.identifier, state.DONE, job.tags)
                self._finish(job, state.DONE)
                return
        if job.transient.is_transient and not job.needed and not state.run_elsewhere(record, process_alive):
            # Nothing is written for it: its folder may not even exist (see _wake).
            job.dormant = True
            job.state = state.TRANSIENT
            return
        with self.store.lock(job.task_id, job.identifier):
            record = self.store.state(job.task_id, job.identifier)
            if record is None:
                self.store.restore(job.task_id, job.identifier, lambda: _params(job))
            decision = state.admit(record, process_alive, resumable=job.resumable, max_retries=job.max_retries)
            if self._taken_care_of(job, record, decision):
                return
            job.retry_count = state.kept_retries(record)
            if decision is state.Decision.EXHAUSTED:
                assert record is not None
                self._finish(job, state.ERROR, record.failure_reason)
                return
            self._set(job, state.WAITING, tags=job.tags, retry_count=job.retry_count, previous=record)
        # The job is to run: what it waits for is needed now (transient jobs, preparations).
        for dep in list(job.waiting_on):
            self._need(dep)
        if dependency_failed:
            self._fail_dependency(job)
        elif not job.waiting_on:
            self._make_ready(job)

    def _need(self, dep: Job | PrepareStep) -> None:
        """A job that is to run waits for ``dep``: a preparation starts, a dormant transient job wakes."""
        if isinstance(dep, PrepareStep):
            if not dep.started:
                dep.start(lambda step: self._post(lambda: self._prepared(step)))
        elif dep.dormant:
            self._wake(dep)

    def _wake(self, job: Job) -> None:
        """A transient job that was left alone is needed: its folder is written, and it is admitted."""
        job.dormant = False
        job.needed = True
        job.state = state.UNSCHEDULED
        create, job.create = job.create, None
        created = create() if create is not None else None
        failed = any(dep.finished and dep.state != state.DONE for dep in job.dependencies)
        self._admit(job, failed, created is True)

    def _prepared(self, step: PrepareStep) -> None:
        """A preparation ended (in the scheduler thread): the jobs that wait for it go on, or fail."""
        if step.error is None:
            self._finish(step, state.DONE)
        else:
            self._finish(step, state.ERROR, state.FAILED)

    def _post(self, action: Callable[[], None]) -> None:
        """Has the scheduler thread run ``action`` (from another thread)."""
        with self._cond:
            self._posted.append(action)
            self._cond.notify_all()

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
                if not self._exited and not self._posted:
                    wait = POLL_INTERVAL if all_blocked else self._until_startable()
                    if wait > 0:
                        self._cond.wait(wait)
                exited = list(self._exited)
                self._exited.clear()
                posted = list(self._posted)
                self._posted.clear()
            try:
                for action in posted:
                    action()
                for job, code in exited:
                    self._on_exit(job, code)
                now = time.monotonic()
                if now - self._last_poll >= POLL_INTERVAL:
                    self._last_poll = now
                    self._poll_attached()
                all_blocked = self._start_ready()
            except Exception as exc:  # noqa: BLE001 - whatever it is, the experiment must not wait forever
                # A job's record could not be read or written (a full disk, a lost mount...):
                # going on would leave that job unsettled, and wait_all waiting forever. The
                # experiment stops here; the jobs already launched go on (a later run follows them).
                logger.debug("the scheduler stops", exc_info=True)
                with self._cond:
                    self.failure = exc
                    self._stopping = True
                    self._cond.notify_all()
                return

    def _until_startable(self) -> float:
        """Seconds until a ready job may start: 0 now, else until ready jobs have gathered
        (launchers that start jobs together), at most :data:`POLL_INTERVAL`."""
        wait = POLL_INTERVAL
        for key, queue in self._ready.items():
            if queue and self._has_capacity(queue[0]):
                wait = min(wait, self._gathering(key, queue))
        return wait

    def _gathering(self, key: int, queue: deque[Job]) -> float:
        """How much longer a launcher's ready jobs gather before a batch starts (0: start now).

        A loop that submits a thousand jobs makes them ready one by one: a
        launcher that starts jobs together waits until none came for
        :data:`GATHER_DELAY`, or until a full batch is ready.
        """
        launcher = queue[0].launcher
        if launcher.batch_size <= 1 or len(queue) >= min(launcher.batch_size, self._free_slots(queue[0])):
            return 0.0
        return max(0.0, self._ready_at.get(key, 0.0) + GATHER_DELAY - time.monotonic())

    def _limit(self, job: Job) -> int:
        launcher = job.launcher
        return launcher.max_jobs or (self.max_jobs if launcher.local else UNLIMITED)

    def _free_slots(self, job: Job) -> int:
        return self._limit(job) - self._running.get(id(job.launcher), 0)

    def _has_capacity(self, job: Job) -> bool:
        return self._free_slots(job) > 0

    def _start_ready(self) -> bool:
        """Starts what can start; True when some ready jobs were tried and none could start.

        Only launchers with a free slot are looked at; their jobs are tried in
        order while slots remain (a job whose tokens are taken stays ready), and
        launched together by launchers that can (up to their ``batch_size``).
        """
        with self._cond:
            queues = [(key, queue) for key, queue in self._ready.items() if queue]
        tried = blocked = 0
        for key, queue in queues:
            retry: list[Job] = []
            while True:
                with self._cond:
                    if not queue or not self._has_capacity(queue[0]) or self._gathering(key, queue) > 0:
                        break
                    size = min(queue[0].launcher.batch_size, self._free_slots(queue[0]))
                    batch = [queue.popleft() for _ in range(min(size, len(queue)))]
                claimed = []
                for job in batch:
                    if job.finished:
                        continue
                    tried += 1
                    if self._claim(job):
                        claimed.append(job)
                    else:
                        retry.append(job)
                        blocked += 1
                if claimed:
                    self._launch(claimed)
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

    def _claim(self, job: Job) -> bool:
        """Takes the tokens of a ready job: True to launch it, False when they are not free (it
        stays ready). Its preparations are among its dependencies: they are done."""
        return self._take_tokens(job)

    def _launch(self, jobs: list[Job]) -> None:
        """Launches claimed jobs of one launcher together, each under its lock, unless it is
        done or run elsewhere meanwhile; then follows each launched job (:meth:`_follow`).

        The locks are taken in one global order (task id, identifier), so that two
        experiments launching overlapping batches cannot deadlock.
        """
        launched: list[tuple[Job, Any]] = []
        ended: list[tuple[Job, JobStateRecord | None]] = []
        failed: list[Job] = []
        with contextlib.ExitStack() as locks:
            todo = []
            for job in sorted(jobs, key=lambda job: (job.task_id, job.identifier)):
                locks.enter_context(self.store.lock(job.task_id, job.identifier))
                record = self.store.state(job.task_id, job.identifier)
                decision = state.at_launch(record, process_alive)
                if decision is state.Decision.FOLLOW:
                    self._release_tokens(job)
                    self._attach(job, record)
                elif decision is state.Decision.END:
                    ended.append((job, record))
                else:
                    todo.append((job, record))
            requests = [self._request(job) for job, _ in todo]
            results = jobs[0].launcher.launch_many(requests) if todo else []
            for (job, record), result in zip(todo, results):
                if isinstance(result, Exception):
                    logger.error("cannot launch %s: %s", job.name, result)
                    self._set(job, state.ERROR, state.FAILED)
                    failed.append(job)
                    continue
                self._set(
                    job,
                    state.SCHEDULED,
                    previous=record,
                    process=result.process,
                    retry_count=job.retry_count,
                    started_at=None,
                    ended_at=None,
                    exit_code=None,
                )
                launched.append((job, result))
        # Done meanwhile (by another experiment), cancelled by `jobs kill` (and
        # maybe cleaned) while it waited, or the launch failed: the job ends here,
        # outside the locks (its dependents take their own locks).
        for job, record in ended:
            self._release_tokens(job)
            if record is None:
                self.store.remove_leftover_lock(job.task_id, job.identifier)
            self._finish(job, *state.end_of(record))
        for job in failed:
            self._release_tokens(job)
            self._finish(job, state.ERROR, state.FAILED)
        for job, result in launched:
            self._follow(job, result)

    def _follow(self, job: Job, launched: Any) -> None:
        pid = launched.process.get("pid")
        for dep in job.tokens:
            if isinstance(pid, int):
                dep.token.set_holder(job.task_id, job.identifier, dep.count, pid)
        job.launched = launched
        with self._cond:
            self._running[id(job.launcher)] = self._running.get(id(job.launcher), 0) + 1
        launched.on_exit(lambda code: self._exited_now(job, code))

    def _request(self, job: Job) -> LaunchRequest:
        """What the launcher needs (under the job lock: earlier logs are set aside first)."""
        self.store.rotate_logs(job.task_id, job.identifier)
        return LaunchRequest(
            jobdir=Path(job.jobpath),
            task_id=job.task_id,
            identifier=job.identifier,
            stdout=Path(job.stdout),
            stderr=Path(job.stderr),
            # The job's own variables (submit hooks) win over the experiment's.
            env={**self.env, **job.environ} if job.environ else self.env,
            python_path=self.python_path,
            workdir=self.workspace.local_path(""),
        )

    def _exited_now(self, job: Job, code: int) -> None:
        """A launched process ended (called from the thread that learned it)."""
        with self._cond:
            self._exited.append((job, code))
            self._cond.notify_all()

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

    def _end_if_dead(self, job: Job, process: ProcessRef | None, code: int | None) -> JobStateRecord | None:
        """Records ``error`` for a job whose process ended without recording its end; returns
        the job's record. The record is read once, and the process's handler is asked why it
        ended only when the record says that it did not record it."""
        with self.store.lock(job.task_id, job.identifier):
            record = self.store.state(job.task_id, job.identifier)
            reason = state.unrecorded_end(record, process, lambda: end_reason(process))
            if reason is None:
                return record
            ended = self.store.record_state(
                job.task_id, job.identifier, state.ERROR, reason, previous=record, ended_at=time.time(), exit_code=code
            )
        logger.warning("job %s ended without recording its state (exit status %s)", job.name, code)
        if self.on_change is not None:
            self.on_change(job)
        return ended

    def _settle(self, job: Job, record: JobStateRecord | None) -> None:
        """Decides what follows an attempt: the end, a retry, or following another process."""
        decision = state.settle(record, process_alive, resumable=job.resumable, max_retries=job.max_retries)
        if decision is state.Decision.FOLLOW:
            self._attach(job, record)
        elif decision is state.Decision.READY:
            self._make_ready(job)
        elif decision is state.Decision.RETRY:
            assert record is not None
            job.retry_count = record.retry_count + 1
            logger.info("job %s stopped on a timeout: running it again (retry %d)", job.name, job.retry_count)
            with self.store.lock(job.task_id, job.identifier):
                self._set(job, state.WAITING, retry_count=job.retry_count)
            self._make_ready(job)
        else:
            self._finish(job, *state.end_of(record))

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
            if record is not None and record.state not in state.FINAL:
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

    def _set(self, job: Job, new: str, reason: str | None = None, **fields: Any) -> None:
        """Records a state (the caller holds the job lock) and tells the listener."""
        self.store.record_state(job.task_id, job.identifier, new, reason, **fields)
        job.set_state(new, reason)
        if self.on_change is not None:
            self.on_change(job)

    def _make_ready(self, job: Job) -> None:
        job.state = state.READY
        with self._cond:
            self._ready.setdefault(id(job.launcher), deque()).append(job)
            self._ready_at[id(job.launcher)] = time.monotonic()
            self._cond.notify_all()

    def _taken_care_of(self, job: Job, record: JobStateRecord | None, decision: state.Decision) -> bool:
        """Under the job lock, given what :func:`xpm.state.admit` (or ``dependency_failed``)
        decided: a done job is finished, a job run elsewhere is followed (True)."""
        if decision is state.Decision.DONE:
            self._finish(job, state.DONE)
            return True
        if decision is state.Decision.FOLLOW:
            self._attach(job, record)
            return True
        return False

    def _fail_dependency(self, job: Job) -> None:
        """A dependency failed: the job ends in error without running, unless done, run
        elsewhere, or killed meanwhile (it keeps the reason ``cancelled`` that kill printed)."""
        with self.store.lock(job.task_id, job.identifier):
            record = self.store.state(job.task_id, job.identifier)
            decision = state.dependency_failed(record, process_alive)
            if self._taken_care_of(job, record, decision):
                return
            if decision is state.Decision.FAIL:
                self._set(job, state.ERROR, state.DEPENDENCY)
        if decision is state.Decision.END:
            if record is None:
                # Killed and cleaned: remove what taking its lock made again, nothing else.
                self.store.remove_leftover_lock(job.task_id, job.identifier)
            self._finish(job, *state.end_of(record))
        else:
            self._finish(job, state.ERROR, state.DEPENDENCY)

    def _finish(self, job: Job | PrepareStep, end: str, reason: str | None = None) -> None:
        """The job (or preparation) ended in this experiment: its callbacks are queued (done), and
        the jobs that wait for it go on (done) or fail (dependency)."""
        with self._cond:
            if job.finished:
                return
            job.set_state(end, reason)
            job._finished.set()
            dependents = list(job.dependents)
            if isinstance(job, Job) and end == state.DONE and job.on_completed:
                # Under the condition: whoever waits for the end sees the callbacks queued.
                callbacks, job.on_completed = list(job.on_completed), ()
                self.callbacks.put(job.name, callbacks)
            self._cond.notify_all()
        if self.on_change is not None and isinstance(job, Job):
            self.on_change(job)
        for dependent in dependents:
            dependent.waiting_on.discard(job)
            if dependent.finished or dependent.dormant:
                continue  # a dormant job looks at its dependencies when it wakes
            if end != state.DONE:
                self._fail_dependency(dependent)
            elif not dependent.waiting_on:
                self._make_ready(dependent)

    # --- for the experiment ---------------------------------------------------------

    def wait_all(self, report: Callable[[], None] | None = None, interval: float = 0.5) -> None:
        """Blocks until every job ended, calling ``report`` at most every ``interval`` seconds.

        Raises:
            SchedulerStopped: the scheduler could not go on (its jobs are left as they are).
        """
        while True:
            with self._cond:
                if self.failure is not None:
                    raise SchedulerStopped(self.failure)
                if self.callbacks.idle and all(job.finished or job.dormant for job in self.jobs.values()):
                    return
                self._cond.wait(interval)
            if report is not None:
                report()


__all__ = ["Scheduler", "SchedulerStopped", "POLL_INTERVAL"]


def _params(job: Job) -> bytes:
    """The job's params.json, encoded again (its generated paths are resolved already)."""
    from xpm.serialize import dumps

    return dumps(job.config, jobpath=Path(job.jobpath))
