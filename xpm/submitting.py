"""How an experiment takes the tasks submitted to it: the submission half of :class:`xpm.runs.Experiment`.

Each task is planned (identifier, job folder, dependencies), checked against the
options it was given (run mode, transient mode, workspace), and becomes a job: a
new one (recorded and handed to the scheduler in the ``NORMAL`` mode, shown or
written in the other modes), or the job the experiment already has for that
identifier.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Any, Iterable

from xpm import layout, state
from xpm.errors import ConfigError, XpmError, os_error_text
from xpm.launchers import Launcher
from xpm.runmode import RunMode, TransientMode
from xpm.scheduler.job import Job, run_prepares
from xpm.scheduler.prepare import PrepareStep
from xpm.scheduler.workspaceview import location_of, same_place
from xpm.schema import IndexEntry, JobSubmitted
from xpm.settings import WorkspaceSettings
from xpm.store.jobs import JobDirs, JobStore
from xpm.store.runs import RunStore
from xpm.submission import Plan, plan

__all__ = ["Submitting"]

logger = logging.getLogger("xpm.experiment")

#: The end of the jobs of the modes that run none: set once, never cleared
_ENDED = threading.Event()
_ENDED.set()


def _submit_name(info: Any) -> str:
    """``<Class>.submit``: how errors about a submission start."""
    return f"{info.xpmtype.name}.submit"


class Submitting:
    """The submission methods of an experiment; :class:`xpm.runs.Experiment` holds the state."""

    id: str
    run_mode: RunMode
    run_id: str | None
    launcher: Launcher
    settings: WorkspaceSettings | None
    jobs: dict[str, Job]
    scheduler: Any
    store: JobStore | None
    runs: RunStore | None
    job_dirs: JobDirs
    _submitting: Any
    _location: str
    _prepared: set[str]
    _steps: dict[str, PrepareStep]

    actions: list[Any]

    def add_action(self, action: Any) -> None:
        """Keeps an action a task gave (``__submit__``'s ``add_action``) in :attr:`actions`.

        xpm's monitors do not offer actions: the experiment's code may run them.
        """
        self.actions.append(action)

    def submit(
        self,
        task: Any,
        *,
        launcher: Launcher | None = None,
        init_tasks: Iterable[Any] | None = None,
        max_retries: int | None = None,
        run_mode: RunMode | str | None = None,
        workspace: Any = None,
        transient: Any = None,
    ) -> Any:
        """Submits a task (what ``task.submit()`` calls); returns its output.

        Callbacks (``on_completed``) may submit tasks while the experiment's code does:
        one submission at a time (``__submit__`` may submit others: the lock is reentrant).
        """
        with self._submitting:
            info = task.__xpm__
            if run_mode is None and transient is None and workspace is None and max_retries is None:
                mode, keep = self.run_mode, TransientMode.NONE
            else:
                mode, keep = self._options(info, run_mode, transient, workspace, max_retries)
            if info.job is not None:
                raise ConfigError(f"{info.xpmtype.name} was already submitted: submit a copy (copyconfig)")
            if init_tasks is not None:
                tasks = list(init_tasks)
                if tasks or info.init_tasks:  # `init_tasks=[]` (experimaestro's default) changes nothing
                    info.init_tasks = tasks
            retries = max_retries if max_retries is not None else self.settings.max_retries if self.settings else 3
            planned = plan(task, self.job_dirs, max_retries=retries, exists=self._job_exists)
            if planned.prepares:
                planned.dependencies.extend(self._step(config) for config in planned.prepares)
            name = planned.name
            job = self.jobs.get(name)
            if job is None:
                try:
                    job = self._new_job(name, planned, launcher or self.launcher, mode, keep)
                except OSError as exc:
                    # A full disk, or a record's path taken by a folder...: one line, not a traceback.
                    raise XpmError(
                        f"{planned.name}: the workspace cannot record the job: {os_error_text(exc)} "
                        "(`experiments sync` repairs what was damaged)"
                    ) from exc
            else:
                self._submitted_again(job, retries, mode, keep, info)
            info.job = job
            if info.on_completed:
                callbacks, info.on_completed = info.on_completed, None
                for callback in callbacks:
                    job.add_on_completed(callback)
            return task.__xpm_outputs__(self.add_action)

    def _options(
        self, info: Any, run_mode: Any, transient: Any, workspace: Any, max_retries: Any
    ) -> tuple[RunMode, TransientMode]:
        """Checks the options of one submission; returns its run mode and transient mode.

        A task may be given a mode that does less than its experiment's: ``DRY_RUN``
        (shown, not run), or the experiment's own. ``workspace`` may only name the
        experiment's workspace.
        """
        where = _submit_name(info)
        mode = self.run_mode if run_mode is None else RunMode.parse(run_mode, where)
        if mode is not self.run_mode and mode is not RunMode.DRY_RUN and self.run_mode is not RunMode.NORMAL:
            raise XpmError(
                f"{where}: run_mode={mode.name} in an experiment run in {self.run_mode.name} mode: a task may "
                f"only be given DRY_RUN or its experiment's mode here; run the experiment in NORMAL mode"
            )
        keep = TransientMode.parse(transient, where)
        if workspace is not None:
            location = location_of(workspace, where)
            if not same_place(location, self._location):
                raise XpmError(
                    f"{where}: workspace={location} is not the workspace of experiment {self.id} "
                    f"({self._location}): submit it in an experiment of that workspace"
                )
        if max_retries is not None and (
            isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0
        ):
            raise XpmError(f"{where}: max_retries={max_retries!r} is not a number of retries (0 or more)")
        return mode, keep

    def _step(self, config: Any) -> PrepareStep:
        """The preparation of a ``Prepare`` configuration, one per identifier in the experiment."""
        key = str(config.__identifier__())
        step = self._steps.get(key)
        if step is None:
            step = self._steps[key] = PrepareStep(config)
        return step

    def _submitted_again(self, job: Job, retries: int, mode: RunMode, keep: TransientMode, info: Any) -> None:
        """A task with the identifier of a job this experiment has: the same job, with the most
        retries and the transient mode that keeps the most."""
        if mode is RunMode.NORMAL and job.run_mode is not RunMode.NORMAL:
            raise XpmError(
                f"{_submit_name(info)}: {job.name} was submitted with run_mode={job.run_mode.name} in this "
                "experiment: submit a job with one run mode"
            )
        job.max_retries = max(job.max_retries, retries)
        if keep < job.transient:
            job.transient = keep
            if not keep.is_transient and job.scheduler is not None:
                job.scheduler.need(job)
        logger.info("%s was already submitted: same job", job.name)

    def _new_job(self, name: str, planned: Plan, launcher: Launcher, mode: RunMode, keep: TransientMode) -> Job:
        job = planned.job(launcher)
        job.run_mode, job.transient = mode, keep
        self.jobs[name] = job
        if mode is RunMode.NORMAL:
            assert self.store is not None and self.runs is not None and self.run_id is not None
            store = self.store
            if keep is not TransientMode.NONE:
                # Its folder is written when (if) a task needs it: the scheduler calls this.
                params = planned.params
                job.create = lambda: store.create(job.task_id, job.identifier, params)
                created = None
            else:
                created = store.create(job.task_id, job.identifier, planned.params)
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
            if created:
                # Indexed (by the end of the experiment), so that jobs list shows it and jobs clean
                # can delete it.
                self.store.index.append_later(IndexEntry(
                    ts=time.time(), task_id=job.task_id, identifier=job.identifier, state=state.UNSCHEDULED,
                    tags=job.tags))
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
