"""``@deprecate``: retire a configuration class without losing the jobs it named.

A deprecated class keeps working; its identifier is that of the configuration
its ``__convert__()`` returns, so that old experiment code and new code name the
same jobs. A job folder made before the class was deprecated (under the old
identifier) is found again: ``xpm.ids.raw_identifier`` gives that identifier.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any, Callable

from xpm.config.base import Config
from xpm.errors import ConfigError


def deprecate(target: Any = None, *, replace: bool = False) -> Any:
    """Deprecates a configuration class (or, on a method, a parameter).

    - ``@deprecate`` on ``class Old(New)``: ``Old`` converts to ``New`` with the
      same values (a ``__convert__`` is provided when the class has none);
    - ``@deprecate(New)`` on a class with a ``__convert__()`` returning a ``New``;
      with ``replace=True``, ``Old.C(...)`` returns the converted configuration;
    - ``@deprecate`` on a method ``def old(self, value)``: setting ``cfg.old = v``
      calls it (it sets the new parameters) and warns.
    """
    if inspect.isfunction(target):
        return DeprecatedAttribute(target)
    if isinstance(target, type) and issubclass(target, Config):
        bases = [b for b in target.__bases__ if issubclass(b, Config)]
        if not replace and len(bases) == 1 and bases[0].__dict__.get("__xpmtype__") is not None and bases[0] not in (
            Config,
            *_ROOTS,
        ) and "__convert__" not in target.__dict__:
            # @deprecate on `class Old(New)`: converts to its parent.
            return _deprecate(target, bases[0], replace=False)
        new = target

        def decorate(cls: type) -> type:
            return _deprecate(cls, new, replace=replace)

        return decorate
    if target is None:

        def decorate_parent(cls: type) -> type:
            parents = [b for b in cls.__bases__ if issubclass(b, Config)]
            return _deprecate(cls, parents[0] if parents else None, replace=replace)

        return decorate_parent
    raise ConfigError(f"@deprecate cannot be applied to {target!r}")


#: The classes deprecated in this process: planning looks for former job folders only when some are
_DEPRECATED: list[type] = []


def any_deprecated() -> bool:
    """Whether some configuration class of this process is deprecated."""
    return bool(_DEPRECATED)


def _deprecate(cls: type, new: type | None, *, replace: bool) -> type:
    if not (isinstance(cls, type) and issubclass(cls, Config)):
        raise ConfigError(f"@deprecate applies to configuration classes, not {cls!r}")
    if "__convert__" not in cls.__dict__:
        if new is None or not issubclass(cls, new):
            raise ConfigError(
                f"{cls.__qualname__} is deprecated in favour of {getattr(new, '__qualname__', new)} but defines "
                "no __convert__() returning the new configuration"
            )
        cls.__convert__ = _same_values(new)  # type: ignore[attr-defined]
    info = cls.__xpmtype__  # type: ignore[attr-defined]
    info.deprecated = True
    _DEPRECATED.append(cls)
    info.id_plan = None
    info.replace = replace
    return cls


def _same_values(new: type) -> Callable[[Any], Any]:
    def __convert__(self: Any) -> Any:
        info = self.__xpm__
        converted = new.C()  # type: ignore[attr-defined]
        for name, value in info.values.items():
            if name in converted.__xpm__.xpmtype.arguments:
                converted.__xpm__.set(name, value)
        return converted

    return __convert__


class DeprecatedAttribute:
    """A parameter that no longer exists: assigning it calls the method, which sets new parameters."""

    __xpm_deprecated__ = True

    def __init__(self, method: Callable[[Any, Any], None]):
        self.method = method
        self.name = method.__name__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __set__(self, obj: Any, value: Any) -> None:
        owner = obj.__xpm__.xpmtype.name if hasattr(obj, "__xpm__") else type(obj).__qualname__
        warnings.warn(f"{owner}.{self.name} is deprecated", DeprecationWarning, stacklevel=2)
        self.method(obj, value)

    def __get__(self, obj: Any, owner: type) -> Any:
        if obj is None:
            return self
        raise AttributeError(f"{owner.__qualname__}.{self.name} is deprecated and cannot be read")


def _roots() -> tuple[type, ...]:
    from xpm.config.base import LightweightTask, ResumableTask, Task

    return (Task, ResumableTask, LightweightTask)


_ROOTS = _roots()
