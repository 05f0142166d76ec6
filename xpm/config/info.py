"""What xpm tracks about one configuration object (``cfg.__xpm__``): :class:`ConfigInfo`.

Its values are checked and bound as they are set; it seals the object (and, once, its
sub-configurations), gathers the tags of a tree, and resolves generated paths inside a job
folder. The classes it checks values against (``ConfigMixin``, ``Config``, ``Task``...)
are those of :mod:`xpm.config.base`, which imports this module: they are looked up there
when a method runs, never at import.
"""

from __future__ import annotations

import sys
import typing
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from xpm import context
from xpm.config import base as _base
from xpm.config.classinfo import ClassInfo
from xpm.config.fields import PathGenerator, TaggedValue
from xpm.config.types import ArgKind, _Where
from xpm.errors import ConfigError, MissingParameterError, SealedError, UnknownParameterError, ValidationError

__all__ = ["ConfigInfo", "iter_configs"]


class ConfigInfo:
    """xpm's bookkeeping for one configuration object (``cfg.__xpm__``)."""

    __slots__ = (
        "config",
        "xpmtype",
        "sealed",
        "own_tags",
        "stop_tags",
        "task",
        "_init_tasks",
        "digest",
        "created_at",
        "job",
        "dependencies",
        "typevars",
        "meta",
        "compose_tail",
        "on_completed",
    )

    def __init__(self, config: _base.ConfigMixin, xpmtype: ClassInfo, created_at: str | None):
        self.config = config
        self.xpmtype = xpmtype
        self.sealed = False
        self.own_tags: dict[str, Any] = {}
        self.stop_tags = False
        #: the task whose output this configuration is (None for ordinary configurations)
        self.task: _base.ConfigMixin | None = None
        self._init_tasks: tuple[_base.ConfigMixin, ...] = ()
        #: the identifier digest, cached once the configuration is sealed
        self.digest: bytes | None = None
        self.created_at = created_at
        #: the job of a submitted task (an ``xpm.scheduler.Job``)
        self.job: context.SubmittedJob | None = None
        #: extra dependencies of a task (for instance tokens), added before it is submitted
        #: (a tuple, replaced when some are added: most configurations have none)
        self.dependencies: tuple[Any, ...] = ()
        #: the types the type variables of a generic class are bound to here (None: none yet)
        self.typevars: dict[Any, type] | None = None
        #: set by ``setmeta``: as a parameter value, this configuration stays out of identifiers
        self.meta = False
        #: the innermost configuration of an ``outer @ inner`` chain built on this one
        self.compose_tail: _base.ConfigMixin | None = None
        #: callbacks given to ``on_completed`` before the task was submitted (its job takes them)
        self.on_completed: list[Callable[[], Any]] | None = None

    @property
    def init_tasks(self) -> tuple[_base.ConfigMixin, ...]:
        """The init tasks (``LightweightTask`` configurations) run before this task, in order."""
        return self._init_tasks

    @init_tasks.setter
    def init_tasks(self, tasks: Iterable[_base.ConfigMixin]) -> None:
        # Init tasks enter the identifier: like parameters, they are frozen by sealing.
        if self.sealed:
            raise SealedError(self.xpmtype.name, "init_tasks", "the configuration is sealed")
        tasks = tuple(tasks)
        for task in tasks:
            if not isinstance(task, _base.LightweightTask):
                raise ConfigError(f"{self.xpmtype.name}: an init task must be a LightweightTask, got {task!r}")
        self._init_tasks = tasks

    @property
    def values(self) -> dict[str, Any]:
        """The values that were set, by parameter name, in declaration order."""
        d = self.config.__dict__
        return {name: d[name] for name in self.xpmtype.arguments if name in d}

    def set(self, name: str, value: Any) -> None:
        """Validates and sets a parameter (what ``cfg.name = value`` does)."""
        xpmtype = self.xpmtype
        arg = xpmtype.arguments.get(name)
        if arg is None:
            retired = getattr(xpmtype.cls, name, None)
            if getattr(retired, "__xpm_deprecated__", False):
                retired.__set__(self.config, value)  # type: ignore[union-attr]
                return
            raise UnknownParameterError(xpmtype.name, name, list(xpmtype.arguments))
        if self.sealed:
            raise SealedError(xpmtype.name, name, "the configuration is sealed; change a copy made with copyconfig()")
        if arg.kind is ArgKind.CONSTANT:
            raise SealedError(xpmtype.name, name, "it is a Constant")
        vtype = arg.vtype
        tagged = type(value) is TaggedValue
        if tagged:
            value = value.value
        if value is None:
            if not (arg.optional or vtype.accepts_none):
                raise ValidationError(xpmtype.name, name, vtype.describe(), value)
        else:
            if type(value) is not vtype.exact:
                value = vtype.validate(value, _Where(xpmtype.name, name))
            if arg.checkers:
                _check(arg, value, xpmtype.name)
            if arg.typevar is not None:
                bound = value.__xpm__.xpmtype.cls if isinstance(value, _base.ConfigMixin) else type(value)
                self.bind(arg.typevar, bound, name)
            if isinstance(value, _base.ConfigMixin) and (self.typevars or value.__xpm__.typevars):
                # Bindings are shared down and up a tree: `x: Param[Holder[T]]` and
                # `y: Param[T]` must agree on T.
                sub = value.__xpm__
                for typevar, bound in list((sub.typevars or {}).items()):
                    self.bind(typevar, bound, name)
                for typevar, bound in list((self.typevars or {}).items()):
                    sub.bind(typevar, bound, name)
        if tagged or name in self.own_tags:
            # A tagged parameter stays tagged when it is set again: the tag
            # always shows the value.
            self.own_tags[name] = value
        self.config.__dict__[name] = value

    def bind(self, typevar: Any, bound: type, name: str) -> None:
        """Binds a type variable of a generic class to ``bound`` (or a common base of both).

        Raises:
            ValidationError: the bound of the type variable is broken, or it is
                already bound to an unrelated type.
        """
        where = self.xpmtype.name
        limit = getattr(typevar, "__bound__", None)
        if isinstance(limit, typing.ForwardRef):
            # TypeVar("T", bound="Base"): the name is looked up in the class's module
            module = sys.modules.get(self.xpmtype.cls.__module__)
            limit = getattr(module, limit.__forward_arg__, None)
        if isinstance(limit, type) and not issubclass(bound, limit):
            raise ValidationError(where, name, f"{typevar} (bound to {limit.__qualname__})", bound,
                                  f"{bound.__qualname__} is not a subclass of {limit.__qualname__}")
        typevars = self.typevars
        if typevars is None:
            self.typevars = {typevar: bound}
            return
        current = typevars.get(typevar)
        if current is None or issubclass(bound, current):
            typevars.setdefault(typevar, bound)
        elif issubclass(current, bound):
            typevars[typevar] = bound  # widened to the more general type
        else:
            raise ValidationError(where, name, f"{typevar} (bound to {current.__qualname__} here)", bound,
                                  f"{typevar} is already {current.__qualname__}, not {bound.__qualname__}")

    def seal(self) -> None:
        """Checks required parameters, runs ``__validate__`` and freezes the tree."""
        if self.sealed:
            return
        # Marked first: a cycle in the configuration graph comes back here.
        self.sealed = True
        try:
            config = self.config
            d = config.__dict__
            xpmtype = self.xpmtype
            for arg in xpmtype.seal_arguments:
                name = arg.name
                if name not in d:
                    if arg.default_factory is not None:
                        d[name] = arg.default_factory()
                    elif arg.required:
                        raise MissingParameterError(xpmtype.name, name, arg.vtype.describe(), self.created_at)
            for sub in self.child_configs():
                sub_info = sub.__xpm__
                if not sub_info.sealed:
                    sub_info.seal()
            for init in self._init_tasks:
                init.__xpm__.seal()
            if self.task is not None:
                self.task.__xpm__.seal()
            validate = type(config).__validate__  # type: ignore[attr-defined]
            if validate is not _base.Config.__validate__:  # the base one checks nothing: not called
                validate(config)
        except BaseException:
            self.sealed = False
            raise

    def children(self) -> Iterator[_base.ConfigMixin]:
        """The configurations held directly by this one's parameters (in containers too)."""
        return iter(self.child_configs())

    def child_configs(self) -> list[_base.ConfigMixin]:
        """The configurations held directly by this one's parameters, in declaration order.

        Only the parameters whose type may hold a configuration are looked at
        (``ClassInfo.config_arguments``): most are numbers and strings.
        """
        names = self.xpmtype.config_arguments
        if not names:
            return []
        d = self.config.__dict__
        found: list[_base.ConfigMixin] = []
        for name in names:
            value = d.get(name)
            if value is None:
                continue
            if isinstance(value, _base.ConfigMixin):
                found.append(value)
            elif isinstance(value, (list, tuple, set, frozenset, dict)):
                found.extend(iter_configs(value))
        return found

    def xpmvalues(self) -> Iterator[tuple[Any, Any]]:
        """``(argument, value)`` for each parameter that has a value, in declaration order."""
        d = self.config.__dict__
        for name, arg in self.xpmtype.arguments.items():
            if name in d:
                yield arg, d[name]

    @property
    def identifier(self) -> _base.Identifier:
        """The identifier of the configuration (``.all`` the digest, ``str()`` the hex form)."""
        return _base.Identifier(_base.config_digest(self.config))

    def tags(self) -> dict[str, Any]:
        """Own tags, and those of sub-configurations not behind ``stop_tags``."""
        result: dict[str, Any] = {}
        _gather_tags(self, result, set())
        return result

    def generate_paths(self, jobpath: Path | Callable[[], Path]) -> None:
        """Replaces the ``PathGenerator`` values of this tree by paths inside ``jobpath``.

        Sub-configurations produced by other tasks keep their own paths. Seals
        the tree first: generators are the values of sealed configurations.
        ``jobpath`` may be a function, called only if a path is generated (an
        ``EmptyContext`` has no folder to give).
        """
        self.seal()
        folder = _Folder(jobpath)
        _generate_paths(self, self.config, folder, set())


class _Folder:
    """The job folder given to :meth:`ConfigInfo.generate_paths`, asked for once, when first needed."""

    __slots__ = ("source", "path")

    def __init__(self, source: Path | Callable[[], Path]):
        self.source = source
        self.path: Path | None = None

    def get(self) -> Path:
        if self.path is None:
            self.path = Path(self.source()) if callable(self.source) else self.source
        return self.path


# The walks below are module functions rather than closures: a closure that calls
# itself is a reference cycle, left for the garbage collector after each call.


def _gather_tags(info: ConfigInfo, result: dict[str, Any], seen: set[int]) -> None:
    """Adds the tags of the tree under ``info`` to ``result``: sub-configurations first, then its own."""
    if id(info) in seen:
        return
    seen.add(id(info))
    for sub in info.child_configs():
        sub_info = sub.__xpm__
        if not sub_info.stop_tags:
            _gather_tags(sub_info, result, seen)
    for key, value in info.own_tags.items():
        if key in result and result[key] != value:
            warnings.warn(f"tag {key!r} has two values, {result[key]!r} and {value!r}; keeping {value!r}")
        result[key] = value


def _generate_paths(info: ConfigInfo, root: _base.ConfigMixin, folder: _Folder, seen: set[int]) -> None:
    """Resolves the ``PathGenerator`` values under ``info`` (see :meth:`ConfigInfo.generate_paths`)."""
    if id(info) in seen:
        return
    seen.add(id(info))
    d = info.config.__dict__
    for name in info.xpmtype.generator_arguments:
        value = d.get(name)
        if isinstance(value, PathGenerator):
            jobpath = folder.get()
            if value.partial is not None:
                jobpath = _partial_dir(info, name, value, jobpath)
            d[name] = value.resolve(jobpath, info.config)
    for sub in info.child_configs():
        sub_info = sub.__xpm__
        producer = sub_info.task
        if isinstance(sub, _base.Task) or (producer is not None and producer is not root):
            continue
        _generate_paths(sub_info, root, folder, seen)


def _partial_dir(info: ConfigInfo, name: str, generator: PathGenerator, jobpath: Path) -> Path:
    """The folder of a generated path of a partial: ``partials/<type id>/<partial>/<partial id>``."""
    from xpm import layout
    from xpm.ids import partial_identifier

    partial = generator.partial
    xpmtype = info.xpmtype
    pname = partial.name or name
    excluded = frozenset(a.name for a in xpmtype.arguments.values() if partial.is_excluded(a.groups))
    pid = partial_identifier(info.config, pname, excluded)
    return layout.workspace_of_job(jobpath) / layout.partial_dir(xpmtype.identifier, pname, pid)


def iter_configs(value: Any) -> Iterator[_base.ConfigMixin]:
    """The configurations inside a value (itself, or inside lists, tuples, sets, dicts)."""
    if isinstance(value, _base.ConfigMixin):
        yield value
    elif isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            yield from iter_configs(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from iter_configs(v)



def _check(arg: Any, value: Any, cls: str) -> None:
    """Asks the checkers of an argument (``Annotated[str, Choices([...])]``) about a value."""
    for checker in arg.checkers:
        if not checker.check(value):
            raise ValidationError(cls, arg.name, str(checker), value)
