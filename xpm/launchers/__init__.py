"""Launchers: where and how a job process starts (locally, later on Slurm).

A launcher only starts and stops processes. The job process records its own state
in the workspace (:mod:`xpm.jobprocess`), and the scheduler decides when to launch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class LaunchRequest:
    """What a launcher needs to start one job.

    Attributes:
        jobdir: the job folder (local path); the job's working directory.
        task_id: the job's task id.
        identifier: the job's identifier.
        stdout: the file that receives the job's standard output.
        stderr: the file that receives the job's standard error.
        env: environment variables for the job, on top of the launcher's own.
        python_path: folders the job needs on ``sys.path`` to import the
            experiment's classes.
    """

    jobdir: Path
    task_id: str
    identifier: str
    stdout: Path
    stderr: Path
    env: dict[str, str] = field(default_factory=dict)
    python_path: list[str] = field(default_factory=list)


class Launched:
    """A job process started by a launcher."""

    #: how other processes find it (recorded in the job's state record)
    process: dict[str, Any]

    def wait(self) -> int:
        """Blocks until the process ends; returns its exit status."""
        raise NotImplementedError


class Launcher:
    """Base of launchers.

    Attributes:
        max_jobs: how many jobs of this launcher an experiment process runs at
            once (None: no limit).
    """

    max_jobs: int | None = None

    def launch(self, request: LaunchRequest) -> Launched:
        """Starts the job process; returns once it is started."""
        raise NotImplementedError
