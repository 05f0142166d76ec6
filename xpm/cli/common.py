"""What several commands share: the workspace options, opening the workspace, printing lines."""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, Iterable, TypeVar

import click

from xpm.cli.completion import complete_folders, complete_workspace_ids
from xpm.errors import XpmError

F = TypeVar("F", bound=Callable[..., Any])


def workspace_options(fn: F) -> F:
    """``--workspace ID``, ``--workdir PATH`` and ``--xpm-config-dir DIR``."""
    fn = click.option("--xpm-config-dir", type=click.Path(), help="The configuration folder (settings.yaml).")(fn)
    fn = click.option("--workdir", help="The workspace folder (a path or ssh://user@host:port/path).",
                      shell_complete=complete_folders)(fn)
    fn = click.option("--workspace", "workspace_id", help="A workspace id from settings.yaml.",
                      shell_complete=complete_workspace_ids)(fn)
    return fn


def open_workspace(workspace_id: str | None, workdir: str | None, xpm_config_dir: str | None) -> Any:
    """Opens the workspace the options designate (one rule for every command)."""
    from xpm.settings import resolve_workspace_here
    from xpm.workspace import Workspace

    settings, found = resolve_workspace_here(workspace=workspace_id, workdir=workdir, config_dir=xpm_config_dir,
                                             here=os.getcwd())
    if found is not None:  # no option and no settings: the one workspace of the current folder, said aloud
        click.echo(f"Using the workspace {found} (found in the current folder: --workdir chooses another)", err=True)
    return Workspace.open(str(settings.location), **settings.storage_options())


def remember_workspace(ctx: click.Context, workspace_id: str | None, workdir: str | None, config: str | None) -> None:
    """Keeps a group's workspace options for its subcommands (``jobs --workdir W list``)."""
    ctx.ensure_object(dict)
    ctx.obj["workspace"] = (workspace_id, workdir, config)


def group_workspace(workspace_id: str | None, workdir: str | None, xpm_config_dir: str | None) -> Any:
    """Opens the workspace of a subcommand: its own options, else its group's."""
    ctx = click.get_current_context()
    group = (ctx.obj or {}).get("workspace", (None, None, None))
    if workspace_id is None and workdir is None:
        workspace_id, workdir = group[0], group[1]
    return open_workspace(workspace_id, workdir, xpm_config_dir or group[2])


def emit(lines: Iterable[str]) -> None:
    """Prints lines in one write (100,000 lines in milliseconds); a closed pipe (``| head``) ends quietly."""
    text = "".join(f"{line}\n" for line in lines)
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        quiet_broken_pipe()


def warn(notes: Iterable[str]) -> None:
    """Prints ``Warning: ...`` lines on stderr."""
    for note in notes:
        click.echo(f"Warning: {note}", err=True)


def emit_json(value: Any) -> None:
    """Prints a JSON document (for ``--json``)."""
    import json

    emit([json.dumps(value, indent=None, separators=(",", ":"))])


def quiet_broken_pipe() -> None:
    # Python would complain again when flushing stdout at exit.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    raise SystemExit(0)


def report_outcomes(act: Callable[[Callable[[Any], None]], None], names: dict[Any, str], verb: str) -> int:
    """Runs an action on jobs, printing each outcome as it comes (``KILLED x``, ``SKIPPED x: why``...).

    An error on one job (a damaged record, a file that cannot be deleted) is
    printed as ``<VERB> FAILED x: error`` and the others go on: what was done
    before is always reported. Returns the number of failures.
    """
    failures = 0

    def report(outcome: Any) -> None:
        nonlocal failures
        name = names[outcome.key]
        if outcome.failed:
            failures += 1
            emit([f"{verb} FAILED {name}: {outcome.detail}"])
        elif outcome.result == "skipped":
            emit([f"SKIPPED {name}: {outcome.detail}"])
        else:
            emit([f"{outcome.result.upper()} {name}"])

    try:
        act(report)
    except (XpmError, OSError) as exc:
        failures += 1
        emit([f"{verb} STOPPED: {exc}"])
    return failures


def clean_jobs(ws: Any, names: dict[tuple[str, str], str]) -> int:
    """Deletes finished jobs (key to the name to print), printing ``CLEANED``/``SKIPPED`` lines.

    Returns:
        The number of jobs that could not be deleted because of an error.
    """
    from xpm.control import clean_all
    from xpm.store.jobs import JobStore

    return report_outcomes(lambda report: clean_all(JobStore(ws), names, report), names, "CLEAN")
