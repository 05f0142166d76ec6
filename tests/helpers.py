"""Helpers shared by the tests."""

from __future__ import annotations

import contextlib
import sys
import types
from pathlib import Path
from typing import Iterator


def make_module(name: str, source: str) -> types.ModuleType:
    """Runs ``source`` as a fresh module named ``name`` (for class-definition-time behaviour)."""
    module = types.ModuleType(name)
    sys.modules[name] = module
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    return module


@contextlib.contextmanager
def restoring_imports(folder: Path) -> Iterator[None]:
    """Restores ``sys.path`` afterwards, and forgets the modules imported from ``folder``."""
    path = list(sys.path)
    try:
        yield
    finally:
        sys.path[:] = path
        for name, module in list(sys.modules.items()):
            if str(getattr(module, "__file__", "") or "").startswith(str(folder)):
                del sys.modules[name]
