"""Saving and loading trees of configurations (``params.json``, ``xpm.json``).

The format is specified in ``spec/params.md``. A loaded configuration has the same
identifier as the one that was saved, as long as its class did not change.

Saving into a folder (:func:`save`, :func:`serialize`) also copies the content of
every ``DataPath`` parameter into that folder, so that the folder holds everything
the configuration needs; loading points those parameters at the copies.
"""

from __future__ import annotations

import enum
import importlib
import math
import os
import sys
from pathlib import Path, PurePath
from typing import Any, Callable, Iterator, Union

import msgspec

from xpm import layout
from xpm._version import __version__
from xpm.codec import decode_params, iter_lines
from xpm.config.base import ConfigMixin, LightweightTask, config_digest
from xpm.config.classinfo import MAIN_ALIAS, module_name
from xpm.config.datapath import SerializationContext, SerializedPath, data_paths
from xpm.config.fields import PathGenerator
from xpm.config.operations import _instance
from xpm.errors import ClassImportError, ConfigError, SerializationError
from xpm.fsutil import write_local_atomic
from xpm.imports import import_file
from xpm.layout import PARAMS_FILE, SAVED_FILE
from xpm.schema import PARAMS_VERSION, JobSubmitted, ObjectRecord, ParamsFile

__all__ = [
    "dumps",
    "loads",
    "save",
    "load",
    "serialize",
    "deserialize",
    "from_task_dir",
    "load_configs",
    "instances",
    "ObjectStore",
    "SerializationContext",
    "SerializedPath",
]

#: Where a saved folder's files are: the folder itself, or a function that gives the
#: local path of a name relative to it (for instance after downloading it)
FolderOrLoader = Union[str, "os.PathLike[str]", Callable[[str], Path]]

_encoder = msgspec.json.Encoder()


def dumps(value: Any, *, jobpath: Path | None = None, context: SerializationContext | None = None) -> bytes:
    """Encodes a configuration, or a list/dict/tuple of them, as params.json bytes.

    Paths inside ``jobpath`` are written relative to it, so that a job folder can
    move (or be read over SSH) without breaking its parameters. With a
    ``context``, ``DataPath`` values are copied through it (see :func:`save`).
    """
    writer = _Writer(jobpath, context)
    root = writer.value(value)
    data = ParamsFile(version=PARAMS_VERSION, xpm=__version__, objects=writer.records, root=root)
    return msgspec.json.format(_encoder.encode(data), indent=2) + b"\n"


def loads(
    data: bytes,
    *,
    jobpath: Path | None = None,
    source: str | None = None,
    folder: FolderOrLoader | None = None,
    partial_loading: bool = False,
) -> Any:
    """Decodes params.json bytes back into sealed configurations.

    Args:
        data: the file content.
        jobpath: the folder that job-relative paths are relative to.
        source: the file name, for error messages.
        folder: the saved folder that copied data paths are relative to (or a
            function giving the local path of a name relative to it).
        partial_loading: leave out the tasks that produced configurations (their
            classes are not imported): for loading a model whose training code is
            gone. The loaded configurations then lose the producer part of their
            identifier.

    Raises:
        FormatVersionError: the file was written by a newer format version.
        SerializationError: the file is not valid, or names a class that cannot
            be imported or no longer has a parameter it records.
    """
    loader = _loader(folder) if folder is not None else None
    reader = _Reader(decode_params(data, source), jobpath, source, loader, partial_loading)
    return reader.read()


def save(value: Any, folder: str | os.PathLike[str], *, definition_filename: str = SAVED_FILE) -> Path:
    """Saves a configuration (or a list/dict of them) in ``folder`` (created if needed).

    The file or folder of each ``DataPath`` parameter is copied into ``folder``,
    named after where it sits (``model/weights`` for the ``weights`` of the
    parameter ``model``), and recorded relative to ``folder``: the saved folder
    can move as a whole. The definition file is written last, atomically.

    Returns:
        The path of the file written.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / definition_filename
    content = dumps(value, context=SerializationContext(save_directory=folder))
    write_local_atomic(str(path), content, durable=True)
    return path


def load(
    folder: FolderOrLoader,
    *,
    as_instance: bool = False,
    partial_loading: bool | None = None,
    definition_filename: str = SAVED_FILE,
) -> Any:
    """Loads what :func:`save` wrote in ``folder``.

    Args:
        folder: the saved folder, or a function giving the local path of a name
            relative to it.
        as_instance: return objects built with ``instance()`` (sharing the objects
            of shared sub-configurations) rather than configurations.
        partial_loading: see :func:`loads`; by default, only when ``as_instance``.
    """
    loader = _loader(folder)
    path = loader(definition_filename)
    partial = as_instance if partial_loading is None else partial_loading
    value = loads(_read(path), source=str(path), folder=loader, partial_loading=partial)
    return instances(value, ObjectStore()) if as_instance else value


def serialize(
    obj: Any,
    save_directory: str | os.PathLike[str],
    *,
    init_tasks: list[Any] | tuple[Any, ...] = (),
    definition_filename: str = SAVED_FILE,
) -> Path:
    """Saves a configuration with the init tasks that prepare its object (see :func:`deserialize`).

    ``init_tasks`` are ``LightweightTask`` configurations, typically loaders
    (``PathSerializationLWTask``) that fill the object from saved data; their data
    paths are copied like the configuration's. Returns the path of the file written.
    """
    tasks = list(init_tasks)
    for task in tasks:
        if not isinstance(task, LightweightTask):
            raise ConfigError(f"serialize(): an init task must be a LightweightTask, got {task!r}")
    return save((obj, tasks), save_directory, definition_filename=definition_filename)


def deserialize(
    path: FolderOrLoader,
    as_instance: bool = False,
    partial_loading: bool | None = None,
    definition_filename: str = SAVED_FILE,
) -> Any:
    """Loads what :func:`serialize` wrote.

    Args:
        path: the saved folder, or a function giving the local path of a name
            relative to it.
        as_instance: build the objects and run the init tasks on them.
        partial_loading: see :func:`loads`; by default, only when ``as_instance``.
        definition_filename: the name :func:`serialize` was given.

    Returns:
        ``(configuration, init_tasks)``; with ``as_instance``, the object of the
        configuration, once every init task ran on it (the init tasks and the
        object share the objects of their parameters).
    """
    partial = as_instance if partial_loading is None else partial_loading
    pair = load(path, partial_loading=partial, definition_filename=definition_filename)
    if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[1], list)):
        raise SerializationError(f"{definition_filename} was not written by serialize() (no init tasks in it)")
    obj, init_tasks = pair
    if not as_instance:
        return obj, init_tasks
    objects = ObjectStore()
    built = instances(obj, objects)
    for init in instances(init_tasks, objects):
        init.execute()
    return built


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


def load_configs(run_folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The task configurations a run of an experiment submitted, by job identifier.

    ``run_folder`` is a run's folder (``xp.workdir``: ``experiments/<id>/<run-id>``
    of a local workspace). Each configuration is read from its job's
    ``params.json``; a job submitted twice by the run is read once.
    """
    run = Path(run_folder)
    root = run.parent.parent.parent
    log = root / layout.run_jobs(run.parent.name, run.name)
    configs: dict[str, Any] = {}
    for _, event in iter_lines(_read(log)):
        if isinstance(event, JobSubmitted) and event.identifier not in configs:
            jobdir = root / layout.job_dir(event.task_id, event.identifier)
            configs[event.identifier] = from_task_dir(jobdir)
    return configs


class ObjectStore(dict):  # type: ignore[type-arg]
    """The objects built from configurations, by ``id()`` of the configuration.

    Building objects (``instance()``, ``load(as_instance=True)``) with one store
    builds a configuration shared by several values once: an init task and the
    task it prepares hold the same object.
    """

    def __init__(self) -> None:
        super().__init__()
        #: ids of the configurations whose object is complete (``__post_init__`` ran)
        self.constructed: set[int] = set()

    @property
    def store(self) -> dict[int, Any]:
        """The objects by configuration id (the store itself)."""
        return self

    def retrieve(self, identifier: int) -> Any:
        """The object built for the configuration of id ``identifier``, or None."""
        return self.get(identifier)

    def add_stub(self, identifier: int, stub: Any) -> None:
        """Records the (not yet complete) object of a configuration."""
        self[identifier] = stub

    def set_constructed(self, identifier: int) -> None:
        self.constructed.add(identifier)

    def is_constructed(self, identifier: int) -> bool:
        return identifier in self.constructed


def instances(value: Any, objects: ObjectStore) -> Any:
    """Builds the objects of a configuration, or of a list/dict/tuple of them, into ``objects``."""
    built = _instance(value, objects)
    objects.constructed.update(objects)
    return built


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


def _loader(folder: FolderOrLoader) -> Callable[[str], Path]:
    """The function giving the local path of a name relative to a saved folder."""
    if callable(folder):
        return folder
    base = Path(folder).absolute()  # a job runs in its own folder: a relative path would break there
    return lambda name: base / name


class _Writer:
    """Turns a tree of configurations into records, children first.

    With a :class:`SerializationContext`, data paths are copied through it, and the
    context follows where each value sits (parameter names, then positions and
    keys inside parameters) to name the copies.
    """

    def __init__(self, jobpath: Path | None, context: SerializationContext | None = None):
        self.jobpath = jobpath
        self.context = context
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
        context = self.context
        data = self.data_paths(config, context) if context is not None else None
        for name in xpmtype.arguments:
            if name in d:
                v = d[name]
                t = type(v)
                # Numbers and strings are written as they are (see value())
                if t is int or t is str or (t is float and math.isfinite(v)) or v is None or t is bool:
                    fields[name] = v
                elif context is None:
                    fields[name] = self.value(v)
                elif data and name in data:
                    fields[name] = {"$": "data", "value": data.pop(name).path.as_posix()}
                else:
                    with context.push(name):
                        fields[name] = self.value(v)
        if data:
            raise SerializationError(
                f"{xpmtype.name}.__xpm_serialize__ gave {', '.join(map(repr, data))}, which are not parameters set"
            )
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
        if self.context is not None and self.context.var_path and t in (list, tuple, dict, set, frozenset):
            return self.keyed(v)
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

    def keyed(self, v: Any) -> Any:
        """:meth:`value` of a container inside a parameter, each item under its position or key
        (where the data paths of the configurations it holds are copied)."""
        context = self.context
        assert context is not None
        if type(v) is dict:
            items = []
            for k, x in v.items():
                with context.push(str(k)):
                    items.append([self.value(k), self.value(x)])
            return {"$": "dict", "items": items}
        encoded = []
        for i, x in enumerate(v):
            with context.push(str(i)):
                encoded.append(self.value(x))
        if type(v) is list:
            return encoded
        if type(v) is tuple:
            return {"$": "tuple", "items": encoded}
        encoded.sort(key=_encoder.encode)
        return {"$": "set", "items": encoded}

    @staticmethod
    def data_paths(config: ConfigMixin, context: SerializationContext) -> dict[str, SerializedPath]:
        """The copies of a configuration's data paths: its ``__xpm_serialize__``, else the default."""
        custom = getattr(type(config), "__xpm_serialize__", None)
        found = custom(config, context) if custom is not None else data_paths(config, context)
        return dict(found)

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

    def __init__(
        self,
        content: ParamsFile,
        jobpath: Path | None,
        source: str | None,
        loader: Callable[[str], Path] | None = None,
        partial: bool = False,
    ):
        self.content = content
        self.jobpath = jobpath
        self.source = source
        self.loader = loader
        self.partial = partial
        self.objects: dict[int, ConfigMixin] = {}

    def fail(self, message: str) -> SerializationError:
        return SerializationError(message, self.source)

    def read(self) -> Any:
        records = self.content.objects
        if self.partial:
            records = self.without_producers(records)
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
        if record.task is not None and not self.partial:
            info.task = self.ref(record.task)
        info.init_tasks = [self.ref(i) for i in record.init_tasks]

    def without_producers(self, records: list[ObjectRecord]) -> list[ObjectRecord]:
        """The records reachable from the root through parameters and init tasks only
        (the tasks that produced configurations, and what only they hold, are left out)."""
        by_id = {record.id: record for record in records}
        reached: set[int] = set()
        todo = list(_references(self.content.root))
        while todo:
            rid = todo.pop()
            if rid in reached or rid not in by_id:
                continue
            reached.add(rid)
            record = by_id[rid]
            todo.extend(_references(list(record.fields.values())))
            todo.extend(record.init_tasks)
        return [record for record in records if record.id in reached]

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
            raise ClassImportError(path, f"{type(exc).__name__}: {exc}", self.source) from None
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
            if kind == "data":
                if self.loader is None:
                    raise self.fail("a data path saved with its folder, but no folder was given")
                return self.loader(raw["value"])
        except (KeyError, TypeError, ValueError) as exc:
            raise self.fail(f"malformed {kind} value {raw!r} ({exc})") from None
        raise self.fail(f"unknown value kind {kind!r}")


def _references(raw: Any) -> Iterator[int]:
    """The object ids an encoded value refers to (``{"$": "config"}`` values, at any depth)."""
    if isinstance(raw, list):
        for item in raw:
            yield from _references(item)
    elif isinstance(raw, dict):
        if raw.get("$") == "config":
            yield raw["id"]
        else:
            for item in raw.values():
                yield from _references(item)
