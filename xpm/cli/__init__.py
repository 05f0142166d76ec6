"""The command line: ``experimaestro`` and its short alias ``xpm``.

:func:`main` is the entry point of both; the click group and the table of its
commands are in :mod:`xpm.cli.app`, loaded by :func:`main` (``xpm.cli.cli`` is
that group too). Each command's code is loaded when the command is named.
"""

from __future__ import annotations

import gc
import os
import sys
from typing import Any

__all__ = ["cli", "main", "startup_over"]

#: Whether :func:`main` turned the garbage collector off for the start-up
_collector_paused = False


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``experimaestro`` and ``xpm`` commands."""
    global _collector_paused
    # Start-up imports thousands of objects (modules, classes, click's commands) that
    # live as long as the process: the collector's passes over them find nothing, yet
    # cost a tenth of a listing. It is off until the command starts (startup_over), and
    # at exit what is left is freed with the process rather than walked once more
    # (atexit runs the last registered first: this runs after every other handler).
    if gc.isenabled():
        gc.disable()
        _collector_paused = True
    import atexit

    atexit.register(gc.freeze)

    if os.environ.get("XPM_EXPERIMAESTRO") == "1":
        # Experiments import experimaestro (docs/compatibility.md); checked first: the
        # drop-in's table costs a few milliseconds of start-up to every command.
        from xpm.compat import install_from_environment

        install_from_environment()

    from xpm.cli.app import cli

    cli.main(args=argv, prog_name="experimaestro" if sys.argv[0].endswith("experimaestro") else "xpm")


def startup_over() -> None:
    """Turns the garbage collector back on if :func:`main` paused it (the command is starting).

    What start-up loaded is frozen first (moved out of the collector's sight):
    otherwise the first full collection would walk it all, in the middle of the command.
    """
    global _collector_paused
    if _collector_paused:
        _collector_paused = False
        gc.freeze()
        gc.enable()


def __getattr__(name: str) -> Any:
    # ``from xpm.cli import cli``: the group, loaded with click on first use
    if name == "cli":
        from xpm.cli.app import cli

        return cli
    raise AttributeError(f"module 'xpm.cli' has no attribute {name!r}")
