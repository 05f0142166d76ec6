"""What a running task may ask about its job: ``Env.instance().taskpath`` and the like.

The job program (:mod:`xpm.runner.job`) fills the one :class:`Env` of the process
before it loads the task. Outside a job (in an experiment, a notebook, a test)
the paths, the launcher information and the current task are None.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from xpm import context, layout
from xpm.errors import XpmError

__all__ = ["Env", "LauncherInformation"]


class LauncherInformation:
    """What the launcher of the running job can tell the task."""

    def remaining_time(self) -> float | None:
        """Seconds before the job's time limit; None without one (local jobs, or outside a job)."""
        return context.remaining_time()

    def __repr__(self) -> str:
        return "LauncherInformation()"


class Env:
    """The job this process runs, as the task sees it (one per process: :meth:`instance`)."""

    _instance: Env | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        #: the workspace folder (None outside a job)
        self.wspath: Path | None = None
        #: the job folder (None outside a job)
        self.taskpath: Path | None = None
        #: the launcher of the job (None outside a job)
        self.launcher_info: LauncherInformation | None = None
        #: the task object being executed (None outside a job, and while the job loads it)
        self.current_task: Any = None
        #: True in the helper processes of a task (distributed ranks other than 0):
        #: they report no progress
        self.slave: bool = False
        #: kept for code that reads it; xpm tracks no carbon emissions
        self.carbon_tracker: Any = None

    @staticmethod
    def instance() -> Env:
        """The environment of this process."""
        if Env._instance is None:
            with Env._lock:
                if Env._instance is None:
                    Env._instance = Env()
        return Env._instance

    @property
    def xpm_path(self) -> Path:
        """The folder of xpm's own files in the job folder (created if needed)."""
        if self.taskpath is None:
            raise XpmError("Env.xpm_path is only known in a job process (Env.taskpath is None)")
        path = self.taskpath / layout.JOB_META
        path.mkdir(exist_ok=True)
        return path

    def __repr__(self) -> str:
        return f"Env(taskpath={self.taskpath!r}, wspath={self.wspath!r})"
