"""The command line's logging, configured when the ``logging`` module is first imported.

Listings never log: importing and configuring ``logging`` at every start-up
would cost them 2 ms of about 40 (docs/performance.md, W4). So :func:`configure`
acts at once when ``logging`` is already imported (a command whose code uses
it), and otherwise puts a finder first on ``sys.meta_path`` that configures the
module as soon as anything imports it, before any logger of that importer is
used. Records are then handled exactly as if the configuration had been done first.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

__all__ = ["configure"]

#: The levels of the logging module (the same numbers, without importing it)
DEBUG, INFO, WARNING = 10, 20, 30
FORMAT = "%(levelname)s %(name)s: %(message)s"


def configure(debug: bool, quiet: bool) -> None:
    """Logs at INFO (DEBUG with ``debug``, WARNING with ``quiet``) to stderr, once ``logging`` is imported."""
    level = DEBUG if debug else WARNING if quiet else INFO
    module = sys.modules.get("logging")
    if module is not None:
        _apply(module, level, debug)
    else:
        sys.meta_path.insert(0, _OnImport(level, debug))


def _apply(logging: ModuleType, level: int, debug: bool) -> None:
    logging.basicConfig(level=level, format=FORMAT)
    # asyncssh tells every connection step at INFO: noise unless debugging.
    logging.getLogger("asyncssh").setLevel(DEBUG if debug else WARNING)


class _OnImport:
    """A finder that only wraps the loading of ``logging``, then leaves ``sys.meta_path``."""

    def __init__(self, level: int, debug: bool) -> None:
        self.level, self.debug = level, debug

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "logging":
            return None
        sys.meta_path.remove(self)
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            load(module)
            _apply(module, self.level, self.debug)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec
