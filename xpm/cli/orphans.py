"""``experimaestro orphans PATH``: job folders that no run of any experiment references."""

from __future__ import annotations

from typing import Any

import click

from xpm import layout
from xpm.cli.common import clean_jobs, emit, emit_json, warn
from xpm.errors import XpmError

__all__ = ["orphans"]


def _record(ws: Any, orphan: Any, show_size: bool) -> dict[str, Any]:
    """One job of ``orphans --json``."""
    folder = layout.job_dir(orphan.task_id, orphan.identifier)
    record = {"task_id": orphan.task_id, "identifier": orphan.identifier, "state": orphan.state,
              "orphan": orphan.orphan, "path": ws.describe(folder)}
    if show_size:
        record["size"] = ws.tree_size(folder)
    return record


def _size_text(size: int) -> str:
    """A size in bytes, in the largest unit that keeps a number of at least 1 (1024-based)."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


class DamagedRuns(XpmError):
    """Run logs that could not be read whole: the jobs they reference are not known."""

    def __init__(self, files: list[str]):
        self.files = files
        super().__init__(
            f"not deleting anything: {len(files)} run log(s) could not be read whole, so they may reference "
            f"any job (first: {files[0]}); repair or remove those runs, then try again"
        )


@click.command()
@click.argument("path", metavar="PATH")
@click.option("--size", "show_size", is_flag=True, help="Show the size of each job folder, and the total.")
@click.option("--clean", "perform", is_flag=True, help="Delete the finished orphan jobs.")
@click.option("--show-all", is_flag=True, help="Also list the jobs that are not orphans.")
@click.option("--fullpath", is_flag=True, help="Show job folders instead of task-id/identifier.")
@click.option("--json", "as_json", is_flag=True,
              help="List as a JSON array (task_id, identifier, state, orphan, path, size with --size).")
def orphans(path: str, show_size: bool, perform: bool, show_all: bool, fullpath: bool, as_json: bool) -> None:
    """List (or delete) jobs that no experiment run references.

    PATH is the workspace (a folder, or ssh://user@host/path). A job is
    referenced when a run kept in experiments/ submitted it. --clean deletes
    the orphans that ended (DONE, ERROR) or never started (UNSCHEDULED) only,
    each after checking its state under its lock; running or waiting jobs are
    never deleted.

    \b
    Examples:
      experimaestro orphans /path/to/workspace --size
      experimaestro orphans /path/to/workspace --clean
    """
    from xpm import state
    from xpm.query import orphans as find_orphans
    from xpm.query import referenced_jobs, short_name, state_text
    from xpm.workspace import Workspace

    if as_json and perform:
        raise click.UsageError("--json lists the orphans; it does not combine with --clean")
    ws = Workspace.open(path)
    references = referenced_jobs(ws)
    if references.damaged and perform:
        raise DamagedRuns(references.damaged)
    warn(f"{file}: damaged lines; the jobs it references may be listed as orphans" for file in references.damaged)
    found = find_orphans(ws, references, show_all=show_all)
    if as_json:
        emit_json([_record(ws, o, show_size) for o in found])
        return
    if not any(o.orphan for o in found):
        emit(["No orphan jobs found."])
        if not found:
            return
    sizes = {o: ws.tree_size(layout.job_dir(o.task_id, o.identifier)) for o in found} if show_size else {}

    def name(orphan: Any) -> str:
        text = ws.describe(layout.job_dir(orphan.task_id, orphan.identifier)) if fullpath else short_name(orphan)
        return f"{text} {_size_text(sizes[orphan])}" if show_size else text

    if not perform:
        emit(f"{state_text(o.state):<11} {name(o)}{'' if o.orphan else ' (not orphan)'}" for o in found)
        count = [o for o in found if o.orphan]
        total = f", {_size_text(sum(sizes[o] for o in count))}" if show_size else ""
        if count:
            emit([f"{len(count)} orphan job(s){total}."])
        return
    # An experiment may have submitted some of them since: look again just before deleting.
    again = referenced_jobs(ws)
    if again.damaged:
        raise DamagedRuns(again.damaged)
    targets = [o for o in found if o.orphan and (o.task_id, o.identifier) not in again.jobs]
    emit(f"SKIPPED {name(o)}: {state.not_cleanable(o.state)}" for o in targets if o.state not in state.CLEANABLE)
    if clean_jobs(ws, {(o.task_id, o.identifier): name(o) for o in targets if o.state in state.CLEANABLE}):
        raise SystemExit(1)
