"""``xp.workspace``: an experiment's workspace as experiment code sees it."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any

from xpm import layout
from xpm.errors import XpmError
from xpm.settings import WorkspaceSettings
from xpm.workspace import Workspace

__all__ = ["ExperimentWorkspace", "location_of", "same_place"]


class ExperimentWorkspace:
    """``xp.workspace``: the experiment's workspace, with the paths experiment code asks for.

    It offers the methods of the xpm :class:`~xpm.workspace.Workspace` it wraps
    (``location``, ``local_path``...), and ``path`` (the workspace folder),
    ``jobspath``, ``experimentspath``, ``run_mode``, ``launcher`` and ``settings``.
    For a dry run of a workspace that does not exist, only the paths are known.
    """

    def __init__(self, xp: Any):
        self._xp = xp

    @property
    def path(self) -> Path | PurePosixPath:
        """The workspace folder (a ``PurePosixPath`` for a remote workspace)."""
        return self._xp.job_dirs.path("")

    @property
    def jobspath(self) -> Path | PurePosixPath:
        return self._xp.jobspath

    @property
    def experimentspath(self) -> Path | PurePosixPath:
        return self._xp.job_dirs.path(layout.EXPERIMENTS)

    @property
    def run_mode(self) -> Any:
        return self._xp.run_mode

    @property
    def launcher(self) -> Any:
        return self._xp.launcher

    @property
    def settings(self) -> WorkspaceSettings | None:
        return self._xp.settings

    @property
    def workspace(self) -> Workspace | None:
        """The xpm workspace (None for a dry run of a workspace that does not exist)."""
        return self._xp._ws

    def __getattr__(self, name: str) -> Any:
        ws = self.__dict__["_xp"]._ws
        if ws is None:
            raise AttributeError(f"the workspace {self.path} does not exist (a dry run): it has no {name!r}")
        return getattr(ws, name)

    def __repr__(self) -> str:
        return f"ExperimentWorkspace({str(self.path)!r})"


def location_of(workspace: Any, where: str) -> str:
    """The location a ``workspace=`` value designates (a folder, ``WorkspaceSettings``, a workspace).

    Raises:
        XpmError: not a workspace; the message starts with ``where``.
    """
    if isinstance(workspace, ExperimentWorkspace):
        return workspace._xp._location  # type: ignore[no-any-return]
    if isinstance(workspace, Workspace):
        return workspace.location
    if isinstance(workspace, WorkspaceSettings):
        return str(workspace.location)
    if isinstance(workspace, (str, os.PathLike)):
        return os.fspath(workspace)
    raise XpmError(f"{where}: workspace={workspace!r} is not a workspace (a folder, WorkspaceSettings)")


def same_place(one: str, other: str) -> bool:
    """Whether two workspace locations are the same place (local paths compared resolved)."""
    if one == other:
        return True
    if "://" in one or "://" in other:
        return one.rstrip("/") == other.rstrip("/")
    return os.path.realpath(os.path.expanduser(one)) == os.path.realpath(os.path.expanduser(other))
