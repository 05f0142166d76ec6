"""Each identifier rule, with concrete cases (the spec vectors pin the exact bytes)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import xpm
from xpm import identifier
from xpm.errors import IdentifierError
from tests.helpers import make_module
from tests.unit.configs import (
    AnyValue,
    Color,
    Consumer,
    Init,
    Model,
    Node,
    Producer,
    Train,
    Versioned,
    WithPaths,
)


def two_versions(old_body: str, new_body: str, header: str = "") -> tuple[type, type]:
    """The same type id declared twice: before and after a change of the class."""
    imports = "from typing import Any, Optional\nfrom xpm import Config, Param, Meta, Constant, field\n" + header
    old = make_module("xpm_ids_old", imports + "class K(Config):\n    __xpmid__ = 'k'\n" + old_body)
    new = make_module("xpm_ids_new", imports + "class K(Config):\n    __xpmid__ = 'k'\n" + new_body)
    return old.K, new.K


def test_identifier_is_64_lowercase_hex_and_pinned():
    ident = identifier(Versioned.C(x=1))
    assert re.fullmatch(r"[0-9a-f]{64}", ident)
    # Pinned: any change of the encoding breaks every workspace (see spec/identifiers.md).
    assert ident == identifier(Versioned.C(x=1))
    old, _ = two_versions("    x: Param[int]\n", "    x: Param[int]\n")
    assert identifier(old.C(x=1)) == "2177ccf1552f60a6251eb3f411f69be728ddcfd54446b6550ad0d3bd4aa1a8fa"


def test_meta_never_enters():
    a = Train.C(model=Model.C(hidden=1), lr=0.1, out="/a")
    b = Train.C(model=Model.C(hidden=1), lr=0.1, out="/b")
    assert identifier(a) == identifier(b)
    old, new = two_versions("    x: Param[int]\n", "    x: Param[int]\n    m: Meta[int]\n")
    assert identifier(old.C(x=1)) == identifier(new.C(x=1, m=5))


def test_path_typed_parameters_never_enter():
    a = WithPaths.C(a=1, p="/x", ps=["/y"], po="/z")
    b = WithPaths.C(a=1, p="/other", ps=[], po=None)
    assert identifier(a) == identifier(b)
    assert identifier(a) != identifier(WithPaths.C(a=2, p="/x"))


def test_ignore_default_at_default_is_left_out():
    # The way to add a parameter without changing existing identifiers
    old, new = two_versions(
        "    x: Param[int]\n", "    x: Param[int]\n    y: Param[int] = field(default=3, ignore_default=True)\n"
    )
    assert identifier(old.C(x=1)) == identifier(new.C(x=1))
    assert identifier(old.C(x=1)) == identifier(new.C(x=1, y=3))
    assert identifier(old.C(x=1)) != identifier(new.C(x=1, y=4))


def test_bare_default_acts_as_ignore_default():
    with pytest.warns(DeprecationWarning):
        old, new = two_versions("    x: Param[int]\n", "    x: Param[int]\n    y: Param[int] = 3\n")
    assert identifier(old.C(x=1)) == identifier(new.C(x=1))
    assert identifier(old.C(x=1)) != identifier(new.C(x=1, y=2))


def test_ignore_default_compares_kinds_not_python_equality():
    old, new = two_versions("", "    v: Param[Any] = field(default=1, ignore_default=True)\n")
    assert identifier(old.C()) == identifier(new.C(v=1))
    # True == 1 and 1.0 == 1 in Python, but they are different values
    assert identifier(old.C()) != identifier(new.C(v=True))
    assert identifier(old.C()) != identifier(new.C(v=1.0))


def test_field_default_is_always_included():
    old, new = two_versions("    x: Param[int]\n", "    x: Param[int]\n    y: Param[int] = field(default=3)\n")
    assert identifier(old.C(x=1)) != identifier(new.C(x=1))
    assert identifier(new.C(x=1)) == identifier(new.C(x=1, y=3))


def test_optional_left_at_none_is_left_out():
    old, new = two_versions("    x: Param[int]\n", "    x: Param[int]\n    y: Param[Optional[int]]\n")
    assert identifier(old.C(x=1)) == identifier(new.C(x=1))
    assert identifier(old.C(x=1)) == identifier(new.C(x=1, y=None))
    assert identifier(old.C(x=1)) != identifier(new.C(x=1, y=0))


def test_none_differs_from_a_non_none_default():
    _, new = two_versions("", "    y: Param[Optional[int]] = field(default=2)\n")
    assert identifier(new.C()) != identifier(new.C(y=None))


def test_constants_always_enter():
    old, new = two_versions("    x: Param[int]\n", "    x: Param[int]\n    version: Constant[int] = 1\n")
    assert identifier(old.C(x=1)) != identifier(new.C(x=1))
    v1, v2 = two_versions("    version: Constant[int] = 1\n", "    version: Constant[int] = 2\n")
    assert identifier(v1.C()) != identifier(v2.C())


def test_declaration_order_does_not_matter():
    a, b = two_versions("    x: Param[int]\n    y: Param[str]\n", "    y: Param[str]\n    x: Param[int]\n")
    assert identifier(a.C(x=1, y="a")) == identifier(b.C(y="a", x=1))


def test_type_id_enters():
    module = make_module(
        "xpm_ids_types",
        "from xpm import Config, Param\n"
        "class A(Config):\n    __xpmid__ = 'a'\n    x: Param[int]\n"
        "class B(Config):\n    __xpmid__ = 'b'\n    x: Param[int]\n"
        "class Upper(Config):\n    __xpmid__ = 'A'\n    x: Param[int]\n",
    )
    assert identifier(module.A.C(x=1)) != identifier(module.B.C(x=1))
    assert identifier(module.A.C(x=1)) == identifier(module.Upper.C(x=1))


@pytest.mark.parametrize(
    "a, b",
    [
        ("1", 1),
        (1, 1.0),
        (1, True),
        (0, False),
        (None, ""),
        (None, 0),
        ([1, 2], [[1], 2]),
        ([1, 2], (1, 2)),
        ([1, [2, 3]], [[1, 2], 3]),
        (["ab"], ["a", "b"]),
        ({"a": 1}, [["a", 1]]),
        ({1}, [1]),
        ({"1": 1}, {1: 1}),
        (Color.RED, "RED"),
        ("", []),
        ({}, []),
        (float("inf"), float("-inf")),
    ],
)
def test_values_of_different_kinds_never_collide(a, b):
    assert identifier(AnyValue.C(value=a)) != identifier(AnyValue.C(value=b))


@pytest.mark.parametrize(
    "a, b",
    [
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}),
        ({1: "x", "1": "y"}, {"1": "y", 1: "x"}),
        ({3, 1, 2}, {2, 3, 1}),
        (frozenset({"a", "b"}), {"b", "a"}),
        (-0.0, 0.0),
        (float("nan"), float("nan")),
        (Color.RED, Color.RED),
    ],
)
def test_equal_values_share_an_identifier(a, b):
    assert identifier(AnyValue.C(value=a)) == identifier(AnyValue.C(value=b))


def test_int_given_to_a_float_is_a_float():
    assert identifier(Train.C(model=Model.C(hidden=1), lr=1)) == identifier(Train.C(model=Model.C(hidden=1), lr=1.0))


def test_nested_config_enters_through_its_identifier():
    a = Train.C(model=Model.C(hidden=1), lr=0.1)
    b = Train.C(model=Model.C(hidden=1), lr=0.1)
    c = Train.C(model=Model.C(hidden=2), lr=0.1)
    assert identifier(a) == identifier(b) != identifier(c)
    inner = Model.C(hidden=1)
    shared = AnyValue.C(value=[inner, inner])
    copies = AnyValue.C(value=[Model.C(hidden=1), Model.C(hidden=1)])
    assert identifier(shared) == identifier(copies)


def test_task_output_carries_the_producer_identifier():
    p1, p2 = Producer.C(x=1), Producer.C(x=1)
    o1, o2 = p1.__xpm_outputs__(), p2.__xpm_outputs__()
    assert o1.__xpm__.task is p1
    assert identifier(o1) == identifier(o2)
    plain = xpm.copyconfig(o1)
    plain.__xpm__.task = None
    assert identifier(plain) != identifier(o1)
    other = Producer.C(x=2).__xpm_outputs__()
    other_plain = xpm.copyconfig(other, step=1)
    other_plain.__xpm__.task = other.__xpm__.task
    assert identifier(other_plain) != identifier(o1)  # same values, another producer
    assert identifier(Consumer.C(inp=o1)) != identifier(Consumer.C(inp=plain))
    # A task whose default output is itself enters through its own identifier
    assert Producer.C(x=1).__xpm_outputs__ is not None
    assert Train.C(model=Model.C(hidden=1), lr=0.1).__xpm_outputs__().__xpm__.task is None


def test_dep_on_a_task_parameter_marks_a_copy():
    module = make_module(
        "xpm_ids_dep",
        "from xpm import Config, Task, Param\n"
        "class M(Config):\n    x: Param[int]\n"
        "class T(Task):\n    m: Param[M]\n"
        "    def task_outputs(self, dep):\n        return dep(self.m)\n"
        "    def execute(self): pass\n",
    )
    task = module.T.C(m=module.M.C(x=1))
    out = task.__xpm_outputs__()
    assert out is not task.m and out.__xpm__.task is task and task.m.__xpm__.task is None
    assert identifier(out) != identifier(task.m)


def test_init_tasks_enter_in_order():
    base = Consumer.C(inp=Producer.C(x=1).__xpm_outputs__())
    with_one = xpm.copyconfig(base)
    with_one.__xpm__.init_tasks = [Init.C(v=1)]
    with_two = xpm.copyconfig(base)
    with_two.__xpm__.init_tasks = [Init.C(v=1), Init.C(v=2)]
    reversed_two = xpm.copyconfig(base)
    reversed_two.__xpm__.init_tasks = [Init.C(v=2), Init.C(v=1)]
    ids = {identifier(c) for c in (base, with_one, with_two, reversed_two)}
    assert len(ids) == 4


def test_cycles_are_encoded_as_back_references():
    a = Node.C(name="a")
    a.next = a
    ident = identifier(a)
    assert ident == identifier(a)
    b1, b2 = Node.C(name="b"), Node.C(name="c")
    b1.next, b2.next = b2, b1
    first = identifier(b1)
    second = identifier(b2)
    assert first != second
    b1.__xpm__.seal()
    # Digests of configurations in a cycle depend on where the computation
    # starts: sealing (and caching) must not change any of them.
    for _ in range(2):
        assert identifier(b1) == first
        assert identifier(b2) == second
        assert identifier(AnyValue.C(value=b2)) == identifier(AnyValue.C(value=b2))
    assert b1.__xpm__.digest is None and b2.__xpm__.digest is None


def test_sealed_digest_is_cached_and_unsealed_recomputed():
    m = Model.C(hidden=1)
    first = identifier(m)
    m.hidden = 2
    assert identifier(m) != first
    m.__xpm__.seal()
    assert identifier(m) == m.__xpm__.digest.hex()
    assert str(m.__identifier__()) == identifier(m)


def test_values_that_cannot_enter():
    with pytest.raises(IdentifierError, match=r"AnyValue.value: a value of type PosixPath cannot enter .* as Meta"):
        identifier(AnyValue.C(value=Path("/x")))
    with pytest.raises(IdentifierError, match=r"AnyValue.value: a value of type object cannot enter"):
        identifier(AnyValue.C(value=[object()]))
    with pytest.raises(IdentifierError, match="Model.hidden: the parameter is required but has no value"):
        identifier(Model.C())
    with pytest.raises(IdentifierError, match="takes a configuration"):
        identifier(3)


def test_init_tasks_are_frozen_by_sealing_and_cannot_loop():
    consumer = Consumer.C(inp=Producer.C(x=1).__xpm_outputs__())
    with pytest.raises(xpm.errors.ConfigError, match="an init task must be a LightweightTask"):
        consumer.__xpm__.init_tasks = [Model.C(hidden=1)]
    consumer.__xpm__.init_tasks = [Init.C(v=1)]
    consumer.__xpm__.seal()
    before = identifier(consumer)
    with pytest.raises(xpm.errors.SealedError, match="Consumer.init_tasks cannot be set"):
        consumer.__xpm__.init_tasks = [Init.C(v=2)]
    assert identifier(consumer) == before
    looping = Init.C(v=3)
    looping.__xpm__.init_tasks = [looping]
    with pytest.raises(IdentifierError, match="Init: an init task cannot contain the task it initialises"):
        identifier(looping)


def test_optional_any_is_not_required():
    module = make_module(
        "xpm_ids_optional_any",
        "from typing import Any, Optional\nfrom xpm import Config, Param\n"
        "class K(Config):\n    __xpmid__ = 'k'\n    v: Param[Optional[Any]]\n",
    )
    cfg = module.K.C()
    cfg.__xpm__.seal()
    assert identifier(cfg) == identifier(module.K.C(v=None))


def test_huge_int_for_a_float_is_a_validation_error():
    with pytest.raises(xpm.errors.ValidationError, match=r"Train.lr: expected float, got int .*\(too large for a float\)"):
        Train.C(lr=10**400)
