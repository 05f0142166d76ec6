"""Configurations: ``Config``, ``Task``, ``LightweightTask`` and the objects ``.C(...)`` makes.

A configuration object is an instance of ``Cls.XPMConfig``, a subclass of the
user class generated on first use, so that ``isinstance(cfg, Cls)`` holds and the
user's methods are available on it. Values live in the object's ``__dict__``
(reading a parameter costs a plain attribute read); everything else xpm tracks
about the object (sealing, tags, producing task, init tasks) lives in its
:class:`ConfigInfo`, ``cfg.__xpm__``.

``cfg.instance()`` builds objects of the user class itself, with plain attribute
values, and calls ``__post_init__``.
"""

from __future__ import annotations

import os
import sys
import typing
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

from xpm import context, taskoutputs
from xpm.config.classinfo import ClassInfo
from xpm.config.fields import Field, PathGenerator, TaggedValue
from xpm.config.types import ArgKind, _Where
from xpm.errors import ConfigError, MissingParameterError, SealedError, UnknownParameterError, ValidationError

C = TypeVar("C", bound="Config")
_XPM_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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

    def __init__(self, config: ConfigMixin, xpmtype: ClassInfo, created_at: str | None):
        self.config = config
        self.xpmtype = xpmtype
        self.sealed = False
        self.own_tags: dict[str, Any] = {}
        self.stop_tags = False
        #: the task whose output this configuration is (None for ordinary configurations)
        self.task: ConfigMixin | None = None
        self._init_tasks: tuple[ConfigMixin, ...] = ()
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
        self.compose_tail: ConfigMixin | None = None
        #: callbacks given to ``on_completed`` before the task was submitted (its job takes them)
        self.on_completed: list[Callable[[], Any]] | None = None

    @property
    def init_tasks(self) -> tuple[ConfigMixin, ...]:
        """The init tasks (``LightweightTask`` configurations) run before this task, in order."""
        return self._init_tasks

    @init_tasks.setter
    def init_tasks(self, tasks: Iterable[ConfigMixin]) -> None:
        # Init tasks enter the identifier: like parameters, they are frozen by sealing.
        if self.sealed:
            raise SealedError(self.xpmtype.name, "init_tasks", "the configuration is sealed")
        tasks = tuple(tasks)
        for task in tasks:
            if not isinstance(task, LightweightTask):
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
                bound = value.__xpm__.xpmtype.cls if isinstance(value, ConfigMixin) else type(value)
                self.bind(arg.typevar, bound, name)
            if isinstance(value, ConfigMixin) and (self.typevars or value.__xpm__.typevars):
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
            if validate is not Config.__validate__:  # the base one checks nothing: not called
                validate(config)
        except BaseException:
            self.sealed = False
            raise

    def children(self) -> Iterator[ConfigMixin]:
        """The configurations held directly by this one's parameters (in containers too)."""
        return iter(self.child_configs())

    def child_configs(self) -> list[ConfigMixin]:
        """The configurations held directly by this one's parameters, in declaration order.

        Only the parameters whose type may hold a configuration are looked at
        (``ClassInfo.config_arguments``): most are numbers and strings.
        """
        names = self.xpmtype.config_arguments
        if not names:
            return []
        d = self.config.__dict__
        found: list[ConfigMixin] = []
        for name in names:
            value = d.get(name)
            if value is None:
                continue
            if isinstance(value, ConfigMixin):
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
    def identifier(self) -> Identifier:
        """The identifier of the configuration (``.all`` the digest, ``str()`` the hex form)."""
        return Identifier(config_digest(self.config))

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


def _generate_paths(info: ConfigInfo, root: ConfigMixin, folder: _Folder, seen: set[int]) -> None:
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
        if isinstance(sub, Task) or (producer is not None and producer is not root):
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


def iter_configs(value: Any) -> Iterator[ConfigMixin]:
    """The configurations inside a value (itself, or inside lists, tuples, sets, dicts)."""
    if isinstance(value, ConfigMixin):
        yield value
    elif isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            yield from iter_configs(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from iter_configs(v)


#: file:line texts of creation sites, shared: a loop makes many configurations at one line
_SITES: dict[tuple[str, int], str] = {}


def _creation_site() -> str | None:
    """file:line of the first caller outside xpm (for 'missing parameter' errors)."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename.startswith(_XPM_DIR):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return None
    key = (frame.f_code.co_filename, frame.f_lineno)
    site = _SITES.get(key)
    if site is None:
        site = _SITES[key] = f"{key[0]}:{key[1]}"
    return site


#: The method that gives the outputs of each configuration class: ``__submit__``, ``task_outputs`` or None
_OUTPUT_HOOKS: dict[type, str | None] = {}


def _outputs_hook(cls: type) -> str | None:
    """Which of ``__submit__`` (first) and ``task_outputs`` a class defines, if any (asked once per class:
    a missing attribute costs a walk of the class's bases, at each submission)."""
    try:
        return _OUTPUT_HOOKS[cls]
    except KeyError:
        hook = next((name for name in ("__submit__", "task_outputs") if hasattr(cls, name)), None)
        _OUTPUT_HOOKS[cls] = hook
        return hook


def _warn_near_miss(xpmtype: ClassInfo, name: str) -> None:
    """Warns when a plain attribute is probably a misspelt parameter."""
    import difflib

    close = difflib.get_close_matches(name, list(xpmtype.arguments), n=1)
    if close:
        warnings.warn(
            f"{xpmtype.name}.{name} is not a parameter (did you mean {close[0]!r}?): set as a plain attribute, "
            "outside the identifier",
            stacklevel=3,
        )


def _check(arg: Any, value: Any, cls: str) -> None:
    """Asks the checkers of an argument (``Annotated[str, Choices([...])]``) about a value."""
    for checker in arg.checkers:
        if not checker.check(value):
            raise ValidationError(cls, arg.name, str(checker), value)


class ConfigMixin:
    """Base of every configuration object; see the module documentation."""

    __xpm__: ConfigInfo

    def __setattr__(self, name: str, value: Any) -> None:
        info = self.__xpm__
        if name.startswith("_") or name not in info.xpmtype.arguments:
            # Not a parameter: a plain attribute of this object, never in the identifier.
            if not name.startswith("_") and not hasattr(type(self), name):
                _warn_near_miss(info.xpmtype, name)
            object.__setattr__(self, name, value)
        else:
            info.set(name, value)

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: a parameter with no value yet.
        info = self.__dict__.get("__xpm__")
        if info is not None and name in info.xpmtype.arguments:
            if info.xpmtype.arguments[name].optional:
                return None  # an optional parameter without a value is None
            raise AttributeError(f"{info.xpmtype.name}.{name} has no value yet")
        raise AttributeError(f"{type(self).__qualname__!r} object has no attribute {name!r}")

    def __repr__(self) -> str:
        info = self.__xpm__
        args = ", ".join(f"{k}={v!r}" for k, v in info.values.items())
        return f"{info.xpmtype.name}.C({args})"

    def tag(self, name: str, value: Any) -> ConfigMixin:
        """Tags ``name=value``: sets the parameter ``name`` and tags it, or, when
        ``name`` is not a parameter, adds a free tag (it never enters the identifier)."""
        info = self.__xpm__
        if name in info.xpmtype.arguments:
            info.set(name, TaggedValue(value))
        else:
            info.own_tags[name] = value
        return self

    def seal(self) -> ConfigMixin:
        """Checks and freezes this configuration and its tree; returns it.

        Once sealed, a configuration cannot change; it is hashable by its identifier.
        """
        self.__xpm__.seal()
        return self

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ConfigMixin):
            return NotImplemented
        if type(self) is not type(other):
            return False
        mine, theirs = self.__xpm__, other.__xpm__
        if mine.sealed and theirs.sealed:
            return config_digest(self) == config_digest(other)
        return mine.values == theirs.values

    def __hash__(self) -> int:
        info = self.__xpm__
        if not info.sealed:
            raise TypeError(
                f"unhashable: {info.xpmtype.name} is not sealed (seal it, or build the set with sealed_set())"
            )
        return hash(config_digest(self))

    def __rmatmul__(self, outer: Any) -> ConfigMixin:
        """Composition: ``Outer.C() @ Inner.C(x=1)`` sets the one parameter of ``Outer``
        that takes an ``Inner``; ``a @ b @ c`` nests ``c`` in ``b`` and ``b`` in ``a``
        and gives ``a``.

        Defined on the right operand, so that a class with its own ``__matmul__``
        (``measure @ 10``) keeps it.
        """
        if not isinstance(outer, ConfigMixin):
            return NotImplemented
        info = outer.__xpm__
        target = info.compose_tail if info.compose_tail is not None else outer
        _compose(target, self)
        info.compose_tail = self
        return outer

    def tags(self) -> dict[str, Any]:
        """The tags of this configuration, gathered from its sub-configurations too."""
        return self.__xpm__.tags()

    def instance(self, context: Any = None, *, objects: dict[int, Any] | None = None, keep: bool = True) -> Any:
        """Builds an object of the user class (or of its value class), recursively,
        and calls ``__post_init__``.

        Args:
            context: a ``DirectoryContext``: generated paths are made in its folder.
            objects: the objects already built, by ``id()`` of their configuration
                (shared between calls so that a shared sub-configuration is built once).
            keep: record the configuration on the object (``obj.xpmconfig``).
        """
        if context is not None:
            self.__xpm__.generate_paths(lambda: Path(context.path))
        return _instance(self, {} if objects is None else objects, keep)

    def copy(self) -> ConfigMixin:
        """An unsealed copy of this configuration (see :func:`copyconfig`)."""
        return copyconfig(self)

    def __identifier__(self) -> Identifier:
        return Identifier(config_digest(self))

    def __xpm_outputs__(self, add_action: Callable[[Any], Any] | None = None) -> Any:
        """What ``submit()`` returns: ``__submit__(dep, add_action)`` or ``task_outputs(dep)`` if
        the class defines one (``__submit__`` first), else the task itself.

        ``add_action`` is the running experiment's ``add_action`` (None outside one).
        """
        self.__xpm__.seal()
        hook = _outputs_hook(type(self))
        if hook is None:
            return self
        if hook == "__submit__":
            return self.__submit__(self._output_marker(), add_action)  # type: ignore[attr-defined]
        return self.task_outputs(self._output_marker())  # type: ignore[attr-defined]

    def _output_marker(self) -> Callable[[Any], Any]:
        """The ``dep`` given to ``task_outputs``/``__submit__``: marks a configuration as an output
        of this task."""

        def dep(value: Any) -> Any:
            if not isinstance(value, ConfigMixin):
                raise ConfigError(f"dep() takes a configuration, got {type(value).__name__}")
            if value.__xpm__.sealed:
                # Already part of a sealed tree (for instance one of the task's
                # own parameters): mark a copy, so that the task never depends on
                # its own output.
                value = copyconfig(value)
            value.__xpm__.task = self
            return value

        return dep


class Identifier:
    """A configuration identifier: ``.all`` is the 32-byte digest, ``str()`` the hex form."""

    __slots__ = ("all",)

    def __init__(self, digest: bytes):
        self.all = digest

    @property
    def main(self) -> bytes:
        """The digest (experimaestro's name for it)."""
        return self.all

    def __str__(self) -> str:
        return self.all.hex()

    def __repr__(self) -> str:
        return f"Identifier({self.all.hex()})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Identifier) and other.all == self.all

    def __hash__(self) -> int:
        return hash(self.all)


def _split_raw(cls: type) -> dict[str, Any]:
    """Takes the declared defaults out of a new class body."""
    raw: dict[str, Any] = {}
    annotations = cls.__dict__.get("__annotations__", {})
    for name in annotations:
        if name in cls.__dict__:
            value = cls.__dict__[name]
            raw[name] = value
            if isinstance(value, Field):
                # field() objects are declarations, not values: reading
                # `Cls.name` should not return them.
                delattr(cls, name)
    return raw


class Config:
    """Base class of configurations: typed parameters, identified by their values.

    Declare parameters with ``Param[T]``, ``Meta[T]`` and ``Constant[T]``
    annotations, and build configurations with ``Cls.C(**values)``.
    """

    __xpmtype__: ClassInfo
    #: xpm's record of a configuration object (set on the objects ``C()`` makes)
    __xpm__: ConfigInfo

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("__xpm_generated__"):
            return
        cls.__xpmtype__ = ClassInfo(cls, _split_raw(cls))
        try:
            cls.__xpmtype__.resolve()
        except NameError:
            pass  # a forward reference: resolved on first use

    @classmethod
    def C(cls: type[C], **kwargs: Any) -> C:
        """Makes a configuration of this class with the given parameter values."""
        xpmtype = cls.__dict__.get("__xpmtype__")
        if xpmtype is None:
            raise ConfigError(f"{cls.__qualname__} is not a configuration class (subclass Config)")
        config_class = xpmtype.config_class
        obj = object.__new__(config_class)
        info = ConfigInfo(obj, xpmtype, _creation_site())
        d = obj.__dict__
        d["__xpm__"] = info
        for arg in xpmtype.with_defaults:
            d[arg.name] = arg.default_value()
        for name, value in kwargs.items():
            info.set(name, value)
        if xpmtype.replace:
            return obj.__convert__()  # type: ignore[attr-defined,no-any-return]
        return obj  # type: ignore[return-value]

    def __new__(cls, **kwargs: Any) -> Any:
        # `Cls(...)` is the older spelling of `Cls.C(...)`.
        return cls.C(**kwargs)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # On a configuration (made by __new__ from `Cls(**values)`) there is nothing
        # to do; on an object built by instance(), the other bases of a value class
        # (a torch Module, say) are initialised.
        if not isinstance(self, ConfigMixin):
            super().__init__(*args, **kwargs)

    def __validate__(self) -> None:
        """Checks across parameters, run when the configuration is sealed (override it)."""

    def __post_init__(self) -> None:
        """Called on objects built by ``instance()`` once their values are set (override it)."""

    def register_task_output(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """In a running task: records the output that ``method(dep, *args, **kwargs)`` builds in the experiment."""
        taskoutputs.register_task_output(method, args, kwargs)

    @property
    def xpmconfig(self) -> Any:
        """The configuration an object was built from by ``instance()`` (the configuration itself on one)."""
        if isinstance(self, ConfigMixin):
            return self
        try:
            return self.__dict__["__config__"]
        except KeyError:
            raise ConfigError(f"{type(self).__qualname__} was not built with instance(keep=True)") from None

    @classmethod
    def value_class(cls) -> Callable[[type], type]:
        """Decorator registering the class whose objects ``instance()`` builds for this configuration.

        The value class derives from the configuration class (and from the value
        classes of its parents); it is where heavy bases go (``torch.nn.Module``)
        so that configuring never imports them.
        """

        def register(value_cls: type) -> type:
            if not issubclass(value_cls, cls):
                raise ConfigError(f"value class {value_cls.__qualname__} must derive from {cls.__qualname__}")
            for base in cls.__mro__[1:]:
                info = base.__dict__.get("__xpmtype__")
                if info is not None and info.value_class is not base and not issubclass(value_cls, info.value_class):
                    raise ConfigError(
                        f"value class {value_cls.__qualname__} must derive from {info.value_class.__qualname__}, "
                        f"the value class of {base.__qualname__}"
                    )
            cls.__xpmtype__.value_class = value_cls
            return value_cls

        return register


class _ClassProperty:
    """A read-only property of a class (``Model.XPMValue``)."""

    def __init__(self, getter: Callable[[type], Any]):
        self.getter = getter

    def __get__(self, obj: Any, owner: type) -> Any:
        return self.getter(owner)


Config.XPMValue = _ClassProperty(lambda cls: cls.__xpmtype__.value_class)  # type: ignore[attr-defined]
Config.XPMConfig = _ClassProperty(lambda cls: cls.__xpmtype__.config_class)  # type: ignore[attr-defined]


class InstanceConfig(Config):
    """A configuration whose object identity counts: two distinct objects with the
    same values, used in one tree, give a different identifier than one object used
    twice (for instance two layers that share weights or not)."""


class Task(Config):
    """A configuration that runs as a job: override ``execute()``."""

    def execute(self) -> None:
        """The work of the task, run in the job process."""
        raise NotImplementedError(f"{type(self).__qualname__}.execute() is not defined")

    def submit(
        self,
        *,
        workspace: Any = None,
        launcher: Any = None,
        run_mode: Any = None,
        init_tasks: Iterable[LightweightTask] | None = None,
        max_retries: int | None = None,
        transient: Any = None,
    ) -> Any:
        """Submits this task to the current experiment and returns its output.

        The output is the task itself, or what ``__submit__(self, dep, add_action)``
        or ``task_outputs(self, dep)`` returns; giving it (or a part of it) to
        another task makes that task wait for this one. Submitting a task with the
        identifier of a job already submitted gives that job.

        Args:
            workspace: the workspace (a folder, ``WorkspaceSettings`` or
                ``Workspace``); inside an experiment, it must be the experiment's.
                Outside one (with ``run_mode``), the default is the first workspace
                of the settings.
            launcher: where the job runs (default: the experiment's launcher).
            run_mode: ``RunMode.DRY_RUN``, ``GENERATE_ONLY`` or ``PREPARE`` for this
                task alone (default: the experiment's mode). Outside an
                experiment, ``DRY_RUN`` computes the job folder and the outputs
                and writes nothing.
            init_tasks: ``LightweightTask`` configurations run in the job process
                before this task (they are part of the identifier).
            max_retries: how many times a resumable task that stops on a timeout
                is run again (default: the workspace's setting).
            transient: a ``TransientMode``: ``TRANSIENT`` runs the job only if a
                task that runs needs it, ``REMOVE`` also deletes its folder once
                the experiment ends well.
        """
        # The running experiment registered itself below the configurations (xpm.context).
        experiment = context.running_experiment()
        submit = experiment.submit if experiment is not None else context.submit_outside
        return submit(
            self,
            workspace=workspace,
            launcher=launcher,
            run_mode=run_mode,
            init_tasks=init_tasks,
            max_retries=max_retries,
            transient=transient,
        )

    def on_completed(self, callback: Callable[[], Any]) -> None:
        """Calls ``callback()`` in the experiment process once this task's job is done.

        Callbacks run one at a time in a thread of the experiment, which waits for
        them before it ends; one that raises fails the experiment. A callback
        given once the job is done runs at once (in that thread). Only jobs that
        the experiment runs call them (not in the ``DRY_RUN``, ``GENERATE_ONLY``
        and ``PREPARE`` modes).
        """
        info = self.__xpm__
        if not callable(callback):
            raise ConfigError(f"{info.xpmtype.name}.on_completed: {callback!r} is not callable")
        if info.job is not None:
            info.job.add_on_completed(callback)
        elif info.on_completed is None:
            info.on_completed = [callback]
        else:
            info.on_completed.append(callback)

    def add_dependencies(self, *dependencies: Any) -> Task:
        """Adds dependencies other than parameters (for instance ``token.dependency(1)``)."""
        if self.__xpm__.job is not None:
            raise ConfigError(f"{self.__xpm__.xpmtype.name} is already submitted: add dependencies before")
        info = self.__xpm__
        info.dependencies = (*info.dependencies, *dependencies)
        return self

    def watch_output(self, method: Callable[..., Any], callback: Callable[[Any], Any]) -> None:
        """Calls ``callback(output)`` in the experiment for each output of ``method`` this task registers."""
        taskoutputs.watch_output(self, method, callback)

    @property
    def job(self) -> Any:
        """The job of this task once submitted (``None`` before)."""
        return self.__xpm__.job

    def _submitted(self) -> Any:
        job = self.__xpm__.job
        if job is None:
            raise ConfigError(f"{self.__xpm__.xpmtype.name} has not been submitted")
        return job

    @property
    def jobpath(self) -> Path:
        """The job folder of this (submitted) task."""
        return self._submitted().jobpath  # type: ignore[no-any-return]

    def stdout(self) -> Path:
        """The file that receives the standard output of the job."""
        return self._submitted().stdout  # type: ignore[no-any-return]

    def stderr(self) -> Path:
        """The file that receives the standard error of the job."""
        return self._submitted().stderr  # type: ignore[no-any-return]

    def wait(self) -> bool:
        """Waits until the job ends; returns whether it succeeded."""
        return self._submitted().wait()  # type: ignore[no-any-return]


def config_digest(config: ConfigMixin) -> bytes:
    """The identifier of a configuration, as bytes (:func:`xpm.ids.digest`).

    :mod:`xpm.ids` imports this module: its ``digest`` is looked up once, at the
    first identifier, not imported again at each (planning asks for thousands).
    """
    global _digest_function
    if _digest_function is None:
        from xpm.ids import digest

        _digest_function = digest
    return _digest_function(config)  # type: ignore[no-any-return]


_digest_function: Any = None


class ResumableTask(Task):
    """A task that can stop before its time limit and resume from its checkpoints.

    Raise :class:`~xpm.errors.GracefulTimeout` from ``execute()`` to stop: the
    job is run again (up to ``max_retries`` times) with the same job folder.
    """

    def remaining_time(self) -> float | None:
        """Seconds left before the job's time limit, or None when it has none (local jobs).

        On Slurm, the limit is asked once (``squeue``) and counted down from then.
        """
        return context.remaining_time()


class Prepare(Config):
    """A configuration with work to do in the experiment process before the tasks that use it run.

    Override ``prepare()`` (for instance to download a dataset). It runs once per
    identifier and experiment process, before the first job that holds it starts;
    ``--run-mode PREPARE`` runs only these.
    """

    def prepare(self) -> None:
        raise NotImplementedError(f"{type(self).__qualname__}.prepare() is not defined")

    def is_prepared(self) -> bool:
        """Whether the preparation was done already, so that ``prepare()`` is not called.

        Override it with a cheap check (a file exists...); by default False:
        ``prepare()`` always runs, once per experiment process.
        """
        return False


class LightweightTask(Config):
    """A small task run in the job process before the main task (``init_tasks=``)."""

    def execute(self) -> None:
        raise NotImplementedError(f"{type(self).__qualname__}.execute() is not defined")


def copyconfig(config: C, **overrides: Any) -> C:
    """An unsealed copy of ``config`` with some values replaced.

    Containers are copied; sub-configurations are shared (they cannot change once
    sealed). Tags are kept.
    """
    info = config.__xpm__  # type: ignore[attr-defined]
    new = info.xpmtype.cls.C()
    new_info = new.__xpm__
    d = new.__dict__
    for name, value in info.values.items():
        d[name] = _copy_container(value)
    new_info.own_tags = dict(info.own_tags)
    new_info.stop_tags = info.stop_tags
    new_info.init_tasks = list(info.init_tasks)
    for name, value in overrides.items():
        new_info.set(name, value)
    return new  # type: ignore[no-any-return]


def _copy_container(value: Any) -> Any:
    if isinstance(value, list):
        return [_copy_container(v) for v in value]
    if isinstance(value, dict):
        return {k: _copy_container(v) for k, v in value.items()}
    if isinstance(value, set):
        return set(value)
    return value


def stop_tags(value: Any) -> Any:
    """Stops the tags of a sub-configuration from propagating to its parents."""
    inner = value.value if isinstance(value, TaggedValue) else value
    if not isinstance(inner, ConfigMixin):
        raise ConfigError(f"stop_tags() takes a configuration, got {type(inner).__name__}")
    inner.__xpm__.stop_tags = True
    return value


def tagspath(config: Config) -> str:
    """A relative path made of the sorted tags, ``key=value`` joined by ``_``.

    Useful to lay out folders (for instance for TensorBoard) by tag values.
    """
    parts = []
    for key, value in sorted(config.__xpm__.tags().items()):  # type: ignore[attr-defined]
        parts.append(f"{key}={value}".replace("/", "-"))
    return "_".join(parts)


def _compose(outer: ConfigMixin, inner: ConfigMixin) -> None:
    """Sets ``inner`` as the one parameter of ``outer`` whose type takes it."""
    from xpm.config.types import ConfigType

    xpmtype = outer.__xpm__.xpmtype
    names = [
        a.name
        for a in xpmtype.arguments.values()
        if isinstance(a.vtype, ConfigType) and isinstance(inner, a.vtype.cls) and not a.is_constant
    ]
    kind = inner.__xpm__.xpmtype.name
    if len(names) != 1:
        detail = "no parameter takes" if not names else f"parameters {', '.join(names)} all take"
        raise ConfigError(f"{xpmtype.name} @ {kind}: {detail} a {kind}")
    outer.__xpm__.set(names[0], inner)


def _instance(value: Any, memo: dict[int, Any], keep: bool = True) -> Any:
    if isinstance(value, ConfigMixin):
        found = memo.get(id(value))
        if found is not None:
            return found
        info = value.__xpm__
        info.seal()
        xpmtype = info.xpmtype
        cls = xpmtype.value_class
        obj = object.__new__(cls)
        memo[id(value)] = obj
        if _has_own_init(cls):
            # A class with its own __init__ (a value class deriving from a torch
            # Module, say) is initialised first, without arguments; values come after.
            obj.__init__()
        # A class with its own __setattr__ (torch modules) registers what it is given.
        put = setattr if cls.__setattr__ is not object.__setattr__ else object.__setattr__
        d = value.__dict__
        for name, arg in xpmtype.arguments.items():
            if name in d:
                v = d[name]
                if isinstance(v, PathGenerator):
                    raise ConfigError(
                        f"{xpmtype.name}.{name} is a generated path, and the configuration has no job "
                        "folder yet (submit its task first)"
                    )
                put(obj, name, _instance(v, memo, keep))
            elif arg.optional:
                put(obj, name, None)
        if isinstance(value, Task):
            object.__setattr__(obj, "__tags__", info.tags())
        if keep:
            object.__setattr__(obj, "__config__", value)
        post_init: Callable[[], None] | None = getattr(obj, "__post_init__", None)
        if post_init is not None:
            post_init()
        return obj
    if isinstance(value, list):
        return [_instance(v, memo, keep) for v in value]
    if isinstance(value, tuple):
        return tuple(_instance(v, memo, keep) for v in value)
    if isinstance(value, dict):
        return {k: _instance(v, memo, keep) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return type(value)(_instance(v, memo, keep) for v in value)
    return value


def _has_own_init(cls: type) -> bool:
    """Whether a class or one of its bases, other than Config, defines ``__init__``."""
    return any("__init__" in k.__dict__ for k in cls.__mro__ if k is not Config and k is not object)


def setmeta(config: C, flag: bool = True) -> C:
    """Marks a configuration as meta (or not): as a parameter value, it then stays
    out of the identifier of the configuration that holds it."""
    if not isinstance(config, ConfigMixin):
        raise ConfigError(f"setmeta() takes a configuration, got {type(config).__name__}")
    config.__xpm__.meta = bool(flag)
    return config


def sealed_set(*elements: Any) -> set[Any]:
    """A set of configurations (sealed first, so that they hash by identifier) and other values."""
    for element in elements:
        if isinstance(element, ConfigMixin):
            element.__xpm__.seal()
    return set(elements)

