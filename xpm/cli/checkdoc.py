"""``experimaestro check-documentation OBJECTS_INV PACKAGE``: configurations the documentation misses."""

from __future__ import annotations

import os
import sys

import click

from xpm.cli.common import emit, warn

__all__ = ["check_documentation"]


def _patterns(values: tuple[str, ...]) -> list[str]:
    # experimaestro took one comma-separated list; the option may also be repeated.
    return [p.strip() for value in values for p in value.split(",") if p.strip()]


@click.command("check-documentation")
@click.argument("objects_inv", metavar="OBJECTS_INV", type=click.Path(dir_okay=False))
@click.argument("package", metavar="PACKAGE")
@click.option("--skip", "skip", multiple=True, metavar="PATTERN",
              help="A module, package or class to leave out (a name, or a glob such as 'pkg.*.tests'); "
                   "repeatable, or comma-separated.")
def check_documentation(objects_inv: str, package: str, skip: tuple[str, ...]) -> None:
    """List configurations missing from Sphinx docs.

    Reads the objects.inv that Sphinx built (e.g. docs/_build/html/), imports
    PACKAGE and all its modules, and prints the Config and Task classes they
    define that the inventory does not document as a Python class. Exits with
    status 1 when some are missing, or when a module cannot be imported.

    \b
    Example:
      experimaestro check-documentation docs/_build/html/objects.inv my_package
    """
    from xpm.checkdoc import documented_names, read_inventory, survey

    documented = documented_names(read_inventory(objects_inv))
    # As `python -m` does: a package of the current folder is found without being installed.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())
    found = survey(package, _patterns(skip))
    warn(f"cannot import {name} ({why}); its configurations are not checked" for name, why in found.failures.items())
    missing = found.undocumented(documented)
    emit(missing)
    total = len(found.configurations)
    if missing:
        click.echo(f"{len(missing)} of {total} configuration(s) of {package} are not documented", err=True)
    else:
        click.echo(f"All {total} configuration(s) of {package} are documented", err=True)
    if missing or found.failures:
        raise SystemExit(1)
