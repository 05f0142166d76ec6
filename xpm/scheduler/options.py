"""What ``experiment(...)`` accepts besides its workspace and name, for code written for experimaestro:
the check of the project's git state (the web monitor's keywords are :mod:`xpm.web.serve`'s)."""

from __future__ import annotations

import enum
import sys
from typing import Any

from xpm.errors import XpmError
from xpm.schema import EnvironmentRecord

__all__ = ["DirtyGitError", "DIRTY_GIT_ACTIONS", "dirty_git_action", "check_git"]


class DirtyGitError(XpmError):
    """The experiment's git repository has uncommitted changes, and ``dirty_git=DirtyGitAction.ERROR`` refuses that."""

    def __init__(self, path: str):
        self.path = path
        super().__init__(f"the project's git repository has uncommitted changes: {path} (dirty_git=ERROR)")


#: What ``dirty_git`` may say, by the names of experimaestro's ``DirtyGitAction``
DIRTY_GIT_ACTIONS = ("IGNORE", "WARN", "ERROR")


class DirtyGitAction(str, enum.Enum):
    """What ``experiment(dirty_git=...)`` does when the code's git repository has uncommitted changes."""

    IGNORE = "ignore"
    WARN = "warn"
    ERROR = "error"


class GracefulExperimentExit(Exception):
    """Raised inside ``with experiment(...)``: leaves the block without waiting for the jobs,
    which go on running (the next run of the experiment follows them); not an error."""


def dirty_git_action(value: Any) -> str:
    """``dirty_git`` as the name of its action, ``IGNORE`` (for None too), ``WARN`` or ``ERROR``
    (given as a ``DirtyGitAction`` member, or its value in any case).

    Raises:
        XpmError: any other value; the message names it.
    """
    if value is None:
        return "IGNORE"
    name = str(getattr(value, "value", value)).upper()
    if name not in DIRTY_GIT_ACTIONS:
        raise XpmError(f"experiment(dirty_git={value!r}): expected one of {', '.join(DIRTY_GIT_ACTIONS)}")
    return name


def check_git(environment: EnvironmentRecord, action: str) -> None:
    """Applies ``dirty_git`` (:func:`dirty_git_action`) to the git state of a run's environment.

    Raises:
        DirtyGitError: the repository has uncommitted changes and ``action`` is ``error``.
    """
    git = environment.git
    if git is None or not git.dirty or action == "IGNORE":
        return
    if action == "ERROR":
        raise DirtyGitError(git.path)
    print(f"xpm: warning: the project's git repository has uncommitted changes: {git.path}", file=sys.stderr,
          flush=True)
