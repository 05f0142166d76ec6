"""Launchers: where and how a job process starts (locally, or on Slurm).

A launcher only starts and stops processes. The job process records its own state
in the workspace (:mod:`xpm.runner.job`), and the scheduler decides when to launch.
"""

from __future__ import annotations

import importlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

from xpm.errors import XpmError
from xpm.location import is_url
from xpm.process import ProcessRef
from xpm.state import FAILED


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
        workdir: the workspace's (local) root, where a launcher may keep files
            shared by several jobs (see :func:`xpm.layout.slurm_array_dir`).
    """

    jobdir: Path
    task_id: str
    identifier: str
    stdout: Path
    stderr: Path
    env: dict[str, str] = field(default_factory=dict)
    python_path: list[str] = field(default_factory=list)
    workdir: Path | None = None


class Launched:
    """A job process started by a launcher."""

    #: how other processes find it (recorded in the job's state record)
    process: ProcessRef

    def wait(self) -> int:
        """Blocks until the process ends; returns its exit status."""
        raise NotImplementedError

    def on_exit(self, callback: Callable[[int], None]) -> None:
        """Calls ``callback(status)`` once the process ended, from another thread.

        By default a thread waits for it; launchers that learn ends otherwise
        (a fork server's reports) call back without a thread per job.
        """
        threading.Thread(target=lambda: callback(self.wait()), name="xpm-wait", daemon=True).start()


class Launcher:
    """Base of launchers.

    Attributes:
        max_jobs: how many jobs of this launcher an experiment process runs at
            once (None: no limit).
        batch_size: how many ready jobs one :meth:`launch_many` call may take;
            above 1, the scheduler lets ready jobs gather for a moment first.
        local: whether its jobs run on this host; the experiment's ``max_jobs``
            limits such launchers when they have no limit of their own, and only
            them (a cluster's jobs do not use this host's CPUs).
    """

    max_jobs: int | None = None
    batch_size: int = 1
    local: bool = True
    #: a preference, for a ``launchers.py`` that compares launchers (higher: preferred)
    priority: float = 0

    @staticmethod
    def get(path: str | os.PathLike[str]) -> Launcher:
        """The default launcher of a workspace at ``path``: a local one.

        Raises:
            XpmError: ``path`` is a URL (``ssh://...``): xpm starts jobs on this host,
                or through Slurm's commands from it, and on no other.
        """
        from xpm.launchers.local import DirectLauncher

        if not isinstance(path, (str, os.PathLike)):
            raise XpmError(f"Launcher.get: expected a path, got {type(path).__name__} ({path!r:.60})")
        text = os.fspath(path)
        if is_url(str(text)):
            raise XpmError(
                f"Launcher.get({text!r}): jobs start on this host only; give a local path, or a SlurmLauncher"
            )
        return DirectLauncher()

    def launch(self, request: LaunchRequest) -> Launched:
        """Starts the job process; returns once it is started."""
        raise NotImplementedError

    def launch_many(self, requests: list[LaunchRequest]) -> list[Launched | Exception]:
        """Starts several jobs; per request, what :meth:`launch` returns, or why it failed.

        Launchers that can start jobs together (a Slurm job array) override this.
        """
        results: list[Launched | Exception] = []
        for request in requests:
            try:
                results.append(self.launch(request))
            except (OSError, XpmError) as exc:
                results.append(exc)
        return results


class LocalConnector:
    """This host, as experimaestro's launchers name it: ``DirectLauncher(connector=LocalConnector.instance())``.

    xpm's launchers start jobs on this host (or submit them with Slurm's commands from
    it): a connector only says so, and launchers accept no other (:func:`check_connector`).
    """

    _instance: ClassVar[LocalConnector | None] = None

    def __init__(self, localpath: str | os.PathLike[str] | None = None):
        #: experimaestro's folder of local data; kept for code that reads it
        self.localpath = Path(os.fspath(localpath)) if localpath is not None else None

    @classmethod
    def instance(cls) -> LocalConnector:
        """The connector of this host (one per process)."""
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def __repr__(self) -> str:
        return "LocalConnector()"


def check_connector(connector: Any, launcher: str) -> None:
    """Checks the ``connector`` argument of a launcher: None or a :class:`LocalConnector`.

    Raises:
        XpmError: another connector (an SSH one...): ``<launcher>: ...``.
    """
    if connector is not None and not isinstance(connector, LocalConnector):
        raise XpmError(
            f"{launcher}(connector={type(connector).__name__}): jobs start on this host only, "
            "give LocalConnector.instance() or no connector"
        )


# --- stopping a job's process, whoever launched it ------------------------------------------


class CannotStop(XpmError):
    """A job's process that this machine cannot stop (another host, another user...)."""


class ProcessHandler:
    """Knows one type of job process (the ``type`` of a state record's ``process``).

    ``jobs kill`` and the monitor stop a job through the handler of its record,
    so they need not know which launcher (or which experiment process) started it.
    """

    def alive(self, process: ProcessRef) -> bool | None:
        """Whether the process still runs; None when this machine cannot tell."""
        raise NotImplementedError

    def check_stoppable(self, process: ProcessRef) -> None:
        """Raises :class:`CannotStop` (with the reason) when :meth:`stop` cannot work from here."""

    def end_reason(self, process: ProcessRef) -> str:
        """Why a process that ended without recording its job's end ended (a failure reason)."""
        return FAILED

    def terminate(self, process: ProcessRef) -> None:
        """Asks the process to stop (SIGTERM: the task gets ``TaskCancelled``)."""
        raise NotImplementedError

    def kill(self, process: ProcessRef) -> None:
        """Stops the process now (after :meth:`terminate` was not enough)."""
        raise NotImplementedError


#: Process types and the class of their handler (imported when first needed)
_HANDLERS: dict[str, str] = {
    "local": "xpm.launchers.local:LocalProcessHandler",
    "slurm": "xpm.launchers.slurm:SlurmProcessHandler",
}


def process_handler(process: ProcessRef | None) -> ProcessHandler | None:
    """The handler of a job record's ``process``; None when there is none, or its type is unknown."""
    if not process or process.get("type") not in _HANDLERS:
        return None
    module, _, name = _HANDLERS[process["type"]].partition(":")
    return getattr(importlib.import_module(module), name)()  # type: ignore[no-any-return]


def process_alive(process: ProcessRef | None) -> bool | None:
    """Whether a job record's process still runs, whatever launched it; None when this host cannot tell."""
    handler = process_handler(process)
    return None if handler is None or process is None else handler.alive(process)


def end_reason(process: ProcessRef | None) -> str:
    """The failure reason of a job whose process ended without recording it (Slurm knows timeouts...)."""
    handler = process_handler(process)
    return FAILED if handler is None or process is None else handler.end_reason(process)
