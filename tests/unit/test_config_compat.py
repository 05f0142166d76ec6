"""The configuration behaviours experimaestro code relies on (issue 15, item 3).

Each test builds configurations the way code written for experimaestro 2.7.0
does and checks what xpm does with them (values, errors, identifier relations).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated, Generic, Optional, TypeVar

import pytest

import xpm
from tests.helpers import make_module
from xpm import Config, Meta, Param, PathGenerator, Task, field
from xpm.config.base import InstanceConfig
from xpm.config.operations import sealed_set, setmeta
from xpm.config.types import pathgenerator
from xpm.errors import ConfigError, SealedError, ValidationError

T = TypeVar("T")
B = TypeVar("B", bound="Base")


class Base(Config):
    __xpmid__ = "compat.base"


class Child(Base):
    __xpmid__ = "compat.child"


class Other(Config):
    __xpmid__ = "compat.other"


class Holder(Config, Generic[T]):
    __xpmid__ = "compat.holder"
    x: Param[T]
    y: Param[T] = field(default=None)


class Bounded(Config, Generic[B]):
    __xpmid__ = "compat.bounded"
    x: Param[B]


class Outer(Config, Generic[T]):
    __xpmid__ = "compat.outer"
    a: Param[Holder[T]]
    b: Param[T] = field(default=None)


class ChildHolder(Holder[Child]):
    __xpmid__ = "compat.childholder"


class OnlyHolders(Config):
    __xpmid__ = "compat.onlyholders"
    h: Param[Holder[Base]]


# --- optional parameters ---------------------------------------------------------


def test_field_default_none_makes_a_parameter_optional():
    class Opt(Config):
        __xpmid__ = "compat.opt"
        n: Param[int] = field(default=None)
        k: Param[int] = field(default=3)

    cfg = Opt.C()
    cfg.seal()  # no "required but has no value"
    assert cfg.n is None
    assert xpm.identifier(Opt.C()) == xpm.identifier(Opt.C(n=None))
    assert xpm.identifier(Opt.C(n=1)) != xpm.identifier(Opt.C())
    assert cfg.instance().n is None


# --- forward references ------------------------------------------------------------


def test_string_forward_references_including_the_class_itself():
    module = make_module(
        "xpm_test_compat_forward",
        "from typing import Optional\n"
        "from xpm import Config, Param, field\n"
        "class Node(Config):\n"
        "    value: Param[int]\n"
        "    parent: Param[Optional['Node']] = field(default=None)\n"
        "    leaf: Param['Leaf'] = field(default=None)\n"
        "class Leaf(Config):\n"
        "    n: Param[int]\n"
        "class Tree(Config):\n"
        "    root: Param['Node']\n",
    )
    root = module.Node.C(value=1)
    child = module.Node.C(value=2, parent=root, leaf=module.Leaf.C(n=3))
    assert child.parent is root and child.leaf.n == 3
    tree = module.Tree.C(root=child)
    again = module.Node.C(value=2, parent=module.Node.C(value=1), leaf=module.Leaf.C(n=3))
    assert xpm.identifier(tree) == xpm.identifier(module.Tree.C(root=again))
    with pytest.raises(ValidationError, match=r"Node.parent: expected Node \(a configuration\) \| None"):
        module.Node.C(value=1, parent=module.Leaf.C(n=1))


def test_an_unresolvable_forward_reference_names_the_parameter():
    module = make_module(
        "xpm_test_compat_forward_bad",
        "from xpm import Config, Param\nclass A(Config):\n    x: Param['Missing']\n",
    )
    with pytest.raises(NameError, match="A.x: cannot resolve"):
        module.A.C()


# --- generic classes --------------------------------------------------------------


def test_a_type_variable_binds_per_configuration():
    h = Holder.C(x=1)
    h.x = 2
    with pytest.raises(ValidationError, match=r"Holder.x: .*already int, not str"):
        h.x = "a"
    Holder.C(x="a string")  # another configuration binds on its own
    with pytest.raises(TypeError):
        Holder.C(x=1, y="a")


def test_a_binding_widens_to_a_common_base_and_breaks_on_unrelated_classes():
    h = Holder.C(x=Child.C())
    h.y = Base.C()  # widened to Base
    h.x = Child.C()
    with pytest.raises(ValidationError):
        h.y = Other.C()


def test_bindings_are_shared_through_the_tree():
    Outer.C(a=Holder.C(x=1), b=2)
    with pytest.raises(ValidationError, match="Outer"):
        Outer.C(a=Holder.C(x=1), b="s")
    with pytest.raises(ValidationError):
        Holder.C(x=Holder.C(x=1, y=2), y=Holder.C(x="a", y="b"))


def test_a_bound_type_variable_refuses_other_classes():
    Bounded.C(x=Child.C())
    with pytest.raises(ValidationError, match=r"Bounded.x: .*Other is not a subclass of Base"):
        Bounded.C(x=Other.C())


def test_generic_classes_as_parameter_types():
    OnlyHolders.C(h=Holder.C(x=Base.C()))
    OnlyHolders.C(h=ChildHolder.C(x=Child.C()))
    with pytest.raises(ValidationError, match="OnlyHolders.h: expected Holder"):
        OnlyHolders.C(h=Base.C())
    # Generic parameters do not change identifiers: the values do
    assert xpm.identifier(Holder.C(x=1)) == xpm.identifier(Holder.C(x=1))
    assert xpm.identifier(Holder.C(x=1)) != xpm.identifier(Holder.C(x="1"))


# --- sealing, validation, tags, composition --------------------------------------------


class Checked(Config):
    __xpmid__ = "compat.checked"
    low: Param[int]
    high: Param[int]

    def __validate__(self):
        super().__validate__()
        if self.low > self.high:
            raise ValueError("low > high")


def test_seal_is_public_and_validate_has_a_base():
    cfg = Checked.C(low=1, high=2)
    assert cfg.seal() is cfg and cfg.__xpm__.sealed
    with pytest.raises(SealedError):
        cfg.low = 0
    with pytest.raises(ValueError, match="low > high"):
        Checked.C(low=3, high=2).seal()


def test_sealed_configurations_hash_by_identifier():
    a, b = Checked.C(low=1, high=2), Checked.C(low=1, high=2)
    with pytest.raises(TypeError, match="not sealed"):
        hash(a)
    assert a == b  # equal values
    s = sealed_set(a, b, Checked.C(low=0, high=2), 3)
    assert len(s) == 3 and a in s


def test_free_tags_on_names_that_are_not_parameters():
    cfg = Checked.C(low=1, high=2).tag("dataset", "msmarco")
    cfg.tag("low", 1)
    assert cfg.tags() == {"dataset": "msmarco", "low": 1}
    assert xpm.identifier(cfg) == xpm.identifier(Checked.C(low=1, high=2))


class Inner(Config):
    __xpmid__ = "compat.inner"
    x: Param[int]


class Middle(Config):
    __xpmid__ = "compat.middle"
    inner: Param[Inner]


class Top(Config):
    __xpmid__ = "compat.top"
    middle: Param[Middle]
    n: Param[int] = field(default=0)


class TwoInners(Config):
    __xpmid__ = "compat.twoinners"
    a: Param[Inner]
    b: Param[Inner]


def test_composition_with_the_matmul_operator():
    middle = Middle.C() @ Inner.C(x=1)
    assert middle.inner.x == 1
    top = Top.C() @ Middle.C() @ Inner.C(x=2)
    assert top.middle.inner.x == 2
    assert xpm.identifier(top) == xpm.identifier(Top.C(middle=Middle.C(inner=Inner.C(x=2))))
    with pytest.raises(ConfigError, match="Top @ Inner: no parameter takes a Inner"):
        Top.C() @ Inner.C(x=1)
    with pytest.raises(ConfigError, match="parameters a, b all take"):
        TwoInners.C() @ Inner.C(x=1)


def test_plain_attributes_stay_out_of_the_identifier():
    cfg = Inner.C(x=1)
    cfg.cache = {"loaded": True}
    assert cfg.cache == {"loaded": True}
    assert xpm.identifier(cfg) == xpm.identifier(Inner.C(x=1))


# --- instances -----------------------------------------------------------------------


class Model(Config):
    __xpmid__ = "compat.model"
    hidden: Param[int]


class Heavy:
    """Stands for a heavy base class (a torch Module): initialised, then given values."""

    def __init__(self):
        object.__setattr__(self, "registered", [])

    def __setattr__(self, name, value):
        self.registered.append(name)
        object.__setattr__(self, name, value)


@Model.value_class()
class TorchModel(Model, Heavy):
    def __post_init__(self):
        self.size = self.hidden * 2


def test_value_classes_build_the_instances():
    assert Model.XPMValue is TorchModel and Model.XPMConfig is Model.__xpmtype__.config_class
    obj = Model.C(hidden=3).instance()
    assert type(obj) is TorchModel and obj.size == 6 and "hidden" in obj.registered
    with pytest.raises(ConfigError, match="must derive from Model"):
        Model.value_class()(Heavy)


def test_instance_keep_and_shared_objects():
    cfg = Middle.C(inner=Inner.C(x=1))
    obj = cfg.instance()
    assert obj.xpmconfig is cfg
    assert not hasattr(cfg.instance(keep=False), "__config__")
    shared = Inner.C(x=5)
    objects: dict = {}
    first = TwoInners.C(a=shared, b=shared).instance(objects=objects)
    assert first.a is first.b
    assert Middle.C(inner=shared).instance(objects=objects).inner is first.a


def test_instance_in_a_directory_context(tmp_path):
    class Out(Config):
        __xpmid__ = "compat.out"
        path: Meta[Path] = field(default_factory=PathGenerator("file.txt"))

    class Ctx:
        path = tmp_path

    assert Out.C().instance(Ctx()).path == tmp_path / "file.txt"


# --- lax values ------------------------------------------------------------------


def test_bool_defaults_written_as_numbers():
    class Flags(Config):
        __xpmid__ = "compat.flags"
        on: Param[bool] = field(default=1)
        off: Param[bool] = field(default=0)

    f = Flags.C()
    assert f.on is True and f.off is False
    assert xpm.identifier(f) == xpm.identifier(Flags.C(on=True, off=False))


# --- meta configurations ------------------------------------------------------------


class Ensemble(Config):
    __xpmid__ = "compat.ensemble"
    first: Param[Model]
    second: Param[Model] = field(default=None)
    more: Param[list[Model]] = field(default_factory=list)


def test_setmeta_leaves_a_configuration_out_of_its_parents_identifier():
    plain = Ensemble.C(first=Model.C(hidden=1))
    marked = Ensemble.C(first=Model.C(hidden=1), second=setmeta(Model.C(hidden=2), True))
    assert xpm.identifier(plain) == xpm.identifier(marked)
    listed = Ensemble.C(first=Model.C(hidden=1), more=[Model.C(hidden=3), setmeta(Model.C(hidden=4), True)])
    assert xpm.identifier(listed) == xpm.identifier(Ensemble.C(first=Model.C(hidden=1), more=[Model.C(hidden=3)]))
    unmarked = setmeta(Model.C(hidden=2), False)
    assert xpm.identifier(Ensemble.C(first=Model.C(hidden=1), second=unmarked)) != xpm.identifier(plain)


# --- InstanceConfig ------------------------------------------------------------------


class SubModel(InstanceConfig):
    __xpmid__ = "compat.submodel"
    value: Param[int] = field(default=100)


class TwoSubs(Config):
    __xpmid__ = "compat.twosubs"
    m1: Param[SubModel]
    m2: Param[SubModel]


def test_instance_configs_tell_shared_from_separate_objects():
    sm1, sm2 = SubModel.C(), SubModel.C()
    shared = TwoSubs.C(m1=sm1, m2=sm1)
    separate = TwoSubs.C(m1=sm1, m2=sm2)
    assert xpm.identifier(shared) != xpm.identifier(separate)
    # The first object with given values keeps the plain identifier
    assert xpm.identifier(sm1) == xpm.identifier(sm2)
    assert xpm.identifier(separate) == xpm.identifier(TwoSubs.C(m1=SubModel.C(), m2=SubModel.C()))
    assert xpm.identifier(shared) == xpm.identifier(TwoSubs.C(m1=sm2, m2=sm2))
    # Different values are different anyway
    assert xpm.identifier(TwoSubs.C(m1=SubModel.C(value=1), m2=SubModel.C(value=2))) != xpm.identifier(separate)
    # and a sealed tree gives the same as an unsealed one
    sealed = TwoSubs.C(m1=SubModel.C(), m2=SubModel.C()).seal()
    assert xpm.identifier(sealed) == xpm.identifier(separate)


# --- __xpmid__ with the Identifier builder ---------------------------------------------


def test_xpmid_may_be_an_object_whose_text_is_the_type_id():
    class Named:
        def __str__(self):
            return "My.Package.Thing"

    class Thing(Config):
        __xpmid__ = Named()
        x: Param[int]

    assert Thing.__xpmtype__.identifier == "my.package.thing"


def test_pathgenerator_annotation(tmp_path):
    class Gen(Task):
        __xpmid__ = "compat.gen"
        x: Param[int]
        out: Annotated[Path, pathgenerator("out.txt")]

    cfg = Gen.C(x=1)
    assert xpm.identifier(cfg) == xpm.identifier(Gen.C(x=1))
    cfg.__xpm__.generate_paths(tmp_path)
    assert cfg.out == tmp_path / "out.txt"


def test_near_miss_attribute_warns_once_per_assignment():
    cfg = Model.C(hidden=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cfg.hiddn = 3
    assert any("did you mean 'hidden'" in str(w.message) for w in caught)
    assert Optional is not None  # typing import kept for forward references above


class Cutoff(Config):
    __xpmid__ = "compat.cutoff"
    name: Param[str]
    at: Param[int] = field(default=0)

    def __matmul__(self, cutoff: int) -> "Cutoff":
        return Cutoff.C(name=self.name, at=cutoff)


def test_a_class_with_its_own_matmul_keeps_it():
    assert (Cutoff.C(name="AP") @ 10).at == 10
    assert (Middle.C() @ Inner.C(x=3)).inner.x == 3


def test_experiment_configurations_accept_mutable_defaults_without_sharing_them():
    from xpm.experiments import ConfigurationBase, configuration

    @configuration()
    class Settings(ConfigurationBase):
        patterns: list[str] = [r"\.bias$"]
        table: dict[str, int] = {"a": 1}

    one, two = Settings(id="x"), Settings(id="y")
    assert one.patterns == [r"\.bias$"] and one.table == {"a": 1}
    one.patterns.append("more")
    assert two.patterns == [r"\.bias$"]
