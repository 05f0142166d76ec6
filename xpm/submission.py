"""What submitting a task computes before anything runs: identifier, job folder, dependencies.

A parameter that holds the output of a submitted task (the task itself, or a
configuration its ``task_outputs`` marked with ``dep``) makes a dependency on that
task's job. ``Prepare`` configurations reachable from the parameters are run by
the experiment process before the job starts: the experiment adds their
preparations to the plan's dependencies (:class:`~xpm.scheduler.prepare.PrepareStep`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, Callable, cast

from xpm import layout
from xpm.config.base import ConfigMixin, Prepare, ResumableTask
from xpm.config.deprecate import any_deprecated
from xpm.config.hooks import apply_submit_hooks
from xpm.ids import digest, holds_deprecated, raw_identifier
from xpm.launchers import Launcher
from xpm.scheduler.job import Job
from xpm.serialize import dumps
from xpm.store.tokens import TokenDependency
from xpm.taskoutputs import is_dynamic

logger = logging.getLogger("xpm.submission")

#: The names of the stdout and stderr files of each task's jobs (one string each, shared)
_LOG_NAMES: dict[str, tuple[str, str]] = {}


def _log_names(task_id: str) -> tuple[str, str]:
    names = _LOG_NAMES.get(task_id)
    if names is None:
        names = _LOG_NAMES[task_id] = (layout.job_log_name(task_id, "out"), layout.job_log_name(task_id, "err"))
    return names


@dataclass
class Plan:
    """A task ready to become a job."""

    task: Any
    task_id: str
    identifier: str
    jobpath: PurePath
    tags: dict[str, Any]
    #: the jobs whose outputs the task holds (then the preparations the experiment adds)
    dependencies: list[Any]
    tokens: list[TokenDependency]
    prepares: list[Any]
    params: bytes
    max_retries: int

    @property
    def name(self) -> str:
        return f"{self.task_id}/{self.identifier}"

    def job(self, launcher: Launcher) -> Job:
        """The job of this plan, once the task's submit hooks adjusted it (environment, launcher)."""
        folder = self.jobpath
        logs = _log_names(self.task_id)
        job = Job(
            self.task,
            self.task_id,
            self.identifier,
            folder,
            tags=self.tags,
            launcher=launcher,
            max_retries=self.max_retries,
            resumable=isinstance(self.task, ResumableTask),
            dependencies=self.dependencies,
            tokens=self.tokens,
            prepares=self.prepares,
            stdout=folder / logs[0],
            stderr=folder / logs[1],
        )
        apply_submit_hooks(self.task, job)
        return job

    def describe(self, state: str) -> str:
        """What a dry run prints: state, job, tags, then one line per dependency."""
        line = f"{state.upper():<11} {self.name}"
        if self.tags:
            line += " " + " ".join(f"{k}={v}" for k, v in self.tags.items())
        deps = [f"    depends on {dep.name}" for dep in self.dependencies]
        return "\n".join([line, *deps])


def plan(
    task: Any,
    job_path: Callable[[str, str], PurePath],
    *,
    max_retries: int,
    exists: Callable[[str, str], bool] | None = None,
) -> Plan:
    """Seals a task, computes its identifier and job folder, and finds its dependencies.

    ``job_path(task_id, identifier)`` gives the job folder: the workspace's
    :class:`~xpm.store.jobs.JobDirs` (or any such function: a plan needs no experiment).
    ``exists(task_id, identifier)`` says whether a job folder exists: when the
    task holds deprecated classes and its job folder is still under the identifier
    from before the deprecation (``xpm.ids.raw_identifier``), that folder is the job's.

    The task's generated paths (``PathGenerator``) are resolved inside its job
    folder, and its parameters are encoded as they go to ``params.json``.
    """
    info = task.__xpm__
    info.seal()
    task_id = info.xpmtype.identifier
    identifier = digest(task).hex()
    if exists is not None and any_deprecated():
        identifier = _former_folder(task, task_id, identifier, exists)
    jobpath = job_path(task_id, identifier)
    # A remote workspace gives a PurePosixPath: generated paths and params.json
    # take it as a Path (as they always did).
    local = jobpath if isinstance(jobpath, Path) else Path(jobpath)
    info.generate_paths(local)
    dependencies, prepares = _walk(task)
    tokens: list[TokenDependency] = []
    if info.dependencies:
        tokens = [d for d in info.dependencies if isinstance(d, TokenDependency)]
        dependencies.extend(d for d in info.dependencies if isinstance(d, Job) and d not in dependencies)
    return Plan(
        task=task,
        task_id=task_id,
        identifier=identifier,
        jobpath=jobpath,
        tags=info.tags(),
        dependencies=dependencies,
        tokens=tokens,
        prepares=prepares,
        params=dumps(task, jobpath=local),
        max_retries=max_retries,
    )


def _former_folder(task: Any, task_id: str, identifier: str, exists: Callable[[str, str], bool]) -> str:
    """The identifier naming the task's job folder: the one from before a deprecation when only that
    folder exists (nothing is moved or renamed: the job is found where it ran)."""
    # The former identifier costs a computation without the cached digests: only for a tree that
    # holds a deprecated class, and whose job folder is not where it is now named.
    if not holds_deprecated(task) or exists(task_id, identifier):
        return identifier
    former = raw_identifier(task)
    if former != identifier and exists(task_id, former):
        logger.info("%s/%s: found under its former identifier %s (deprecated classes)", task_id, identifier, former)
        return former
    return identifier


def _walk(task: Any) -> tuple[list[Job], list[Any]]:
    """The jobs whose outputs the task's parameters hold, and the ``Prepare`` configurations."""
    jobs: list[Job] = []
    prepares: list[Any] = []
    _visit(task, jobs, prepares, {id(task)})
    return jobs, prepares


def _visit(config: ConfigMixin, jobs: list[Job], prepares: list[Any], seen: set[int]) -> None:
    """The walk of :func:`_walk` under ``config`` (a function, not a closure: a recursive
    closure is a reference cycle left to the garbage collector)."""
    info = config.__xpm__
    subs = info.child_configs()
    if info.init_tasks:
        subs.extend(info.init_tasks)
    for sub in subs:
        if id(sub) in seen:
            continue
        seen.add(id(sub))
        sub_info = sub.__xpm__
        producer = sub_info.job if sub_info.job is not None else (
            sub_info.task.__xpm__.job if sub_info.task is not None and not is_dynamic(sub) else None
        )
        if producer is not None:
            if producer not in jobs:
                jobs.append(cast(Job, producer))  # the experiment submitted it: a scheduler Job
            if sub_info.job is not None:
                continue  # a submitted task: its own parameters are its job's business
        if isinstance(sub, Prepare):
            prepares.append(sub)
        _visit(sub, jobs, prepares, seen)
