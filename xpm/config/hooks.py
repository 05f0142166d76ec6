"""Submit hooks: class decorators that adjust a job (its environment, its launcher) when it is submitted.

::

    class needs_java(SubmitHook):
        def __init__(self, version: int):
            self.version = version

        def spec(self):
            return self.version

        def process(self, job, launcher):
            job.environ["JAVA_HOME"] = f"/opt/java{self.version}"

    @needs_java(11)
    class Index(Task): ...

A hook applies to the jobs of tasks whose class, or the class of a configuration
in their parameters or init tasks, carries it, base classes included. The
parameters of other submitted tasks (dependencies) are left to their own jobs.
Two hooks of the same class with equal ``spec()`` count once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Hashable, TypeVar

from xpm.config.base import Config, ConfigMixin
from xpm.errors import ConfigError

__all__ = ["SubmitHook", "class_hooks", "submit_hooks", "apply_submit_hooks"]

#: Where a class keeps the hooks it was decorated with (its own ``__dict__``)
HOOKS_ATTRIBUTE = "__xpm_submit_hooks__"

T = TypeVar("T", bound=type)

#: Whether any class was ever decorated: until then, submitting walks no tree for hooks
_any = False


class SubmitHook(ABC):
    """Base of submit hooks: subclass it, define :meth:`spec` and :meth:`process`,
    and decorate configuration or task classes with its objects."""

    def __call__(self, cls: T) -> T:
        """Records this hook on ``cls`` (a ``Config`` or ``Task`` class); returns ``cls``."""
        global _any
        if not (isinstance(cls, type) and issubclass(cls, Config)):
            raise ConfigError(f"{type(self).__qualname__} decorates configuration classes, not {cls!r}")
        own: tuple[SubmitHook, ...] = cls.__dict__.get(HOOKS_ATTRIBUTE, ())
        if self not in own:
            setattr(cls, HOOKS_ATTRIBUTE, (*own, self))
        _any = True
        return cls

    @abstractmethod
    def spec(self) -> Hashable:
        """What tells this hook from another of its class: hooks with equal specs are applied once."""

    @abstractmethod
    def process(self, job: Any, launcher: Any) -> None:
        """Adjusts a job being submitted.

        Args:
            job: the job (an :class:`xpm.scheduler.job.Job`): set variables of its
                process's environment in ``job.environ``, or replace ``job.launcher``.
            launcher: the launcher the job will run with (``job.launcher``).
        """

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.spec() == self.spec()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), self.spec()))

    def __repr__(self) -> str:
        return f"{type(self).__qualname__}({self.spec()!r})"


def class_hooks(cls: type) -> list[SubmitHook]:
    """The hooks of a class and of its bases (bases first), each once."""
    found: dict[SubmitHook, None] = {}
    for klass in reversed(cls.__mro__):
        for hook in klass.__dict__.get(HOOKS_ATTRIBUTE, ()):
            found.setdefault(hook)
    return list(found)


def submit_hooks(task: ConfigMixin) -> list[SubmitHook]:
    """The hooks that apply to the job of ``task``, in the order they run, each once.

    The task's own hooks come first, then those of the configurations of its
    parameters and init tasks, in the order a walk over them meets them.
    Configurations of other submitted tasks are not looked into.
    """
    if not _any:
        return []
    found: dict[SubmitHook, None] = {}
    classes: set[type] = set()
    _gather(task, found, classes, {id(task)})
    return list(found)


def _gather(config: ConfigMixin, found: dict[SubmitHook, None], classes: set[type], seen: set[int]) -> None:
    info = config.__xpm__
    cls = info.xpmtype.cls
    if cls not in classes:
        classes.add(cls)
        for hook in class_hooks(cls):
            found.setdefault(hook)
    for sub in (*info.child_configs(), *info.init_tasks):
        if id(sub) in seen:
            continue
        seen.add(id(sub))
        if sub.__xpm__.job is not None:
            continue  # another submitted task: its hooks are its own job's
        _gather(sub, found, classes, seen)


def apply_submit_hooks(task: ConfigMixin, job: Any) -> None:
    """Runs the hooks of ``task`` (:func:`submit_hooks`) on its new ``job``."""
    hooks = submit_hooks(task)
    for hook in hooks:
        hook.process(job, job.launcher)
    if hooks and job.environ:
        # An environment holds strings: `environ["N"] = 4` is meant as "4".
        job.environ = {str(key): str(value) for key, value in job.environ.items()}
