"""Which configurations of a package a Sphinx documentation does not mention.

Sphinx writes the objects it documents to ``objects.inv`` (format version 2): four
header lines starting with ``#``, then zlib-compressed lines
``name domain:role priority uri dispname``. A configuration (a subclass of
:class:`~xpm.Config`, tasks included) counts as documented when the inventory
holds its qualified name (``package.module.Class``) as a Python class
(``py:class``, or ``py:xpmconfig`` as experimaestro's Sphinx extension writes it).
"""

from __future__ import annotations

import fnmatch
import importlib
import pkgutil
import re
import types
import zlib
from dataclasses import dataclass, field
from typing import Iterable

from xpm.errors import FileProblem, XpmError

__all__ = ["InventoryEntry", "PackageError", "Survey", "documented_names", "read_inventory", "survey"]

_HEADER = b"# Sphinx inventory version 2"
#: ``name domain:role priority uri dispname``; the name may hold spaces (Sphinx reads it the same way)
_ENTRY = re.compile(r"(.+?)\s+(\S+?):(\S+)\s+(-?\d+)\s+(\S*)\s+(.*)")
#: The roles of the Python domain under which a configuration class is documented
CLASS_ROLES = frozenset({"class", "xpmconfig"})


@dataclass(frozen=True)
class InventoryEntry:
    """One object of a Sphinx inventory."""

    name: str
    domain: str
    role: str
    priority: int
    uri: str
    dispname: str


class PackageError(XpmError, ImportError):
    """The package to check cannot be imported."""

    def __init__(self, package: str, reason: str):
        self.package = package
        self.reason = reason
        super().__init__(f"cannot import the package {package!r}: {reason}")


def read_inventory(path: str) -> list[InventoryEntry]:
    """The entries of a Sphinx ``objects.inv`` file (format version 2).

    Raises:
        FileProblem: the file is not a Sphinx inventory of version 2, or is damaged.
        OSError: the file cannot be read.
    """
    with open(path, "rb") as stream:
        data = stream.read()
    lines = data.split(b"\n", 4)
    if not data.startswith(b"# Sphinx inventory version"):
        raise FileProblem("not a Sphinx inventory (objects.inv starts with '# Sphinx inventory version 2')",
                          path=path)
    if lines[0].rstrip(b"\r") != _HEADER:
        found = lines[0].decode("utf-8", "replace").strip()
        raise FileProblem(f"unsupported inventory ({found!r}; version 2 is read)", path=path)
    if len(lines) < 5 or b"zlib" not in lines[3]:
        raise FileProblem("not a Sphinx inventory: its fourth line does not announce zlib-compressed content",
                          path=path)
    try:
        text = zlib.decompress(lines[4]).decode("utf-8")
    except (zlib.error, UnicodeDecodeError) as exc:
        raise FileProblem(f"damaged inventory: its compressed part cannot be read ({exc})", path=path) from None
    entries = []
    for number, line in enumerate(text.splitlines(), start=5):
        if not line.strip():
            continue
        match = _ENTRY.fullmatch(line.rstrip())
        if match is None:
            raise FileProblem(f"damaged inventory: entry {number - 4} is not 'name domain:role priority uri "
                              f"dispname': {line[:80]!r}", path=path)
        name, domain, role, priority, uri, dispname = match.groups()
        # ``$`` in the URI and ``-`` as display name both stand for the name (Sphinx's abbreviations).
        uri = uri[:-1] + name if uri.endswith("$") else uri
        entries.append(InventoryEntry(name, domain, role, int(priority), uri, name if dispname == "-" else dispname))
    return entries


def documented_names(entries: Iterable[InventoryEntry]) -> set[str]:
    """The qualified names of the Python classes an inventory documents."""
    return {entry.name for entry in entries if entry.domain == "py" and entry.role in CLASS_ROLES}


def _skipped(name: str, patterns: Iterable[str]) -> bool:
    """Whether a module or class name is skipped: it is a pattern, lies under one (a package), or
    matches one as a glob (``pkg.*.tests``)."""
    return any(name == p or name.startswith(p + ".") or fnmatch.fnmatchcase(name, p) for p in patterns)


@dataclass
class Survey:
    """What :func:`survey` found: the configurations of a package, and the modules that failed to import."""

    package: str
    #: qualified name -> class
    configurations: dict[str, type] = field(default_factory=dict)
    #: module name -> why it could not be imported
    failures: dict[str, str] = field(default_factory=dict)

    def undocumented(self, documented: set[str]) -> list[str]:
        return sorted(name for name in self.configurations if name not in documented)


def survey(package: str, skip: Iterable[str] = ()) -> Survey:
    """Imports ``package`` and its submodules and collects the configuration classes they define.

    Modules whose name ``skip`` matches are not imported. A submodule that cannot be
    imported is recorded in ``failures``; the others are still surveyed.

    Raises:
        PackageError: ``package`` itself cannot be imported.
    """
    from xpm.config.base import Config

    skip = list(skip)
    result = Survey(package)
    try:
        root = importlib.import_module(package)
    except Exception as exc:  # the user's code: any error means "cannot import"
        raise PackageError(package, f"{type(exc).__name__}: {exc}") from None

    def collect(module: types.ModuleType) -> None:
        for value in list(vars(module).values()):
            if (
                isinstance(value, type)
                and issubclass(value, Config)
                and not value.__dict__.get("__xpm_generated__")
                and (value.__module__ == package or value.__module__.startswith(package + "."))
            ):
                name = f"{value.__module__}.{value.__qualname__}"
                if not _skipped(name, skip):
                    result.configurations[name] = value

    def visit(module: types.ModuleType) -> None:
        collect(module)
        # A package's modules, then its sub-packages' (skipped names are never imported).
        for info in pkgutil.iter_modules(getattr(module, "__path__", None) or [], prefix=module.__name__ + "."):
            if _skipped(info.name, skip):
                continue
            try:
                child = importlib.import_module(info.name)
            except Exception as exc:  # the user's code: reported, and the survey goes on
                result.failures[info.name] = f"{type(exc).__name__}: {exc}"
                continue
            visit(child)

    visit(root)
    return result
