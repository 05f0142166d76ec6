"""Parameter annotations and the value types a parameter can declare.

``Param[T]``, ``Meta[T]``, ``Option[T]`` and ``Constant[T]`` are ``Annotated``
aliases: a type checker sees ``T``, xpm reads the marker. :func:`compile_type`
turns a Python type into a :class:`ValueType`, which validates (and normalises)
values and says whether the type involves a ``Path`` (such parameters never enter
an identifier).
"""

from __future__ import annotations

import enum
import re
import types
import typing
from pathlib import Path, PurePath
from typing import Annotated, Any, Callable, TypeVar

from xpm.config.fields import PathGenerator
from xpm.errors import ConfigError, ValidationError

T = TypeVar("T")


class ArgKind(enum.Enum):
    """How a declared attribute takes part in a configuration."""

    PARAM = "param"
    META = "meta"
    OPTION = "option"  # deprecated spelling of META
    CONSTANT = "constant"


Param = Annotated[T, ArgKind.PARAM]
"""A parameter: validated, and part of the identifier."""

Meta = Annotated[T, ArgKind.META]
"""A parameter that never enters the identifier (paths, verbosity, devices...)."""

Option = Annotated[T, ArgKind.OPTION]
"""Deprecated alias of :data:`Meta`."""

Constant = Annotated[T, ArgKind.CONSTANT]
"""A value fixed by the class (for instance a version); always in the identifier."""


class ValueType:
    """A compiled declared type: validates values and describes itself."""

    #: True when the type involves a Path anywhere (Path, list[Path], Path | None...)
    has_path: bool = False
    #: True when None is an accepted value (an optional parameter)
    optional: bool = False
    #: True when a value may be or contain a configuration: the walks over a tree of
    #: configurations (sealing, tags, dependencies) look only at such parameters
    holds_configs: bool = False
    #: True when a value may be a ``PathGenerator`` itself (resolved in the job folder)
    holds_generator: bool = False
    #: The type whose values :meth:`validate` returns unchanged, when one is (scalars):
    #: setting a value of exactly that type skips the call
    exact: type | None = None

    @property
    def accepts_none(self) -> bool:
        return self.optional

    def validate(self, value: Any, where: _Where) -> Any:
        """Returns the (normalised) value, or raises :class:`ValidationError`."""
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


class _Where:
    """Where a value sits, for error messages: the class and the parameter path."""

    __slots__ = ("cls", "path")

    def __init__(self, cls: str, path: str):
        self.cls = cls
        self.path = path

    def child(self, suffix: str) -> _Where:
        return _Where(self.cls, self.path + suffix)

    def fail(self, vtype: ValueType, value: Any, detail: str = "") -> ValidationError:
        return ValidationError(self.cls, self.path, vtype.describe(), value, detail)


class AnyType(ValueType):
    accepts_none = True  # type: ignore[assignment]
    holds_configs = True
    holds_generator = True

    def validate(self, value: Any, where: _Where) -> Any:
        return value

    def describe(self) -> str:
        return "any value"


class TypeVarType(AnyType):
    """A parameter typed by a ``TypeVar`` of a generic configuration class.

    Any value is accepted, but each configuration binds the type variable to the
    type of the values it holds (see ``ConfigInfo.bind``).
    """

    def __init__(self, typevar: Any):
        self.typevar = typevar

    def describe(self) -> str:
        return f"{self.typevar} (a type variable)"


class _Scalar(ValueType):
    """``str`` (strict) and the base of the lax number and bool types."""

    def __init__(self, pytype: type, name: str):
        self.pytype = pytype
        self.name = name
        self.exact = pytype

    def validate(self, value: Any, where: _Where) -> Any:
        if type(value) is self.pytype or (type(value) is not bool and isinstance(value, self.pytype)):
            return value
        converted = self.convert(value)
        if converted is None:
            raise where.fail(self, value)
        return converted

    def convert(self, value: Any) -> Any:
        """The value of another type this type accepts, converted (None: not accepted)."""
        return None

    def describe(self) -> str:
        return self.name


#: Texts a bool parameter accepts, lower-cased, as experimaestro's validation does
_BOOL_TEXTS = {
    "0": False, "off": False, "f": False, "false": False, "n": False, "no": False,
    "1": True, "on": True, "t": True, "true": True, "y": True, "yes": True,
}  # fmt: skip


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return value if isinstance(value, str) else None


class IntType(_Scalar):
    """``int``, lax as in experimaestro: a bool, an integral float, a numeric text become an int.

    Values that convert enter the identifier as the int, so ``n=1``, ``n=1.0`` and
    ``n="1"`` name the same job there and here.
    """

    def __init__(self) -> None:
        super().__init__(int, "int")

    def convert(self, value: Any) -> Any:
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, float):
            return int(value) if value.is_integer() else None
        text = _text(value)
        if text is None:
            return None
        text = text.strip()
        if re.fullmatch(r"[+-]?\d+", text):
            return int(text)
        whole = re.fullmatch(r"([+-]?\d+)\.0*", text)
        return int(whole.group(1)) if whole else None


class FloatType(_Scalar):
    """``float``: an int (or bool, or numeric text) is accepted and stored as a float,
    so that ``lr=1`` and ``lr=1.0`` give the same identifier."""

    def __init__(self) -> None:
        super().__init__(float, "float")

    def validate(self, value: Any, where: _Where) -> Any:
        if type(value) is not bool and isinstance(value, int):
            try:
                return float(value)
            except OverflowError:
                raise where.fail(self, value, "too large for a float") from None
        return super().validate(value, where)

    def convert(self, value: Any) -> Any:
        if isinstance(value, bool):
            return float(value)
        text = _text(value)
        if text is None:
            return None
        try:
            return float(text.strip())
        except ValueError:
            return None


class BoolType(_Scalar):
    """``bool``: also 0 and 1 (as ints or floats) and texts such as "yes", "off", "true"."""

    def __init__(self) -> None:
        super().__init__(bool, "bool")

    def convert(self, value: Any) -> Any:
        if isinstance(value, (int, float)) and value in (0, 1):
            return bool(value)
        text = _text(value)
        return None if text is None else _BOOL_TEXTS.get(text.lower())


class PathType(ValueType):
    has_path = True
    holds_generator = True

    def validate(self, value: Any, where: _Where) -> Any:
        if isinstance(value, PathGenerator):
            return value
        if isinstance(value, PurePath):
            return value
        if isinstance(value, str):
            return Path(value)
        raise where.fail(self, value)

    def describe(self) -> str:
        return "Path"


class EnumType(ValueType):
    def __init__(self, enum_cls: type[enum.Enum]):
        self.enum_cls = enum_cls

    def validate(self, value: Any, where: _Where) -> Any:
        if isinstance(value, self.enum_cls):
            return value
        raise where.fail(self, value)

    def describe(self) -> str:
        return f"{self.enum_cls.__qualname__} (an enum member)"


class ListType(ValueType):
    def __init__(self, item: ValueType):
        self.item = item
        self.has_path = item.has_path
        self.holds_configs = item.holds_configs

    def validate(self, value: Any, where: _Where) -> Any:
        if not isinstance(value, (list, tuple)):
            raise where.fail(self, value)
        return [self.item.validate(v, where.child(f"[{i}]")) for i, v in enumerate(value)]

    def describe(self) -> str:
        return f"list[{self.item.describe()}]"


class SetType(ValueType):
    def __init__(self, item: ValueType):
        self.item = item
        self.has_path = item.has_path
        self.holds_configs = item.holds_configs

    def validate(self, value: Any, where: _Where) -> Any:
        if not isinstance(value, (set, frozenset, list, tuple)):
            raise where.fail(self, value)
        return {self.item.validate(v, where.child("{}")) for v in value}

    def describe(self) -> str:
        return f"set[{self.item.describe()}]"


class TupleType(ValueType):
    """``tuple[A, B]`` (fixed length) or ``tuple[A, ...]`` (any length)."""

    def __init__(self, items: list[ValueType], variadic: bool):
        self.items = items
        self.variadic = variadic
        self.has_path = any(t.has_path for t in items)
        self.holds_configs = any(t.holds_configs for t in items)

    def validate(self, value: Any, where: _Where) -> Any:
        if not isinstance(value, (list, tuple)):
            raise where.fail(self, value)
        if self.variadic:
            return tuple(self.items[0].validate(v, where.child(f"[{i}]")) for i, v in enumerate(value))
        if len(value) != len(self.items):
            raise where.fail(self, value, f"{len(value)} items instead of {len(self.items)}")
        return tuple(t.validate(v, where.child(f"[{i}]")) for i, (t, v) in enumerate(zip(self.items, value)))

    def describe(self) -> str:
        if self.variadic:
            return f"tuple[{self.items[0].describe()}, ...]"
        return f"tuple[{', '.join(t.describe() for t in self.items)}]"


class DictType(ValueType):
    def __init__(self, key: ValueType, value: ValueType):
        self.key = key
        self.value = value
        self.has_path = key.has_path or value.has_path
        self.holds_configs = key.holds_configs or value.holds_configs

    def validate(self, value: Any, where: _Where) -> Any:
        if not isinstance(value, dict):
            raise where.fail(self, value)
        out = {}
        for k, v in value.items():
            k2 = self.key.validate(k, where.child(f"[{k!r}] (key)"))
            out[k2] = self.value.validate(v, where.child(f"[{k!r}]"))
        return out

    def describe(self) -> str:
        return f"dict[{self.key.describe()}, {self.value.describe()}]"


class UnionType(ValueType):
    """``A | B | None``: the first alternative that accepts the value wins."""

    def __init__(self, options: list[ValueType], optional: bool):
        self.options = options
        self.optional = optional
        self.has_path = any(t.has_path for t in options)
        self.holds_configs = any(t.holds_configs for t in options)
        self.holds_generator = any(t.holds_generator for t in options)

    def validate(self, value: Any, where: _Where) -> Any:
        if value is None and self.optional:
            return None
        # Exact matches first, so that an int stays an int in `int | float`.
        for option in self.options:
            if isinstance(option, _Scalar) and type(value) is option.pytype:
                return value
        for option in self.options:
            try:
                return option.validate(value, where)
            except ValidationError:
                continue
        raise where.fail(self, value)

    def describe(self) -> str:
        names = [t.describe() for t in self.options]
        if self.optional:
            names.append("None")
        return " | ".join(names)


class ConfigType(ValueType):
    """A nested configuration: any configuration of the declared class or a subclass.

    For a generic class given with arguments (``Holder[Model]``), a value whose
    class fixes those arguments (``class ModelHolder(Holder[Model])``) must fix
    them to compatible types; type variables bind per configuration instead.
    """

    holds_configs = True

    def __init__(self, cls: type, args: tuple[Any, ...] = ()):
        self.cls = cls
        self.args = args

    def validate(self, value: Any, where: _Where) -> Any:
        from xpm.config.base import ConfigMixin

        if isinstance(value, ConfigMixin) and isinstance(value, self.cls):
            if self.args:
                problem = _generic_mismatch(type(value), self.cls, self.args)
                if problem:
                    raise where.fail(self, value, problem)
            return value
        raise where.fail(self, value)

    def describe(self) -> str:
        if self.args:
            names = ", ".join(getattr(a, "__qualname__", str(a)) for a in self.args)
            return f"{self.cls.__qualname__}[{names}] (a configuration)"
        return f"{self.cls.__qualname__} (a configuration)"


def _generic_mismatch(cls: type, origin: type, expected: tuple[Any, ...]) -> str:
    """Why ``cls`` does not fix the arguments of the generic ``origin`` as ``expected`` ("" when it does)."""
    for klass in cls.__mro__:
        for base in getattr(klass, "__orig_bases__", ()):
            if typing.get_origin(base) is not origin:
                continue
            for want, got in zip(expected, typing.get_args(base)):
                if isinstance(want, TypeVar) or isinstance(got, TypeVar):
                    continue
                if isinstance(want, type) and isinstance(got, type) and not issubclass(got, want):
                    return f"{cls.__qualname__} fixes {got.__qualname__} where {want.__qualname__} is expected"
            return ""
    return ""


_SCALARS: dict[Any, ValueType] = {
    int: IntType(),
    str: _Scalar(str, "str"),
    bool: BoolType(),
    float: FloatType(),
}


def compile_type(tp: Any, owner: str, resolve: Callable[[str], Any] | None = None) -> ValueType:
    """Turns a Python type annotation into a :class:`ValueType`.

    ``resolve`` turns a forward reference (``Param["Model"]``,
    ``Optional["Model"]``) into the class it names; it raises ``NameError`` while
    the name is not defined yet.

    Raises:
        ConfigError: the type is not supported; the message names ``owner``.
    """
    if isinstance(tp, (str, typing.ForwardRef)):
        text = tp if isinstance(tp, str) else tp.__forward_arg__
        if resolve is None:
            raise NameError(f"{owner}: cannot resolve the forward reference {text!r}")
        try:
            target = resolve(text)
        except NameError as exc:
            raise NameError(f"{owner}: cannot resolve {text!r}: {exc}") from None
        return compile_type(target, owner, resolve)
    if tp is Any or tp is object:
        return AnyType()
    if tp in _SCALARS:
        return _SCALARS[tp]
    if isinstance(tp, type) and issubclass(tp, PurePath):
        return PathType()
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Annotated:
        return compile_type(args[0], owner, resolve)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        compiled = [compile_type(a, owner, resolve) for a in options]
        return UnionType(compiled, optional=len(options) < len(args))
    if tp in (list, typing.List) or origin is list:
        return ListType(compile_type(args[0], owner, resolve) if args else AnyType())
    if tp in (set, frozenset) or origin in (set, frozenset):
        return SetType(compile_type(args[0], owner, resolve) if args else AnyType())
    if tp in (dict, typing.Dict) or origin is dict:
        if args:
            return DictType(compile_type(args[0], owner, resolve), compile_type(args[1], owner, resolve))
        return DictType(AnyType(), AnyType())
    if tp is tuple or origin is tuple:
        if not args:
            return TupleType([AnyType()], variadic=True)
        if len(args) == 2 and args[1] is Ellipsis:
            return TupleType([compile_type(args[0], owner, resolve)], variadic=True)
        return TupleType([compile_type(a, owner, resolve) for a in args], variadic=False)
    if isinstance(tp, type):
        if issubclass(tp, enum.Enum):
            return EnumType(tp)
        from xpm.config.base import Config

        if issubclass(tp, Config):
            return ConfigType(tp)
    if isinstance(tp, TypeVar):
        return TypeVarType(tp)
    if isinstance(origin, type):
        from xpm.config.base import Config

        if issubclass(origin, Config):
            return ConfigType(origin, args)
    raise ConfigError(f"{owner}: the type {tp!r} is not supported for a parameter")


class ArgSpec:
    """What the ``Annotated`` metadata of a declaration say about the argument.

    Filled by :class:`TypeAnnotation` objects (checkers, path generators, help
    texts, data paths); read when the argument is made.
    """

    __slots__ = ("kind", "checkers", "generator", "help", "is_data")

    def __init__(self) -> None:
        self.kind = ArgKind.PARAM
        #: objects with a ``check(value) -> bool`` method, asked at each assignment
        self.checkers: list[Any] = []
        #: a default factory given by the annotation (``pathgenerator``)
        self.generator: Any = None
        self.help: str | None = None
        #: a path whose content ``save`` copies (``DataPath``)
        self.is_data = False


class TypeAnnotation:
    """Base of the objects written in ``Annotated[T, ...]`` that change an argument.

    Any such object in the metadata makes the attribute an argument (a ``Param``
    unless a kind says otherwise), as ``Param`` itself does.
    """

    def annotate(self, spec: ArgSpec) -> None:
        """Records what this annotation says in ``spec``."""


class pathgenerator(TypeAnnotation):  # noqa: N801 - the name users write
    """``Annotated[Path, pathgenerator("model.pt")]``: a path generated in the job folder."""

    def __init__(self, path: str | Path):
        self.path = path

    def annotate(self, spec: ArgSpec) -> None:
        spec.generator = PathGenerator(self.path)


def split_annotation(annotation: Any) -> tuple[ArgSpec, Any] | None:
    """Returns (spec, inner type) for ``Param[T]``-style annotations, else None."""
    if typing.get_origin(annotation) is not Annotated:
        return None
    spec: ArgSpec | None = None
    for extra in annotation.__metadata__:
        if isinstance(extra, ArgKind):
            spec = spec or ArgSpec()
            spec.kind = extra
        elif isinstance(extra, TypeAnnotation):
            spec = spec or ArgSpec()
            extra.annotate(spec)
    if spec is None:
        return None
    return spec, annotation.__origin__
