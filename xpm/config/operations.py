"""Operations on configuration trees: copies, composition, instances, meta flags and tags.

``copyconfig`` and ``outer @ inner`` build new configuration objects from others;
``cfg.instance()`` builds the user's objects (:func:`_instance`); ``setmeta``,
``stop_tags``, ``tagspath`` and ``sealed_set`` are the helpers experiments use.
"""

from __future__ import annotations

from typing import Any, Callable

from xpm.config.base import C, Config, ConfigMixin, Task
from xpm.config.fields import PathGenerator, TaggedValue
from xpm.errors import ConfigError

__all__ = ["copyconfig", "sealed_set", "setmeta", "stop_tags", "tagspath"]


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
