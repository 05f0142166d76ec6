"""The drop-in: code written for experimaestro imports xpm, unchanged.

Once installed, ``import experimaestro`` (and ``experimaestro.core.objects``,
``experimaestro.launchers.slurm``...) gives xpm's objects, so that a library written
for experimaestro imports and runs as it is. It is opt-in; there are three ways::

    import xpm.compat
    xpm.compat.install()          # 1. at the top of a script, before importing the library

    XPM_EXPERIMAESTRO=1 python …  # 2. any Python of the environment where xpm is installed

    # 3. job processes: install() sets XPM_EXPERIMAESTRO=1, which the jobs inherit

The environment variable works through ``xpm_experimaestro.pth``, a file installed
beside the package, whose line costs a dictionary look-up when the variable is unset;
the xpm command and the job program honour it too. ``from xpm import ...`` keeps
working in every case. See ``docs/compatibility.md``.

A real experimaestro installed in the same environment is never shadowed silently:
:func:`install` warns, naming it; and when it is already imported, the two cannot
share the process and :func:`install` refuses.
"""

from __future__ import annotations

import os
import sys
import warnings

from xpm._version import __version__
from xpm.compat.finder import DropInFinder, drop_in_modules
from xpm.compat.names import API_VERSION, ROOT
from xpm.errors import XpmError

__all__ = [
    "VARIABLE",
    "ShadowingError",
    "install",
    "uninstall",
    "is_installed",
    "install_from_environment",
    "status",
    "real_experimaestro",
]

#: The environment variable that turns the drop-in on (``1``) at interpreter start
VARIABLE = "XPM_EXPERIMAESTRO"

_FINDER = DropInFinder()
_warned = False


class ShadowingError(XpmError):
    """The real experimaestro is already imported: the drop-in cannot take its place in this process.

    Attributes:
        path: where the imported experimaestro comes from.
    """

    def __init__(self, path: str):
        self.path = path
        super().__init__(
            f"experimaestro is already imported from {path}: xpm's drop-in cannot replace it in this process "
            f"(install it before anything imports experimaestro, or use the real one alone)"
        )


def is_installed() -> bool:
    """Whether ``import experimaestro`` gives xpm in this process."""
    return _FINDER in sys.meta_path


def install() -> None:
    """Makes ``import experimaestro`` give xpm, in this process and in the processes it starts.

    Sets ``XPM_EXPERIMAESTRO=1`` in :data:`os.environ`, so that jobs (and any Python
    started from here) get the drop-in too. Calling it again does nothing more.

    Warns (once) when a real experimaestro is installed, naming its version and
    folder: from now on ``import experimaestro`` gives xpm instead.

    Raises:
        ShadowingError: the real experimaestro is already imported in this process.
    """
    global _warned
    if is_installed():
        os.environ[VARIABLE] = "1"
        return
    loaded = sys.modules.get(ROOT)
    if loaded is not None and getattr(loaded, "__xpm__", False) is not True:
        raise ShadowingError(str(getattr(loaded, "__file__", None) or loaded))
    real = real_experimaestro()
    if real is not None and not _warned:
        _warned = True
        version, where = real
        warnings.warn(
            f"experimaestro {version} is installed ({where}), but `import experimaestro` now gives xpm's drop-in "
            f"(xpm.compat.install() or {VARIABLE}=1); unset {VARIABLE} to use the real one",
            UserWarning,
            stacklevel=2,
        )
    sys.meta_path.insert(0, _FINDER)
    os.environ[VARIABLE] = "1"


def uninstall() -> None:
    """Undoes :func:`install`: forgets the drop-in modules and unsets ``XPM_EXPERIMAESTRO``.

    Objects already taken from the drop-in (``from experimaestro import Config``) stay
    what they are: xpm's.
    """
    while _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)
    for name in drop_in_modules(sys.modules):
        del sys.modules[name]
    os.environ.pop(VARIABLE, None)


def install_from_environment() -> bool:
    """Installs the drop-in when ``XPM_EXPERIMAESTRO=1``; returns whether it is installed."""
    if os.environ.get(VARIABLE) == "1":
        install()
    return is_installed()


def real_experimaestro() -> tuple[str, str] | None:
    """The real experimaestro this interpreter would import, as ``(version, folder)``, or None.

    Found the way the import system finds it (every finder but the drop-in's), without
    importing it; the version comes from the installed distribution's metadata.
    """
    loaded = sys.modules.get(ROOT)
    if loaded is not None and getattr(loaded, "__xpm__", False) is not True:
        return str(getattr(loaded, "__version__", "unknown version")), str(getattr(loaded, "__file__", loaded))
    spec = None
    for finder in sys.meta_path:
        if finder is _FINDER or not hasattr(finder, "find_spec"):
            continue
        spec = finder.find_spec(ROOT, None)
        if spec is not None:
            break
    # A folder without __init__.py (a namespace package) is not an installed experimaestro.
    if spec is None or spec.origin is None or spec.loader is None or not spec.has_location:
        return None
    where = os.path.dirname(spec.origin)
    from importlib import metadata

    try:
        version = metadata.version(ROOT)
    except metadata.PackageNotFoundError:
        version = "(no distribution metadata)"
    return version, where


def status() -> str:
    """One line: which experimaestro ``import experimaestro`` gives in this process."""
    real = real_experimaestro()
    if is_installed():
        line = f"xpm {__version__} (drop-in, experimaestro {API_VERSION} API)"
        if real is not None:
            line += f"; experimaestro {real[0]} at {real[1]} is installed but not used"
        return line
    if real is not None:
        return f"experimaestro {real[0]} ({real[1]})"
    return f"none: no experimaestro is installed, and xpm's drop-in is off ({VARIABLE} is not 1)"

