"""What several commands share: the workspace options and opening the chosen workspace."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def workspace_options(fn: F) -> F:
    """``--workspace ID``, ``--workdir PATH`` and ``--xpm-config-dir DIR``."""
    fn = click.option("--xpm-config-dir", type=click.Path(), help="The configuration folder (settings.yaml).")(fn)
    fn = click.option("--workdir", help="The workspace folder (a path or ssh://user@host:port/path).")(fn)
    fn = click.option("--workspace", "workspace_id", help="A workspace id from settings.yaml.")(fn)
    return fn


def open_workspace(workspace_id: str | None, workdir: str | None, xpm_config_dir: str | None) -> Any:
    """Opens the workspace the options designate (one rule for every command)."""
    from xpm.settings import resolve_workspace
    from xpm.workspace import Workspace

    settings = resolve_workspace(workspace=workspace_id, workdir=workdir, config_dir=xpm_config_dir)
    return Workspace.open(str(settings.location))
