"""Runs of experiments: ``with experiment(workspace, name) as xp:`` and the tasks submitted inside.

An experiment run takes the experiment lock (one run of an experiment at a time),
creates its run folder, records its environment, and runs the jobs its tasks
submit through a :class:`~xpm.scheduler.core.Scheduler`. On a normal exit it waits
for every job (and their ``on_completed`` callbacks) and raises
:class:`FailedExperiment` if some failed; on an exception (Ctrl-C included) it
leaves the jobs running, and a later run follows them again. Once it ended well, it
deletes the folders of the jobs submitted with ``transient=TransientMode.REMOVE``.
The lock, the run's records and that tidying at the end are in :mod:`xpm.runbookkeeping`;
the submission of tasks in :mod:`xpm.submitting`.

A task may also be submitted outside any experiment, to see its job without
running it (``task.submit(run_mode=RunMode.DRY_RUN)``): :func:`submit_outside`.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from pathlib import Path, PurePosixPath
from typing import Any, Iterable

from xpm import context, layout, state
from xpm.dynamic import DynamicOutputs
from xpm.errors import XpmError
from xpm.launchers import Launcher
from xpm.launchers.local import LocalLauncher
from xpm.runbookkeeping import RunBookkeeping
from xpm.runmode import RunMode, TransientMode
from xpm.scheduler.core import Scheduler, SchedulerStopped
from xpm.scheduler.job import Job
from xpm.scheduler.options import (
    DirtyGitAction,
    DirtyGitError,
    GracefulExperimentExit,
    dirty_git_action,
)
from xpm.scheduler.prepare import PrepareStep
from xpm.scheduler.report import FailedExperiment, Progress
from xpm.scheduler.workspaceview import ExperimentWorkspace
from xpm.settings import WorkspaceSettings, load_settings, resolve_workspace
from xpm.store.jobs import JobDirs, JobStore
from xpm.store.runs import RunStore
from xpm.store.tokens import CounterToken
from xpm.submitting import Submitting
from xpm.workspace import Workspace, WorkspaceNotFound

logger = logging.getLogger("xpm.experiment")

__all__ = [
    "experiment",
    "Experiment",
    "ExperimentWorkspace",
    "FailedExperiment",
    "DirtyGitAction",
    "DirtyGitError",
    "GracefulExperimentExit",
    "set_launcher",
    "RunMode",
    "TransientMode",
    "submit_outside",
]

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


class Experiment(Submitting, RunBookkeeping):
    """A run of an experiment (see :func:`experiment`).

    Attributes:
        id: the experiment id.
        run_id: the run id (``YYYYMMDD_HHMMSS``, ``.1``... on a clash); None
            outside the NORMAL run mode, which records no run.
        run_mode: what the experiment does with the jobs it submits.
        workspace: the workspace (:class:`ExperimentWorkspace`: ``xp.workspace.path``...).
        launcher: the launcher of tasks submitted without one.
        actions: what tasks gave to ``add_action`` (kept for the experiment's code: xpm runs none).
    """

    def __init__(
        self,
        where: str | os.PathLike[str] | WorkspaceSettings | Workspace | None,
        name: str,
        *,
        launcher: Launcher | None = None,
        run_mode: RunMode | str | None = None,
        max_jobs: int | None = None,
        project_paths: Iterable[str | os.PathLike[str]] | None = None,
        dirty_git: Any = None,
    ):
        if not layout.is_name(name):
            raise XpmError(f"invalid experiment id {name!r}: use letters, digits, '_', '-' and '.'")
        self.id = name
        self.run_mode = RunMode.parse(run_mode, "experiment") if run_mode is not None else RunMode.NORMAL
        self._where = where
        self.settings: WorkspaceSettings | None = where if isinstance(where, WorkspaceSettings) else None
        #: given by the caller: else the workspace's (settings), else local, once the workspace is known
        self._launcher_given = launcher is not None
        self.launcher: Launcher = launcher if launcher is not None else LocalLauncher()
        self.max_jobs = max_jobs
        self._project_paths = [os.fspath(p) for p in project_paths] if project_paths is not None else None
        self._dirty_git = dirty_git_action(dirty_git)
        #: the variables jobs get; from the start of a run, those of the settings are
        #: in it too (the scheduler reads this dict, so later setenv calls count)
        self.env: dict[str, str] = {}
        self.run_id: str | None = None
        #: the xpm workspace (None for a dry run of a workspace that does not exist)
        self._ws: Workspace | None = None
        self.workspace = ExperimentWorkspace(self)
        self.jobs: dict[str, Job] = {}
        self.scheduler: Any = None
        self.actions: list[Any] = []
        #: held while a task is submitted (``__submit__`` may submit others: reentrant)
        self._submitting = threading.RLock()
        self._lock: Any = None
        self._location = ""
        self._progress = Progress(self)
        self._started_at = 0.0
        self._settings: Any = None
        #: the job records of the workspace (None for a dry run of a missing workspace)
        self.store: JobStore | None = None
        #: the run records of the workspace (None for a dry run of a missing workspace)
        self.runs: RunStore | None = None
        #: identifiers of the Prepare configurations run (PREPARE mode)
        self._prepared: set[str] = set()
        #: the preparations the jobs wait for, by identifier of their Prepare configuration
        self._steps: dict[str, PrepareStep] = {}
        #: the paths of the workspace's job folders (set when the workspace is known)
        self.job_dirs = JobDirs(None, "")
        #: the outputs that running tasks register, and the callbacks that watch them
        self.outputs = DynamicOutputs()
        #: what experiment(host=, port=, token=, wait_for_quit=) asked of the web monitor, and the server
        self._web: tuple[str | None, int | None, str | None, bool] = (None, None, None, False)
        self._monitor: Any = None
        #: what the caller knows of the run's spec (``xpm.runspec.RunInputs``: run-experiment's
        #: configuration and files); None: an experiment run from Python, whose main script is its source
        self.spec_inputs: Any = None

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
        if self._ws is None or self._ws.local_path("") is None:
            raise XpmError("tokens need a local workspace")
        return CounterToken(name, self._ws.local_path(layout.workspace_token(name)), count)  # type: ignore[arg-type]

    def wait(self) -> list[Job]:
        """Waits until every job submitted so far ended, and their ``on_completed`` callbacks
        too; returns the failed jobs."""
        if self.scheduler is None:
            return []
        self.scheduler.wait_all(self._progress.report)
        while self.outputs.settle():  # callbacks ran: they may have submitted jobs
            self.scheduler.wait_all(self._progress.report)
        self._progress.report(final=True)
        return [job for job in self.scheduler.jobs.values() if job.state == state.ERROR]

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
        elif where is None:
            # A submission outside an experiment without workspace=: the settings' default.
            self.settings = resolve_workspace(settings=self._settings)
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
        self._ws, self._location = workspace, location
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
            self._serve_web()
            try:
                self._start_run()
            except BaseException:
                self._end_web()
                raise
        context.push_experiment(self)
        return self

    def _serve_web(self) -> None:
        """Serves the web monitor for the time of the run, when experiment(port=...) or host= asked for it."""
        from xpm.web.serve import WebOptions, serve_run

        options = WebOptions(*self._web)
        if options.wanted and self._ws is not None:
            self._monitor = serve_run(self._ws, self.id, options)

    def _end_web(self) -> None:
        monitor, self._monitor = self._monitor, None
        if monitor is not None:
            from xpm.web.serve import WebOptions, end_run

            end_run(monitor, WebOptions(*self._web))

    def _start_run(self) -> None:
        ws = self._ws
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
            self.outputs.start(ws)
        except BaseException:
            self._release_lock()
            raise

    def _new_run(self) -> str:
        """Creates the run folder and its records; points the experiment's current ref at it."""
        assert self.runs is not None
        known: dict[str, Any] = {}  # the git states, asked once for environment.json and spec.json
        environment = self._environment(known)
        self._started_at = time.time()
        run_id = self.runs.create_run(self.id, self._started_at)
        self._write_run(run_id, state.RUN_RUNNING)
        self.runs.write_environment(self.id, run_id, environment)
        self._record_spec(run_id, known)
        self.runs.set_current(self.id, run_id)
        return run_id

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        graceful = exc_type is not None and issubclass(exc_type, GracefulExperimentExit)
        if self.run_mode is not RunMode.NORMAL:
            if self.store is not None:
                self.store.index.flush()  # the jobs planned in GENERATE_ONLY mode
            context.pop_experiment(self)
            return graceful
        if exc_type is not None:
            context.pop_experiment(self)
        # Otherwise it stays the running experiment while it waits: callbacks may submit tasks.
        failed: list[Job] = []
        callbacks: list[Any] = []
        stopped: SchedulerStopped | None = None
        ended: str | None = None  # the status recorded at the end, which the notification tells
        try:
            if exc_type is None:
                try:
                    failed = self.wait()
                except SchedulerStopped as error:
                    stopped = error
            if exc_type is not None or stopped is not None:
                pending = [job for job in self.scheduler.jobs.values() if not job.finished and not job.dormant]
                if pending:
                    print(f"xpm: leaving {len(pending)} job(s) running; run the experiment again to follow them",
                          file=sys.stderr)
            self.outputs.stop(report=exc_type is None and stopped is None)
            self.scheduler.stop()
            callbacks = [*self.scheduler.callbacks.failures, *self.outputs.failures]
            ok = exc_type is None and stopped is None and not failed and not callbacks
            if ok:
                self._remove_transient()
            assert self.run_id is not None
            try:
                self._write_run(self.run_id, state.RUN_DONE if ok else state.RUN_FAILED, ended=True)
            except OSError as error:
                if ok or stopped is None:
                    raise
                # The cause (a full disk...) is what the user must hear of, once; the run
                # record says "running" until the next run of the experiment.
                logger.debug("run record not written: %s", error)
            ended = state.RUN_DONE if ok else state.RUN_FAILED
            if ok:
                self._prune_history()
            self._refresh_index_snapshot()
        finally:
            context.pop_experiment(self)
            self._release_lock()
            self._end_web()
        if ended is not None:
            self._notify(ended)  # once the lock is released: a slow command delays no other run
        if stopped is not None:
            raise stopped
        if failed or callbacks:
            raise FailedExperiment(self.id, failed, callbacks)
        # GracefulExperimentExit: the jobs go on; the block ends without an error.
        return graceful


def set_launcher(launcher: Launcher) -> None:
    """Makes ``launcher`` the launcher of the tasks the running experiment submits without one."""
    xp = context.current_experiment()
    xp.launcher = launcher  # type: ignore[attr-defined]


def experiment(
    where: str | os.PathLike[str] | WorkspaceSettings | Workspace,
    name: str,
    *,
    launcher: Launcher | None = None,
    run_mode: RunMode | str | None = None,
    max_jobs: int | None = None,
    project_paths: Iterable[str | os.PathLike[str]] | None = None,
    dirty_git: Any = None,
    host: str | None = None,
    port: int | None = None,
    token: str | None = None,
    wait_for_quit: bool = False,
    register_signals: bool = True,
    no_db: bool = False,
    no_environmental_impact: bool = False,
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
        project_paths: the folders of the experiment's code; the first one's git
            commit goes to ``environment.json`` (default: the main script's folder).
        dirty_git: what to do when that git repository has uncommitted changes:
            ``DirtyGitAction.IGNORE`` (the default), ``WARN`` (a line on stderr) or
            ``ERROR`` (raises :class:`DirtyGitError` before the run starts); or
            their values, ``"ignore"``...
        host, port, token, wait_for_quit: the web monitor: given a ``port`` (0: any free
            one; a negative one: none) or a ``host``, it is served for the time of the run
            (port: ``server.port`` of the settings, else 12345; host: 127.0.0.1) and its
            URL printed on stderr; ``token`` is its secret (default: a fresh one);
            ``wait_for_quit`` keeps it serving after the run until Ctrl-C.
        register_signals, no_db, no_environmental_impact: accepted, and change
            nothing (xpm handles Ctrl-C as any exception, has no database and does
            not track energy).

    Example::

        with experiment("workspace", "my-experiment") as xp:
            xp.setenv("OMP_NUM_THREADS", "1")
            model = Train.C(lr=0.1).submit()
            Evaluate.C(model=model).submit()
        # here every job ended; FailedExperiment was raised if some failed
    """
    xp = Experiment(
        where,
        name,
        launcher=launcher,
        run_mode=run_mode,
        max_jobs=max_jobs,
        project_paths=project_paths,
        dirty_git=dirty_git,
    )
    xp._web = (host, port, token, wait_for_quit)
    return xp


def submit_outside(
    task: Any,
    *,
    workspace: Any = None,
    launcher: Launcher | None = None,
    run_mode: RunMode | str | None = None,
    init_tasks: Iterable[Any] | None = None,
    max_retries: int | None = None,
    transient: Any = None,
) -> Any:
    """``task.submit(run_mode=...)`` outside any experiment: the job is planned in the workspace
    (``workspace``, else the first of the settings) without running it.

    ``DRY_RUN`` computes the job folder and the outputs and writes nothing (the
    job's line is printed, with its state in the workspace); ``GENERATE_ONLY``
    writes the job folder; ``PREPARE`` runs the task's ``Prepare`` configurations.

    Raises:
        XpmError: no ``run_mode`` (or ``NORMAL``): running jobs needs an experiment.
    """
    where = f"{task.__xpm__.xpmtype.name}.submit"
    mode = RunMode.parse(run_mode, where) if run_mode is not None else RunMode.NORMAL
    if mode is RunMode.NORMAL:
        raise XpmError(
            f"{where}: submit() needs a running experiment: call it inside `with experiment(...) as xp:`, "
            "or give run_mode=RunMode.DRY_RUN to see the job without running it"
        )
    xp = Experiment(workspace, "submit", launcher=launcher, run_mode=mode)
    xp._open_workspace()
    return xp.submit(task, init_tasks=init_tasks, max_retries=max_retries, transient=transient)
