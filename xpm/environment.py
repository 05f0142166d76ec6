"""What a run ran with: Python, installed packages, the project's git state (``environment.json``)."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from xpm.schema import RECORD_VERSION, EnvironmentRecord, GitInfo


def packages() -> dict[str, str]:
    """Installed distributions, name to version."""
    from importlib import metadata

    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found[name] = dist.version
    return dict(sorted(found.items(), key=lambda item: item[0].lower()))


def git_info(folder: str | os.PathLike[str]) -> GitInfo | None:
    """The commit and dirtiness of the git repository holding ``folder`` (None outside git, or
    without git)."""
    from xpm.gitinfo import GitProblem, git_state

    try:
        found = git_state(folder, with_patch=False)
    except GitProblem:
        return None
    return GitInfo(commit=found.commit, dirty=found.dirty, path=found.top)


def collect(project: str | os.PathLike[str] | None) -> EnvironmentRecord:
    """The environment record of a run whose code lives in ``project`` (a folder)."""
    return EnvironmentRecord(
        version=RECORD_VERSION,
        python=platform.python_version(),
        packages=packages(),
        git=git_info(project) if project is not None and Path(project).is_dir() else None,
    )
