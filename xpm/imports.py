"""Importing user code from a Python file (an experiment file, or the main script in a job)."""

from __future__ import annotations

import sys
import types
from pathlib import Path


class NotAModule(ImportError):
    """A file that Python cannot import as a module (for instance, not a ``.py`` file)."""


def import_file(name: str, path: str | Path) -> types.ModuleType:
    """Runs the file ``path`` as the module ``name``, registered in ``sys.modules``.

    The module is registered before it runs (as the import system does, so that
    the classes it defines find their module), and removed again if it fails.

    Raises:
        NotAModule: the file cannot be imported as a Python module.
        Exception: whatever the file's code raises.
    """
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise NotAModule(f"{path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module
