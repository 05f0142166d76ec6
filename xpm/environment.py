"""What a run ran with: Python, installed packages, the project's git state (``environment.json``)."""

from __future__ import annotations

import os
import platform
import subprocess
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
    """The commit and dirtiness of the git repository holding ``folder`` (None outside git)."""

    def git(*args: str) -> str | None:
        try:
            result = subprocess.run(
                ["git", *args], cwd=folder, capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return result.stdout.strip() if result.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    commit = git("rev-parse", "HEAD")
    if top is None or commit is None:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return GitInfo(commit=commit, dirty=bool(status), path=top)


def collect(project: str | os.PathLike[str] | None) -> EnvironmentRecord:
    """The environment record of a run whose code lives in ``project`` (a folder)."""
    return EnvironmentRecord(
        version=RECORD_VERSION,
        python=platform.python_version(),
        packages=packages(),
        git=git_info(project) if project is not None and Path(project).is_dir() else None,
    )
