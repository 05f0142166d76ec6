"""Registers the commands of the click group (imported by :func:`xpm.cli.main`)."""

from __future__ import annotations

import click

from xpm.cli import cli
from xpm.cli.common import open_workspace, workspace_options


@cli.group()
def experiments() -> None:
    """Experiments of a workspace."""


@experiments.command()
@workspace_options
def sync(workspace_id: str | None, workdir: str | None, xpm_config_dir: str | None) -> None:
    """Rebuild the derived indexes from the files, and say what was fixed.

    Never deletes a job folder.

    \b
    Example:
      experimaestro experiments sync --workdir /path/to/workspace
    """
    from xpm.maintenance import sync as run_sync

    ws = open_workspace(workspace_id, workdir, xpm_config_dir)
    report = run_sync(ws)
    for line in report.fixed:
        click.echo(f"fixed: {line}")
    click.echo(f"{report.jobs} jobs, {len(report.fixed)} fixes")


@cli.group()
def workspace() -> None:
    """Workspace maintenance."""


@workspace.command()
@workspace_options
@click.option("--no-recompute", is_flag=True, help="Do not import task classes to recompute identifiers.")
def check(workspace_id: str | None, workdir: str | None, xpm_config_dir: str | None, no_recompute: bool) -> None:
    """Check every job folder, record, log and lock; exit 1 if anything is wrong.

    Recomputes each job's identifier from its params.json and compares it with
    its folder name.

    \b
    Example:
      experimaestro workspace check --workdir /path/to/workspace
    """
    from xpm.maintenance import check as run_check

    ws = open_workspace(workspace_id, workdir, xpm_config_dir)
    problems = run_check(ws, recompute=not no_recompute)
    for problem in problems:
        click.echo(str(problem))
    if problems:
        click.echo(f"{len(problems)} problem(s) found", err=True)
        raise SystemExit(1)
    click.echo("no problem found")
from xpm.cli import run_experiment  # noqa: E402,F401 - registers run-experiment
