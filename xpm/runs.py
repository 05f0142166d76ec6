"""Runs of experiments: ``with experiment(workspace, name) as xp:`` and the tasks submitted inside.

An experiment run takes the experiment lock (one run of an experiment at a time),
creates its run folder, records its environment, and runs the jobs its tasks
submit through a :class:`~xpm.scheduler.core.Scheduler`. On a normal exit it waits
for every job and raises :class:`FailedExperiment` if some failed; on an exception
(Ctrl-C included) it leaves the jobs running, and a later run follows them again.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from pathlib import Path, PurePosixPath
from typing import Any, Iterable

from xpm import context, layout, state
from xpm.environment import collect
from xpm.errors import ConfigError, XpmError, os_error_text
from xpm.launchers import Launcher
from xpm.launchers.local import LocalLauncher
from xpm.locks import LockTimeout
from xpm.runmode import RunMode
from xpm.scheduler.core import Scheduler, SchedulerStopped
from xpm.scheduler.job import Job, run_prepares
from xpm.schema import RECORD_VERSION, JobSubmitted, RunRecord
from xpm.settings import WorkspaceSettings, load_settings, resolve_workspace
from xpm.store.index import SNAPSHOT_AFTER_LINES
from xpm.store.jobs import JobDirs, JobStore
from xpm.store.runs import RunStore
from xpm.store.tokens import CounterToken
from xpm.submission import Plan, plan
from xpm.workspace import Workspace, WorkspaceNotFound

logger = logging.getLogger("xpm.experiment")

__all__ = ["experiment", "Experiment", "FailedExperiment", "RunMode"]

#: The end of the jobs of the modes that run none: set once, never cleared
_ENDED = threading.Event()
_ENDED.set()


class FailedExperiment(XpmError):
    """Some jobs of the experiment failed; ``failed`` lists them."""

    def __init__(self, experiment_id: str, failed: list[Job]):
        self.experiment_id = experiment_id
        self.failed = failed
        lines = [f"experiment {experiment_id} failed: {len(failed)} job(s) ended in error"]
        for job in failed:
            reason = job.failure_reason or state.FAILED
            if reason == state.DEPENDENCY:
                lines.append(f"  {job.name}: not run, a job it depends on failed")
            else:
                lines.append(f"  {job.name}: {reason}, see {job.stderr}")
        super().__init__("\n".join(lines))


def _install_excepthook() -> None:
    """Shows an uncaught xpm error of a script (a failed experiment) as its message, not a traceback.

    ``XPM_TRACEBACK=1`` shows the traceback (for bug reports).
    """
    previous = sys.excepthook
    if getattr(previous, "__xpm__", False):
        return

    def hook(exc_type: Any, exc: Any, tb: Any) -> None:
        if issubclass(exc_type, XpmError) and not os.environ.get("XPM_TRACEBACK"):
            print(f"Error: {exc}", file=sys.stderr)
        else:
            previous(exc_type, exc, tb)

    hook.__xpm__ = True  # type: ignore[attr-defined]
    sys.excepthook = hook


def _python_path() -> list[str]:
    """The folders of ``sys.path`` a job needs to import the experiment's modules.

    Entries of the interpreter itself (standard library, site-packages) are left
    out: the job runs the same interpreter, which finds them by itself.
    """
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    paths = []
    for entry in sys.path:
        path = os.path.realpath(entry or os.getcwd())
        if not os.path.isdir(path) or any(path == p or path.startswith(p + os.sep) for p in prefixes):
            continue
        if path not in paths:
            paths.append(path)
    return paths


def _default_max_jobs() -> int:
    return os.cpu_count() or 1


class Experiment:
    """A run of an experiment (see :func:`experiment`).

    Attributes:
        id: the experiment id.
        run_id: the run id (``YYYYMMDD_HHMMSS``, ``.1``... on a clash); None
            outside the NORMAL run mode, which records no run.
        run_mode: what the experiment does with the jobs it submits.
        workspace: the workspace (None for a dry run of a workspace that does not exist).
        launcher: the launcher of tasks submitted without one.
    """

    def __init__(
        self,
        where: str | os.PathLike[str] | WorkspaceSettings | Workspace,
        name: str,
        *,
        launcher: Launcher | None = None,
        run_mode: RunMode | str | None = None,
        max_jobs: int | None = None,
    ):
        if not layout.is_name(name):
            raise XpmError(f"invalid experiment id {name!r}: use letters, digits, '_', '-' and '.'")
        self.id = name
        self.run_mode = RunMode.parse(run_mode) if run_mode is not None else RunMode.NORMAL
        self._where = where
        self.settings: WorkspaceSettings | None = where if isinstance(where, WorkspaceSettings) else None
        #: given by the caller: else the workspace's (settings), else local, once the workspace is known
        self._launcher_given = launcher is not None
        self.launcher: Launcher = launcher if launcher is not None else LocalLauncher()
        self.max_jobs = max_jobs
        #: the variables jobs get; from the start of a run, those of the settings are
        #: in it too (the scheduler reads this dict, so later setenv calls count)
        self.env: dict[str, str] = {}
        self.run_id: str | None = None
        self.workspace: Workspace | None = None
        self.jobs: dict[str, Job] = {}
        self.scheduler: Any = None
        self._lock: Any = None
        self._location = ""
        self._progress = _Progress(self)
        self._started_at = 0.0
        self._settings: Any = None
        #: the job records of the workspace (None for a dry run of a missing workspace)
        self.store: JobStore | None = None
        #: the run records of the workspace (None for a dry run of a missing workspace)
        self.runs: RunStore | None = None
        #: identifiers of the Prepare configurations run (PREPARE mode)
        self._prepared: set[str] = set()
        #: the paths of the workspace's job folders (set when the workspace is known)
        self.job_dirs = JobDirs(None, "")

    # --- paths ----------------------------------------------------------------------

    @property
    def workdir(self) -> Path | PurePosixPath:
        """The run folder (``experiments/<id>/<run-id>``), or the experiment folder outside NORMAL runs."""
        if self.run_id is None:
            return self.job_dirs.path(layout.experiment_dir(self.id))
        return self.job_dirs.path(layout.run_dir(self.id, self.run_id))

    @property
    def jobspath(self) -> Path | PurePosixPath:
        """The folder that holds every job folder of the workspace."""
        return self.job_dirs.path(layout.JOBS)

    def job_path(self, task_id: str, identifier: str) -> Path | PurePosixPath:
        """The folder of a job."""
        return self.job_dirs(task_id, identifier)

    # --- what users call --------------------------------------------------------------

    def setenv(self, name: str, value: str) -> None:
        """Sets an environment variable for every job this experiment launches."""
        self.env[name] = str(value)

    def token(self, name: str, count: int) -> CounterToken:
        """A counter token of the workspace (shared by every experiment of the workspace)."""
        if not layout.is_name(name):
            raise XpmError(f"invalid token name {name!r}")
        if self.workspace is None or self.workspace.local_path("") is None:
            raise XpmError("tokens need a local workspace")
        return CounterToken(name, self.workspace.local_path(layout.workspace_token(name)), count)  # type: ignore[arg-type]

    def wait(self) -> list[Job]:
        """Waits until every job submitted so far ended; returns the failed ones."""
        if self.scheduler is not None:
            self.scheduler.wait_all(self._progress.report)
            self._progress.report(final=True)
        return [job for job in self.jobs.values() if job.state == state.ERROR]

    def submit(
        self,
        task: Any,
        *,
        launcher: Launcher | None = None,
        init_tasks: Iterable[Any] | None = None,
        max_retries: int | None = None,
    ) -> Any:
        """Submits a task (what ``task.submit()`` calls); returns its output."""
        info = task.__xpm__
        if info.job is not None:
            raise ConfigError(f"{info.xpmtype.name} was already submitted: submit a copy (copyconfig)")
        if init_tasks is not None:
            info.init_tasks = list(init_tasks)
        retries = max_retries if max_retries is not None else (self.settings.max_retries if self.settings else 3)
        planned = plan(task, self.job_dirs, max_retries=retries, exists=self._job_exists)
        name = planned.name
        job = self.jobs.get(name)
        if job is None:
            try:
                job = self._new_job(name, planned, launcher or self.launcher)
            except OSError as exc:
                # A full disk, or a record's path taken by a folder...: one line, not a traceback.
                raise XpmError(
                    f"{planned.name}: the workspace cannot record the job: {os_error_text(exc)} "
                    "(`experiments sync` repairs what was damaged)"
                ) from exc
        else:
            job.max_retries = max(job.max_retries, retries)
            logger.info("%s was already submitted: same job", planned.name)
        info.job = job
        return task.__xpm_outputs__()

    def _new_job(self, name: str, planned: Plan, launcher: Launcher) -> Job:
        job = planned.job(launcher)
        self.jobs[name] = job
        mode = self.run_mode
        if mode is RunMode.NORMAL:
            assert self.store is not None and self.runs is not None and self.run_id is not None
            created = self.store.create(job.task_id, job.identifier, planned.params)
            self.runs.append_submitted(
                self.id,
                self.run_id,
                JobSubmitted(ts=time.time(), task_id=job.task_id, identifier=job.identifier, tags=job.tags),
            )
            return self.scheduler.submit(job, new=created is True)  # type: ignore[no-any-return]
        # Other modes run no job: the job is what the workspace says it is.
        if mode is RunMode.GENERATE_ONLY:
            assert self.store is not None
            # A job folder this call creates holds no state record: nothing to read.
            created = self.store.create(job.task_id, job.identifier, planned.params)
            known = state.UNSCHEDULED if created else self._disk_state(job)
        else:
            known = self._disk_state(job)
        if mode is RunMode.PREPARE:
            run_prepares(
                job,
                self._prepared,
                lambda name: print(f"[prepare] Preparing {name} ({job.describe_tags()})", flush=True),
            )
        else:
            # One write per job (print writes the line and its end apart, two
            # system calls on an unbuffered stdout).
            sys.stdout.write(planned.describe(known) + "\n")
            sys.stdout.flush()
        job.state = known
        # Finished from the start, for good: one shared event rather than one per job
        # (an event is most of the memory of a job).
        job._finished = _ENDED
        return job

    def _job_exists(self, task_id: str, identifier: str) -> bool:
        """Whether the job folder exists (with its params.json) in the workspace."""
        return self.store is not None and self.store.workspace.exists(layout.job_params(task_id, identifier))

    def _disk_state(self, job: Job) -> str:
        if self.store is None:
            return state.UNSCHEDULED
        record = self.store.state(job.task_id, job.identifier)
        if record is None:
            return state.UNSCHEDULED
        job.failure_reason = record.failure_reason
        return record.state

    # --- the run ------------------------------------------------------------------------

    def _open_workspace(self) -> None:
        # Invalid settings stop the experiment with the file's error, before anything runs.
        self._settings = load_settings()
        where = self._where
        if isinstance(where, Workspace):
            self._opened(where, where.location)
            return
        if isinstance(where, WorkspaceSettings):
            self.settings = where
        else:
            self.settings = resolve_workspace(workdir=os.path.abspath(os.fspath(where)), settings=self._settings)
        self._location = str(self.settings.location)
        if not self._launcher_given and self.settings.launcher:
            # Only workspaces with a Slurm launcher pay for importing it.
            from xpm.launchers.slurm import launcher_from_settings

            self.launcher = launcher_from_settings(self.settings.launcher)
        try:
            workspace = Workspace.open(
                self._location, create=self.run_mode is not RunMode.DRY_RUN, **self.settings.storage_options()
            )
        except WorkspaceNotFound:
            if self.run_mode is not RunMode.DRY_RUN:
                raise
            self._opened(None, self._location)  # a dry run writes nothing, not even a workspace
            return
        self._opened(workspace, self._location)

    def _opened(self, workspace: Workspace | None, location: str) -> None:
        """The workspace is known (None: a dry run of a workspace that does not exist)."""
        self.workspace, self._location = workspace, location
        self.job_dirs = JobDirs(workspace, location)
        if workspace is not None:
            self.store, self.runs = JobStore(workspace), RunStore(workspace)

    def _settings_env(self) -> dict[str, str]:
        """The variables of the settings: the global ones, then the workspace's."""
        if self.settings is None:
            return dict(self._settings.env)
        return self._settings.env_for(self.settings)  # type: ignore[no-any-return]

    def __enter__(self) -> Experiment:
        # In a job process importing the script of its task: the script lacks its
        # `if __name__ == "__main__":` guard, and the lock would wait for its own parent.
        context.check_not_loading_task()
        _install_excepthook()
        self._open_workspace()
        if self.run_mode is RunMode.NORMAL:
            self._start_run()
        context.push_experiment(self)
        return self

    def _start_run(self) -> None:
        ws = self.workspace
        assert ws is not None
        if ws.local_path("") is None:
            raise XpmError(
                f"{ws.location}: the local launcher runs jobs on this machine and needs a local workspace "
                "(use --run-mode GENERATE_ONLY or DRY_RUN on a remote workspace)"
            )
        self._take_lock()
        self.env = {**self._settings_env(), **self.env}
        try:
            self.run_id = self._new_run()
            assert self.store is not None
            self.scheduler = Scheduler(
                self.store,
                env=self.env,
                python_path=_python_path(),
                max_jobs=self.max_jobs or (self._settings and self._settings.max_jobs) or _default_max_jobs(),
                on_change=self._progress.changed,
            )
            self.scheduler.start()
        except BaseException:
            self._release_lock()
            raise

    def _take_lock(self) -> None:
        ws = self.workspace
        assert ws is not None
        rel = layout.experiment_lock(self.id)
        lock = ws.lock(rel, timeout=0)
        try:
            lock.acquire()
        except LockTimeout as exc:
            who = f"host {exc.owner.host}, pid {exc.owner.pid}" if exc.owner else "another process"
            print(f"xpm: experiment {self.id} is running ({who}); waiting for it to end...", file=sys.stderr,
                  flush=True)
            lock = ws.lock(rel, timeout=None)
            lock.acquire()
        self._lock = lock

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _new_run(self) -> str:
        """Creates the run folder and its records; points the experiment's current ref at it."""
        assert self.runs is not None
        self._started_at = time.time()
        run_id = self.runs.create_run(self.id, self._started_at)
        self._write_run(run_id, state.RUN_RUNNING)
        main = getattr(sys.modules.get("__main__"), "__file__", None)
        project = os.path.dirname(os.path.abspath(main)) if main else os.getcwd()
        self.runs.write_environment(self.id, run_id, collect(project))
        self.runs.set_current(self.id, run_id)
        return run_id

    def _write_run(self, run_id: str, status: str, ended: bool = False) -> None:
        assert self.runs is not None
        self.runs.write_record(RunRecord(
            version=RECORD_VERSION,
            experiment_id=self.id,
            run_id=run_id,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            started_at=self._started_at,
            ended_at=time.time() if ended else None,
            status=status,
        ))

    def _refresh_index_snapshot(self) -> None:
        """After a large run, folds the job index so that the next ``jobs list`` starts from a snapshot.

        A job records about three index entries; small runs leave that to the
        next reader (reading the snapshot is not free on a remote workspace).
        """
        if self.store is not None and len(self.jobs) * 3 >= SNAPSHOT_AFTER_LINES:
            try:
                self.store.index.load()
            except XpmError as exc:
                logger.warning("job index not folded: %s", exc)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        context.pop_experiment(self)
        if self.run_mode is not RunMode.NORMAL:
            return
        failed: list[Job] = []
        stopped: SchedulerStopped | None = None
        try:
            if exc_type is None:
                try:
                    failed = self.wait()
                except SchedulerStopped as error:
                    stopped = error
            if exc_type is not None or stopped is not None:
                pending = [job for job in self.jobs.values() if not job.finished]
                if pending:
                    print(f"xpm: leaving {len(pending)} job(s) running; run the experiment again to follow them",
                          file=sys.stderr)
            self.scheduler.stop()
            ok = exc_type is None and stopped is None and not failed
            assert self.run_id is not None
            try:
                self._write_run(self.run_id, state.RUN_DONE if ok else state.RUN_FAILED, ended=True)
            except OSError as error:
                if ok or stopped is None:
                    raise
                # The cause (a full disk...) is what the user must hear of, once; the run
                # record says "running" until the next run of the experiment.
                logger.debug("run record not written: %s", error)
            self._refresh_index_snapshot()
        finally:
            self._release_lock()
        if stopped is not None:
            raise stopped
        if failed:
            raise FailedExperiment(self.id, failed)


def experiment(
    where: str | os.PathLike[str] | WorkspaceSettings | Workspace,
    name: str,
    *,
    launcher: Launcher | None = None,
    run_mode: RunMode | str | None = None,
    max_jobs: int | None = None,
) -> Experiment:
    """A run of the experiment ``name`` in a workspace, as a context manager.

    Args:
        where: the workspace: a local folder (created if needed), a workspace of
            the settings (``WorkspaceSettings``) or an open ``Workspace``.
        name: the experiment id.
        launcher: the launcher of tasks submitted without one (default: local).
        run_mode: ``NORMAL`` (default), ``GENERATE_ONLY``, ``DRY_RUN`` or ``PREPARE``.
        max_jobs: how many local jobs run at once (default: ``max_jobs`` of the
            settings, else the number of CPUs).

    Example::

        with experiment("workspace", "my-experiment") as xp:
            xp.setenv("OMP_NUM_THREADS", "1")
            model = Train.C(lr=0.1).submit()
            Evaluate.C(model=model).submit()
        # here every job ended; FailedExperiment was raised if some failed
    """
    return Experiment(where, name, launcher=launcher, run_mode=run_mode, max_jobs=max_jobs)


class _Progress:
    """Shows how many jobs are done out of how many, while the experiment waits."""

    def __init__(self, xp: Experiment):
        self.xp = xp
        self.tty = sys.stderr.isatty()
        self.last_line = ""
        self.last_time = 0.0

    def changed(self, job: Job) -> None:
        if job.finished and job.state == state.ERROR:
            reason = job.failure_reason or state.FAILED
            detail = "a job it depends on failed" if reason == state.DEPENDENCY else f"see {job.stderr}"
            self._print(f"xpm: job {job.name} ended in error ({reason}): {detail}", newline=True)

    def report(self, final: bool = False) -> None:
        jobs = list(self.xp.jobs.values())
        counts: dict[str, int] = {}
        for job in jobs:
            counts[job.state] = counts.get(job.state, 0) + 1
        parts = [f"{counts.get(state.DONE, 0)}/{len(jobs)} jobs done"]
        for shown in (state.RUNNING, state.SCHEDULED, state.WAITING, state.READY, state.ERROR):
            if counts.get(shown):
                parts.append(f"{counts[shown]} {'failed' if shown == state.ERROR else shown}")
        line = f"xpm: {self.xp.id}: " + ", ".join(parts)
        now = time.monotonic()
        if line == self.last_line and not final:
            return
        if not self.tty and not final and now - self.last_time < 2.0:
            return
        self.last_line, self.last_time = line, now
        self._print(line, newline=final or not self.tty)

    def _print(self, text: str, newline: bool) -> None:
        if self.tty:
            sys.stderr.write("\r\033[K" + text + ("\n" if newline else ""))
        else:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()
