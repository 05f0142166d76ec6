"""``experimaestro refactor default-values [PATH] [--perform]``: bare defaults rewritten with ``field``."""

from __future__ import annotations

import os

import click

from xpm.cli.common import emit, warn
from xpm.errors import FileProblem

__all__ = ["refactor"]


@click.group()
def refactor() -> None:
    """Rewrite code to the current conventions.

    \b
    Example:
      experimaestro refactor default-values --perform
    """


def _shown(path: str) -> str:
    """A path as the user reads it: relative to the current folder when it is inside it."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


@refactor.command("default-values")
@click.argument("path", default=".", type=click.Path(exists=True), metavar="[PATH]")
@click.option("--perform", is_flag=True, help="Write the changes (default: only show them as a diff).")
def default_values(path: str, perform: bool) -> None:
    """Rewrite bare defaults as field(default=..., ignore_default=True).

    Finds the Param, Meta and Option annotations of the Python files under
    PATH (default: the current folder) whose default is bare (x: Param[int] =
    3) and rewrites them in the explicit form, which keeps every identifier;
    comments and layout are kept. Without --perform, prints the changes as a
    unified diff and exits with status 1 when there is something to change
    (for CI). A default written over several lines is reported (file:line)
    for a manual fix; a file that does not parse is reported and skipped.

    \b
    Examples:
      experimaestro refactor default-values
      experimaestro refactor default-values --perform
    """
    from xpm.refactor import python_files, read_rewrite, write_rewrite

    changes = files = manual = problems = 0
    for filename in python_files(path):
        shown = _shown(filename)
        try:
            rewrite = read_rewrite(filename)
        except FileProblem as exc:
            problems += 1
            warn([str(exc).replace(filename, shown, 1)])
            continue
        except OSError as exc:
            problems += 1
            warn([f"{shown}: cannot be read ({exc.strerror or exc}); left unchanged"])
            continue
        except RecursionError:
            problems += 1
            warn([f"{shown}: nested too deeply to be read; left unchanged"])
            continue
        for left in rewrite.manual:
            manual += 1
            click.echo(
                f"{shown}:{left.line}: {left.owner}.{left.name}: the default spans several lines: "
                "rewrite it by hand with field(default=..., ignore_default=True)",
                err=True,
            )
        if not rewrite.changed:
            continue
        changes += len(rewrite.changes)
        files += 1
        if perform:
            write_rewrite(rewrite)
            click.echo(f"Rewrote {shown} ({len(rewrite.changes)} default(s))")
        else:
            emit([rewrite.diff(shown).rstrip("\n")])

    if perform:
        click.echo(f"{changes} bare default(s) rewritten in {files} file(s)", err=True)
    elif changes:
        click.echo(f"{changes} bare default(s) in {files} file(s) would be rewritten: run again with --perform",
                   err=True)
    elif not manual:
        click.echo("No bare default to rewrite", err=True)
    if problems or (not perform and (changes or manual)):
        raise SystemExit(1)
