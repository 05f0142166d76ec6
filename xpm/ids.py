"""Configuration identifiers: blake3 over xpm's canonical encoding.

This module is the reference implementation of ``spec/identifiers.md``; the two
must change together, with ``spec/vectors/identifiers.json``. Pure: no I/O.

Every value is written with a one-byte kind tag, and every variable-length part
(strings, integers, containers) with its length, so that no two different values
share an encoding ("1" vs 1, 1 vs 1.0, [1, 2] vs [[1], 2], field orders...).
"""

from __future__ import annotations

import enum
import struct
from typing import Any

from blake3 import blake3

from xpm.config.base import ConfigInfo, ConfigMixin
from xpm.config.classinfo import Argument, ClassInfo
from xpm.config.fields import _MISSING
from xpm.errors import IdentifierError

__all__ = ["identifier", "digest", "DOMAIN"]

#: Prefix of every configuration preimage; changes if the encoding ever changes.
DOMAIN = b"xpm/identifier/v1\x00"

_pack_double = struct.Struct(">d").pack
_NAN = b"\x7f\xf8\x00\x00\x00\x00\x00\x00"
# Plan modes of a hashed argument
_ALWAYS, _UNLESS_DEFAULT = 0, 1


def _u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


def _str_body(text: str) -> bytes:
    data = text.encode("utf-8")
    return _u64(len(data)) + data


def identifier(config: Any) -> str:
    """The identifier of a configuration: 64 lowercase hex characters."""
    return digest(config).hex()


def digest(config: Any) -> bytes:
    """The 32-byte blake3 digest of a configuration's canonical encoding."""
    if not isinstance(config, ConfigMixin):
        raise IdentifierError(f"identifier() takes a configuration, got {type(config).__name__}")
    return _Encoder().config_digest(config.__xpm__, 0)[0]


class _Plan:
    """Per-class precomputation: the hashed arguments, sorted by name."""

    __slots__ = ("typeid", "fields")

    def __init__(self, xpmtype: ClassInfo):
        self.typeid = b"S" + _str_body(xpmtype.identifier)
        fields = []
        # Python sorts str by code point, which is also the order of their
        # UTF-8 bytes: the spec's order.
        for name in sorted(xpmtype.arguments):
            arg = xpmtype.arguments[name]
            if not arg.hashed:
                continue
            compare = arg.ignore_default and arg.has_default and not arg.is_constant
            fields.append((name, b"S" + _str_body(name), arg, compare, arg.required, arg.has_default))
        self.fields = fields


class _Encoder:
    """One identifier computation: tracks the configurations being encoded (cycles)."""

    __slots__ = ("stack", "positions")

    def __init__(self) -> None:
        self.stack: list[ConfigInfo] = []
        self.positions: dict[int, int] = {}

    def config_digest(self, info: ConfigInfo, depth: int) -> tuple[bytes, int]:
        """Returns (digest, lowest stack position referenced by a cycle inside)."""
        if info.digest is not None:
            return info.digest, depth
        xpmtype = info.xpmtype
        plan: _Plan | None = xpmtype.id_plan
        if plan is None:
            plan = xpmtype.id_plan = _Plan(xpmtype)
        key = id(info)
        if key in self.positions:  # reached again through a producer or init task link
            raise IdentifierError("a cycle through a task output or an init task", xpmtype.name)
        self.positions[key] = depth
        self.stack.append(info)
        lowest = depth + 1  # no back-reference seen yet
        try:
            out = bytearray(DOMAIN)
            out += plan.typeid
            task = info.task
            if task is not None and task is not info.config:
                if id(task.__xpm__) in self.positions:
                    raise IdentifierError(
                        "a task output cannot be part of the parameters of the task that produces it",
                        xpmtype.name,
                    )
                d, low = self.config_digest(task.__xpm__, depth + 1)
                lowest = min(lowest, low)
                out += b"\x01"
                out += d
            else:
                out += b"\x00"
            fields = bytearray()
            count = 0
            values = info.config.__dict__
            for name, encoded_name, arg, compare, required, has_default in plan.fields:
                value = values.get(name, _MISSING)
                if value is _MISSING:
                    if required:
                        raise IdentifierError("the parameter is required but has no value", f"{xpmtype.name}.{name}")
                    continue
                if value is None and not has_default:
                    continue  # an optional parameter left at None
                start = len(fields)
                fields += encoded_name
                value_start = len(fields)
                try:
                    low = self.value(value, fields, depth)
                except IdentifierError as exc:
                    if exc.path:
                        raise
                    raise IdentifierError(str(exc), f"{xpmtype.name}.{name}") from None
                lowest = min(lowest, low)
                if compare:
                    if fields[value_start:] == _default_encoding(arg):
                        del fields[start:]
                        continue
                count += 1
            out += _u64(count)
            out += fields
            init_tasks = info.init_tasks
            out += _u64(len(init_tasks))
            for init in init_tasks:
                if id(init.__xpm__) in self.positions:
                    raise IdentifierError("an init task cannot contain the task it initialises", xpmtype.name)
                d, low = self.config_digest(init.__xpm__, depth + 1)
                lowest = min(lowest, low)
                out += d
            result = blake3(out).digest()
        finally:
            self.stack.pop()
            del self.positions[key]
        # The encoding of a configuration that is part of a cycle depends on
        # where the computation started: only digests of sealed configurations
        # whose subtree has no cycle through them or above them are cached.
        if info.sealed and lowest > depth:
            info.digest = result
        return result, lowest

    def value(self, v: Any, out: bytearray, depth: int) -> int:
        """Appends the encoding of ``v``; returns the lowest cycle position referenced."""
        t = type(v)
        if t is str:
            data = v.encode("utf-8")
            out += b"S"
            out += _u64(len(data))
            out += data
        elif t is int:
            data = str(v).encode("ascii")
            out += b"I"
            out += _u64(len(data))
            out += data
        elif t is float:
            out += b"F"
            out += _double(v)
        elif t is bool:
            out += b"B\x01" if v else b"B\x00"
        elif v is None:
            out += b"N"
        elif isinstance(v, ConfigMixin):
            info = v.__xpm__
            position = self.positions.get(id(info))
            if position is not None:
                out += b"R"
                out += _u64(depth - position)
                return position
            d, low = self.config_digest(info, depth + 1)
            out += b"C"
            out += d
            return low
        elif isinstance(v, enum.Enum):
            cls = type(v)
            out += b"E"
            out += _str_body(f"{cls.__module__}.{cls.__qualname__}")
            out += _str_body(v.name)
        elif t is list or t is tuple:
            out += b"L" if t is list else b"T"
            out += _u64(len(v))
            lowest = depth + 1
            for item in v:
                lowest = min(lowest, self.value(item, out, depth))
            return lowest
        elif t is dict:
            return self._dict(v, out, depth)
        elif t is set or t is frozenset:
            return self._set(v, out, depth)
        elif isinstance(v, bool):
            return self.value(bool(v), out, depth)
        elif isinstance(v, int):
            return self.value(int(v), out, depth)
        elif isinstance(v, float):
            return self.value(float(v), out, depth)
        elif isinstance(v, str):
            return self.value(str(v), out, depth)
        else:
            from pathlib import PurePath

            hint = "; declare the parameter with a Path type or as Meta" if isinstance(v, PurePath) else ""
            raise IdentifierError(f"a value of type {t.__name__} cannot enter an identifier{hint}")
        return depth + 1

    def _dict(self, v: dict, out: bytearray, depth: int) -> int:
        lowest = depth + 1
        items = []
        for key, item in v.items():
            encoded_key = bytearray()
            lowest = min(lowest, self.value(key, encoded_key, depth))
            items.append((bytes(encoded_key), item))
        items.sort(key=lambda pair: pair[0])
        out += b"D"
        out += _u64(len(items))
        previous = None
        for encoded_key, item in items:
            if encoded_key == previous:
                raise IdentifierError("a dictionary has two keys with the same encoding")
            previous = encoded_key
            out += encoded_key
            lowest = min(lowest, self.value(item, out, depth))
        return lowest

    def _set(self, v: set | frozenset, out: bytearray, depth: int) -> int:
        lowest = depth + 1
        encoded = []
        for item in v:
            buf = bytearray()
            lowest = min(lowest, self.value(item, buf, depth))
            encoded.append(bytes(buf))
        encoded.sort()
        out += b"X"
        out += _u64(len(encoded))
        for item in encoded:
            out += item
        return lowest


def _double(v: float) -> bytes:
    if v != v:
        return _NAN
    if v == 0.0:
        v = 0.0  # -0.0 == 0.0 in Python: one encoding for both
    return _pack_double(v)


def _default_encoding(arg: Argument) -> bytes:
    """The encoding of an argument's default (cached on the argument)."""
    if arg.default_encoding is None:
        buf = bytearray()
        _Encoder().value(arg.default, buf, 0)
        arg.default_encoding = bytes(buf)
    return arg.default_encoding
