"""Grid search in experiment configurations.

A field declared ``GridSearch[T]`` takes, in the YAML file, one value of type ``T``
or a set of values to search: a list, or a mapping with one of the keys of
:data:`GRID_KEYS` (``range: [start, stop, step]``, ``range_mult: [start, count,
multiplier]``...). The ``grid_search`` key of the configuration names any field by
its dotted path (``model.layers: [2, 4]``), and its ``config_dicts`` gives values
that go together. :func:`generate_grid` expands the search, in ``run``::

    @configuration
    class Configuration(ConfigurationBase):
        lr: GridSearch[float] = 1e-3

    def run(helper, cfg: Configuration):
        configurations, tags = generate_grid(cfg)   # one per combination
        for config, values in zip(configurations, tags):
            Train.C(lr=config.lr).submit()

Values are converted to the declared types when the configuration is validated,
and an unknown key or a value of the wrong type is one error naming the key.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import itertools
import types
import typing
from collections.abc import Iterable, Sequence
from typing import Annotated, Any, TypeVar, Union

from xpm.errors import FileProblem
from xpm.experiments.convert import ConversionError, convert, key_text, show_value

__all__ = [
    "GRID_KEYS",
    "GenericParams",
    "GridSearch",
    "GridSearchError",
    "check_grid",
    "discover_grid_params",
    "generate_grid",
    "grid_item_type",
]

T = TypeVar("T")

#: The keys of a mapping that describes values to search (``range`` and
#: ``range_mult`` are other names of ``values_range`` and ``values_mult``)
GRID_KEYS = ("range", "range_mult", "value", "values_list", "values_mult", "values_range")
_ALIASES = {"range": "values_range", "range_mult": "values_mult"}

#: Where the keys of ``grid_search`` are checked and named in messages
_BLOCK = "grid_search"
_DICTS = "config_dicts"


class GridSearchError(FileProblem):
    """A grid search is invalid: ``<key>: <problem>``, naming the key of the configuration.

    Attributes:
        parts: the key path (``("grid_search", "model.layers", "[1]")``).
        problem: what is wrong.
    """

    def __init__(self, problem: str, parts: Iterable[str] = ()):
        self.parts = tuple(parts)
        super().__init__(problem, key=key_text(self.parts))


@dataclasses.dataclass
class GenericParams:
    """The values a ``GridSearch`` field takes: one value, a list, a range or a geometric range.

    Attributes:
        value: the one value (when nothing else is given).
        values_list: the values to search.
        values_range: ``(start, stop[, step])`` as Python's ``range``.
        values_mult: ``(start, count, multiplier)``: ``start * multiplier**i`` for ``i < count``.
    """

    value: Any = None
    values_list: list[Any] | None = None
    values_range: tuple[int, ...] | None = None
    values_mult: tuple[Any, ...] | None = None

    @property
    def is_grid(self) -> bool:
        """Whether there is more than one value to search."""
        return len(self.as_list()) > 1

    def as_list(self) -> list[Any]:
        """The values to search, in order."""
        if self.values_list:
            return list(self.values_list)
        if self.values_range:
            return list(range(*self.values_range))
        if self.values_mult:
            if len(self.values_mult) != 3:
                raise GridSearchError(f"expected [start, count, multiplier], got {show_value(list(self.values_mult))}")
            start, count, multiplier = self.values_mult
            return [start * multiplier**index for index in range(int(count))]
        return [self.value]

    @classmethod
    def from_any(cls, obj: Any, target_type: Any = Any, *, parts: Sequence[str] = ()) -> GenericParams:
        """Reads a value as written in a configuration: a scalar, a list, or a mapping of :data:`GRID_KEYS`.

        Values are converted to ``target_type`` (left as they are for ``Any``).

        Args:
            obj: the value.
            target_type: the type of each value.
            parts: the key path of the value, for messages.

        Raises:
            GridSearchError: an unknown key, a value of the wrong type, an empty list,
                a range that is not made of integers.
        """
        if isinstance(obj, GenericParams):
            return obj
        parts = tuple(parts)
        if isinstance(obj, (list, tuple)):
            if not obj:
                raise GridSearchError("an empty list gives no value to search", parts)
            return cls(values_list=_convert(list(obj), list[target_type], parts))  # type: ignore[valid-type]
        if not isinstance(obj, dict):
            return cls(value=_convert(obj, target_type, parts))

        unknown = sorted(str(key) for key in obj if key not in GRID_KEYS)
        if unknown:
            close = difflib.get_close_matches(unknown[0], GRID_KEYS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise GridSearchError(f"unknown grid key {unknown[0]!r} ({hint}known keys: {', '.join(GRID_KEYS)})", parts)
        given: dict[str, tuple[str, Any]] = {}
        for key, item in obj.items():
            name = str(_ALIASES.get(key, key))
            if name in given:
                raise GridSearchError(f"give either {given[name][0]} or {key}, not both", parts)
            given[name] = (key, item)
        result = cls()
        if "value" in given:
            result.value = _convert(given["value"][1], target_type, (*parts, "value"))
        if "values_list" in given:
            key, item = given["values_list"]
            if not isinstance(item, (list, tuple)):
                raise GridSearchError(f"expected a list, got {show_value(item)}", (*parts, key))
            result.values_list = cls.from_any(item, target_type, parts=(*parts, key)).values_list
        if "values_range" in given:
            key, item = given["values_range"]
            bounds = _convert(item, tuple[int, ...], (*parts, key))
            if not 1 <= len(bounds) <= 3 or (len(bounds) == 3 and bounds[2] == 0):
                raise GridSearchError(f"expected [start, stop] or [start, stop, step], got {show_value(item)}",
                                      (*parts, key))
            result.values_range = bounds
        if "values_mult" in given:
            key, item = given["values_mult"]
            items = _convert(item, list, (*parts, key))
            if len(items) != 3:
                raise GridSearchError(f"expected [start, count, multiplier], got {show_value(item)}", (*parts, key))
            number = Union[int, float]
            result.values_mult = _convert(items, tuple[number, int, number], (*parts, key))  # type: ignore[valid-type]
        if not result.as_list():
            # range: [5, 1] or a count of 0 would silently make the whole search empty.
            raise GridSearchError(f"{show_value(obj)} gives no value to search", parts)
        return result


def _grid_mark() -> None:
    """Marks the ``Annotated`` form of :data:`GridSearch` (the type itself is what matters)."""


#: ``GridSearch[float]``: a field whose YAML value may be one float or values to search
GridSearch = Annotated[Union[T, GenericParams], _grid_mark]


def grid_item_type(tp: Any) -> Any | None:
    """For a ``GridSearch[T]`` type (a union with :class:`GenericParams`), ``T``; else None."""
    args = _union_members(tp)
    if GenericParams not in args:
        return None
    others = tuple(arg for arg in args if arg is not GenericParams)
    if not others:
        return None
    return others[0] if len(others) == 1 else Union[others]


def _union_members(tp: Any) -> tuple[Any, ...]:
    """The members of a union, ``Annotated`` removed and nested unions flattened
    (``Optional[GridSearch[int]]`` is ``int | GenericParams | None``)."""
    if typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    origin = typing.get_origin(tp)
    if not (origin is Union or (hasattr(types, "UnionType") and origin is types.UnionType)):
        return (tp,)
    members: list[Any] = []
    for arg in typing.get_args(tp):
        members.extend(member for member in _union_members(arg) if member not in members)
    return tuple(members)


def _convert(value: Any, tp: Any, parts: Sequence[str]) -> Any:
    """``value`` converted to ``tp``; a problem names the key path."""
    if tp is Any:
        return value
    try:
        return convert(value, tp)
    except ConversionError as exc:
        raise GridSearchError(exc.problem, (*parts, *exc.parts)) from None


# --- walking configurations ------------------------------------------------------------------------


def _fields(obj: Any) -> list[str]:
    """The init fields of a configuration object (empty for anything else)."""
    if not dataclasses.is_dataclass(obj) or isinstance(obj, (type, GenericParams)):
        return []
    return [field.name for field in dataclasses.fields(obj) if field.init]


def _field_type(owner: Any, name: str) -> Any:
    """The type of one value: ``T`` for a ``GridSearch[T]`` field, else the field's type."""
    try:
        hints = typing.get_type_hints(type(owner))
    except Exception:  # an annotation that does not resolve: values are left as they are
        return Any
    tp = hints.get(name, Any)
    item = grid_item_type(tp)
    return tp if item is None else item


def _resolve(cfg: Any, path: str, parts: Sequence[str]) -> tuple[Any, str]:
    """The object holding the field a dotted ``path`` names, and the field's name.

    Raises:
        GridSearchError: a key of the path is not a field of its configuration.
    """
    keys = path.split(".")
    owner = cfg
    # The mapping that holds the key is named, as for any unknown key.
    mapping = tuple(parts)[:-1]
    for depth, key in enumerate(keys):
        fields = _fields(owner)
        where = ".".join(keys[:depth])
        if not fields:
            why = f"{where} is None (give {where} a value)" if owner is None else f"{where} is not a configuration"
            raise GridSearchError(f"cannot search {path!r}: {why}", mapping)
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            prefix = f"{where}." if where else ""
            hint = f"did you mean {prefix + close[0]!r}? " if close else ""
            of = f" of {where}" if where else ""
            raise GridSearchError(f"unknown key {path!r} ({hint}known keys{of}: {', '.join(sorted(fields))})", mapping)
        if depth < len(keys) - 1:
            owner = getattr(owner, key)
    return owner, keys[-1]


def _set(cfg: Any, path: str, value: Any) -> None:
    owner, name = _resolve(cfg, path, ())
    setattr(owner, name, value)


def discover_grid_params(obj: Any, prefix: str = "") -> dict[str, GenericParams]:
    """The fields (by dotted path) that hold more than one value to search, in field order."""
    found: dict[str, GenericParams] = {}
    for name in _fields(obj):
        value = getattr(obj, name)
        path = f"{prefix}.{name}" if prefix else name
        if isinstance(value, GenericParams):
            if value.is_grid:
                found[path] = value
        else:
            found.update(discover_grid_params(value, path))
    return found


def _finalize(obj: Any, prefix: tuple[str, ...] = ()) -> None:
    """Replaces the ``GenericParams`` left with one value by that value, at any depth."""
    for name in _fields(obj):
        value = getattr(obj, name)
        if isinstance(value, GenericParams) and not value.is_grid:
            setattr(obj, name, _convert(value.as_list()[0], _field_type(obj, name), (*prefix, name)))
        else:
            _finalize(value, (*prefix, name))


# --- the search ---------------------------------------------------------------------------------


@dataclasses.dataclass
class _Search:
    """What a configuration asks to search, its values converted.

    Attributes:
        options: for each dotted path, the values it takes.
        dicts: the ``config_dicts`` combinations (values that go together), or None.
    """

    options: dict[str, list[Any]]
    dicts: list[dict[str, Any]] | None


def _search(cfg: Any) -> _Search:
    """Reads the search: inline ``GridSearch`` fields, then the ``grid_search`` block.

    Raises:
        GridSearchError: naming the key of the configuration.
    """
    params: dict[str, tuple[GenericParams, tuple[str, ...]]] = {
        path: (params, tuple(path.split("."))) for path, params in discover_grid_params(cfg).items()
    }
    block = dict(getattr(cfg, _BLOCK, None) or {})
    raw_dicts = block.pop(_DICTS, None)
    for path, raw in block.items():
        parts: tuple[str, ...] = (_BLOCK, str(path))
        owner, name = _resolve(cfg, str(path), parts)
        params[str(path)] = (GenericParams.from_any(raw, _field_type(owner, name), parts=parts), parts)

    options: dict[str, list[Any]] = {}
    for path, (param, parts) in params.items():
        owner, name = _resolve(cfg, path, parts)
        try:
            values = param.as_list()
        except GridSearchError as exc:
            raise GridSearchError(exc.problem, parts) from None
        options[path] = _convert(values, list[_field_type(owner, name)], parts)  # type: ignore[misc]

    dicts = None if raw_dicts is None else _config_dicts(cfg, raw_dicts, options, set(block))
    for key in dicts[0] if dicts else ():
        options.pop(key, None)
    return _Search(options=options, dicts=dicts)


def _config_dicts(cfg: Any, raw: Any, options: dict[str, list[Any]], explicit: set[str]) -> list[dict[str, Any]]:
    """Checks ``config_dicts`` (a list of mappings with the same keys) and converts its values."""
    parts = (_BLOCK, _DICTS)
    if isinstance(raw, GenericParams):
        raw = raw.as_list()
    if not isinstance(raw, list):
        raise GridSearchError(f"expected a list of mappings, got {show_value(raw)}", parts)
    if not raw:
        raise GridSearchError("expected a list of mappings, got an empty list", parts)
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise GridSearchError(f"expected a mapping, got {show_value(item)}", (*parts, f"[{index}]"))
        if not item:
            raise GridSearchError("an empty mapping sets no value", (*parts, f"[{index}]"))
    keys = [str(key) for key in raw[0]]
    for index, item in enumerate(raw[1:], start=1):
        missing = sorted(set(keys) - set(map(str, item)))
        extra = sorted(set(map(str, item)) - set(keys))
        if missing or extra:
            diff = "; ".join(
                f"{what}: {', '.join(names)}" for what, names in (("missing", missing), ("extra", extra)) if names
            )
            raise GridSearchError(f"every mapping must have the keys of the first one ({diff})", (*parts, f"[{index}]"))
    searched = {path for path, values in options.items() if len(values) > 1} | explicit
    both = sorted(set(keys) & searched)
    if both:
        raise GridSearchError(f"{', '.join(both)}: searched both here and on its own; give it in one place", parts)
    converted = []
    for index, item in enumerate(raw):
        values = {}
        for key, value in item.items():
            where = (*parts, f"[{index}]", str(key))
            owner, name = _resolve(cfg, str(key), where)
            values[str(key)] = _convert(value, _field_type(owner, name), where)
        converted.append(values)
    return converted


def check_grid(cfg: Any) -> None:
    """Checks the grid search of a configuration without expanding it.

    Raises:
        GridSearchError: an unknown key, a value of the wrong type, a bad ``config_dicts``.
    """
    _search(cfg)


def generate_grid(cfg: Any) -> tuple[list[Any], list[dict[str, Any]]]:
    """Every combination of the values a configuration searches.

    Returns:
        The configurations (copies of ``cfg``, each field holding one value, and
        ``grid_search`` emptied) and, for each, the values that vary from one
        combination to another, by dotted path (``{"lr": 0.1, "model.layers": 2}``).

    Raises:
        GridSearchError: naming the key of the configuration.
    """
    search = _search(cfg)
    if not search.options and not search.dicts:
        single = copy.deepcopy(cfg)
        _finalize(single)
        return [single], [{}]

    dicts = search.dicts or [{}]
    varying = {key for key in dicts[0] if any(item[key] != dicts[0][key] for item in dicts[1:])}
    base = copy.deepcopy(cfg)
    if hasattr(base, _BLOCK):
        setattr(base, _BLOCK, {})

    configurations, tags = [], []
    paths = list(search.options)
    for combination, values in itertools.product(itertools.product(*search.options.values()), dicts):
        config = copy.deepcopy(base)
        tag: dict[str, Any] = {}
        for path, value in zip(paths, combination):
            if len(search.options[path]) > 1:
                tag[path] = value
            _set(config, path, value)
        for path, value in values.items():
            if path in varying:
                tag[path] = value
            _set(config, path, value)
        _finalize(config)
        configurations.append(config)
        tags.append(tag)
    return configurations, tags
