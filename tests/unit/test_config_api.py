"""The configuration API: construction, validation, sealing, defaults, instances."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import xpm
from xpm import Config, Meta, Param, copyconfig, field
from xpm.errors import (
    ConfigError,
    MissingParameterError,
    SealedError,
    UnknownParameterError,
    ValidationError,
    XpmError,
)
from tests.helpers import make_module
from tests.unit.configs import (
    BigModel,
    Color,
    Documented,
    Everything,
    Model,
    Node,
    Train,
    Versioned,
)


def test_construction_and_reading():
    m = Model.C(hidden=10)
    assert m.hidden == 10
    assert isinstance(m, Model)
    assert repr(m) == "Model.C(hidden=10)"
    # The older spelling Model(...) makes a configuration too
    m2 = Model(hidden=4)
    assert isinstance(m2, Model) and m2.hidden == 4


def test_assignment_until_sealed():
    m = Model.C()
    m.hidden = 3
    assert m.hidden == 3
    m.__xpm__.seal()
    with pytest.raises(SealedError) as info:
        m.hidden = 4
    assert str(info.value) == (
        "Model.hidden cannot be set: the configuration is sealed; change a copy made with copyconfig()"
    )
    assert m.hidden == 3


def test_unknown_parameter_names_class_and_parameters():
    with pytest.raises(UnknownParameterError) as info:
        Model.C(hiden=3)
    assert str(info.value) == "Model has no parameter 'hiden' (its parameters: hidden)"
    assert info.value.cls == "Model" and info.value.param == "hiden"
    # As an attribute, an unknown name is a plain attribute (outside the identifier);
    # a near miss of a parameter's name warns.
    m = Model.C(hidden=3)
    with pytest.warns(UserWarning, match=r"Model.hiden is not a parameter \(did you mean 'hidden'\?\)"):
        m.hiden = 4
    assert m.hiden == 4 and xpm.identifier(m) == xpm.identifier(Model.C(hidden=3))


def test_wrong_type_names_class_param_expected_and_given():
    with pytest.raises(ValidationError) as info:
        Model.C(hidden="ten")
    assert str(info.value) == "Model.hidden: expected int, got str ('ten')"
    assert (info.value.cls, info.value.param, info.value.expected, info.value.given) == (
        "Model",
        "hidden",
        "int",
        "ten",
    )
    # Every error is an XpmError (one root for the command line)
    assert isinstance(info.value, XpmError)


def test_numbers_and_bools_convert_as_experimaestro_does():
    # Lax scalars: what converts is stored converted, so it names the same job.
    assert Model.C(hidden=True).hidden == 1 and type(Model.C(hidden=True).hidden) is int
    assert Model.C(hidden=3.0).hidden == 3 and Model.C(hidden=" 4 ").hidden == 4 and Model.C(hidden="5.0").hidden == 5
    t = Train.C(model=Model.C(hidden=1), lr=1)
    assert t.lr == 1.0 and type(t.lr) is float
    assert Train.C(model=Model.C(hidden=1), lr="1e-3").lr == 0.001
    assert [Everything.C(b=v).b for v in (1, 0, 1.0, "yes", "OFF", "t", b"1")] == [True, False, True, True, False, True, True]
    # int | str: a value of one member stays as it is; 1.0 becomes the int
    assert Everything.C(u=1.0).u == 1 and Everything.C(u="1").u == "1"


def test_missing_required_parameter_at_seal_says_where_it_was_created():
    m = Model.C()
    with pytest.raises(MissingParameterError) as info:
        m.__xpm__.seal()
    text = str(info.value)
    assert text.startswith("Model.hidden: expected int, got nothing (the parameter is required)")
    assert f"created at {__file__}:" in text
    assert not m.__xpm__.sealed


def test_reading_an_unset_parameter():
    with pytest.raises(AttributeError, match="Model.hidden has no value yet"):
        Model.C().hidden


def test_every_supported_type():
    m = Model.C(hidden=1)
    e = Everything.C(
        i=1,
        f=2,
        s="x",
        b=False,
        e=Color.GREEN,
        li=(1, 2),
        d={"a": 1},
        st=["x", "y"],
        t2=[1, "a"],
        tv=[1, 2, 3],
        o=None,
        u="s",
        a=object,
        m=BigModel.C(hidden=2),
    )
    assert e.f == 2.0 and type(e.f) is float
    assert e.li == [1, 2]
    assert e.d == {"a": 1.0} and type(e.d["a"]) is float
    assert e.st == {"x", "y"}
    assert e.t2 == (1, "a") and e.tv == (1, 2, 3)
    assert e.o is None and e.u == "s"
    e.m = m
    assert e.m is m


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("i", 1.5, "Everything.i: expected int, got float (1.5)"),
        ("s", 3, "Everything.s: expected str, got int (3)"),
        ("b", 2, "Everything.b: expected bool, got int (2)"),
        ("b", "maybe", "Everything.b: expected bool, got str ('maybe')"),
        ("i", "1e3", "Everything.i: expected int, got str ('1e3')"),
        ("i", float("inf"), "Everything.i: expected int, got float (inf)"),
        ("e", "RED", "Everything.e: expected Color (an enum member), got str ('RED')"),
        ("li", [1, "x"], "Everything.li[1]: expected int, got str ('x')"),
        ("li", "12", "Everything.li: expected list[int], got str ('12')"),
        ("d", {"a": "x"}, "Everything.d['a']: expected float, got str ('x')"),
        ("d", {1: 1.0}, "Everything.d[1] (key): expected str, got int (1)"),
        ("t2", (1, 2), "Everything.t2[1]: expected str, got int (2)"),
        ("t2", (1,), "Everything.t2: expected tuple[int, str], got tuple ((1,)) (1 items instead of 2)"),
        ("o", "x", "Everything.o: expected int | None, got str ('x')"),
        ("u", 1.5, "Everything.u: expected int | str, got float (1.5)"),
        ("m", Versioned.C(x=1), "Everything.m: expected Model (a configuration), got Versioned"),
        ("i", None, "Everything.i: expected int, got NoneType (None)"),
    ],
)
def test_type_errors(name, value, message):
    with pytest.raises(ValidationError) as info:
        Everything.C(**{name: value})
    assert str(info.value).startswith(message)


def test_path_parameters_accept_strings():
    t = Train.C(model=Model.C(hidden=1), lr=0.1, out="/tmp/x")
    assert t.out == Path("/tmp/x")


def test_constants():
    v = Versioned.C(x=1)
    assert v.version == 1
    with pytest.raises(SealedError, match="Versioned.version cannot be set: it is a Constant"):
        v.version = 2
    with pytest.raises(ConfigError, match="needs a default"):
        make_module(
            "xpm_test_constant",
            "from xpm import Config, Constant\nclass K(Config):\n    c: Constant[int]\n",
        )


def test_param_default_factory_runs_once_at_class_definition():
    module = make_module(
        "xpm_test_factory",
        "from xpm import Config, Param, Meta, field\n"
        "calls = []\n"
        "def make():\n    calls.append(1)\n    return [1]\n"
        "def meta():\n    calls.append('meta')\n    return 'm'\n"
        "class K(Config):\n"
        "    p: Param[list[int]] = field(default_factory=make)\n"
        "    m: Meta[str] = field(default_factory=meta)\n",
    )
    assert module.calls == [1]
    a, b = module.K.C(), module.K.C()
    assert a.p == [1] and a.p is not b.p  # mutable defaults are copied
    assert module.calls == [1]
    a.__xpm__.seal()
    assert a.m == "m" and module.calls == [1, "meta"]


def test_bare_default_acts_as_ignore_default_and_warns_once_per_module():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = make_module(
            "xpm_test_bare",
            "from xpm import Config, Param\n"
            "class A(Config):\n    x: Param[int] = 3\n"
            "class B(Config):\n    y: Param[int] = 4\n",
        )
    deprecations = [w for w in caught if issubclass(w.category, DeprecationWarning)]
    assert len(deprecations) == 1
    assert "A.x: a bare default acts as field(default=..., ignore_default=True)" in str(deprecations[0].message)
    arg = module.A.__xpmtype__.arguments["x"]
    assert arg.default == 3 and arg.ignore_default


def test_legacy_ignore_default_value():
    f = field(ignore_default=5)
    assert f.default == 5 and f.ignore_default is True
    with pytest.raises(ValueError):
        field(default=1, ignore_default=2)


def test_option_is_a_deprecated_meta():
    with pytest.warns(DeprecationWarning, match="Option is deprecated"):
        module = make_module(
            "xpm_test_option", "from xpm import Config, Option\nclass K(Config):\n    o: Option[int] = 1\n"
        )
    assert module.K.__xpmtype__.arguments["o"].is_meta


def test_validate_is_called_at_seal():
    module = make_module(
        "xpm_test_validate",
        "from xpm import Config, Param\n"
        "class K(Config):\n"
        "    lo: Param[int]\n    hi: Param[int]\n"
        "    def __validate__(self):\n"
        "        if self.lo > self.hi:\n            raise ValueError('lo must not exceed hi')\n",
    )
    module.K.C(lo=1, hi=2).__xpm__.seal()
    bad = module.K.C(lo=3, hi=2)
    with pytest.raises(ValueError, match="lo must not exceed hi"):
        bad.__xpm__.seal()
    assert not bad.__xpm__.sealed


def test_instance_builds_user_objects_and_calls_post_init():
    module = make_module(
        "xpm_test_instance",
        "from xpm import Config, Param\n"
        "class Inner(Config):\n    v: Param[int]\n"
        "class Outer(Config):\n"
        "    a: Param[Inner]\n    b: Param[Inner]\n    items: Param[list[Inner]]\n"
        "    def __post_init__(self):\n        self.total = self.a.v + self.b.v\n",
    )
    inner = module.Inner.C(v=2)
    cfg = module.Outer.C(a=inner, b=inner, items=[inner, module.Inner.C(v=5)])
    obj = cfg.instance()
    assert type(obj) is module.Outer
    assert type(obj.a) is module.Inner
    assert obj.total == 4
    assert obj.a is obj.b is obj.items[0]  # shared configurations stay shared
    assert obj.items[1].v == 5
    assert cfg.__xpm__.sealed


def test_task_instance_has_tags():
    t = Train.C(model=Model.C(hidden=xpm.tag(3)), lr=0.1)
    t.__xpm__.generate_paths(Path("/jobs/train/1"))
    obj = t.instance()
    assert obj.__tags__ == {"hidden": 3}
    assert obj.out == Path("/jobs/train/1/model.txt")


def test_instance_refuses_unresolved_generated_path():
    t = Train.C(model=Model.C(hidden=1), lr=0.1)
    with pytest.raises(ConfigError, match="Train.out is a generated path"):
        t.instance()


def test_copyconfig():
    m = Model.C(hidden=xpm.tag(1))
    m.__xpm__.seal()
    c = copyconfig(m, hidden=2)
    assert c.hidden == 2 and m.hidden == 1
    assert not c.__xpm__.sealed
    assert c.tags() == {"hidden": 2} and m.tags() == {"hidden": 1}
    c2 = m.copy()
    assert c2.hidden == 1 and c2 is not m
    assert xpm.identifier(c2) == xpm.identifier(m)


def test_type_id_is_lowercased_qualname_or_xpmid():
    assert Model.__xpmtype__.identifier == "tests.unit.configs.model"
    assert Versioned.__xpmtype__.identifier == "tests.versioned"


def test_class_defined_in_a_function_needs_an_xpmid_outside_pytest():
    # Outside a test run, a class made inside a function has no stable name.
    code = (
        "from xpm import Config, Param\n"
        "def make():\n"
        "    class Local(Config):\n"
        "        x: Param[int]\n"
        "    return Local\n"
        "try:\n"
        "    make().C(x=1)\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("ConfigError") and "defined inside a function" in out

    class Named(Config):
        __xpmid__ = "tests.named"
        x: Param[int]

    assert Named.C(x=1).x == 1


def test_class_defined_in_a_test_function_is_accepted_under_pytest():
    class Local(Config):
        x: Param[int]

    cfg = Local.C(x=1)
    assert cfg.__xpmtype__.identifier.endswith("test_class_defined_in_a_test_function_is_accepted_under_pytest.<locals>.local")
    assert xpm.identifier(cfg) == xpm.identifier(Local.C(x=1))


def test_forward_references_resolve_on_first_use():
    module = make_module(
        "xpm_test_forward",
        "from __future__ import annotations\n"
        "from xpm import Config, Param\n"
        "class A(Config):\n    b: Param[B]\n"
        "class B(Config):\n    x: Param[int]\n",
    )
    a = module.A.C(b=module.B.C(x=1))
    assert a.b.x == 1
    node = Node.C(name="a", next=Node.C(name="b"))
    assert node.next.name == "b"


def test_redefining_a_parameter_warns_unless_overrides():
    with pytest.warns(UserWarning, match="redefines the parameter"):
        make_module(
            "xpm_test_redefine",
            "from xpm import Config, Param\n"
            "class A(Config):\n    x: Param[int]\n"
            "class B(A):\n    x: Param[int]\n",
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        module = make_module(
            "xpm_test_overrides",
            "from xpm import Config, Param, field\n"
            "class A(Config):\n    x: Param[int]\n"
            "class B(A):\n    x: Param[int] = field(default=2, overrides=True)\n",
        )
    assert module.B.C().x == 2


def test_subclasses_inherit_parameters():
    big = BigModel.C(hidden=3)
    assert list(big.__xpm__.values) == ["hidden", "layers"]
    assert big.layers == 2


def test_docstrings_as_help():
    xpmtype = Documented.__xpmtype__
    assert xpmtype.description == "Documented configuration.\n\nMore text."
    assert xpmtype.arguments["a"].help == "from the section, on two lines"
    assert xpmtype.arguments["b"].help == "from an attribute docstring"
    assert Model.__xpmtype__.arguments["hidden"].help == "the number of hidden units"


def test_meta_parameters_are_declared():
    class_args = Train.__xpmtype__.arguments
    assert class_args["out"].is_meta and not class_args["out"].hashed
    assert class_args["lr"].hashed


def test_meta_and_param_annotations_are_the_inner_type_for_type_checkers():
    import typing

    hints = typing.get_type_hints(Model, include_extras=False)
    assert hints["hidden"] is int
    assert Param[int] != Meta[int]


def test_unsupported_type_is_refused_at_class_definition():
    with pytest.raises(ConfigError, match=r"K.x: the type .* is not supported"):
        make_module("xpm_test_unsupported", "from xpm import Config, Param\nclass K(Config):\n    x: Param[bytes]\n")


def test_tags_gathered_from_sub_configurations():
    module = make_module(
        "xpm_test_tags",
        "from xpm import Config, Task, Param\n"
        "class Model(Config):\n    hidden: Param[int]\n"
        "class Train(Config):\n    model: Param[Model]\n    lr: Param[float]\n"
        "class Evaluate(Task):\n    train: Param[Train]\n    runs: Param[list[Model]] = None\n",
    )
    ev = module.Evaluate.C(
        train=module.Train.C(model=module.Model.C(hidden=xpm.tag(10)), lr=xpm.tag(0.5))
    )
    assert ev.tags() == {"hidden": 10, "lr": 0.5}
    ev.tag("runs", [module.Model.C(hidden=3)])
    assert ev.tags()["runs"][0].hidden == 3 and ev.tags()["hidden"] == 10
    # explicit cfg.tag(k, v) sets the value
    m = module.Model.C().tag("hidden", 7)
    assert m.hidden == 7 and m.tags() == {"hidden": 7}


def test_stop_tags_and_conflicts():
    module = make_module(
        "xpm_test_stop_tags",
        "from xpm import Config, Param\n"
        "class Model(Config):\n    hidden: Param[int]\n"
        "class Pair(Config):\n    a: Param[Model]\n    b: Param[Model]\n",
    )
    M, Pair = module.Model, module.Pair
    pair = Pair.C(a=M.C(hidden=xpm.tag(1)), b=xpm.stop_tags(M.C(hidden=xpm.tag(2))))
    assert pair.tags() == {"hidden": 1}
    with pytest.warns(UserWarning, match="tag 'hidden' has two values"):
        tags = Pair.C(a=M.C(hidden=xpm.tag(1)), b=M.C(hidden=xpm.tag(2))).tags()
    assert tags == {"hidden": 2}
    with pytest.raises(ConfigError, match="stop_tags"):
        xpm.stop_tags(3)


def test_tags_never_change_the_identifier_and_tagspath():
    a = Train.C(model=Model.C(hidden=xpm.tag(10)), lr=xpm.tag(0.5))
    b = Train.C(model=Model.C(hidden=10), lr=0.5)
    assert xpm.identifier(a) == xpm.identifier(b)
    assert xpm.tagspath(a) == "hidden=10_lr=0.5"
    from tests.unit.configs import AnyValue

    assert xpm.tagspath(AnyValue.C(value=xpm.tag("a/b"))) == "value=a-b"


def test_path_generator():
    t = Train.C(model=Model.C(hidden=1), lr=0.1)
    before = xpm.identifier(t)
    t.__xpm__.generate_paths(Path("/ws/jobs/train/abc"))
    assert t.out == Path("/ws/jobs/train/abc/model.txt")
    assert xpm.identifier(t) == before
    assert xpm.PathGenerator("x") == xpm.PathGenerator("x")
