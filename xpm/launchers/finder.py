"""Choosing a launcher from what a task needs, with the user's ``launchers.py``.

The configuration folder (``--xpm-config-dir``, ``XPM_CONFIG_DIR`` or
``~/.config/experimaestro``, see :func:`xpm.settings.config_dir`) may hold a
``launchers.py`` that knows the user's machines and clusters. It defines::

    def find_launcher(requirements: HostRequirement, tags: set[str]) -> Launcher | None:
        if requirements.match(HostSpecification(cpu=CPUSpecification(cores=8, memory=32 * 1024**3))):
            return LocalLauncher()
        return None

:func:`find_launcher` calls it once per alternative of the requirement, in order, each
time with a :class:`HostRequirement` holding that alternative alone, and returns the
first launcher it gets: the order of the alternatives is the order of preference, as
in experimaestro (``cuda(mem=40G) | cuda(mem=24G) * 2`` tries every host for the first
alternative before any host for the second). The requirement it receives is a
:class:`~xpm.launchers.specs.RequirementUnion` of that one alternative, whose ``match``
gives one entry per requested device (``len(match.requirement.accelerators)``), as a
``launchers.py`` written for experimaestro expects.

:class:`LauncherRegistry` is the same search under experimaestro's names
(``LauncherRegistry.instance().find(...)``, ``LauncherRegistry.set_config_dir(...)``).
"""

from __future__ import annotations

import hashlib
import os
import threading
import traceback
import types
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

from xpm.errors import FileProblem, XpmError
from xpm.imports import import_file
from xpm.launchers import Launcher
from xpm.launchers.requirements import HostRequirement, HostSimpleRequirement, parse_requirement
from xpm.launchers.specs import RequirementUnion, SimpleRequirement

__all__ = [
    "LAUNCHERS_FILE",
    "LauncherNotFoundError",
    "LauncherRegistry",
    "LaunchersFileError",
    "clear_cache",
    "find_launcher",
    "launchers_path",
    "load_launchers",
]

#: The file name, in the configuration folder
LAUNCHERS_FILE = "launchers.py"
_SIGNATURE = "find_launcher(requirements, tags)"

_modules: dict[Path, types.ModuleType] = {}
_lock = threading.RLock()


class LauncherNotFoundError(XpmError):
    """No launcher satisfies a requirement (or there is no ``launchers.py`` to ask).

    Attributes:
        requirement: the requirement.
        tags: the tags that were asked for.
        path: the ``launchers.py`` file (which may not exist).
        reason: why, in words.
    """

    def __init__(self, requirement: HostRequirement, tags: frozenset[str], path: Path, reason: str):
        self.requirement = requirement
        self.tags = tags
        self.path = path
        self.reason = reason
        with_tags = f" with tags {', '.join(sorted(tags))}" if tags else ""
        super().__init__(f"no launcher for '{requirement}'{with_tags}: {reason}")


class LaunchersFileError(FileProblem):
    """The user's ``launchers.py`` failed: ``<file>: line <n>: <problem>``.

    The original exception is chained (``__cause__``) with its full traceback.

    Attributes:
        path: the file.
        key: ``line <n>`` of the file where it failed, or "" when unknown.
        problem: what happened.
    """


def launchers_path(config_dir: str | os.PathLike[str] | None = None) -> Path:
    """The ``launchers.py`` of the configuration folder (it may not exist).

    Without ``config_dir``: the folder given to :meth:`LauncherRegistry.set_config_dir`,
    else ``XPM_CONFIG_DIR``, else ``~/.config/experimaestro``.
    """
    # Imported here: xpm.settings imports yaml, which the launchers need not.
    from xpm.settings import config_dir as folder

    if config_dir is None:
        config_dir = LauncherRegistry.CURRENT_CONFIG_DIR
    return folder(None if config_dir is None else os.fspath(config_dir)) / LAUNCHERS_FILE


def load_launchers(path: Path) -> types.ModuleType:
    """Imports ``path`` once per process (later calls return the same module).

    Raises:
        FileNotFoundError: there is no such file.
        LaunchersFileError: importing the file raised an exception.
    """
    path = Path(os.path.abspath(path))
    with _lock:
        module = _modules.get(path)
        if module is None:
            if not path.is_file():
                raise FileNotFoundError(path)
            # One module name per file, so that two configuration folders do not collide.
            name = "_xpm_launchers_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
            try:
                module = import_file(name, path)
            except Exception as exc:
                raise _file_error(path, exc, "cannot be imported:") from exc
            _modules[path] = module
        return module


def clear_cache() -> None:
    """Forgets the imported ``launchers.py`` files, so that the next call reads them again."""
    with _lock:
        _modules.clear()


def find_launcher(
    requirements: str | HostRequirement | SimpleRequirement,
    tags: Iterable[str] = (),
    *,
    config_dir: str | os.PathLike[str] | None = None,
) -> Launcher:
    """The launcher that the user's ``launchers.py`` chooses for ``requirements``.

    Args:
        requirements: the requirement, as text (``"duration=4h & cuda(mem=8G) * 2"``),
            parsed, or built (``cuda_gpu(mem="8G") * 2``, :mod:`xpm.launchers.specs`).
        tags: passed to the user's function as a set (for instance to prefer Slurm
            launchers); a single string counts as one tag.
        config_dir: the configuration folder (``--xpm-config-dir``); by default the
            one given to :meth:`LauncherRegistry.set_config_dir`, else
            ``XPM_CONFIG_DIR``, else ``~/.config/experimaestro``.

    Raises:
        RequirementError: the requirement text is invalid.
        LauncherNotFoundError: the file does not exist, or its function returned
            None for every alternative.
        LaunchersFileError: the file cannot be imported, has no ``find_launcher``
            function, the function raised, or it returned something else than a
            :class:`~xpm.launchers.Launcher` or None.
    """
    requirement = _requirement(requirements)
    wanted = frozenset([tags] if isinstance(tags, str) else tags)
    path = launchers_path(config_dir)
    try:
        launcher = _choose(path, [requirement], wanted)
    except FileNotFoundError:
        raise LauncherNotFoundError(
            requirement, wanted, path, f"{path} does not exist (it should define {_SIGNATURE})"
        ) from None
    if launcher is None:
        raise LauncherNotFoundError(requirement, wanted, path, f"find_launcher() in {path} returned None")
    return launcher


class LauncherRegistry:
    """The ``launchers.py`` of one configuration folder, under experimaestro's names.

    ``LauncherRegistry.instance()`` is the registry of the current folder: the one given
    to :meth:`set_config_dir`, else ``XPM_CONFIG_DIR``, else ``~/.config/experimaestro``
    (:func:`find_launcher` without ``config_dir`` uses the same folder). The file is
    imported once per process (:func:`load_launchers`).

    Attributes:
        basepath: the configuration folder.
    """

    #: The registries made by :meth:`instance`, by folder
    INSTANCES: ClassVar[dict[Path, LauncherRegistry]] = {}
    #: The folder given to :meth:`set_config_dir` (None: the settings' folder)
    CURRENT_CONFIG_DIR: ClassVar[Path | None] = None

    def __init__(self, basepath: str | os.PathLike[str]):
        self.basepath = Path(os.path.abspath(os.fspath(basepath)))

    @staticmethod
    def instance() -> LauncherRegistry:
        """The registry of the current configuration folder."""
        folder = launchers_path().parent
        with _lock:
            registry = LauncherRegistry.INSTANCES.get(folder)
            if registry is None:
                registry = LauncherRegistry.INSTANCES[folder] = LauncherRegistry(folder)
            return registry

    @staticmethod
    def set_config_dir(config_dir: str | os.PathLike[str] | None) -> None:
        """Makes ``config_dir`` the current configuration folder (None: back to the settings' one)."""
        LauncherRegistry.CURRENT_CONFIG_DIR = None if config_dir is None else Path(os.fspath(config_dir))

    @property
    def path(self) -> Path:
        """Its ``launchers.py`` (which may not exist)."""
        return self.basepath / LAUNCHERS_FILE

    def find(
        self, *specs: str | HostRequirement | SimpleRequirement, tags: Iterable[str] = ()
    ) -> Launcher | None:
        """The launcher ``launchers.py`` chooses for the first alternative it can serve, else None.

        The alternatives of every requirement are tried in order. Without a
        ``launchers.py``, every requirement gets a local launcher (a
        :class:`~xpm.launchers.local.DirectLauncher`), as in experimaestro;
        :func:`find_launcher` says that the file is missing instead.

        Raises:
            RequirementError: a requirement text is invalid.
            LaunchersFileError: the file failed (see :func:`find_launcher`).
        """
        requirements = [_requirement(spec) for spec in specs]
        wanted = frozenset([tags] if isinstance(tags, str) else tags)
        try:
            return _choose(self.path, requirements, wanted)
        except FileNotFoundError:
            from xpm.launchers.local import DirectLauncher

            return DirectLauncher()

    def __repr__(self) -> str:
        return f"LauncherRegistry({str(self.basepath)!r})"


def _requirement(value: str | HostRequirement | SimpleRequirement | HostSimpleRequirement) -> HostRequirement:
    """A requirement given as text or as a value, as a :class:`HostRequirement`."""
    if isinstance(value, str):
        return parse_requirement(value)
    if isinstance(value, (SimpleRequirement, HostSimpleRequirement)):
        return RequirementUnion(value)
    return value


def _choose(path: Path, requirements: list[HostRequirement], tags: frozenset[str]) -> Launcher | None:
    """What the function of ``path`` returns for the first alternative it serves (None: none).

    Raises:
        FileNotFoundError: there is no such file.
        LaunchersFileError: the file failed.
    """
    module = load_launchers(path)
    function = getattr(module, "find_launcher", None)
    if not callable(function):
        raise LaunchersFileError(f"defines no {_SIGNATURE} function", path=path)
    for requirement in requirements:
        for alternative in requirement.alternatives:
            launcher = _call(function, path, RequirementUnion(alternative), set(tags))
            if launcher is not None:
                return launcher
    return None


def _call(function: Callable[..., Any], path: Path, requirement: HostRequirement, tags: set[str]) -> Launcher | None:
    try:
        launcher = function(requirement, tags)
    except Exception as exc:
        raise _file_error(path, exc, f"find_launcher('{requirement}') raised") from exc
    if launcher is not None and not isinstance(launcher, Launcher):
        raise LaunchersFileError(
            f"find_launcher('{requirement}') returned {type(launcher).__name__} ({launcher!r:.60}), "
            "not a Launcher or None",
            path=path,
        )
    return launcher


def _file_error(path: Path, exc: BaseException, what: str) -> LaunchersFileError:
    """The error for an exception raised by the user's file, naming the line of the file where it happened."""
    line: int | None = None
    if isinstance(exc, SyntaxError) and exc.filename and Path(exc.filename) == path:
        line = exc.lineno
    else:
        for frame in traceback.extract_tb(exc.__traceback__):
            if frame.filename and os.path.abspath(frame.filename) == str(path):
                line = frame.lineno
    detail = str(exc).splitlines()[0] if str(exc) else ""
    problem = f"{what} {type(exc).__name__}" + (f": {detail}" if detail else "")
    return LaunchersFileError(problem, path=path, key=f"line {line}" if line else "")
