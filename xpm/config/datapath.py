"""``DataPath``: a path parameter whose file or folder travels with a saved configuration.

``weights: DataPath`` declares a path like ``Meta[Path]`` (paths never enter an
identifier); in addition, :func:`xpm.save` copies the content the path points to
into the saved folder, and :func:`xpm.load` points the loaded configuration at
that copy. A saved model is then a folder that can be moved or shared whole.

Saving goes through a :class:`SerializationContext`, which names each copy after
where its path sits in the saved value (``model/weights``) and copies it; a class
may choose its copies itself with ``__xpm_serialize__(self, context)``.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path, PurePath, PurePosixPath
from typing import Annotated, Any, Iterator, Optional

from xpm.config.types import ArgKind, ArgSpec, TypeAnnotation
from xpm.errors import SerializationError

__all__ = [
    "DataPath",
    "OptionalDataPath",
    "SerializationContext",
    "SerializedPath",
    "copy_content",
    "data_paths",
]


class _DataMarker(TypeAnnotation):
    """The ``Annotated`` metadata that makes a path a data path."""

    def annotate(self, spec: ArgSpec) -> None:
        spec.is_data = True
        # Not part of what the configuration is, only of where its data is.
        spec.kind = ArgKind.META

    def __repr__(self) -> str:
        return "DataPath"


_DATA = _DataMarker()

DataPath = Annotated[Path, _DATA]
"""A path (file or folder) whose content :func:`xpm.save` copies into the saved folder."""

OptionalDataPath = Annotated[Optional[Path], _DATA]
"""A :data:`DataPath` that may be ``None`` (nothing is copied then)."""


def copy_content(source: Path, destination: Path) -> bool:
    """Copies the file or folder ``source`` to ``destination`` (replaced if it exists).

    Symbolic links are followed: the copy holds the content, not links to it.
    Returns whether ``source`` is a folder.

    Raises:
        SerializationError: ``source`` does not exist, or the copy would land
            inside ``source`` itself, or the file system refused.
    """
    if not source.exists():
        raise SerializationError(f"the data path {source} does not exist")
    is_folder = source.is_dir()
    real_source, real_destination = source.resolve(), destination.resolve()
    if real_source == real_destination:
        return is_folder  # saved where the data already is: nothing to copy
    if is_folder and real_destination.is_relative_to(real_source):
        raise SerializationError(f"cannot copy the folder {source} into itself ({destination})")
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        _remove(destination)
        if is_folder:
            shutil.copytree(source, destination)
        else:
            shutil.copy2(source, destination)
    except OSError as exc:
        raise SerializationError(f"cannot copy {source} to {destination} ({exc.strerror or exc})") from None
    return is_folder


def _remove(path: Path) -> None:
    """Removes what a previous save left at ``path`` (a file, a link or a folder)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()


def data_paths(config: Any, context: Any) -> dict[str, Any]:
    """What saving does by default with the data paths of one configuration.

    Each ``DataPath`` parameter that holds a path is copied by
    ``context.serialize`` (a :class:`xpm.serialize.SerializationContext`) under
    the configuration's place in the saved value plus the parameter name.
    A class that defines ``__xpm_serialize__(self, context)`` replaces this.

    Returns:
        The copies (``SerializedPath``), by parameter name.
    """
    values = config.__dict__
    found: dict[str, Any] = {}
    for arg in config.__xpm__.xpmtype.arguments.values():
        if arg.is_data:
            value = values.get(arg.name)
            if isinstance(value, PurePath):
                found[arg.name] = context.serialize([*context.var_path, arg.name], Path(value), config)
    return found


class SerializedPath:
    """A data path copied by saving.

    Attributes:
        path: where the copy is, relative to the saved folder (the original
            path, absolute, when the context has no folder).
        is_folder: whether it is a folder.
    """

    __slots__ = ("path", "is_folder")

    def __init__(self, path: PurePath, is_folder: bool | None = None):
        self.path = path
        self.is_folder = Path(path).is_dir() if is_folder is None else is_folder

    def __repr__(self) -> str:
        return f"SerializedPath({self.path.as_posix()!r}, is_folder={self.is_folder})"


class SerializationContext:
    """What saving a configuration into a folder goes through for its data paths.

    Attributes:
        save_directory: the folder being saved into (None: nothing is copied).
        var_path: where the value being written sits in the saved value: the
            parameter names (and the list positions and dict keys inside
            parameters) from the top.
    """

    def __init__(self, *, save_directory: str | os.PathLike[str] | None = None):
        self.save_directory = Path(save_directory) if save_directory is not None else None
        self.var_path: list[str] = []
        #: the names already given to copies, relative to the folder
        self.serialized_paths: set[str] = set()

    @contextmanager
    def push(self, name: str) -> Iterator[list[str]]:
        """Steps into the part ``name`` of the value being written."""
        self.var_path.append(name)
        try:
            yield self.var_path
        finally:
            self.var_path.pop()

    @property
    def depth(self) -> int:
        """How deep the value being written is (the saved value itself: 0)."""
        return len(self.var_path)

    def serialize(self, var_path: list[str], data_path: Path, config: Any) -> SerializedPath:
        """Copies the file or folder ``data_path`` into the saved folder, at ``var_path``.

        A name already taken (the same place reached twice at the top of a saved
        list) gets a suffix: ``weights.1``, ``weights.2``...

        Raises:
            SerializationError: the path does not exist, cannot be copied, or a
                part of ``var_path`` cannot be a file name; the message names the class.
        """
        if self.save_directory is None:
            return SerializedPath(Path(data_path))
        info = getattr(config, "__xpm__", None)
        owner = info.xpmtype.name if info is not None else type(config).__qualname__
        for part in var_path:
            if part in ("", ".", "..") or "/" in part or "\\" in part or "\0" in part:
                raise SerializationError(f"{owner}: a data path sits under {part!r}, which cannot name a file")
        name = "/".join(var_path)
        unique, n = name, 0
        while self._taken(unique):
            n += 1
            unique = f"{name}.{n}"
        self.serialized_paths.add(unique)
        relative = PurePosixPath(unique)
        try:
            is_folder = copy_content(Path(data_path), self.save_directory / relative)
        except SerializationError as exc:
            raise SerializationError(f"{owner}: {exc}") from None
        return SerializedPath(relative, is_folder)

    def _taken(self, name: str) -> bool:
        """Whether a copy already has this name, or lies inside it, or holds it."""
        return any(
            taken == name or taken.startswith(name + "/") or name.startswith(taken + "/")
            for taken in self.serialized_paths
        )
