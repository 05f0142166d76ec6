"""What submitting a task computes before anything runs: identifier, job folder, dependencies.

A parameter that holds the output of a submitted task (the task itself, or a
configuration its ``task_outputs`` marked with ``dep``) makes a dependency on that
task's job. ``Prepare`` configurations reachable from the parameters are run by
the experiment process before the job starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Callable

from xpm.config.base import ConfigMixin, Prepare, ResumableTask
from xpm.launchers import Launcher
from xpm.scheduler.job import Job
from xpm.scheduler.tokens import TokenDependency


@dataclass
class Plan:
    """A task ready to become a job."""

    task: Any
    task_id: str
    identifier: str
    jobpath: PurePath
    tags: dict[str, Any]
    dependencies: list[Job]
    tokens: list[TokenDependency]
    prepares: list[Any]
    params: bytes
    max_retries: int

    @property
    def name(self) -> str:
        return f"{self.task_id}/{self.identifier}"

    def job(self, launcher: Launcher) -> Job:
        from xpm import layout

        folder = self.jobpath
        return Job(
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
            stdout=folder / layout.job_log_name(self.task_id, "out"),
            stderr=folder / layout.job_log_name(self.task_id, "err"),
        )

    def describe(self, state: str) -> str:
        """What a dry run prints: state, job, tags, then one line per dependency."""
        line = f"{state.upper():<11} {self.name}"
        if self.tags:
            line += " " + " ".join(f"{k}={v}" for k, v in self.tags.items())
        deps = [f"    depends on {dep.name}" for dep in self.dependencies]
        return "\n".join([line, *deps])


def plan(task: Any, job_path: Callable[[str, str], PurePath], *, max_retries: int) -> Plan:
    """Seals a task, computes its identifier and job folder, and finds its dependencies.

    The task's generated paths (``PathGenerator``) are resolved inside its job
    folder, and its parameters are encoded as they go to ``params.json``.
    """
    from pathlib import Path

    from xpm.serialize import dumps

    info = task.__xpm__
    info.seal()
    task_id = info.xpmtype.identifier
    identifier = str(task.__identifier__())
    jobpath = job_path(task_id, identifier)
    info.generate_paths(Path(jobpath))
    dependencies, prepares = _walk(task)
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
        params=dumps(task, jobpath=Path(jobpath)),
        max_retries=max_retries,
    )


def _walk(task: Any) -> tuple[list[Job], list[Any]]:
    """The jobs whose outputs the task's parameters hold, and the ``Prepare`` configurations."""
    jobs: list[Job] = []
    prepares: list[Any] = []
    seen: set[int] = {id(task)}

    def visit(config: ConfigMixin) -> None:
        info = config.__xpm__
        subs = list(info.children()) + list(info.init_tasks)
        for sub in subs:
            if id(sub) in seen:
                continue
            seen.add(id(sub))
            sub_info = sub.__xpm__
            producer = sub_info.job if sub_info.job is not None else (
                sub_info.task.__xpm__.job if sub_info.task is not None else None
            )
            if producer is not None:
                if producer not in jobs:
                    jobs.append(producer)
                if sub_info.job is not None:
                    continue  # a submitted task: its own parameters are its job's business
            if isinstance(sub, Prepare):
                prepares.append(sub)
            visit(sub)

    visit(task)
    return jobs, prepares
