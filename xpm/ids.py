"""Configuration identifiers: blake3 over xpm's canonical encoding.

This module is the reference implementation of ``spec/identifiers.md``; the two
must change together, with ``spec/vectors/identifiers.json``. Pure: no I/O.

Every value is written with a one-byte kind tag, and every variable-length part
(strings, integers, containers) with its length, so that no two different values
share an encoding ("1" vs 1, 1 vs 1.0, [1, 2] vs [[1], 2], field orders...).

Speed: computing identifiers is on the path of every submitted job, so the
encoder is written for CPython's interpreter rather than for brevity. What the
class of a configuration fixes is computed once per class (:class:`_Plan`): its
preimage heads, and an encoder generated as Python source and unrolled over its
sorted fields (:mod:`xpm.ids_codegen`), in which the common values (str, int,
float, nested configuration, lists of numbers and strings) are encoded inline and
the preimage is one ``join`` of the pieces; anything else goes to the general
encoder (:meth:`_Encoder.value`). Lengths below :data:`_SMALL` come from
precomputed tables; a configuration met twice in one computation is encoded once
when its digest cannot depend on the place (see :class:`_Encoder`); encoders and
their blake3 hashers are reused, since making a hasher costs more than hashing a
preimage. Each shortcut produces exactly the bytes of the general path: the
vectors and ``tests/unit/test_ids_speed_paths.py`` check it.
"""

from __future__ import annotations

import enum
import struct
from typing import Any

from blake3 import blake3

from xpm.config.base import ConfigInfo, ConfigMixin, InstanceConfig
from xpm.config.classinfo import Argument, ClassInfo
from xpm.config.fields import _MISSING
from xpm.config.types import ConfigType, ListType, TupleType
from xpm.errors import IdentifierError
from xpm.ids_codegen import FieldSpec, compile_encoder, compile_sequence_encoder

__all__ = ["identifier", "digest", "partial_identifier", "raw_identifier", "holds_deprecated", "DOMAIN"]

#: Prefix of every configuration preimage; changes if the encoding ever changes.
DOMAIN = b"xpm/identifier/v1\x00"
#: Prefix of the preimage of a partial identifier (before the partial's name and a configuration preimage)
PARTIAL_DOMAIN = b"xpm/partial/v1\x00"
#: Prefix of the digest of a second (third...) distinct instance of an InstanceConfig in one tree
INSTANCE_DOMAIN = b"xpm/instance/v1\x00"

#: 'F' ‖ binary64 in one call (the tag is passed as a 1-byte bytes). Callers add 0.0
#: to the float first, which turns -0.0 into 0.0 and leaves every other float as it is.
_pack_tagged_double = struct.Struct(">cd").pack
#: the encoding of every NaN
_TAGGED_NAN = b"F\x7f\xf8\x00\x00\x00\x00\x00\x00"

#: Lengths and counts below this come from the tables below (no int.to_bytes call)
_SMALL = 256
#: u64(n) for n < _SMALL
_U64 = tuple(n.to_bytes(8, "big") for n in range(_SMALL))
#: 'S' ‖ u64(n) and 'I' ‖ u64(n): the head of a string or of an integer's decimal text of n bytes
_STR_HEAD = tuple(b"S" + u for u in _U64)
_INT_HEAD = tuple(b"I" + u for u in _U64)
#: The whole encoding of the ints in [0, _SMALL): most integer parameters (sizes, seeds, counts)
_SMALL_INT = tuple(b"I" + _U64[len(str(n))] + str(n).encode("ascii") for n in range(_SMALL))
#: 'L' ‖ u64(n) and 'T' ‖ u64(n) for short lists and tuples
_LIST_HEAD = tuple(b"L" + u for u in _U64)
_TUPLE_HEAD = tuple(b"T" + u for u in _U64)
#: The blake3 class; ``blake3`` is the name the vectors generator replaces
_BLAKE3 = blake3
#: Encoders ready for use, each with a reset hasher: making a hasher costs more than hashing
#: a preimage. One per computation at a time, so as many as threads have computed identifiers at once.
_ENCODERS: list[_Encoder] = []
#: A stack position above any real one: "no back-reference seen" (see _Encoder.low)
_NO_REFERENCE = 1 << 62


def _u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


def _str_body(text: str) -> bytes:
    data = text.encode("utf-8")
    return _u64(len(data)) + data


def _hash_once(data: bytes) -> bytes:
    # ``blake3`` looked up at each call: the vectors generator replaces it
    return blake3(data).digest()  # type: ignore[no-any-return]


def identifier(config: Any) -> str:
    """The identifier of a configuration: 64 lowercase hex characters."""
    return digest(config).hex()


def digest(config: Any) -> bytes:
    """The 32-byte blake3 digest of a configuration's canonical encoding."""
    if not isinstance(config, ConfigMixin):
        raise IdentifierError(f"identifier() takes a configuration, got {type(config).__name__}")
    info = config.__xpm__
    # A sealed configuration's digest is cached (see _Encoder.config_digest).
    cached = info.digest
    if cached is not None:
        return cached
    if blake3 is not _BLAKE3:
        # replaced (scripts/gen_identifier_vectors.py records the preimages): called for each
        return _Encoder(None).config_digest(info, 0)
    try:
        encoder = _ENCODERS.pop()
    except IndexError:
        encoder = _Encoder(_BLAKE3())
    plan = info.xpmtype.id_plan
    encode = None if plan is None else plan.encode
    result = encoder.config_digest(info, 0) if encode is None else encode(encoder, info, 0)
    # Not returned after an error: its hasher may hold a partial input.
    encoder.positions.clear()
    encoder.low = _NO_REFERENCE
    encoder.instances = None
    _ENCODERS.append(encoder)
    return result


class _Plan:
    """Per-class precomputation: the preimage's heads and the class's generated encoder.

    ``run(encoder, info, depth)`` is the encoder generated for the class
    (:mod:`xpm.ids_codegen`), unrolled over its hashed arguments sorted by name;
    ``encode`` is the same function when the class's identifier is its own (not
    that of a deprecated class's ``__convert__()`` result), None otherwise.
    """

    __slots__ = ("convert", "instance", "run", "encode", "partials")

    def __init__(self, xpmtype: ClassInfo, prefix: bytes = b"", excluded: frozenset[str] = frozenset()):
        typeid = b"S" + _str_body(xpmtype.identifier)
        #: a deprecated class whose identifier is that of ``__convert__()``'s result
        self.convert = xpmtype.deprecated and hasattr(xpmtype.cls, "__convert__")
        #: an InstanceConfig: distinct objects with the same values are told apart
        self.instance = issubclass(xpmtype.cls, InstanceConfig)
        fields = []
        # Python sorts str by code point, which is also the order of their
        # UTF-8 bytes: the spec's order.
        for name in sorted(xpmtype.arguments):
            arg = xpmtype.arguments[name]
            if not arg.hashed or name in excluded:
                continue
            vtype = arg.vtype
            exact = vtype.exact
            if exact in (str, int, float):
                first = exact.__name__
            elif isinstance(vtype, ConfigType):
                first = "config"
            elif isinstance(vtype, (ListType, TupleType)):
                first = "sequence"
            else:
                first = ""
            fields.append(
                FieldSpec(
                    name=name,
                    encoded_name=b"S" + _str_body(name),
                    path=f"{xpmtype.name}.{name}",
                    required=bool(arg.required),
                    none_enters=bool(arg.has_default),
                    may_hold_meta=bool(vtype.holds_configs),
                    compare=arg if arg.ignore_default and arg.has_default and not arg.is_constant else None,
                    first=first,
                )
            )
        # DOMAIN ‖ type id ‖ producer 0x00 ‖ u64(count of fields), for each count (after
        # ``prefix``, for partial identifiers); a task output has the producing task's digest
        # after 0x01 instead
        start = prefix + DOMAIN + typeid
        heads = tuple(start + b"\x00" + _u64(count) for count in range(len(fields) + 1))
        self.run = compile_encoder(
            xpmtype.name,
            tuple(fields),
            instance=self.instance,
            cacheable=not prefix and not excluded,
            heads=heads,
            output_head=start + b"\x01",
            namespace=_NAMESPACE,
        )
        self.encode = None if self.convert else self.run
        #: the plans of the class's partial identifiers, by (prefix, excluded)
        self.partials: dict[tuple[bytes, frozenset[str]], _Plan] = {}


class _Encoder:
    """One identifier computation: the configurations on the current path, and back-references.

    ``positions`` maps the ``info`` of each configuration on the current path to
    its depth (an int). Once a configuration is done, its entry becomes its
    digest (bytes) when that digest does not depend on the path (no
    back-reference inside points at it or above it), so that the same object met
    again in this computation is not encoded twice; otherwise it is removed.
    (ConfigInfo compares by identity; hashing it costs less than calling id().)

    ``low`` is the lowest stack position a back-reference (``'R'``) has pointed
    at since the configuration being encoded started (``_NO_REFERENCE`` if
    none): kept on the encoder rather than returned by every call, since only
    back-references change it.

    The generated encoders (:mod:`xpm.ids_codegen`) keep this state; the methods
    here are what they call for the rarer cases. After an ``IdentifierError``
    the encoder is left in no useful state: it is thrown away with the error.
    """

    __slots__ = ("positions", "low", "hasher", "instances", "convert")

    def __init__(self, hasher: Any, convert: bool = True) -> None:
        self.positions: dict[ConfigInfo, int | bytes] = {}
        self.low = _NO_REFERENCE
        #: a reset blake3 hasher, or None to call ``blake3(preimage)`` for each configuration
        self.hasher = hasher
        #: the InstanceConfig objects met, by base digest, in the order met
        self.instances: dict[bytes, list[int]] | None = None
        #: whether deprecated classes enter as what ``__convert__()`` returns
        self.convert = convert

    def config_digest(self, info: ConfigInfo, depth: int, plan: _Plan | None = None) -> bytes:
        """The digest of ``info`` encoded at ``depth``; lowers ``self.low`` by its back-references.

        The caller has checked that ``info`` has no cached digest and is not in
        ``positions`` (neither on the current path nor already encoded). ``plan``
        replaces the class's plan (a partial identifier's); such a digest is never cached.
        """
        if plan is None:
            xpmtype = info.xpmtype
            plan = xpmtype.id_plan
            if plan is None:
                plan = xpmtype.id_plan = _Plan(xpmtype)
        if plan.convert and self.convert:
            return self.converted_digest(info, depth)
        return plan.run(self, info, depth)  # type: ignore[no-any-return]

    def output_head(self, info: ConfigInfo, head: bytes, depth: int) -> bytes:
        """``head`` ‖ the digest of the task that produces ``info`` (a task output), at ``depth``."""
        assert info.task is not None
        return head + self.linked_digest(
            info.task.__xpm__,
            depth,
            "a task output cannot be part of the parameters of the task that produces it",
            info.xpmtype.name,
        )

    def init_tail(self, tasks: tuple[ConfigMixin, ...], depth: int, owner: str) -> bytes:
        """u64(count) ‖ the digests of the init tasks ``tasks`` (of a configuration of the class ``owner``)."""
        out = _u64(len(tasks))
        for init in tasks:
            out += self.linked_digest(init.__xpm__, depth, "an init task cannot contain the task it initialises", owner)
        return out

    def field_bytes(self, value: Any, depth: int, none_enters: bool, may_hold_meta: bool) -> bytes | None:
        """The encoding of a field's ``value`` (not a str, int, float), or None when it is left out.

        None enters only when the argument has a default (``none_enters``); a
        configuration marked meta is left out, and so are those in containers
        that may hold some (``may_hold_meta``).
        """
        if value is None:
            return b"N" if none_enters else None
        if isinstance(value, ConfigMixin) and value.__xpm__.meta:
            return None
        if may_hold_meta:
            value = _without_meta(value)
        return self.value_bytes(value, depth)

    def value_bytes(self, value: Any, depth: int) -> bytes:
        """The encoding of ``value`` (of a configuration at ``depth``)."""
        out = bytearray()
        self.value(value, out, depth)
        return bytes(out)

    def converted_digest(self, info: ConfigInfo, depth: int) -> bytes:
        """The digest of a deprecated configuration: that of what its ``__convert__()`` returns."""
        converted = info.config.__convert__()  # type: ignore[attr-defined]
        if not isinstance(converted, ConfigMixin):
            raise IdentifierError(
                f"__convert__() of the deprecated {info.xpmtype.name} must return a configuration, "
                f"got {type(converted).__name__}"
            )
        result = self.config_digest(converted.__xpm__, depth)
        if info.sealed and self.convert:
            info.digest = result
        return result

    def instance_digest(self, base: bytes, key: int) -> bytes:
        """The digest of an InstanceConfig object ``key`` whose values give ``base``.

        The first object with these values in this computation keeps ``base``; the
        n-th other one (n ≥ 1) gets ``BLAKE3(INSTANCE_DOMAIN ‖ base ‖ u64(n))``.
        """
        instances = self.instances
        if instances is None:
            instances = self.instances = {}
        order = instances.setdefault(base, [])
        if key not in order:
            order.append(key)
        position = order.index(key)
        if not position:
            return base
        # The digests of the configurations above depend on the whole tree now: none is reused.
        self.low = 0
        return blake3(INSTANCE_DOMAIN + base + _u64(position)).digest()

    def linked_digest(self, info: ConfigInfo, depth: int, cycle: str, owner: str) -> bytes:
        """The digest of a producing task or of an init task (of the class ``owner``), at ``depth``.

        These links cannot be back-references: ``cycle`` is the error when
        ``info`` is on the current path.
        """
        cached = info.digest
        if cached is not None:
            return cached
        found = self.positions.get(info)
        if found is None:
            return self.config_digest(info, depth)
        if type(found) is bytes:
            return found  # already encoded in this computation
        raise IdentifierError(cycle, owner)

    def value(self, v: Any, out: bytearray, depth: int) -> None:
        """Appends the encoding of ``v`` (a value of a configuration at ``depth``)."""
        t = type(v)
        if t is str:
            data = v.encode("utf-8")
            n = len(data)
            out += _STR_HEAD[n] if n < _SMALL else b"S" + _u64(n)
            out += data
        elif t is int:
            if 0 <= v < _SMALL:
                out += _SMALL_INT[v]
            else:
                data = str(v).encode("ascii")
                n = len(data)
                out += _INT_HEAD[n] if n < _SMALL else b"I" + _u64(n)
                out += data
        elif t is float:
            out += _pack_tagged_double(b"F", v + 0.0) if v == v else _TAGGED_NAN
        elif t is bool:
            out += b"B\x01" if v else b"B\x00"
        elif v is None:
            out += b"N"
        elif isinstance(v, ConfigMixin):
            info = v.__xpm__
            d = info.digest
            if d is None:
                found = self.positions.get(info)
                if found is None:
                    d = self.config_digest(info, depth + 1)
                elif isinstance(found, bytes):
                    d = found
                else:  # on the current path: a back-reference
                    out += b"R"
                    out += _u64(depth - found)
                    if found < self.low:
                        self.low = found
                    return
            out += b"C"
            out += d
        elif isinstance(v, enum.Enum):
            cls = type(v)
            out += b"E"
            out += _str_body(f"{cls.__module__}.{cls.__qualname__}")
            out += _str_body(v.name)
        elif t is list or t is tuple:
            encoded = _scalar_sequence(v)
            if encoded is not None:
                out += encoded
                return
            n = len(v)
            out += b"L" if t is list else b"T"
            out += _u64(n)
            for item in v:
                self.value(item, out, depth)
        elif t is dict:
            self._dict(v, out, depth)
        elif t is set or t is frozenset:
            self._set(v, out, depth)
        elif isinstance(v, bool):
            self.value(bool(v), out, depth)
        elif isinstance(v, int):
            self.value(int(v), out, depth)
        elif isinstance(v, float):
            self.value(float(v), out, depth)
        elif isinstance(v, str):
            self.value(str(v), out, depth)
        else:
            from pathlib import PurePath

            hint = "; declare the parameter with a Path type or as Meta" if isinstance(v, PurePath) else ""
            raise IdentifierError(f"a value of type {t.__name__} cannot enter an identifier{hint}")

    def _dict(self, v: dict, out: bytearray, depth: int) -> None:
        items = []
        for key, item in v.items():
            items.append((self.value_bytes(key, depth), item))
        items.sort(key=_first)
        out += b"D"
        out += _u64(len(items))
        previous = None
        for encoded_key, item in items:
            if encoded_key == previous:
                raise IdentifierError("a dictionary has two keys with the same encoding")
            previous = encoded_key
            out += encoded_key
            self.value(item, out, depth)

    def _set(self, v: set | frozenset, out: bytearray, depth: int) -> None:
        encoded = []
        for item in v:
            encoded.append(self.value_bytes(item, depth))
        encoded.sort()
        out += b"X"
        out += _u64(len(encoded))
        for item in encoded:
            out += item


def _is_meta(value: Any) -> bool:
    return isinstance(value, ConfigMixin) and value.__xpm__.meta


def _without_meta(value: Any) -> Any:
    """A list, set or dict without its configurations marked meta (the value itself when it has none)."""
    t = type(value)
    if t is list or t is tuple:
        if any(_is_meta(v) for v in value):
            return t(v for v in value if not _is_meta(v))
    elif t is set or t is frozenset:
        if any(_is_meta(v) for v in value):
            return t(v for v in value if not _is_meta(v))
    elif t is dict:
        if any(_is_meta(v) for v in value.values()):
            return {k: v for k, v in value.items() if not _is_meta(v)}
    return value


def partial_identifier(config: Any, name: str, excluded: frozenset[str]) -> str:
    """The partial identifier of ``config`` named ``name``, leaving out the parameters ``excluded``.

    Tasks that differ only in excluded parameters share it (and the folder named
    by it, ``partials/<type id>/<name>/<partial identifier>/``).
    """
    if not isinstance(config, ConfigMixin):
        raise IdentifierError(f"partial_identifier() takes a configuration, got {type(config).__name__}")
    xpmtype = config.__xpm__.xpmtype
    own = xpmtype.id_plan
    if own is None:
        own = xpmtype.id_plan = _Plan(xpmtype)
    key = (PARTIAL_DOMAIN + b"S" + _str_body(name), frozenset(excluded))
    plan = own.partials.get(key)
    if plan is None:
        # generated once per partial (a plan compiles its encoder)
        plan = own.partials[key] = _Plan(xpmtype, *key)
    return _Encoder(None).config_digest(config.__xpm__, 0, plan).hex()


def raw_identifier(config: Any) -> str:
    """The identifier ``config`` had before its classes were deprecated (no ``__convert__``).

    Job folders made under that identifier are found again through it.
    """
    if not isinstance(config, ConfigMixin):
        raise IdentifierError(f"raw_identifier() takes a configuration, got {type(config).__name__}")
    # Cached digests are those with conversion: set aside while this one is computed.
    cached = [info for info in _tree(config.__xpm__, set()) if info.digest is not None]
    saved = [info.digest for info in cached]
    for info in cached:
        info.digest = None
    try:
        return _Encoder(None, convert=False).config_digest(config.__xpm__, 0).hex()
    finally:
        for info, d in zip(cached, saved):
            info.digest = d


def holds_deprecated(config: Any) -> bool:
    """Whether a deprecated class is in the tree of ``config`` (so that :func:`raw_identifier` may differ)."""
    return any(info.xpmtype.deprecated for info in _tree(config.__xpm__, set()))


def _tree(info: ConfigInfo, seen: set[int]) -> list[ConfigInfo]:
    """``info`` and every configuration below it (parameters, producing task, init tasks)."""
    if id(info) in seen:
        return []
    seen.add(id(info))
    found = [info]
    below = [c.__xpm__ for c in info.child_configs()] + [t.__xpm__ for t in info.init_tasks]
    if info.task is not None:
        below.append(info.task.__xpm__)
    for sub in below:
        found.extend(_tree(sub, seen))
    return found


def _first(pair: tuple[bytes, Any]) -> bytes:
    return pair[0]


def _default_encoding(arg: Argument) -> bytes:
    """The encoding of an argument's default (cached on the argument)."""
    if arg.default_encoding is None:
        buf = bytearray()
        _Encoder(None).value(arg.default, buf, 0)
        arg.default_encoding = bytes(buf)
    return arg.default_encoding


#: What the generated encoders use (see xpm/ids_codegen.py)
_NAMESPACE: dict[str, Any] = {
    "ConfigMixin": ConfigMixin,
    "IdentifierError": IdentifierError,
    "MISSING": _MISSING,
    "NO_REFERENCE": _NO_REFERENCE,
    "SMALL": _SMALL,
    "SMALL_INT": _SMALL_INT,
    "STR_HEAD": _STR_HEAD,
    "INT_HEAD": _INT_HEAD,
    "TAGGED_NAN": _TAGGED_NAN,
    "ZERO_COUNT": _U64[0],
    "pack_double": _pack_tagged_double,
    "u64": _u64,
    "join": b"".join,
    "hash_once": _hash_once,
    "LIST_HEAD": _LIST_HEAD,
    "TUPLE_HEAD": _TUPLE_HEAD,
    "default_encoding": _default_encoding,
}
#: The encoding of a list or tuple of str, int and float, None if it holds anything else
_scalar_sequence = compile_sequence_encoder(_NAMESPACE)
