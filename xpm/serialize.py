"""Saving and loading trees of configurations (``params.json``, ``xpm.json``).

The format is specified in ``spec/params.md``. A loaded configuration has the same
identifier as the one that was saved, as long as its class did not change.
"""

from __future__ import annotations

import enum
import importlib
import math
import os
import sys
from pathlib import Path, PurePath
from typing import Any

import msgspec

from xpm._version import __version__
from xpm.codec import decode_params
from xpm.config.base import ConfigMixin, config_digest
from xpm.config.classinfo import MAIN_ALIAS, module_name
from xpm.config.fields import PathGenerator
from xpm.errors import ConfigError, SerializationError
from xpm.fsutil import write_local_atomic
from xpm.imports import import_file
from xpm.layout import PARAMS_FILE, SAVED_FILE
from xpm.schema import PARAMS_VERSION, ObjectRecord, ParamsFile

__all__ = ["dumps", "loads", "save", "load", "from_task_dir"]

_encoder = msgspec.json.Encoder()


def dumps(value: Any, *, jobpath: Path | None = None) -> bytes:
    """Encodes a configuration, or a list/dict/tuple of them, as params.json bytes.

    Paths inside ``jobpath`` are written relative to it, so that a job folder can
    move (or be read over SSH) without breaking its parameters.
    """
    writer = _Writer(jobpath)
    root = writer.value(value)
    data = ParamsFile(version=PARAMS_VERSION, xpm=__version__, objects=writer.records, root=root)
    return msgspec.json.format(_encoder.encode(data), indent=2) + b"\n"


def loads(data: bytes, *, jobpath: Path | None = None, source: str | None = None) -> Any:
    """Decodes params.json bytes back into sealed configurations.

    Args:
        data: the file content.
        jobpath: the folder that job-relative paths are relative to.
        source: the file name, for error messages.

    Raises:
        FormatVersionError: the file was written by a newer format version.
        SerializationError: the file is not valid, or names a class that cannot
            be imported or no longer has a parameter it records.
    """
    return _Reader(decode_params(data, source), jobpath, source).read()


def save(value: Any, folder: str | os.PathLike[str]) -> Path:
    """Saves a configuration (or a list/dict of them) in ``folder`` (created if needed).

    Returns:
        The path of the file written.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / SAVED_FILE
    write_local_atomic(str(path), dumps(value), durable=True)
    return path


def load(folder: str | os.PathLike[str]) -> Any:
    """Loads what :func:`save` wrote in ``folder``."""
    path = Path(folder) / SAVED_FILE
    return loads(_read(path), source=str(path))


def from_task_dir(jobdir: str | os.PathLike[str], *, as_instance: bool = False) -> Any:
    """The task configuration of a job folder, from its ``params.json``.

    Args:
        jobdir: the job folder.
        as_instance: return ``config.instance()`` instead of the configuration.
    """
    jobdir = Path(jobdir)
    path = jobdir / PARAMS_FILE
    config = loads(_read(path), jobpath=jobdir, source=str(path))
    return config.instance() if as_instance else config


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise SerializationError("no such file", str(path)) from None
    except OSError as exc:
        raise SerializationError(f"cannot read it ({exc.strerror})", str(path)) from None


def _class_path(cls: type) -> str:
    return f"{module_name(cls)}:{cls.__qualname__}"


def _main_file(cls: type) -> str | None:
    """The file of the main script, for a class defined in it (a job process imports it from there)."""
    if module_name(cls) != "__main__":
        return None
    path = getattr(sys.modules.get(cls.__module__), "__file__", None)
    return os.path.abspath(path) if path else None


def _import_main(path: str) -> Any:
    """Imports the experiment's main script under :data:`MAIN_ALIAS` (once per process)."""
    module = sys.modules.get(MAIN_ALIAS)
    if module is not None:
        return module
    # The script's folder comes first on sys.path, as when it ran as a script.
    sys.path.insert(0, os.path.dirname(path))
    return import_file(MAIN_ALIAS, path)

class _Writer:
    """Turns a tree of configurations into records, children first."""

    def __init__(self, jobpath: Path | None):
        self.jobpath = jobpath
        self.ids: dict[int, int] = {}
        self.records: list[ObjectRecord] = []

    def config(self, config: ConfigMixin) -> int:
        key = id(config)
        rid = self.ids.get(key)
        if rid is not None:
            return rid
        rid = self.ids[key] = len(self.ids)
        info = config.__xpm__
        xpmtype = info.xpmtype
        names = xpmtype.record_names
        if names is None:
            cls = xpmtype.cls
            names = xpmtype.record_names = (_class_path(cls), _main_file(cls))
        d = config.__dict__
        fields = {}
        for name in xpmtype.arguments:
            if name in d:
                v = d[name]
                t = type(v)
                # Numbers and strings are written as they are (see value())
                if t is int or t is str or (t is float and math.isfinite(v)) or v is None or t is bool:
                    fields[name] = v
                else:
                    fields[name] = self.value(v)
        task = self.config(info.task) if info.task is not None and info.task is not config else None
        init_tasks = [self.config(t) for t in info.init_tasks] if info.init_tasks else []
        own_tags = info.own_tags
        self.records.append(
            ObjectRecord(
                id=rid,
                type=names[0],
                file=names[1],
                typeid=xpmtype.identifier,
                # config_digest (the lazy identity hook), not an import of xpm.ids: a job
                # process loads its parameters and never computes an identifier (no blake3).
                identifier=config_digest(config).hex(),
                fields=fields,
                task=task,
                init_tasks=init_tasks,
                tags={k: self.value(v) for k, v in own_tags.items()} if own_tags else {},
                stop_tags=info.stop_tags,
            )
        )
        return rid

    def value(self, v: Any) -> Any:
        t = type(v)
        if v is None or t is bool or t is int or t is str:
            return v
        if t is float:
            return v if math.isfinite(v) else {"$": "float", "value": repr(v)}
        if isinstance(v, ConfigMixin):
            return {"$": "config", "id": self.config(v)}
        if isinstance(v, enum.Enum):
            return {"$": "enum", "type": _class_path(type(v)), "name": v.name}
        if t is list:
            return [self.value(x) for x in v]
        if t is tuple:
            return {"$": "tuple", "items": [self.value(x) for x in v]}
        if t is dict:
            return {"$": "dict", "items": [[self.value(k), self.value(x)] for k, x in v.items()]}
        if t is set or t is frozenset:
            items = [self.value(x) for x in v]
            items.sort(key=_encoder.encode)  # a stable file for the same set
            return {"$": "set", "items": items}
        if isinstance(v, PurePath):
            return self.path(v)
        if isinstance(v, PathGenerator):
            return {"$": "generated", "value": v.path.as_posix()}
        for base in (bool, int, float, str):
            if isinstance(v, base):
                return self.value(base(v))
        raise SerializationError(f"a value of type {t.__name__} cannot be saved")

    def path(self, p: PurePath) -> dict[str, Any]:
        if self.jobpath is not None:
            try:
                relative = Path(p).relative_to(self.jobpath)
            except ValueError:
                pass
            else:
                return {"$": "path", "value": relative.as_posix(), "base": "job"}
        return {"$": "path", "value": str(p)}


class _Reader:
    """Rebuilds configurations from records: create all, then fill (cycles allowed)."""

    def __init__(self, content: ParamsFile, jobpath: Path | None, source: str | None):
        self.content = content
        self.jobpath = jobpath
        self.source = source
        self.objects: dict[int, ConfigMixin] = {}

    def fail(self, message: str) -> SerializationError:
        return SerializationError(message, self.source)

    def read(self) -> Any:
        records = self.content.objects
        for record in records:
            cls = self.import_object(record.type, record.file)
            try:
                self.objects[record.id] = cls.C()
            except (AttributeError, ConfigError) as exc:
                raise self.fail(f"cannot rebuild {record.type}: {exc}") from None
        for record in records:
            self.fill(record)
        for config in self.objects.values():
            try:
                config.__xpm__.seal()
            except ConfigError as exc:
                raise self.fail(f"the saved configuration is no longer valid: {exc}") from None
        return self.value(self.content.root)

    def fill(self, record: ObjectRecord) -> None:
        config = self.objects[record.id]
        info = config.__xpm__
        arguments = info.xpmtype.arguments
        for name, raw in record.fields.items():
            arg = arguments.get(name)
            if arg is None:
                raise self.fail(f"{record.type} has no parameter '{name}' any more")
            if arg.is_constant:
                continue  # constants come from the class, as they did when saved
            try:
                info.set(name, self.value(raw))
            except ConfigError as exc:
                raise self.fail(f"the saved value does not fit the class any more: {exc}") from None
        info.own_tags = {k: self.value(v) for k, v in record.tags.items()}
        info.stop_tags = record.stop_tags
        if record.task is not None:
            info.task = self.ref(record.task)
        info.init_tasks = [self.ref(i) for i in record.init_tasks]

    def ref(self, rid: int) -> ConfigMixin:
        try:
            return self.objects[rid]
        except KeyError:
            raise self.fail(f"reference to an unknown object {rid}") from None

    def import_object(self, path: str, file: str | None = None) -> Any:
        module, _, qualname = path.partition(":")
        try:
            obj: Any = importlib.import_module(module)
            if module == "__main__" and file is not None and not hasattr(obj, qualname.split(".")[0]):
                # Read outside the experiment's script (in a job process): import the script.
                obj = _import_main(file)
            for part in qualname.split("."):
                obj = getattr(obj, part)
        except Exception as exc:  # ImportError, AttributeError, errors in user modules
            raise self.fail(f"cannot import {path} ({type(exc).__name__}: {exc})") from None
        return obj

    def value(self, raw: Any) -> Any:
        if isinstance(raw, list):
            return [self.value(x) for x in raw]
        if not isinstance(raw, dict):
            return raw
        kind = raw.get("$")
        try:
            if kind == "config":
                return self.ref(raw["id"])
            if kind == "float":
                return float(raw["value"])
            if kind == "tuple":
                return tuple(self.value(x) for x in raw["items"])
            if kind == "dict":
                return {self.value(k): self.value(v) for k, v in raw["items"]}
            if kind == "set":
                return {self.value(x) for x in raw["items"]}
            if kind == "enum":
                return self.import_object(raw["type"])[raw["name"]]
            if kind == "path":
                if raw.get("base") == "job":
                    if self.jobpath is None:
                        raise self.fail("a job-relative path, but no job folder was given")
                    return self.jobpath / raw["value"]
                return Path(raw["value"])
            if kind == "generated":
                return PathGenerator(raw["value"])
        except (KeyError, TypeError, ValueError) as exc:
            raise self.fail(f"malformed {kind} value {raw!r} ({exc})") from None
        raise self.fail(f"unknown value kind {kind!r}")
