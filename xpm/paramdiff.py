"""Why two jobs have different identifiers: the parameter paths whose values differ.

Works on ``params.json`` bytes alone (``spec/params.md``), without importing any
class, so that it also explains jobs whose code has changed or is gone since.
The walk follows the identifier's structure (``spec/identifiers.md``): type id,
producing task, fields, init tasks.
"""

from __future__ import annotations

import math
from typing import Any, Hashable, NamedTuple

import msgspec

from xpm.codec import decode_params
from xpm.errors import SerializationError
from xpm.schema import ObjectRecord, ParamsFile

__all__ = ["Difference", "difference", "format_difference", "NOT_SET", "SAME_VALUES_NOTE"]

#: How :func:`format_difference` shows a value that one of the files does not have
NOT_SET = "(not set)"
#: Appended to an ``@identifier`` line: a configuration whose recorded values are all equal
SAME_VALUES_NOTE = (
    "the recorded values are the same, so the class changed how they enter the identifier "
    "(a default, ignore_default, Meta or Param) between the two jobs"
)

_encoder = msgspec.json.Encoder()
_KINDS = frozenset({"config", "float", "tuple", "dict", "set", "enum", "path", "generated"})
#: A value that one file does not have (``None`` is JSON null, a value)
_MISSING: Any = object()


class Difference(NamedTuple):
    """A parameter path whose value differs between two saved configurations.

    ``path`` reads like Python access from the root task: ``model.hidden``,
    ``layers[2]``, ``options["lr"]``; ``@type`` (the root's type id), ``x.@task``
    (the task that produced ``x``), ``x.@init_tasks[0]``, and ``x.@identifier``
    for a configuration whose identifiers differ although every recorded value
    is equal (see :data:`SAME_VALUES_NOTE`).
    """

    path: str
    #: the display text of the value in the first file; None when it is not set there
    left: str | None
    right: str | None


def difference(left: bytes, right: bytes, left_source: str, right_source: str) -> list[Difference]:
    """The values that differ between two ``params.json`` (or ``xpm.json``) files.

    Configurations with equal recorded identifiers are equal (the identifier
    covers their content) and are not walked into; configurations of different
    types give one difference, their type ids as ``<typeid>``. ``Meta`` and path
    values are compared too (the file does not say which parameters enter the
    identifier), but only inside configurations whose identifiers differ.

    Args:
        left: the content of the first file.
        right: the content of the second file.
        left_source: the name of the first file, for error messages.
        right_source: the name of the second file.

    Returns:
        The differences depth-first: at each configuration its producing task,
        then its fields by sorted name, then its init tasks; list items by index,
        dict entries in the first file's order then the second's. Empty when the
        two roots have the same identifier.

    Raises:
        FormatVersionError: a file was written by a newer format version.
        SerializationError: a file is not a valid parameters file (the message
            names it).
    """
    walker = _Walker(_File.decode(left, left_source), _File.decode(right, right_source))
    walker.value("", walker.left.content.root, walker.right.content.root)
    return walker.out


def format_difference(d: Difference) -> str:
    """One line for a difference: ``model.hidden: 64 -> 128``; ``(not set)`` for a missing value."""
    left = NOT_SET if d.left is None else d.left
    right = NOT_SET if d.right is None else d.right
    line = f"{d.path}: {left} -> {right}"
    if d.path == "@identifier" or d.path.endswith(".@identifier"):
        line += f" ({SAME_VALUES_NOTE})"
    return line


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _text(value: Any) -> str:
    """A file-provided string shown bare, unless that would break the line (then as JSON)."""
    if isinstance(value, str) and value.isprintable():
        return value
    return _encoder.encode(value).decode()


class _File:
    """One decoded parameters file: its objects by id, and how to read its values."""

    def __init__(self, content: ParamsFile, source: str):
        self.content = content
        self.source = source
        self.objects: dict[int, ObjectRecord] = {}
        for record in content.objects:
            if record.id in self.objects:
                raise self.fail(f"two objects with the id {record.id}")
            self.objects[record.id] = record
        # Refuse a damaged file whole, not only where the two files happen to differ.
        for record in content.objects:
            for raw in (*record.fields.values(), *record.tags.values()):
                self.canon(raw)
            for rid in (record.task, *record.init_tasks):
                if rid is not None:
                    self.record(rid)
        self.canon(content.root)

    @classmethod
    def decode(cls, data: bytes, source: str) -> _File:
        # Not xpm.serialize.loads: rebuilding configurations would import the user's classes.
        return cls(decode_params(data, source), source)

    def fail(self, message: str) -> SerializationError:
        return SerializationError(message, self.source)

    def record(self, rid: Any) -> ObjectRecord:
        try:
            return self.objects[rid]
        except (KeyError, TypeError):
            raise self.fail(f"reference to an unknown object {rid!r}") from None

    def kind(self, raw: Any) -> str:
        """``scalar``, ``list``, or the ``$`` kind of an encoded value."""
        if isinstance(raw, list):
            return "list"
        if isinstance(raw, dict):
            kind = raw.get("$")
            if kind not in _KINDS:
                raise self.fail(f"unknown value kind {kind!r}")
            return str(kind)
        return "scalar"

    def part(self, raw: dict[str, Any], key: str, kind: str) -> Any:
        try:
            return raw[key]
        except KeyError:
            raise self.fail(f"malformed {kind} value {raw!r} (no {key!r})") from None

    def items(self, raw: dict[str, Any], kind: str) -> list[Any]:
        items = self.part(raw, "items", kind)
        if not isinstance(items, list):
            raise self.fail(f"malformed {kind} value {raw!r} (items is not a list)")
        return items

    def entries(self, raw: dict[str, Any]) -> list[tuple[Any, Any]]:
        entries = self.items(raw, "dict")
        if not all(isinstance(e, list) and len(e) == 2 for e in entries):
            raise self.fail(f"malformed dict value {raw!r} (an entry is not a [key, value] pair)")
        return [(k, v) for k, v in entries]

    def canon(self, raw: Any) -> Hashable:
        """A comparable form of a value: equal exactly when the values enter the identifier alike.

        Kinds never mix (``1`` is not ``1.0`` nor ``true``); configurations
        compare by their recorded identifier, since ids differ between files.
        """
        kind = self.kind(raw)
        if kind == "scalar":
            # -0.0 enters identifiers as 0.0
            return (type(raw).__name__, raw + 0.0 if type(raw) is float else raw)
        if kind == "list":
            return ("list", tuple(self.canon(x) for x in raw))
        if kind == "tuple":
            return ("tuple", tuple(self.canon(x) for x in self.items(raw, kind)))
        if kind == "set":
            # sorted by repr: elements of mixed kinds do not compare with each other
            return ("set", tuple(sorted((self.canon(x) for x in self.items(raw, kind)), key=repr)))
        if kind == "dict":
            pairs = ((self.canon(k), self.canon(v)) for k, v in self.entries(raw))
            return ("dict", tuple(sorted(pairs, key=repr)))
        if kind == "config":
            return ("config", self.record(self.part(raw, "id", kind)).identifier)
        if kind == "enum":
            return ("enum", self.part(raw, "type", kind), self.part(raw, "name", kind))
        return (kind, self.part(raw, "value", kind), raw.get("base"))

    def display(self, raw: Any) -> str:
        """Compact text of a value: JSON scalars, ``Color.RED``, ``{1, 2}``, ``<typeid>``..."""
        kind = self.kind(raw)
        if kind == "scalar":
            return _encoder.encode(raw).decode()
        if kind == "list":
            return "[" + ", ".join(self.display(x) for x in raw) + "]"
        if kind == "tuple":
            items = [self.display(x) for x in self.items(raw, kind)]
            return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
        if kind == "set":
            items = [self.display(x) for x in self.items(raw, kind)]
            return "{" + ", ".join(items) + "}" if items else "set()"
        if kind == "dict":
            return "{" + ", ".join(f"{self.display(k)}: {self.display(v)}" for k, v in self.entries(raw)) + "}"
        if kind == "config":
            return f"<{self.record(self.part(raw, 'id', kind)).typeid}>"
        if kind == "enum":
            cls = str(self.part(raw, "type", kind))
            return _text(f"{cls.rpartition(':')[2]}.{self.part(raw, 'name', kind)}")
        return _text(self.part(raw, "value", kind))


class _Walker:
    """Walks two trees of values in parallel and collects their differences in ``out``."""

    def __init__(self, left: _File, right: _File):
        self.left = left
        self.right = right
        self.out: list[Difference] = []
        #: pairs of configurations being compared (object ids), with their depth
        self.on_path: dict[tuple[int, int], int] = {}
        #: the smallest depth of an ``on_path`` pair met again below (a cycle)
        self.cycle_depth: float = math.inf
        #: differences of pairs already compared, and the path they were found at
        self.done: dict[tuple[int, int], tuple[str, list[Difference]]] = {}

    def report(self, path: str, left: Any, right: Any) -> None:
        """Records a difference between two raw values, either of which may be ``_MISSING``."""
        shown_left = None if left is _MISSING else self.left.display(left)
        shown_right = None if right is _MISSING else self.right.display(right)
        if shown_left == shown_right:
            # Different kinds that display alike (a job path and a generated
            # path): show the encoded values so that the difference is visible.
            shown_left = _encoder.encode(left).decode()
            shown_right = _encoder.encode(right).decode()
        self.out.append(Difference(path or "@root", shown_left, shown_right))

    def value(self, path: str, left: Any, right: Any) -> None:
        kind = self.left.kind(left)
        if kind != self.right.kind(right):
            self.report(path, left, right)
        elif kind == "config":
            self.config(path, self.left.part(left, "id", kind), self.right.part(right, "id", kind))
        elif kind == "list":
            self.sequence(path, left, right)
        elif kind == "tuple":
            self.sequence(path, self.left.items(left, kind), self.right.items(right, kind))
        elif kind == "dict":
            self.mapping(path, left, right)
        elif self.left.canon(left) != self.right.canon(right):
            self.report(path, left, right)

    def sequence(self, path: str, left: list[Any], right: list[Any]) -> None:
        for i in range(max(len(left), len(right))):
            if i >= len(right):
                self.report(f"{path}[{i}]", left[i], _MISSING)
            elif i >= len(left):
                self.report(f"{path}[{i}]", _MISSING, right[i])
            else:
                self.value(f"{path}[{i}]", left[i], right[i])

    def mapping(self, path: str, left: dict[str, Any], right: dict[str, Any]) -> None:
        # Keys match by value (a config key by its identifier), not by position.
        theirs = {self.right.canon(k): (k, v) for k, v in self.right.entries(right)}
        for key, value in self.left.entries(left):
            sub = f"{path}[{self.left.display(key)}]"
            match = theirs.pop(self.left.canon(key), None)
            if match is None:
                self.report(sub, value, _MISSING)
            else:
                self.value(sub, value, match[1])
        for key, value in theirs.values():
            self.report(f"{path}[{self.right.display(key)}]", _MISSING, value)

    def config(self, path: str, lid: Any, rid: Any) -> None:
        left, right = self.left.record(lid), self.right.record(rid)
        if left.identifier == right.identifier:
            return  # the identifier covers the whole content
        if left.typeid != right.typeid:
            self.out.append(Difference(path or "@type", f"<{left.typeid}>", f"<{right.typeid}>"))
            return
        pair = (left.id, right.id)
        depth = self.on_path.get(pair)
        if depth is not None:
            # A cycle: this pair is being compared further up, which reports its differences.
            self.cycle_depth = min(self.cycle_depth, depth)
            return
        if pair in self.done:
            # A configuration used at several places: its differences show at each of them.
            before, found = self.done[pair]
            self.out.extend(d._replace(path=path + d.path[len(before) :]) for d in found)
            return
        depth = self.on_path[pair] = len(self.on_path)
        outer, self.cycle_depth = self.cycle_depth, math.inf
        start = len(self.out)
        self.fields(path, left, right)
        del self.on_path[pair]
        inner, self.cycle_depth = self.cycle_depth, min(outer, self.cycle_depth)
        if inner < depth:
            return  # cut by a cycle through an ancestor: what it found depends on the path
        if len(self.out) == start:
            self.out.append(Difference(_join(path, "@identifier"), left.identifier, right.identifier))
        self.done[pair] = (path, self.out[start:])

    def fields(self, path: str, left: ObjectRecord, right: ObjectRecord) -> None:
        """Compares two configurations of the same type, in the order their identifiers read them."""
        where = _join(path, "@task")
        if left.task is not None and right.task is not None:
            self.config(where, left.task, right.task)
        elif left.task is not None or right.task is not None:
            self.out.append(Difference(where, self.task(self.left, left.task), self.task(self.right, right.task)))
        for name in sorted(left.fields.keys() | right.fields.keys()):
            sub = _join(path, name)
            if name not in right.fields:
                self.report(sub, left.fields[name], _MISSING)
            elif name not in left.fields:
                self.report(sub, _MISSING, right.fields[name])
            else:
                self.value(sub, left.fields[name], right.fields[name])
        where = _join(path, "@init_tasks")
        for i in range(max(len(left.init_tasks), len(right.init_tasks))):
            if i >= len(right.init_tasks):
                self.out.append(Difference(f"{where}[{i}]", self.task(self.left, left.init_tasks[i]), None))
            elif i >= len(left.init_tasks):
                self.out.append(Difference(f"{where}[{i}]", None, self.task(self.right, right.init_tasks[i])))
            else:
                self.config(f"{where}[{i}]", left.init_tasks[i], right.init_tasks[i])

    @staticmethod
    def task(file: _File, rid: int | None) -> str | None:
        return None if rid is None else f"<{file.record(rid).typeid}>"
