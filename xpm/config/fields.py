"""``field()``: defaults of parameters, and the tag and path helpers users pass as values."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable

_MISSING: Any = type("MISSING", (), {"__repr__": lambda self: "MISSING"})()


class Field:
    """What ``field(...)`` returns: the default of a parameter and how it is hashed."""

    __slots__ = ("default", "default_factory", "ignore_default", "overrides", "ignore_generated", "groups", "optional")

    def __init__(
        self,
        default: Any = _MISSING,
        default_factory: Callable[[], Any] | None = None,
        ignore_default: Any = False,
        overrides: bool = False,
        ignore_generated: bool = False,
        groups: Iterable[Any] = (),
    ):
        if ignore_default is not False and ignore_default is not True:
            # Legacy form: field(ignore_default=v) == field(default=v, ignore_default=True)
            if default is not _MISSING:
                raise ValueError("field(): give either default= or a value for ignore_default=, not both")
            default, ignore_default = ignore_default, True
        if default is not _MISSING and default_factory is not None:
            raise ValueError("field(): default and default_factory cannot both be given")
        # A None default means "no default, and the parameter is optional": left
        # unset, it reads as None and stays out of the identifier.
        self.optional = default is None
        self.default = _MISSING if default is None else default
        self.default_factory = default_factory
        self.ignore_default = bool(ignore_default)
        self.overrides = overrides
        self.ignore_generated = ignore_generated
        #: the parameter groups (``param_group``) this parameter belongs to, for partial identifiers
        self.groups = frozenset(groups)


def field(
    *,
    default: Any = _MISSING,
    default_factory: Callable[[], Any] | None = None,
    ignore_default: Any = False,
    overrides: bool = False,
    ignore_generated: bool = False,
    groups: Iterable[Any] = (),
) -> Any:
    """Declares the default of a parameter.

    Args:
        default: the default value. It **enters** the identifier, even when the
            value equals it, unless ``ignore_default`` is true.
        default_factory: a function that makes the default. For a ``Param`` it is
            called once, when the class is defined; for a ``Meta`` it is called when
            the configuration is sealed (this is how ``PathGenerator`` works).
        ignore_default: when true, a value equal to the default is left out of the
            identifier; this is how a new parameter is added without changing
            existing identifiers. A non-boolean value is the legacy spelling of
            ``default=value, ignore_default=True``.
        overrides: redefine a parameter of a parent class without a warning.
        ignore_generated: accepted for compatibility; xpm never hashes generated paths.
        groups: the parameter groups (:func:`xpm.config.partial.param_group`) of
            this parameter; a partial identifier leaves some groups out.
    """
    return Field(default, default_factory, ignore_default, overrides, ignore_generated, groups)


class TaggedValue:
    """A value marked as a tag by :func:`tag`; unwrapped when it is assigned."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def __repr__(self) -> str:
        return f"tag({self.value!r})"


def tag(value: Any) -> Any:
    """Marks a parameter value as a tag: ``Train.C(lr=tag(0.5))`` tags ``lr=0.5``.

    Tags describe a job (``cfg.tags()``, ``jobs list --tags``) but never enter
    its identifier.
    """
    if isinstance(value, TaggedValue):
        return value
    return TaggedValue(value)


class PathGenerator:
    """A ``Meta[Path]`` default that names a file inside the job folder.

    ``out: Meta[Path] = field(default_factory=PathGenerator("model.pt"))`` resolves
    to ``<job folder>/model.pt`` once the task has a job folder. Generated paths
    never enter an identifier.
    """

    __slots__ = ("path", "partial")

    def __init__(self, path: str | Path | Callable[[Any, Any], Any] = "", *, partial: Any = None):
        #: the path in the folder, or a function ``(context, config) -> path`` that makes it
        #: (``context.path`` and ``context.currentpath()`` give the folder)
        self.path: Any = path if callable(path) else Path(path)
        #: a ``Partial``: the path goes in the folder shared by the tasks with the same
        #: partial identifier (``partials/...``) instead of the job folder
        self.partial = partial

    def resolve(self, jobpath: Path, config: Any = None) -> Path:
        """The path inside the folder ``jobpath`` (the job's, or a partial's), for ``config``."""
        if callable(self.path):
            from xpm.config.contexts import DirectoryContext

            return jobpath / Path(self.path(DirectoryContext(jobpath), config))
        return jobpath / self.path

    def __call__(self) -> PathGenerator:
        # Used as a default_factory: the generator itself stands as the value
        # until the job folder is known.
        return self

    def __repr__(self) -> str:
        return f"PathGenerator({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PathGenerator) and other.path == self.path and other.partial is self.partial

    def __hash__(self) -> int:
        return hash(self.path)
