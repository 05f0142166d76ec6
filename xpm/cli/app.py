"""The click group of ``experimaestro`` and ``xpm``, and the table of its commands.

Every :class:`~xpm.errors.XpmError` becomes one line on stderr and a non-zero exit;
``--traceback`` shows the Python traceback instead, for bug reports.
"""

from __future__ import annotations

from typing import Any

import click

from xpm._version import __version__
from xpm.errors import XpmError


class LazyGroup(click.Group):
    """A group whose commands are imported when named (``lazy``: name to ``"module:attribute"``).

    ``experimaestro experiments list`` then loads the code of one command, not of
    forty: the command line's start-up is most of what listing costs. ``--help``
    and shell completion list every command, and so import them all.
    """

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            import importlib

            module, _, attribute = self.lazy[cmd_name].partition(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return self.commands.get(cmd_name)


class _Group(LazyGroup):
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


#: The top-level commands, by the module that defines them (loaded when named).
COMMANDS = {
    "check-documentation": "xpm.cli.checkdoc:check_documentation",
    "completion": "xpm.cli.completion:completion",
    "experiments": "xpm.cli.commands:experiments",
    "find-launchers": "xpm.cli.commands:find_launchers",
    "install-skill": "xpm.cli.skill:install_skill",
    "jobs": "xpm.cli.jobs:jobs",
    "orphans": "xpm.cli.orphans:orphans",
    "parameters-difference": "xpm.cli.commands:parameters_difference",
    "refactor": "xpm.cli.refactor:refactor",
    "run-experiment": "xpm.cli.run_experiment:run_experiment",
    "workspace": "xpm.cli.commands:workspace",
}


@click.group(cls=_Group, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
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
    from xpm.cli import logs, startup_over

    logs.configure(debug, quiet)
    ctx.obj = {"traceback": traceback}
    startup_over()


@cli.command()
def version() -> None:
    """Print the version of xpm.

    \b
    Example:
      experimaestro version
    """
    click.echo(__version__)
