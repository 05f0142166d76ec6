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
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

from xpm import context, taskoutputs
from xpm.config.classinfo import ClassInfo
from xpm.config.fields import Field, TaggedValue
from xpm.config.info import ConfigInfo
from xpm.errors import ConfigError

C = TypeVar("C", bound="Config")
_XPM_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
        from xpm.config.operations import _compose

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
        from xpm.config.operations import _instance

        if context is not None:
            self.__xpm__.generate_paths(lambda: Path(context.path))
        return _instance(self, {} if objects is None else objects, keep)

    def copy(self) -> ConfigMixin:
        """An unsealed copy of this configuration (see :func:`~xpm.config.operations.copyconfig`)."""
        from xpm.config.operations import copyconfig

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
                from xpm.config.operations import copyconfig

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
