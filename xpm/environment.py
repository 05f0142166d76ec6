"""What a run ran with: Python, installed packages, the project's git state (``environment.json``)."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import TYPE_CHECKING

from xpm.schema import RECORD_VERSION, EnvironmentRecord, GitInfo

if TYPE_CHECKING:
    from xpm.gitinfo import GitState


def packages() -> dict[str, str]:
    """Installed distributions, name to version."""
    from importlib import metadata

    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found[name] = dist.version
    return dict(sorted(found.items(), key=lambda item: item[0].lower()))


def git_info(folder: str | os.PathLike[str], known: dict[str, GitState] | None = None) -> GitInfo | None:
    """The commit and dirtiness of the git repository holding ``folder`` (None outside git, or
    without git); ``known``: the states already asked (see :func:`xpm.gitinfo.git_state`)."""
    from xpm.gitinfo import GitProblem, git_state

    try:
        found = git_state(folder, with_patch=False, known=known)
    except GitProblem:
        return None
    return GitInfo(commit=found.commit, dirty=found.dirty, path=found.top)


def collect(project: str | os.PathLike[str] | None, known: dict[str, GitState] | None = None) -> EnvironmentRecord:
    """The environment record of a run whose code lives in ``project`` (a folder); ``known``: the
    git states already asked (see :func:`xpm.gitinfo.git_state`)."""
    return EnvironmentRecord(
        version=RECORD_VERSION,
        python=platform.python_version(),
        packages=packages(),
        git=git_info(project, known) if project is not None and Path(project).is_dir() else None,
    )
