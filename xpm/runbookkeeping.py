"""The bookkeeping of a run of an experiment, besides its jobs: the half of :class:`xpm.runs.Experiment`
that takes the experiment lock, writes the run's records and tidies up at its end.

A run holds the experiment lock (one run of an experiment at a time) from its
start to its end. It records its environment (checked against ``dirty_git``),
its spec and its ``run.json`` (running, then done or failed). Once it ended
well, it deletes the folders of the jobs submitted with
``transient=TransientMode.REMOVE`` and the old runs the ``history`` settings do
not keep; after a large run it folds the job index; at the end it runs the
``notify`` command of the settings.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from xpm import layout, state
from xpm.environment import collect
from xpm.errors import XpmError
from xpm.locks import LockTimeout
from xpm.process import hostname
from xpm.runmode import TransientMode
from xpm.scheduler.job import Job
from xpm.scheduler.options import check_git
from xpm.schema import RECORD_VERSION, EnvironmentRecord, RunRecord
from xpm.settings import WorkspaceSettings
from xpm.store.index import SNAPSHOT_AFTER_LINES
from xpm.store.jobs import JobStore
from xpm.store.runs import RunStore
from xpm.workspace import Workspace

__all__ = ["RunBookkeeping"]

logger = logging.getLogger("xpm.experiment")


class RunBookkeeping:
    """The lock, records and end-of-run tidying of an experiment; :class:`xpm.runs.Experiment` holds the state."""

    id: str
    run_id: str | None
    settings: WorkspaceSettings | None
    jobs: dict[str, Job]
    scheduler: Any
    store: JobStore | None
    runs: RunStore | None
    spec_inputs: Any
    _ws: Workspace | None
    _lock: Any
    _location: str
    _started_at: float
    _settings: Any
    _project_paths: list[str] | None
    _dirty_git: str

    # Experiment's read-only property, declared for the type checker only (an attribute would clash with it).
    if TYPE_CHECKING:

        @property
        def workdir(self) -> Path | PurePosixPath: ...

    # --- the experiment lock ------------------------------------------------------------

    def _take_lock(self) -> None:
        ws = self._ws
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

    # --- the run's records ---------------------------------------------------------------

    def _project(self) -> str:
        """The folder of the experiment's code: the first project path, else the main script's folder."""
        if self._project_paths:
            return self._project_paths[0]
        main = getattr(sys.modules.get("__main__"), "__file__", None)
        return os.path.dirname(os.path.abspath(main)) if main else os.getcwd()

    def _record_spec(self, run_id: str, known: dict[str, Any] | None = None) -> None:
        """Records the run's spec (configuration, sources, git state); a problem is a warning, never a failure.

        ``known``: the git states :meth:`_environment` asked, not asked again.
        """
        from xpm import runspec

        assert self.runs is not None
        inputs = self.spec_inputs or runspec.RunInputs.of_script(self._project())
        try:
            runspec.record(self.runs, self.id, run_id, inputs, known)
        except (XpmError, OSError) as exc:
            print(f"xpm: the spec of run {run_id} is not recorded: {exc}", file=sys.stderr)

    def _environment(self, known: dict[str, Any] | None = None) -> EnvironmentRecord:
        """What the run runs with, checked against ``dirty_git`` before anything is recorded (``known``
        keeps the git states asked, for the spec)."""
        environment = collect(self._project(), known)
        check_git(environment, self._dirty_git)
        return environment

    def _write_run(self, run_id: str, status: str, ended: bool = False) -> None:
        assert self.runs is not None
        self.runs.write_record(RunRecord(
            version=RECORD_VERSION,
            experiment_id=self.id,
            run_id=run_id,
            hostname=hostname(),
            pid=os.getpid(),
            started_at=self._started_at,
            ended_at=time.time() if ended else None,
            status=status,
            command=list(getattr(sys, "orig_argv", sys.argv)),
            cwd=os.getcwd(),
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

    # --- the end of a run ----------------------------------------------------------------

    def _notify(self, status: str) -> None:
        """Runs the ``notify`` command of the settings, once for the run; its failure is a warning."""
        command = getattr(self._settings, "notify", None)
        if not command or self.scheduler is None:
            return
        from xpm.notify import notify_run

        jobs = list(self.scheduler.jobs.values())
        notify_run(command, experiment_id=self.id, run_id=self.run_id or "", status=status,
                   done=sum(job.state == state.DONE for job in jobs),
                   failed=sum(job.state == state.ERROR for job in jobs), total=len(jobs),
                   workspace=self._location, run_dir=str(self.workdir))

    def _prune_history(self) -> None:
        """Deletes the old runs the ``history`` settings do not keep (when they set a limit)."""
        history = self.settings.history if self.settings is not None else None
        if history is None or not history.prunes or self.store is None:
            return
        from xpm.history import prune_runs

        try:
            prune_runs(self.store.workspace, self.id, history, current=self.run_id)
        except (XpmError, OSError) as exc:
            print(f"xpm: old runs of {self.id} kept: {exc}", file=sys.stderr)

    def _remove_transient(self) -> None:
        """Deletes the folders of the done jobs submitted with ``TransientMode.REMOVE``, as
        ``jobs clean`` does (under each job's lock, only a real job folder that ended)."""
        from xpm import control

        assert self.store is not None
        for job in self.scheduler.jobs.values():
            if job.transient is not TransientMode.REMOVE or job.state != state.DONE:
                continue
            try:
                outcome = control.clean(self.store, (job.task_id, job.identifier))
            except (XpmError, OSError) as exc:
                print(f"xpm: transient job {job.name} kept: {exc}", file=sys.stderr)
                continue
            if outcome.result != "cleaned":
                print(f"xpm: transient job {job.name} kept: {outcome.detail}", file=sys.stderr)
