"""What xpm knows about a configuration class: its type id and its declared arguments.

Arguments are resolved lazily (on first use) so that annotations may name classes
defined later in the module; a class whose annotations already resolve is
resolved at definition time, which runs ``Param`` default factories then, as
users expect.
"""

from __future__ import annotations

import copy
import sys
import warnings
from typing import TYPE_CHECKING, Any, Callable

from xpm.config.fields import _MISSING, Field, PathGenerator
from xpm.config.types import ArgKind, ArgSpec, TypeVarType, ValueType, _Where, compile_type, split_annotation
from xpm.errors import ConfigError, ValidationError

if TYPE_CHECKING:
    from xpm.config.base import ConfigMixin

_BARE_DEFAULT_WARNED: set[str] = set()
_IMMUTABLE = (int, float, str, bool, bytes, type(None), tuple, frozenset)


class Argument:
    """One declared parameter of a configuration class."""

    __slots__ = (
        "name",
        "kind",
        "vtype",
        "default",
        "default_factory",
        "ignore_default",
        "owner",
        "default_encoding",
        "checkers",
        "is_data",
        "groups",
        "optional",
        "typevar",
        "_help",
    )

    def __init__(
        self,
        name: str,
        kind: ArgKind,
        vtype: ValueType,
        default: Any,
        default_factory: Callable[[], Any] | None,
        ignore_default: bool,
        owner: type,
        spec: ArgSpec | None = None,
        groups: frozenset[Any] = frozenset(),
        none_default: bool = False,
    ):
        self.name = name
        self.kind = kind
        self.vtype = vtype
        self.default = default
        self.default_factory = default_factory
        self.ignore_default = ignore_default
        self.owner = owner
        #: the canonical encoding of the default (set by xpm.ids on first use)
        self.default_encoding: bytes | None = None
        #: objects whose ``check(value)`` must accept each value (``Choices``...)
        self.checkers: tuple[Any, ...] = tuple(spec.checkers) if spec is not None else ()
        #: a path whose content ``save`` copies (``DataPath``)
        self.is_data = spec is not None and spec.is_data
        #: the parameter groups of the argument (partial identifiers)
        self.groups = groups
        #: whether None is a valid value (an optional type, or ``field(default=None)``)
        self.optional = vtype.optional or none_default
        #: the type variable a value binds (``x: Param[T]`` in a generic class), or None
        self.typevar = _typevar_of(vtype)
        self._help: str | None = spec.help if spec is not None else None

    @property
    def is_meta(self) -> bool:
        return self.kind is ArgKind.META or self.kind is ArgKind.OPTION

    @property
    def is_constant(self) -> bool:
        return self.kind is ArgKind.CONSTANT

    @property
    def has_default(self) -> bool:
        return self.default is not _MISSING

    @property
    def required(self) -> bool:
        return self.default is _MISSING and self.default_factory is None and not self.optional

    @property
    def hashed(self) -> bool:
        """Whether the argument can enter the identifier at all."""
        return not self.is_meta and not self.vtype.has_path

    @property
    def help(self) -> str:
        """The argument's help text, from the class docstrings (may be empty)."""
        if self._help is None:
            # Help texts are read on demand: `import xpm` does not load the docstring parser.
            from xpm.config.docs import argument_help

            self._help = argument_help(self.owner, self.name)
        return self._help

    def default_value(self) -> Any:
        """A fresh copy of the default, so that mutable defaults are never shared."""
        value = self.default
        if isinstance(value, _IMMUTABLE):
            return value
        if isinstance(value, (list, dict, set)):
            return copy.copy(value)
        return value

    def __repr__(self) -> str:
        return f"Argument({self.name!r}, {self.kind.value}, {self.vtype.describe()})"


def _typevar_of(vtype: ValueType) -> Any:
    if isinstance(vtype, TypeVarType):
        return vtype.typevar
    options = getattr(vtype, "options", None)
    if options is not None and len(options) == 1 and isinstance(options[0], TypeVarType):
        return options[0].typevar
    return None


#: The name under which a job process imports the experiment's main script, so that
#: its ``if __name__ == "__main__":`` block does not run again inside the job.
MAIN_ALIAS = "__xpm_main__"


def module_name(cls: type) -> str:
    """The module of a class as recorded by xpm: a class of the main script is in
    ``__main__`` both in the experiment and in the job process that re-imports it."""
    module = cls.__module__
    return "__main__" if module == MAIN_ALIAS else module


class ClassInfo:
    """The xpm view of a ``Config`` subclass, stored as ``cls.__xpmtype__``."""

    def __init__(self, cls: type, raw: dict[str, Any]):
        self.cls = cls
        self._raw = raw
        self._arguments: dict[str, Argument] | None = None
        self._config_class: type | None = None
        self._defaults: list[Argument] = []
        # What the walks over trees of configurations need, set by resolve() (which
        # runs before any configuration of the class exists): each walk looks at a
        # few parameters rather than at every value.
        #: names of the parameters whose value may be or hold a configuration
        self.config_arguments: tuple[str, ...] = ()
        #: names of the parameters whose value may be a ``PathGenerator``
        self.generator_arguments: tuple[str, ...] = ()
        #: the arguments sealing looks at when they have no value (factory or required)
        self.seal_arguments: tuple[Argument, ...] = ()
        own_id = cls.__dict__.get("__xpmid__")
        self.explicit_id = own_id is not None
        # str(): __xpmid__ may be an Identifier (the type-name builder) as well as a str
        self.identifier: str = str(own_id or f"{module_name(cls)}.{cls.__qualname__}").lower()
        #: filled by xpm.ids the first time an identifier of this class is computed
        self.id_plan: Any = None
        #: filled by xpm.serialize: where the class is imported from, and the main script's file
        self.record_names: tuple[str, str | None] | None = None
        #: the class whose objects ``instance()`` builds (``@Cls.value_class()``)
        self.value_class: type = cls
        #: set by ``@deprecate``: the identifier is that of ``__convert__()``'s result
        self.deprecated = False
        #: ``@deprecate(New, replace=True)``: ``Cls.C(...)`` gives the converted configuration
        self.replace = False
        #: named partial identifiers declared on the class (``checkpoints = partial(...)``), by name
        self.partials: dict[str, Any] = {}
        for name, value in cls.__dict__.items():
            if getattr(value, "__xpm_partial__", False):
                if value.name is None:
                    value.name = name
                self.partials[name] = value

    @property
    def name(self) -> str:
        return self.cls.__qualname__

    @property
    def description(self) -> str:
        """The class description, from its docstring."""
        from xpm.config.docs import class_description

        return class_description(self.cls)

    @property
    def arguments(self) -> dict[str, Argument]:
        if self._arguments is None:
            self.resolve()
        assert self._arguments is not None
        return self._arguments

    @property
    def with_defaults(self) -> list[Argument]:
        """The arguments that have a default (filled in when a configuration is made)."""
        self.arguments
        return self._defaults

    @property
    def config_class(self) -> type[ConfigMixin]:
        """The class of configuration objects (a subclass of the user class)."""
        if self._config_class is None:
            from xpm.config.base import ConfigMixin

            if "<locals>" in self.cls.__qualname__ and not self.explicit_id and "pytest" not in sys.modules:
                # Under pytest, a class defined in a test function is named by the
                # test's module and function, stable for the test's purposes.
                raise ConfigError(
                    f"{self.cls.__qualname__} is defined inside a function, so its type id would "
                    "not be stable; define it at module level or give it an __xpmid__"
                )
            self._config_class = type(
                self.cls.__name__,
                (ConfigMixin, self.cls),
                {
                    "__module__": self.cls.__module__,
                    "__qualname__": self.cls.__qualname__ + ".XPMConfig",
                    "__xpm_generated__": True,
                    "__slots__": (),
                },
            )
        return self._config_class

    def resolve(self) -> None:
        """Resolves the annotations of the class and of its configuration bases."""
        arguments: dict[str, Argument] = {}
        for klass in reversed(self.cls.__mro__):
            info = klass.__dict__.get("__xpmtype__")
            if info is None:
                continue
            for name, annotation in _own_annotations(klass).items():
                try:
                    annotation = _evaluate(annotation, klass)
                except Exception as exc:
                    if klass is self.cls:
                        raise NameError(f"{self.cls.__qualname__}.{name}: cannot resolve {annotation!r}: {exc}") from exc
                    raise
                split = split_annotation(annotation)
                if split is None:
                    continue
                if name.startswith("__"):
                    raise ConfigError(f"{klass.__qualname__}.{name}: parameter names cannot start with '__'")
                spec, inner = split
                arg = _make_argument(klass, info._raw, name, spec, inner)
                previous = arguments.get(name)
                if previous is not None and previous.owner is not klass:
                    raw = info._raw.get(name)
                    if not (isinstance(raw, Field) and raw.overrides):
                        warnings.warn(
                            f"{klass.__qualname__}.{name} redefines the parameter of "
                            f"{previous.owner.__qualname__}; use field(overrides=True) to say it is on purpose",
                            stacklevel=2,
                        )
                arguments[name] = arg
        self._arguments = arguments
        self._check_partials(arguments)
        self._defaults = [a for a in arguments.values() if a.has_default]
        # A default factory's result is not validated (a Meta factory runs at
        # sealing): it may be anything, so its parameter is always looked at
        # (but for PathGenerator, which gives itself).
        self.config_arguments = tuple(
            a.name
            for a in arguments.values()
            if a.vtype.holds_configs
            or (a.default_factory is not None and not isinstance(a.default_factory, PathGenerator))
        )
        self.generator_arguments = tuple(
            a.name for a in arguments.values() if a.vtype.holds_generator or a.default_factory is not None
        )
        # An argument with a default always has a value: C() sets it.
        self.seal_arguments = tuple(
            a for a in arguments.values() if not a.has_default and (a.default_factory is not None or a.required)
        )

    def _check_partials(self, arguments: dict[str, Argument]) -> None:
        """A partial may name only groups that parameters of the class belong to."""
        if not self.partials:
            return
        known = {group for arg in arguments.values() for group in arg.groups}
        for name, partial in self.partials.items():
            for group in sorted(partial.exclude_groups | partial.include_groups, key=lambda g: g.name):
                if group not in known:
                    names = ", ".join(sorted(g.name for g in known)) or "none"
                    raise ConfigError(
                        f"{self.cls.__qualname__}.{name}: the partial names the group {group.name!r}, which no "
                        f"parameter of the class belongs to (groups: {names})"
                    )


def _check_groups(owner: str, groups: frozenset[Any]) -> None:
    """``field(groups=...)`` takes parameter groups: a string there is a mistake worth one clear line."""
    for group in groups:
        if type(group).__name__ != "ParameterGroup":
            raise ConfigError(f"{owner}: field(groups=...) takes parameter groups (param_group(...)), got {group!r}")


def _make_argument(klass: type, raw: dict[str, Any], name: str, spec: ArgSpec, inner: Any) -> Argument:
    kind = spec.kind
    owner = f"{klass.__qualname__}.{name}"
    vtype = compile_type(inner, owner, lambda text: _evaluate(text, klass))
    declared = raw.get(name, _MISSING)
    default, factory, ignore_default = _MISSING, spec.generator, False
    groups: frozenset[Any] = frozenset()
    none_default = False
    if isinstance(declared, Field):
        none_default = declared.optional
        default, ignore_default = declared.default, declared.ignore_default
        factory = declared.default_factory or factory
        groups = declared.groups
        _check_groups(owner, groups)
    elif declared is not _MISSING and declared is not None:
        default, ignore_default = declared, True
        if kind is ArgKind.PARAM and klass.__module__ not in _BARE_DEFAULT_WARNED:
            _BARE_DEFAULT_WARNED.add(klass.__module__)
            warnings.warn(
                f"{owner}: a bare default acts as field(default=..., ignore_default=True); "
                "write it that way, or let `experimaestro refactor default-values --perform` rewrite them "
                "(this warning is given once per module)",
                DeprecationWarning,
                stacklevel=2,
            )
    if kind is ArgKind.OPTION:
        warnings.warn(f"{owner}: Option is deprecated, use Meta", DeprecationWarning, stacklevel=2)
    if factory is not None and kind in (ArgKind.PARAM, ArgKind.CONSTANT) and not isinstance(factory, PathGenerator):
        # A Param factory runs once, now, so that its result can be compared
        # with the value like any other default.
        default, factory = factory(), None
    if kind is ArgKind.CONSTANT and default is _MISSING:
        raise ConfigError(f"{owner}: a Constant needs a default value")
    if default is not _MISSING:
        default = vtype.validate(default, _Where(klass.__qualname__, name + " (default)"))
        for checker in spec.checkers:
            if not checker.check(default):
                raise ValidationError(klass.__qualname__, name + " (default)", str(checker), default)
    return Argument(name, kind, vtype, default, factory, ignore_default, klass, spec, groups, none_default)


def _own_annotations(klass: type) -> dict[str, Any]:
    annotations = klass.__dict__.get("__annotations__")
    if annotations is None and sys.version_info >= (3, 14):  # pragma: no cover
        import annotationlib

        annotations = annotationlib.get_annotations(klass, format=annotationlib.Format.FORWARDREF)
    return dict(annotations or {})


def _evaluate(annotation: Any, klass: type) -> Any:
    if not isinstance(annotation, str):
        return annotation
    module = sys.modules.get(klass.__module__)
    globalns = dict(vars(module)) if module else {}
    # The class itself is not yet bound in its module while its body is resolved:
    # a class may name itself (`parent: Param[Optional["Node"]]`).
    localns = {klass.__name__: klass, **vars(klass)}
    return eval(annotation, globalns, localns)  # noqa: S307 - annotations are code
