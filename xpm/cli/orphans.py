"""``experimaestro orphans PATH``: job folders that no run of any experiment references."""

from __future__ import annotations

import click

from xpm.cli import cli
from xpm.cli.common import clean_jobs, emit

__all__ = ["orphans"]


def _size_text(size: int) -> str:
    """A size in bytes, in the largest unit that keeps a number of at least 1 (1024-based)."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


@cli.command()
@click.argument("path", metavar="PATH")
@click.option("--size", "show_size", is_flag=True, help="Show the size of each job folder, and the total.")
@click.option("--clean", "perform", is_flag=True, help="Delete the finished orphan jobs.")
@click.option("--show-all", is_flag=True, help="Also list orphans that are not finished (never deleted).")
@click.option("--fullpath", is_flag=True, help="Show job folders instead of task-id/identifier.")
def orphans(path: str, show_size: bool, perform: bool, show_all: bool, fullpath: bool) -> None:
    """List (or delete) finished jobs that no experiment run references.

    PATH is the workspace (a folder, or ssh://user@host/path). A job is
    referenced when a run kept in experiments/ submitted it. Jobs that are not
    finished (running, waiting) are never deleted; --show-all lists them too.

    \b
    Examples:
      experimaestro orphans /path/to/workspace --size
      experimaestro orphans /path/to/workspace --clean
    """
    from xpm import layout
    from xpm.control import CLEANABLE
    from xpm.query import orphans as find_orphans
    from xpm.query import short_name, state_text
    from xpm.workspace import Workspace

    ws = Workspace.open(path)
    found = [o for o in find_orphans(ws) if show_all or o.state in CLEANABLE]
    if not found:
        click.echo("No orphan jobs found.")
        return
    sizes = {o: ws.tree_size(layout.job_dir(o.task_id, o.identifier)) for o in found} if show_size else {}

    def name(orphan: object) -> str:
        key = (orphan[0], orphan[1])  # type: ignore[index]
        text = ws.describe(layout.job_dir(*key)) if fullpath else short_name(key)
        return f"{text} {_size_text(sizes[orphan])}" if show_size else text

    if not perform:
        emit(f"{state_text(o.state):<11} {name(o)}" for o in found)
        total = f", {_size_text(sum(sizes.values()))}" if show_size else ""
        click.echo(f"{len(found)} orphan job(s){total}.")
        return
    clean_jobs(ws, (((o.task_id, o.identifier), name(o)) for o in found))
