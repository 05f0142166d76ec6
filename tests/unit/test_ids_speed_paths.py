"""The shortcuts of xpm/ids.py (inline kinds, tables, reuse of digests and hashers) give the spec's bytes.

The spec vectors pin the encoding; these tests aim at what the vectors do not
reach: the edges of the precomputed tables, the same object met twice in one
computation (on a cycle or not), configurations changed between two
computations, and the hashers shared between computations and threads.
"""

from __future__ import annotations

import enum
import math
import struct
import threading
from typing import Any

import pytest
from blake3 import blake3

import xpm.ids as ids
from xpm import identifier
from xpm.errors import IdentifierError
from tests.unit.configs import AnyValue, Color, Model


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
