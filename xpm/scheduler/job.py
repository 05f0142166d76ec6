"""A submitted job, as the experiment process sees it."""

from __future__ import annotations

import threading
from pathlib import PurePath
from typing import Any, Callable

from xpm import state
from xpm.launchers import Launched, Launcher
from xpm.store.tokens import TokenDependency


class Job:
    """One job of the workspace, submitted by this experiment process.

    Attributes:
        config: the task configuration.
        task_id: the task id (first part of the job's folder name).
        identifier: the job identifier (hex).
        jobpath: the job folder.
        tags: the tags of the task.
        state: the state as this process knows it (``unscheduled``, ``waiting``,
            ``ready``, ``scheduled``, ``running``, ``done``, ``error``).
        failure_reason: why the job is in error (``failed``, ``dependency``,
            ``cancelled``, ``timeout``, ``memory``).
        dependencies: the jobs whose outputs this job's parameters hold.
        tokens: the token units the job holds while it runs.
        prepares: the ``Prepare`` configurations to run before the job starts.
        retry_count: how many times the job was run again after a timeout.
        environ: environment variables of this job's process, over the experiment's
            (set by submit hooks, :mod:`xpm.config.hooks`).
    """

    def __init__(
        self,
        config: Any,
        task_id: str,
        identifier: str,
        jobpath: PurePath,
        *,
        tags: dict[str, Any],
        launcher: Launcher,
        max_retries: int,
        resumable: bool,
        dependencies: list[Job],
        tokens: list[TokenDependency],
        prepares: list[Any],
        stdout: PurePath,
        stderr: PurePath,
    ):
        self.config = config
        self.task_id = task_id
        self.identifier = identifier
        self.jobpath = jobpath
        self.stdout = stdout
        self.stderr = stderr
        self.tags = tags
        self.launcher = launcher
        self.max_retries = max_retries
        self.resumable = resumable
        self.dependencies = dependencies
        self.tokens = tokens
        self.prepares = prepares
        self.state = state.UNSCHEDULED
        self.failure_reason: str | None = None
        self.retry_count = 0
        self.environ: dict[str, str] = {}
        #: the dependencies not finished yet (kept by the scheduler)
        self.waiting_on: set[Job] = set()
        #: the jobs that wait for this one
        self.dependents: list[Job] = []
        #: the process this experiment launched for the job
        self.launched: Launched | None = None
        #: the process record of a job run by another process, that this one follows
        self.attached: dict[str, Any] | None = None
        self._finished = threading.Event()

    @property
    def name(self) -> str:
        """``task-id/identifier``."""
        return f"{self.task_id}/{self.identifier}"

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Waits until the job ends (in this experiment); returns whether it is done."""
        self._finished.wait(timeout)
        return self.state == state.DONE

    def describe_tags(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.tags.items())

    def __repr__(self) -> str:
        return f"Job({self.name}, {self.state})"


def run_prepares(job: Job, done: set[str], announce: Callable[[str], None] | None = None) -> None:
    """Runs the job's ``Prepare`` configurations not run yet (``done`` holds their identifiers).

    ``announce`` receives ``<type-id>/<identifier>`` before each one runs.
    """
    for prep in job.prepares:
        key = str(prep.__identifier__())
        if key in done:
            continue
        if announce is not None:
            announce(f"{prep.__xpm__.xpmtype.identifier}/{key}")
        prep.prepare()
        done.add(key)
