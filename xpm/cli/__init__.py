"""The command line: ``experimaestro`` and its short alias ``xpm`` (one click group).

Every :class:`~xpm.errors.XpmError` becomes one line on stderr and a non-zero exit;
``--traceback`` shows the Python traceback instead, for bug reports.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from xpm._version import __version__
from xpm.errors import XpmError


class _Group(click.Group):
    """Turns xpm errors into one clear line instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            # One line, as for every other bad input (click prints four).
            where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            click.echo(f"Error: {exc.format_message()}{where}", err=True)
            ctx.exit(exc.exit_code)
        except (XpmError, OSError, RecursionError) as exc:
            if ctx.obj and ctx.obj.get("traceback"):
                raise
            click.echo(f"Error: {_message(exc)}", err=True)
            ctx.exit(getattr(exc, "exit_code", 1))


def _message(exc: BaseException) -> str:
    """One line for an error: the files it names, and what went wrong."""
    if isinstance(exc, OSError) and exc.strerror:
        names = " -> ".join(str(n) for n in (exc.filename, exc.filename2) if n is not None)
        return f"{names}: {exc.strerror}" if names else exc.strerror
    if isinstance(exc, RecursionError):
        return "the input is nested too deeply to be read"
    return str(exc) or type(exc).__name__


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="xpm")
@click.option("--debug", is_flag=True, help="Log debug messages.")
@click.option("--quiet", is_flag=True, help="Log only warnings and errors.")
@click.option("--traceback", is_flag=True, help="Show the Python traceback of errors (for bug reports).")
@click.pass_context
def cli(ctx: click.Context, debug: bool, quiet: bool, traceback: bool) -> None:
    """xpm: run parameterised experiments, each distinct job exactly once.

    \b
    Examples:
      experimaestro version
      experimaestro jobs list --workdir /path/to/workspace
    """
    import logging

    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # asyncssh tells every connection step at INFO: noise unless debugging.
    logging.getLogger("asyncssh").setLevel(logging.DEBUG if debug else logging.WARNING)
    ctx.obj = {"traceback": traceback}


@cli.command()
def version() -> None:
    """Print the version of xpm.

    \b
    Example:
      experimaestro version
    """
    click.echo(__version__)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``experimaestro`` and ``xpm`` commands."""
    from xpm.cli import commands  # noqa: F401 - registers the commands

    if os.environ.get("XPM_EXPERIMAESTRO") == "1":
        # Experiments import experimaestro (docs/compatibility.md); checked first: the
        # drop-in's table costs a few milliseconds of start-up to every command.
        from xpm.compat import install_from_environment

        install_from_environment()

    cli.main(args=argv, prog_name="experimaestro" if sys.argv[0].endswith("experimaestro") else "xpm")
