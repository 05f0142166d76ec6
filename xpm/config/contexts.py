"""Where the generated paths of a configuration go, when it is built outside a job.

A ``PathGenerator`` names a file inside the folder of a job. To build the objects
of a configuration without submitting it (in a test, a notebook, a debugging
session), pass a context to ``cfg.instance(context)``: a :class:`DirectoryContext`
puts the generated paths in a folder of your choice; an :class:`EmptyContext`
says that the configuration is not expected to generate any (asking it for a
folder is an error).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Iterator

from xpm.errors import ConfigError

__all__ = ["ConfigWalkContext", "DirectoryContext", "EmptyContext", "NoFolderError"]

#: The folder, inside the context's folder, of the paths generated for sub-configurations
SUB_FOLDER = "out"


class NoFolderError(ConfigError):
    """A generated path was asked of a context that has no folder (:class:`EmptyContext`)."""

    def __init__(self, context: str):
        self.context = context
        super().__init__(
            f"{context} has no folder: a configuration that generates paths needs a DirectoryContext(path) "
            "(or a job folder, once submitted)"
        )


class ConfigWalkContext:
    """The folder in which the paths of a configuration tree are generated.

    Subclasses define :attr:`path`. While the tree is walked, :meth:`push` records
    the parameter being visited, so that :meth:`currentpath` gives a folder of
    its own to each sub-configuration (``out/<parameter>/...``).
    """

    def __init__(self) -> None:
        #: where the walk is, relative to :attr:`path` (None: at the root)
        self._configpath: Path | None = None

    @property
    def path(self) -> Path:
        """The folder of the generated paths (a job folder, or the folder the user chose)."""
        raise NotImplementedError(f"{type(self).__qualname__}.path is not defined")

    @property
    def task(self) -> Any:
        """The task whose job folder this is; None for contexts outside a job."""
        return None

    def currentpath(self) -> Path:
        """The folder of the configuration being visited: :attr:`path`, or a sub-folder of it."""
        if self._configpath is None:
            return self.path
        return self.path / self._configpath

    @contextlib.contextmanager
    def push(self, key: str) -> Iterator[str]:
        """Visits the parameter (or item) ``key`` of the current configuration."""
        previous = self._configpath
        self._configpath = (Path(SUB_FOLDER) if previous is None else previous) / key
        try:
            yield key
        finally:
            self._configpath = previous


class DirectoryContext(ConfigWalkContext):
    """Generates paths inside ``path`` (for tests and debugging: no job, no workspace)."""

    def __init__(self, path: str | os.PathLike[str]):
        super().__init__()
        self._path = Path(path)

    @property
    def path(self) -> Path:
        return self._path

    def __repr__(self) -> str:
        return f"DirectoryContext({str(self._path)!r})"


class EmptyContext(ConfigWalkContext):
    """A context without a folder: for configurations that generate no path.

    Asking it for a folder raises :class:`NoFolderError`.
    """

    @property
    def path(self) -> Path:
        raise NoFolderError(type(self).__name__)

    def __repr__(self) -> str:
        return "EmptyContext()"
