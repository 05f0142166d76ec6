"""The shortcuts of xpm/ids.py (inline kinds, tables, reuse of digests and hashers) give the spec's bytes.

The spec vectors pin the encoding; these tests aim at what the vectors do not
reach: the edges of the precomputed tables, the same object met twice in one
computation (on a cycle or not), configurations changed between two
computations, and the hashers shared between computations and threads.
"""

from __future__ import annotations

import enum
import math
import random
import struct
import threading
from typing import Any, Optional

import pytest
from blake3 import blake3

import xpm.ids as ids
import xpm.ids_codegen as ids_codegen
from tests.unit.configs import AnyValue, Color, Model
from xpm import Config, Meta, Param, field, identifier
from xpm.config.base import ConfigMixin
from xpm.config.operations import setmeta
from xpm.errors import IdentifierError


class MyInt(int):
    pass


class MyStr(str):
    pass


class MyFloat(float):
    pass


def u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


def text(s: str) -> bytes:
    data = s.encode("utf-8")
    return u64(len(data)) + data


def encode(v: Any) -> bytes:
    """spec/identifiers.md, section 6, written plainly (no configurations)."""
    if isinstance(v, enum.Enum):
        cls = type(v)
        return b"E" + text(f"{cls.__module__}.{cls.__qualname__}") + text(v.name)
    if isinstance(v, bool):
        return b"B\x01" if v else b"B\x00"
    if isinstance(v, int):
        return b"I" + text(str(int(v)))
    if isinstance(v, float):
        if math.isnan(v):
            return b"F\x7f\xf8\x00\x00\x00\x00\x00\x00"
        return b"F" + struct.pack(">d", 0.0 if v == 0 else float(v))
    if isinstance(v, str):
        return b"S" + text(str(v))
    if v is None:
        return b"N"
    if type(v) in (list, tuple):
        return (b"L" if type(v) is list else b"T") + u64(len(v)) + b"".join(encode(x) for x in v)
    raise AssertionError(f"no plain encoding for {v!r}")


def expected_identifier(v: Any) -> str:
    """The identifier of ``AnyValue.C(value=v)``, from the spec."""
    preimage = (
        ids.DOMAIN
        + b"S"
        + text(AnyValue.__xpmtype__.identifier)
        + b"\x00"
        + u64(1)
        + b"S"
        + text("value")
        + encode(v)
        + u64(0)
    )
    return blake3(preimage).hexdigest()


EDGES = [
    0,
    1,
    255,
    256,
    -1,
    -256,
    10**30,
    -(2**64 + 1),
    True,
    False,
    "",
    "é中𐐀",
    "x" * 255,
    "x" * 256,
    "é" * 128,  # 256 bytes
    "x" * 10_000,
    0.5,
    0.0,
    -0.0,
    math.nan,
    -math.nan,
    math.inf,
    -math.inf,
    5e-324,
    MyInt(7),
    MyInt(1000),
    MyStr("s"),
    MyFloat(-0.0),
    MyFloat(2.5),
    Color.GREEN,
]


@pytest.mark.parametrize("value", EDGES, ids=repr)
def test_scalars_at_the_edges_of_the_tables(value: Any) -> None:
    # As a field value, and as an item of a list and of a tuple: three inline paths.
    assert identifier(AnyValue.C(value=value)) == expected_identifier(value)
    assert identifier(AnyValue.C(value=[value, value])) == expected_identifier([value, value])
    assert identifier(AnyValue.C(value=(value,))) == expected_identifier((value,))


@pytest.mark.parametrize("length", [0, 1, 255, 256, 1000])
def test_lists_and_tuples_at_the_edges_of_the_tables(length: int) -> None:
    items = [i * 37 - 500 for i in range(length)]
    assert identifier(AnyValue.C(value=items)) == expected_identifier(items)
    assert identifier(AnyValue.C(value=tuple(items))) == expected_identifier(tuple(items))
    mixed = [[i, str(i), i / 3] for i in range(length)]
    assert identifier(AnyValue.C(value=mixed)) == expected_identifier(mixed)


def test_same_object_twice_is_encoded_as_equal_copies() -> None:
    # At two depths: the digest reused in the computation is that of a fresh encoding.
    shared = Model.C(hidden=3)
    tree = AnyValue.C(value=[shared, AnyValue.C(value=[shared, {"k": shared}])])
    copies = AnyValue.C(value=[Model.C(hidden=3), AnyValue.C(value=[Model.C(hidden=3), {"k": Model.C(hidden=3)}])])
    assert identifier(tree) == identifier(copies)


def _on_a_cycle(shared: bool) -> Any:
    """root = [x, y]; y = [x]; x points back at root: x is met at depths 1 and 2."""
    root = AnyValue.C(value=None)
    first = AnyValue.C(value=root)
    second = first if shared else AnyValue.C(value=root)
    root.value = [first, AnyValue.C(value=[second])]
    return root


def test_same_object_on_a_cycle_is_encoded_at_each_place() -> None:
    # x refers to root as R 1 at depth 1 and as R 2 at depth 2: its digest
    # depends on the place, and must not be reused from the first one.
    shared, copies = _on_a_cycle(shared=True), _on_a_cycle(shared=False)
    assert identifier(shared) == identifier(copies)
    shared.__xpm__.seal()
    copies.__xpm__.seal()
    for _ in range(2):
        assert identifier(shared) == identifier(copies)
    assert shared.__xpm__.digest is None


def test_changes_between_computations_are_seen() -> None:
    model = Model.C(hidden=1)
    tree = AnyValue.C(value=[model, model])
    first = identifier(tree)
    model.hidden = 2
    second = identifier(tree)
    assert second != first
    assert second == identifier(AnyValue.C(value=[Model.C(hidden=2), Model.C(hidden=2)]))
    tree.__xpm__.seal()
    assert identifier(tree) == second
    assert model.__xpm__.digest is not None  # sealed and on no cycle: cached


def test_an_error_does_not_spoil_later_computations() -> None:
    with pytest.raises(IdentifierError, match="bytes cannot enter"):
        identifier(AnyValue.C(value=[Model.C(hidden=1), b"x"]))
    assert identifier(AnyValue.C(value=7)) == expected_identifier(7)


def test_identifiers_from_threads_are_those_computed_alone() -> None:
    trees = [AnyValue.C(value=[Model.C(hidden=i), str(i), i / 7]) for i in range(400)]
    alone = [identifier(t) for t in trees]
    results: dict[int, list[str]] = {}

    def work(n: int) -> None:
        fresh = [AnyValue.C(value=[Model.C(hidden=i), str(i), i / 7]) for i in range(400)]
        results[n] = [identifier(t) for t in fresh]

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(results[n] == alone for n in range(4))


def test_a_replaced_blake3_is_called_with_each_preimage(monkeypatch: pytest.MonkeyPatch) -> None:
    # scripts/gen_identifier_vectors.py records the preimages this way: the
    # last one hashed is the root's.
    tree = AnyValue.C(value=[Model.C(hidden=1), AnyValue.C(value=Model.C(hidden=2))])
    expected = identifier(tree)
    hashed: list[bytes] = []

    def recording(data: Any = b"") -> Any:
        hashed.append(bytes(data))
        return blake3(data)

    monkeypatch.setattr(ids, "blake3", recording)
    assert identifier(tree) == expected
    assert len(hashed) == 4
    assert blake3(hashed[-1]).hexdigest() == expected


# --- The generated encoders (xpm/ids_codegen.py) against the spec written plainly ---------------


class Kinds(Config):
    """One parameter of each declared kind the generated code treats apart."""

    __xpmid__ = "test.ids.kinds"
    s: Param[str]
    i: Param[int]
    f: Param[float]
    b: Param[bool]
    li: Param[list[int]]
    tu: Param[tuple[int, ...]]
    d: Param[dict[str, int]]
    c: Param[Model]
    lc: Param[list[Model]]
    e: Param[Color]
    a: Param[Any]
    o: Param[Optional[int]] = None
    od: Param[Optional[int]] = field(default=4)
    ig: Param[int] = field(default=3, ignore_default=True)
    igs: Param[list[int]] = field(default_factory=lambda: [1, 2], ignore_default=True)
    m: Meta[int] = 0


class Clashing(Config):
    """Parameter names that are also names of the generated code and of its namespace."""

    __xpmid__ = 'test.ids.q"u\'o{t}e\\s\n'
    enc: Param[int]
    info: Param[str]
    depth: Param[float]
    values: Param[Any]
    count: Param[int]
    v: Param[int]
    t: Param[int]
    K0: Param[int]
    N0: Param[str]
    join: Param[int]
    head: Param[int]
    é: Param[str]
    名前: Param[int]


class Empty(Config):
    __xpmid__ = "test.ids.empty"


#: A class with more parameters than the tables of small counts hold
Wide = type(
    "Wide",
    (Config,),
    {
        "__module__": __name__,
        "__xpmid__": "test.ids.wide",
        "__annotations__": {f"p{n:03}": Param[int] for n in range(300)},
    },
)


def plain_value(v: Any) -> bytes:
    """spec/identifiers.md, section 6, written plainly (configurations included, no cycles)."""
    if isinstance(v, ConfigMixin):
        return b"C" + plain_digest(v)
    if type(v) is dict:
        entries = sorted((plain_value(k), plain_value(x)) for k, x in v.items())
        return b"D" + u64(len(entries)) + b"".join(k + x for k, x in entries)
    if type(v) in (set, frozenset):
        elements = sorted(plain_value(x) for x in v)
        return b"X" + u64(len(elements)) + b"".join(elements)
    if type(v) in (list, tuple):
        return (b"L" if type(v) is list else b"T") + u64(len(v)) + b"".join(plain_value(x) for x in v)
    return encode(v)


def _is_meta(v: Any) -> bool:
    return isinstance(v, ConfigMixin) and v.__xpm__.meta


def plain_digest(config: Any) -> bytes:
    """The digest of a configuration (no cycle, task output, init task), from the spec's section 5."""
    xpmtype = config.__xpm__.xpmtype
    entries = []
    for name in sorted(xpmtype.arguments):
        arg = xpmtype.arguments[name]
        if not arg.hashed or name not in config.__dict__:
            continue
        v = config.__dict__[name]
        if v is None and not arg.has_default:
            continue
        compare = arg.ignore_default and arg.has_default and not arg.is_constant
        if not compare:
            if _is_meta(v):
                continue
            if type(v) in (list, tuple, set, frozenset):
                v = type(v)(x for x in v if not _is_meta(x))
            elif type(v) is dict:
                v = {k: x for k, x in v.items() if not _is_meta(x)}
        encoded = plain_value(v)
        if compare and encoded == plain_value(arg.default):
            continue
        entries.append(b"S" + text(name) + encoded)
    preimage = (
        ids.DOMAIN + b"S" + text(xpmtype.identifier) + b"\x00" + u64(len(entries)) + b"".join(entries) + u64(0)
    )
    return blake3(preimage).digest()


SCALARS: list[Any] = [v for v in EDGES if not (isinstance(v, float) and math.isnan(v))]


def random_value(rng: random.Random, depth: int, shared: list[Any]) -> Any:
    """A random value for a ``Param[Any]``: scalars, containers, configurations (some shared, some meta)."""
    kind = rng.randrange(10 if depth > 0 else 4)
    if kind <= 2:
        return rng.choice(SCALARS + [None, rng.randrange(-(10**6), 10**6), rng.random() * 1e6, f"s{rng.random()}"])
    if kind == 3:
        return [rng.randrange(-1000, 100_000) for _ in range(rng.randrange(6))]
    if kind == 4:
        items = [random_value(rng, depth - 1, shared) for _ in range(rng.randrange(5))]
        return items if rng.random() < 0.5 else tuple(items)
    if kind == 5:
        return {f"k{n}": random_value(rng, depth - 1, shared) for n in range(rng.randrange(4))}
    if kind == 6:
        return {rng.randrange(100) for _ in range(rng.randrange(4))} | {"x"}
    if kind == 7 and shared:
        return rng.choice(shared)
    if kind == 8:
        return setmeta(Model.C(hidden=rng.randrange(10)))
    config = rng.choice(
        [
            lambda: Model.C(hidden=rng.randrange(-300, 300)),
            lambda: AnyValue.C(value=random_value(rng, depth - 1, shared)),
            lambda: random_kinds(rng, depth - 1, shared),
        ]
    )()
    shared.append(config)
    return config


def random_kinds(rng: random.Random, depth: int, shared: list[Any]) -> Kinds:
    config = Kinds.C(
        s=rng.choice(["", "é中", "x" * 300, "plain"]),
        i=rng.choice([0, 255, 256, -1, 10**30, rng.randrange(-(10**9), 10**9)]),
        f=rng.choice([0.0, -0.0, math.inf, math.nan, rng.random()]),
        b=rng.random() < 0.5,
        li=[rng.randrange(-500, 5000) for _ in range(rng.choice([0, 1, 3, 300]))],
        tu=tuple(rng.randrange(300) for _ in range(rng.randrange(4))),
        d={f"k{n}": n for n in range(rng.randrange(3))},
        c=Model.C(hidden=rng.randrange(1000)),
        lc=[setmeta(Model.C(hidden=1)) if rng.random() < 0.3 else Model.C(hidden=n) for n in range(rng.randrange(4))],
        e=rng.choice(list(Color)),
        a=random_value(rng, max(depth, 0), shared),
        m=rng.randrange(10),
    )
    if rng.random() < 0.5:
        config.o = rng.choice([None, 7, 1000])
    if rng.random() < 0.5:
        config.od = rng.choice([None, 4, 5])
    if rng.random() < 0.5:
        config.ig = rng.choice([3, 4, 300])
    if rng.random() < 0.5:
        config.igs = rng.choice([[1, 2], [1], (1, 2)])
    if rng.random() < 0.3:
        config.c = setmeta(Model.C(hidden=2))
    return config


@pytest.mark.parametrize("seed", range(40))
def test_random_trees_give_the_plain_encoding(seed: int) -> None:
    rng = random.Random(seed)
    shared: list[Any] = []
    tree = random_kinds(rng, 3, shared) if seed % 2 else AnyValue.C(value=random_value(rng, 4, shared))
    expected = plain_digest(tree).hex()
    assert identifier(tree) == expected
    tree.__xpm__.seal()
    assert identifier(tree) == expected == identifier(tree)  # computed, then cached


def test_every_kind_of_field_through_the_generated_code() -> None:
    base: dict[str, Any] = dict(
        s="a", i=1, f=0.5, b=True, li=[1, 256], tu=(1,), d={"k": 1}, c=Model.C(hidden=1), lc=[], e=Color.RED, a=1
    )
    variants: list[dict[str, Any]] = [
        {},
        {"s": "x" * 256, "i": -(2**70), "f": -0.0, "b": False, "li": list(range(300)), "tu": tuple(range(256))},
        {"o": 5, "od": None, "ig": 3, "igs": [1, 2]},  # None enters with a default; defaults left out
        {"o": None, "od": 4, "ig": 4, "igs": (1, 2)},  # a tuple does not encode as the default list
        {"c": setmeta(Model.C(hidden=9)), "lc": [setmeta(Model.C(hidden=9)), Model.C(hidden=2)]},
        {"a": [1, "x", 2.5, Model.C(hidden=3)]},  # a list that leaves the inline path midway
        {"a": (MyInt(3), MyStr("s"), MyFloat(1.0), True, None, Color.GREEN)},
        {"a": {"k": {1, 2}, "l": {"m": [()]}}},
        {"a": None},
        {"a": setmeta(Model.C(hidden=4))},
    ]
    seen = set()
    for variant in variants:
        config = Kinds.C(**{**base, **variant})
        expected = plain_digest(config).hex()
        assert identifier(config) == expected, variant
        seen.add(expected)
    assert len(seen) == len(variants) - 1  # a=None and a=<meta> both leave the field out


def test_names_that_clash_with_the_generated_code(monkeypatch: pytest.MonkeyPatch) -> None:
    config = Clashing.C(
        enc=1, info="i", depth=2.5, values=[1, 2], count=300, v=-1, t=0, K0=5, N0="n", join=7, head=8, é="é", 名前=9
    )
    assert identifier(config) == plain_digest(config).hex()
    config.values = {"k": Model.C(hidden=1)}
    assert identifier(config) == plain_digest(config).hex()

    # No parameter name, class name or type identifier is written into the generated source
    sources: list[str] = []
    compile_encoder = ids.compile_encoder

    def recording(class_name: str, fields: Any, **options: Any) -> Any:
        sources.append(ids_codegen.encoder_source(fields, options["instance"], options["cacheable"]))
        return compile_encoder(class_name, fields, **options)

    monkeypatch.setattr(ids, "compile_encoder", recording)
    ids._Plan(Clashing.__xpmtype__)
    (source,) = sources
    for name in Clashing.__xpmtype__.arguments:
        assert repr(name) not in source and f'"{name}"' not in source
    assert "é" not in source and "名前" not in source and "Clashing" not in source
    assert Clashing.__xpmtype__.identifier not in source and "o{t}e" not in source


def test_classes_with_no_field_and_with_many_fields() -> None:
    assert identifier(Empty.C()) == plain_digest(Empty.C()).hex()
    wide = Wide.C(**{f"p{n:03}": n * 7 for n in range(300)})
    assert identifier(wide) == plain_digest(wide).hex()
    assert identifier(AnyValue.C(value=[Empty.C(), wide])) == plain_digest(AnyValue.C(value=[Empty.C(), wide])).hex()


def kinds(**values: Any) -> Kinds:
    """A Kinds configuration with every required parameter set (to ``values`` when given)."""
    base = dict(s="a", i=1, f=0.5, b=True, li=[], tu=(), d={}, c=Model.C(hidden=1), lc=[], e=Color.RED, a=1)
    return Kinds.C(**{**base, **values})


def test_errors_name_the_class_and_the_field() -> None:
    with pytest.raises(IdentifierError) as error:
        identifier(kinds(a=b"x"))
    assert error.value.path == "Kinds.a"
    with pytest.raises(IdentifierError) as error:
        identifier(AnyValue.C(value=[AnyValue.C(value={"k": b"x"})]))
    assert error.value.path == "AnyValue.value" and "bytes cannot enter" in str(error.value)
    with pytest.raises(IdentifierError) as error:
        identifier(AnyValue.C(value=Model.C()))
    assert error.value.path == "Model.hidden" and "required" in str(error.value)


def test_partial_identifiers_see_changes_after_their_plan_is_made() -> None:
    config = kinds()
    first = ids.partial_identifier(config, "p", frozenset({"i"}))
    config.i = 2
    assert ids.partial_identifier(config, "p", frozenset({"i"})) == first  # excluded
    config.s = "b"
    assert ids.partial_identifier(config, "p", frozenset({"i"})) != first
    assert ids.partial_identifier(config, "p", frozenset({"i", "s"})) != first
