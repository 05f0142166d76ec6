"""Helpers shared by the tests."""

from __future__ import annotations

import sys
import types


def make_module(name: str, source: str) -> types.ModuleType:
    """Runs ``source`` as a fresh module named ``name`` (for class-definition-time behaviour)."""
    module = types.ModuleType(name)
    sys.modules[name] = module
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    return module
