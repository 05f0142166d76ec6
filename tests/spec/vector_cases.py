"""The Python side of ``spec/vectors/identifiers.json``.

Every vector case is a function, registered with :func:`case`, that builds a fresh
configuration. :func:`describe` turns a configuration into the language-neutral
description stored in the vectors file (see ``spec/identifiers.md``, section
"Vectors file"); ``scripts/gen_identifier_vectors.py`` adds the identifier and the
preimage computed by xpm.

Every class has an explicit ``__xpmid__`` (and the enum an explicit ``__module__``)
so that the identifiers do not depend on where this module is imported from.
Several classes share a type id on purpose: they stand for the same class before and
after a change (a new ``Meta``, a new parameter with ``ignore_default``...), which is
what the ``equal`` relations check.

Nothing here imports ``xpm.ids``: the descriptions come from the declarations
(``cfg.__xpm__.xpmtype.arguments``) and the values, not from the encoder.
"""

from __future__ import annotations

import enum
import json
import warnings
from pathlib import Path, PurePath
from typing import Any, Callable, Generic, TypeVar

from xpm import Config, Constant, LightweightTask, Meta, Option, Param, PathGenerator, Task, field
from xpm.config.base import ConfigMixin, InstanceConfig
from xpm.config.deprecate import deprecate
from xpm.config.operations import setmeta
from xpm.config.partial import param_group

# ---------------------------------------------------------------------------
# Classes
# ---------------------------------------------------------------------------


class Color(enum.Enum):
    RED = 1
    GREEN = 2


# Enum members are encoded with `module.qualname` of their class (not lower-cased).
Color.__module__ = "vec"


class Model(Config):
    __xpmid__ = "vec.model"
    hidden: Param[int]


class BigModel(Model):
    """A subclass, given where a Model is expected."""

    __xpmid__ = "vec.bigmodel"
    layers: Param[int] = field(default=2)


# The same type id "vec.model", with parameters that must not change identifiers
# (or must, for `field(default=...)` and constants).

with warnings.catch_warnings():
    # Option and bare defaults are deprecated spellings: they are exercised on purpose.
    warnings.simplefilter("ignore", DeprecationWarning)

    class ModelWithMeta(Config):
        __xpmid__ = "vec.model"
        hidden: Param[int]
        verbose: Meta[bool] = field(default=False)
        device: Meta[str] = field(default="cpu")
        threads: Option[int] = field(default=1)

    class ModelBareDefault(Config):
        __xpmid__ = "vec.model"
        hidden: Param[int]
        extra: Param[int] = 5

    class ModelConstant(Config):
        __xpmid__ = "vec.model"
        hidden: Param[int]
        version: Constant[int] = 2


class ModelWithPaths(Config):
    __xpmid__ = "vec.model"
    hidden: Param[int]
    data: Param[Path]
    cache: Param[Path | None]
    files: Param[list[Path]]
    index: Param[dict[str, Path]]


class ModelFieldDefault(Config):
    __xpmid__ = "vec.model"
    hidden: Param[int]
    extra: Param[int] = field(default=5)


class ModelIgnoreDefault(Config):
    __xpmid__ = "vec.model"
    hidden: Param[int]
    extra: Param[int] = field(default=5, ignore_default=True)


class ModelLegacyIgnoreDefault(Config):
    __xpmid__ = "vec.model"
    hidden: Param[int]
    extra: Param[int] = field(ignore_default=5)  # legacy: default=5, ignore_default=True


class ModelFactoryDefault(Config):
    __xpmid__ = "vec.model"
    hidden: Param[int]
    extra: Param[list[int]] = field(default_factory=lambda: [1, 2])


class ModelFactoryIgnored(Config):
    __xpmid__ = "vec.model"
    hidden: Param[int]
    extra: Param[list[int]] = field(default_factory=list, ignore_default=True)


class ModelOptional(Config):
    __xpmid__ = "vec.model"
    hidden: Param[int]
    extra: Param[int | None]


class ModelOptionalDefault(Config):
    __xpmid__ = "vec.model"
    hidden: Param[int]
    extra: Param[int | None] = field(default=5, ignore_default=True)


class MixedCaseId(Config):
    __xpmid__ = "Vec.MixedCase.Model"
    hidden: Param[int]


class LowerCaseId(Config):
    __xpmid__ = "vec.mixedcase.model"
    hidden: Param[int]


class OrderAB(Config):
    __xpmid__ = "vec.order"
    alpha: Param[int]
    beta: Param[str]


class OrderBA(Config):
    __xpmid__ = "vec.order"
    beta: Param[str]
    alpha: Param[int]


class FieldNames(Config):
    """Names whose UTF-8 order differs from their UTF-16 order (﨎 U+FA0E < 𐐀 U+10400)."""

    __xpmid__ = "vec.fieldnames"
    𐐀: Param[int]
    﨎: Param[int]
    中: Param[int]
    é: Param[int]
    b: Param[int]
    a_b: Param[int]
    ab: Param[int]
    a0: Param[int]
    B: Param[int]


class BoolCfg(Config):
    __xpmid__ = "vec.bool"
    flag: Param[bool]


class IntCfg(Config):
    __xpmid__ = "vec.int"
    n: Param[int]


class FloatCfg(Config):
    __xpmid__ = "vec.float"
    x: Param[float]


class StrCfg(Config):
    __xpmid__ = "vec.str"
    s: Param[str]


class AnyCfg(Config):
    __xpmid__ = "vec.any"
    v: Param[Any]


class EnumCfg(Config):
    __xpmid__ = "vec.enum"
    color: Param[Color]


class ListCfg(Config):
    __xpmid__ = "vec.list"
    items: Param[list[int]]


class FloatListCfg(Config):
    __xpmid__ = "vec.floatlist"
    xs: Param[list[float]]


class TupleCfg(Config):
    __xpmid__ = "vec.tuple"
    pair: Param[tuple[int, str]]


class DictCfg(Config):
    __xpmid__ = "vec.dict"
    d: Param[dict[str, int]]


class SetCfg(Config):
    __xpmid__ = "vec.set"
    s: Param[set[str]]


class UnionCfg(Config):
    __xpmid__ = "vec.union"
    x: Param[int | float]


class Encoder(Config):
    __xpmid__ = "vec.encoder"
    model: Param[Model]
    dropout: Param[float] = field(default=0.0, ignore_default=True)


class Pipeline(Config):
    __xpmid__ = "vec.pipeline"
    encoder: Param[Encoder]
    name: Param[str]


class Pair(Config):
    __xpmid__ = "vec.pair"
    left: Param[Model]
    right: Param[Model]


class Node(Config):
    __xpmid__ = "vec.node"
    label: Param[str]
    link: Param[Node | None]
    others: Param[list[Node]] = field(default_factory=list, ignore_default=True)


class Checkpoint(Config):
    __xpmid__ = "vec.checkpoint"
    model: Param[Model]
    step: Param[int]
    path: Meta[Path] = field(default_factory=PathGenerator("checkpoint.pt"))


class Train(Task):
    __xpmid__ = "vec.train"
    model: Param[Model]
    lr: Param[float]
    epochs: Param[int] = field(default=10, ignore_default=True)
    out: Meta[Path] = field(default_factory=PathGenerator("model.pt"))

    def task_outputs(self, dep: Callable[[Any], Any]) -> Any:
        return dep(Checkpoint.C(model=self.model, step=self.epochs))


class Distill(Task):
    """Its output is (a copy of) one of its own parameters."""

    __xpmid__ = "vec.distill"
    teacher: Param[Model]

    def task_outputs(self, dep: Callable[[Any], Any]) -> Any:
        return dep(self.teacher)


class Evaluate(Task):
    __xpmid__ = "vec.evaluate"
    checkpoint: Param[Checkpoint]
    metric: Param[str] = field(default="accuracy")


class Warmup(LightweightTask):
    __xpmid__ = "vec.warmup"
    steps: Param[int]


# ---------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------


class Case:
    __slots__ = ("name", "description", "build")

    def __init__(self, name: str, description: str, build: Callable[[], ConfigMixin]):
        self.name = name
        self.description = description
        self.build = build


#: name -> case, in the order of the vectors file
CASES: dict[str, Case] = {}

#: ("equal" | "different", case name, case name)
RELATIONS: list[tuple[str, str, str]] = []


def case(name: str, description: str) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
    def register(build: Callable[[], Any]) -> Callable[[], Any]:
        if name in CASES:
            raise ValueError(f"duplicate case name {name!r}")
        CASES[name] = Case(name, description, build)
        return build

    return register


def equal(*names: str) -> None:
    """All of ``names`` have the identifier of the first."""
    for other in names[1:]:
        RELATIONS.append(("equal", names[0], other))


def different(*names: str) -> None:
    """Every two of ``names`` have different identifiers."""
    for i, first in enumerate(names):
        for other in names[i + 1 :]:
            RELATIONS.append(("different", first, other))


# --- the base configuration ---------------------------------------------------------


@case("model_basic", "vec.model with hidden=10: the reference most other cases compare with.")
def _model_basic():
    return Model.C(hidden=10)


@case("model_other_value", "vec.model with hidden=11: a different value gives a different identifier.")
def _model_other_value():
    return Model.C(hidden=11)


different("model_basic", "model_other_value")

# --- bool ---------------------------------------------------------------------------


@case("bool_true", "A bool parameter set to true: B 01.")
def _bool_true():
    return BoolCfg.C(flag=True)


@case("bool_false", "A bool parameter set to false: B 00.")
def _bool_false():
    return BoolCfg.C(flag=False)


different("bool_true", "bool_false")

# --- int ----------------------------------------------------------------------------


@case("int_zero", "An int parameter set to 0.")
def _int_zero():
    return IntCfg.C(n=0)


@case("int_negative", "An int parameter set to -42: the sign is part of the decimal text.")
def _int_negative():
    return IntCfg.C(n=-42)


@case("int_huge", "An int beyond 64 bits (2**100 + 1): integers have no size limit.")
def _int_huge():
    return IntCfg.C(n=2**100 + 1)


@case("int_huge_negative", "A negative int beyond 64 bits (-(2**70)).")
def _int_huge_negative():
    return IntCfg.C(n=-(2**70))


different("int_zero", "int_negative", "int_huge", "int_huge_negative")

# --- float --------------------------------------------------------------------------


@case("float_half", "A float parameter set to 0.5.")
def _float_half():
    return FloatCfg.C(x=0.5)


@case("float_one_tenth", "A float parameter set to 0.1 (not exact in binary: 3fb999999999999a).")
def _float_one_tenth():
    return FloatCfg.C(x=0.1)


@case("float_zero", "A float parameter set to 0.0.")
def _float_zero():
    return FloatCfg.C(x=0.0)


@case("float_negative_zero", "A float parameter set to -0.0: encoded as 0.0.")
def _float_negative_zero():
    return FloatCfg.C(x=-0.0)


@case("float_nan", "A float parameter set to NaN: encoded as 7ff8000000000000.")
def _float_nan():
    return FloatCfg.C(x=float("nan"))


@case("float_inf", "A float parameter set to +infinity.")
def _float_inf():
    return FloatCfg.C(x=float("inf"))


@case("float_negative_inf", "A float parameter set to -infinity.")
def _float_negative_inf():
    return FloatCfg.C(x=float("-inf"))


@case("float_subnormal", "The smallest positive subnormal float, 5e-324.")
def _float_subnormal():
    return FloatCfg.C(x=5e-324)


@case("float_max", "The largest finite float, 1.7976931348623157e+308.")
def _float_max():
    return FloatCfg.C(x=1.7976931348623157e308)


@case("float_two", "A float parameter set to 2.0.")
def _float_two():
    return FloatCfg.C(x=2.0)


@case("float_from_int", "A float parameter given the int 2: stored (and encoded) as the float 2.0.")
def _float_from_int():
    return FloatCfg.C(x=2)


equal("float_zero", "float_negative_zero")
equal("float_two", "float_from_int")
different("float_half", "float_one_tenth", "float_zero", "float_nan", "float_inf", "float_negative_inf")
different("float_inf", "float_negative_inf")


@case("float_list_from_ints", "A list[float] parameter given [1, 2.5]: the int item becomes 1.0.")
def _float_list_from_ints():
    return FloatListCfg.C(xs=[1, 2.5])


@case("float_list", "A list[float] parameter given [1.0, 2.5].")
def _float_list():
    return FloatListCfg.C(xs=[1.0, 2.5])


equal("float_list", "float_list_from_ints")


@case("union_int_stays_int", "An int | float parameter given 1: the int stays an int.")
def _union_int():
    return UnionCfg.C(x=1)


@case("union_float", "An int | float parameter given 1.0.")
def _union_float():
    return UnionCfg.C(x=1.0)


different("union_int_stays_int", "union_float")

# --- str ----------------------------------------------------------------------------


@case("str_empty", "A str parameter set to the empty string: S + u64 0.")
def _str_empty():
    return StrCfg.C(s="")


@case("str_unicode", "Non-ASCII text (2-, 3- and 4-byte UTF-8 sequences): the length counts bytes.")
def _str_unicode():
    return StrCfg.C(s="héllo, 世界 🎉")


@case("str_control", "Text with a NUL byte and a newline: strings are length-prefixed, not terminated.")
def _str_control():
    return StrCfg.C(s="a\x00b\n")


different("str_empty", "str_unicode", "str_control")

# --- kinds are distinct: "1", 1, 1.0, True, None -------------------------------------------


@case("any_str_one", 'An Any parameter set to the string "1".')
def _any_str_one():
    return AnyCfg.C(v="1")


@case("any_int_one", "An Any parameter set to the int 1.")
def _any_int_one():
    return AnyCfg.C(v=1)


@case("any_float_one", "An Any parameter set to the float 1.0 (no int conversion question: it is a float).")
def _any_float_one():
    return AnyCfg.C(v=1.0)


@case("any_bool_true", "An Any parameter set to True (a bool, not the int 1).")
def _any_bool_true():
    return AnyCfg.C(v=True)


@case(
    "any_none",
    "An Any parameter (no default) set to None: a parameter with no default whose value is None is left out.",
)
def _any_none():
    return AnyCfg.C(v=None)


different("any_str_one", "any_int_one", "any_float_one", "any_bool_true", "any_none")

# --- enums --------------------------------------------------------------------------


@case("enum_red", "An enum member: E + the enum's module.qualname (case kept) + the member name.")
def _enum_red():
    return EnumCfg.C(color=Color.RED)


@case("enum_green", "Another member of the same enum.")
def _enum_green():
    return EnumCfg.C(color=Color.GREEN)


different("enum_red", "enum_green")

# --- lists and tuples ---------------------------------------------------------------


@case("list_empty", "An empty list: L + u64 0.")
def _list_empty():
    return ListCfg.C(items=[])


@case("list_single", "A list with one item.")
def _list_single():
    return ListCfg.C(items=[7])


@case("list_ordered", "The list [1, 2, 3].")
def _list_ordered():
    return ListCfg.C(items=[1, 2, 3])


@case("list_reordered", "The list [3, 2, 1]: the order of list items matters.")
def _list_reordered():
    return ListCfg.C(items=[3, 2, 1])


@case("list_given_tuple", "A list[int] parameter given the tuple (1, 2, 3): stored as a list.")
def _list_given_tuple():
    return ListCfg.C(items=(1, 2, 3))


different("list_empty", "list_single", "list_ordered", "list_reordered")
equal("list_ordered", "list_given_tuple")


@case("any_list_1_2", "An Any parameter set to the list [1, 2].")
def _any_list_1_2():
    return AnyCfg.C(v=[1, 2])


@case("any_tuple_1_2", "An Any parameter set to the tuple (1, 2): a tuple is not a list.")
def _any_tuple_1_2():
    return AnyCfg.C(v=(1, 2))


@case("any_list_nested_1_2", "An Any parameter set to [[1], 2]: nesting is part of the encoding.")
def _any_list_nested_1_2():
    return AnyCfg.C(v=[[1], 2])


@case("any_nested_lists", "Nested lists, an empty list inside, a None item: [[1, 2], [], [[3]], [None]].")
def _any_nested_lists():
    return AnyCfg.C(v=[[1, 2], [], [[3]], [None]])


different("any_list_1_2", "any_tuple_1_2", "any_list_nested_1_2")


@case("tuple_typed", "A tuple[int, str] parameter set to (3, 'x').")
def _tuple_typed():
    return TupleCfg.C(pair=(3, "x"))


# --- dicts --------------------------------------------------------------------------


@case("dict_str_keys", "A dict[str, int] built as {'b': 2, 'a': 1, 'aa': 3}: entries sorted by encoded key.")
def _dict_str_keys():
    return DictCfg.C(d={"b": 2, "a": 1, "aa": 3})


@case("dict_str_keys_reordered", "The same dict built in another order: {'aa': 3, 'a': 1, 'b': 2}.")
def _dict_str_keys_reordered():
    return DictCfg.C(d={"aa": 3, "a": 1, "b": 2})


@case("dict_empty", "An empty dict: D + u64 0.")
def _dict_empty():
    return DictCfg.C(d={})


equal("dict_str_keys", "dict_str_keys_reordered")
different("dict_str_keys", "dict_empty")


@case(
    "any_dict_mixed_keys",
    "A dict with keys of several kinds (int, str, float, None, tuple, bool): sorted by their encodings.",
)
def _any_dict_mixed_keys():
    return AnyCfg.C(v={"1": "str", 1: "int", 2.5: "float", None: "none", (1, 2): "tuple", False: "bool"})


@case("any_dict_nested", "Dicts and lists inside a dict.")
def _any_dict_nested():
    return AnyCfg.C(v={"outer": {"inner": [1, {"x": None}]}, "list": [{"b": 1, "a": 2}]})


# --- sets ---------------------------------------------------------------------------


@case("set_strings", "A set[str] built from ['aa', 'z', 'm']: elements sorted by encoding (so 'z' before 'aa').")
def _set_strings():
    return SetCfg.C(s={"aa", "z", "m"})


@case("set_strings_reordered", "The same set built from ['m', 'aa', 'z'].")
def _set_strings_reordered():
    return SetCfg.C(s=["m", "aa", "z"])


@case("set_empty", "An empty set: X + u64 0.")
def _set_empty():
    return SetCfg.C(s=set())


equal("set_strings", "set_strings_reordered")
different("set_strings", "set_empty")


@case("any_set_mixed", "A set of several kinds: {1, '1', 2.5, None, (1, 2), frozenset({3})}.")
def _any_set_mixed():
    return AnyCfg.C(v={1, "1", 2.5, None, (1, 2), frozenset({3})})


# --- nested configurations ----------------------------------------------------------


@case("nested_depth2", "A configuration holding another: C + the 32-byte digest of vec.model(hidden=10).")
def _nested_depth2():
    return Encoder.C(model=Model.C(hidden=10))


@case("nested_depth3", "Three levels: pipeline -> encoder -> model.")
def _nested_depth3():
    return Pipeline.C(encoder=Encoder.C(model=Model.C(hidden=10), dropout=0.5), name="p")


@case("worked_example", "The worked example of spec/identifiers.md: an encoder with a model and dropout 0.5.")
def _worked_example():
    return Encoder.C(model=Model.C(hidden=10), dropout=0.5)


@case("shared_subconfig", "The same configuration object used for two parameters.")
def _shared_subconfig():
    model = Model.C(hidden=10)
    return Pair.C(left=model, right=model)


@case("shared_equal_copies", "Two distinct but equal configurations: only values count, not object identity.")
def _shared_equal_copies():
    return Pair.C(left=Model.C(hidden=10), right=Model.C(hidden=10))


@case("pair_different", "Two different configurations.")
def _pair_different():
    return Pair.C(left=Model.C(hidden=10), right=Model.C(hidden=11))


equal("shared_subconfig", "shared_equal_copies")
different("shared_subconfig", "pair_different")


@case("subclass_for_parent_param", "A vec.bigmodel (subclass of vec.model) given for a Model parameter.")
def _subclass_for_parent_param():
    return Encoder.C(model=BigModel.C(hidden=10))


different("nested_depth2", "subclass_for_parent_param", "worked_example")


@case("any_list_of_configs", "Configurations inside a list.")
def _any_list_of_configs():
    return AnyCfg.C(v=[Model.C(hidden=1), Model.C(hidden=2)])


# --- parameters that do not enter ---------------------------------------------------------


@case("meta_unset", "Meta and Option parameters at their defaults: they never enter.")
def _meta_unset():
    return ModelWithMeta.C(hidden=10)


@case("meta_set", "Meta and Option parameters given values: they still never enter.")
def _meta_set():
    return ModelWithMeta.C(hidden=10, verbose=True, device="cuda:0", threads=8)


@case("path_params", "Parameters whose type involves Path (Path, Path | None, list[Path], dict[str, Path]).")
def _path_params():
    return ModelWithPaths.C(hidden=10, data="/data/train", cache="/tmp/cache", files=["a.txt"], index={"x": "/x"})


equal("model_basic", "meta_unset", "meta_set", "path_params")

# --- defaults -----------------------------------------------------------------------


@case("field_default_at_default", "field(default=5) left at its default: it enters (ignore_default is false).")
def _field_default_at_default():
    return ModelFieldDefault.C(hidden=10)


@case("field_default_given", "field(default=5) given 5 explicitly: same as leaving it at its default.")
def _field_default_given():
    return ModelFieldDefault.C(hidden=10, extra=5)


equal("field_default_at_default", "field_default_given")
different("field_default_at_default", "model_basic")


@case("ignore_default_at_default", "field(default=5, ignore_default=True) at its default: left out.")
def _ignore_default_at_default():
    return ModelIgnoreDefault.C(hidden=10)


@case("ignore_default_given", "field(default=5, ignore_default=True) given 5 explicitly: left out too.")
def _ignore_default_given():
    return ModelIgnoreDefault.C(hidden=10, extra=5)


@case("ignore_default_overridden", "field(default=5, ignore_default=True) given 6: it enters.")
def _ignore_default_overridden():
    return ModelIgnoreDefault.C(hidden=10, extra=6)


@case("bare_default_at_default", "A bare default (extra: Param[int] = 5) acts as ignore_default: left out.")
def _bare_default_at_default():
    return ModelBareDefault.C(hidden=10)


@case("bare_default_overridden", "A bare default given another value (6): it enters.")
def _bare_default_overridden():
    return ModelBareDefault.C(hidden=10, extra=6)


@case("legacy_ignore_default", "field(ignore_default=5), the legacy spelling, at its default: left out.")
def _legacy_ignore_default():
    return ModelLegacyIgnoreDefault.C(hidden=10)


equal("model_basic", "ignore_default_at_default", "ignore_default_given", "bare_default_at_default")
equal("model_basic", "legacy_ignore_default")
equal("ignore_default_overridden", "bare_default_overridden")
different("model_basic", "ignore_default_overridden")
different("field_default_at_default", "ignore_default_overridden")


@case("factory_default", "field(default_factory=lambda: [1, 2]) on a Param: the default enters.")
def _factory_default():
    return ModelFactoryDefault.C(hidden=10)


@case("factory_default_given", "The same parameter given [1, 2] explicitly.")
def _factory_default_given():
    return ModelFactoryDefault.C(hidden=10, extra=[1, 2])


@case("factory_ignored_at_default", "field(default_factory=list, ignore_default=True) at its default: left out.")
def _factory_ignored_at_default():
    return ModelFactoryIgnored.C(hidden=10)


@case("factory_ignored_overridden", "field(default_factory=list, ignore_default=True) given [1, 2]: it enters.")
def _factory_ignored_overridden():
    return ModelFactoryIgnored.C(hidden=10, extra=[1, 2])


equal("factory_default", "factory_default_given", "factory_ignored_overridden")
equal("model_basic", "factory_ignored_at_default")
different("model_basic", "factory_default")

# --- optional parameters --------------------------------------------------------------


@case("optional_unset", "An optional parameter (int | None, no default) never set: left out.")
def _optional_unset():
    return ModelOptional.C(hidden=10)


@case("optional_none", "An optional parameter (int | None, no default) set to None: left out.")
def _optional_none():
    return ModelOptional.C(hidden=10, extra=None)


@case("optional_set", "An optional parameter set to 0: it enters.")
def _optional_set():
    return ModelOptional.C(hidden=10, extra=0)


@case("optional_default_none", "int | None with field(default=5, ignore_default=True) set to None: None enters (N).")
def _optional_default_none():
    return ModelOptionalDefault.C(hidden=10, extra=None)


@case("optional_default_at_default", "int | None with field(default=5, ignore_default=True) at its default.")
def _optional_default_at_default():
    return ModelOptionalDefault.C(hidden=10)


equal("model_basic", "optional_unset", "optional_none", "optional_default_at_default")
different("model_basic", "optional_set", "optional_default_none")
different("optional_set", "optional_default_none")

# --- constants ----------------------------------------------------------------------


@case("constant", "A Constant (version: Constant[int] = 2) always enters, although it is at its default.")
def _constant():
    return ModelConstant.C(hidden=10)


different("model_basic", "constant")

# --- type ids and field order ---------------------------------------------------------


@case("xpmid_mixed_case", "__xpmid__ = 'Vec.MixedCase.Model': the type id is lower-cased.")
def _xpmid_mixed_case():
    return MixedCaseId.C(hidden=10)


@case("xpmid_lower_case", "__xpmid__ = 'vec.mixedcase.model'.")
def _xpmid_lower_case():
    return LowerCaseId.C(hidden=10)


equal("xpmid_mixed_case", "xpmid_lower_case")
different("model_basic", "xpmid_mixed_case")


@case("field_order_ab", "vec.order declaring alpha then beta.")
def _field_order_ab():
    return OrderAB.C(alpha=1, beta="b")


@case("field_order_ba", "vec.order declaring beta then alpha: fields are sorted, declaration order does not count.")
def _field_order_ba():
    return OrderBA.C(alpha=1, beta="b")


equal("field_order_ab", "field_order_ba")


@case("field_names_utf8_order", "Field names sorted by their UTF-8 bytes: B a0 a_b ab b é 中 﨎 𐐀.")
def _field_names_utf8_order():
    names = ["𐐀", "﨎", "中", "é", "b", "a_b", "ab", "a0", "B"]
    return FieldNames.C(**{name: i for i, name in enumerate(names)})


# --- tasks ----------------------------------------------------------------------------


@case("task_basic", "A task: a configuration like any other (its Meta path does not enter).")
def _task_basic():
    return Train.C(model=Model.C(hidden=10), lr=0.01)


@case("task_output", "The output of vec.train (marked by dep()): its preimage carries the task's digest (01 + digest).")
def _task_output():
    return Train.C(model=Model.C(hidden=10), lr=0.01).__xpm_outputs__()


@case("task_output_plain", "The same vec.checkpoint values with no producing task (00).")
def _task_output_plain():
    return Checkpoint.C(model=Model.C(hidden=10), step=10)


@case("task_output_consumed", "A task consuming the output of another task.")
def _task_output_consumed():
    checkpoint = Train.C(model=Model.C(hidden=10), lr=0.01).__xpm_outputs__()
    return Evaluate.C(checkpoint=checkpoint)


@case("task_output_consumed_plain", "The consuming task given the plain checkpoint instead.")
def _task_output_consumed_plain():
    return Evaluate.C(checkpoint=Checkpoint.C(model=Model.C(hidden=10), step=10))


@case("task_output_of_other_run", "The output of vec.train with another learning rate.")
def _task_output_of_other_run():
    return Train.C(model=Model.C(hidden=10), lr=0.1).__xpm_outputs__()


@case("task_output_copy_of_param", "A task output that is (a copy of) the task's own sealed parameter.")
def _task_output_copy_of_param():
    return Distill.C(teacher=Model.C(hidden=10)).__xpm_outputs__()


different("task_output", "task_output_plain", "task_output_of_other_run")
different("task_output_consumed", "task_output_consumed_plain")
different("model_basic", "task_output_copy_of_param")

# --- init tasks -----------------------------------------------------------------------


def _train_with_init(*steps: int) -> ConfigMixin:
    train = Train.C(model=Model.C(hidden=10), lr=0.01)
    train.__xpm__.init_tasks = [Warmup.C(steps=s) for s in steps]
    return train


@case("init_task_one", "A task with one init task (count 1 + its digest).")
def _init_task_one():
    return _train_with_init(100)


@case("init_task_two", "A task with two init tasks.")
def _init_task_two():
    return _train_with_init(100, 200)


@case("init_task_two_swapped", "The same two init tasks in the other order: the order matters.")
def _init_task_two_swapped():
    return _train_with_init(200, 100)


different("task_basic", "init_task_one", "init_task_two", "init_task_two_swapped")
different("init_task_two", "init_task_two_swapped")

# --- cycles ---------------------------------------------------------------------------


@case("cycle_self", "A configuration whose parameter is itself: R + u64 0.")
def _cycle_self():
    node = Node.C(label="self")
    node.link = node
    return node


@case("cycle_self_in_list", "A configuration inside its own list parameter: R 0 as a list item.")
def _cycle_self_in_list():
    node = Node.C(label="self")
    node.others = [node, Node.C(label="leaf")]
    return node


@case("cycle_parent", "A parent whose child refers back to it: R + u64 1 in the child.")
def _cycle_parent():
    parent = Node.C(label="parent")
    parent.link = Node.C(label="child", link=parent)
    return parent


@case("cycle_parent_from_child", "The same two-node cycle, identified from the child.")
def _cycle_parent_from_child():
    parent = Node.C(label="parent")
    child = Node.C(label="child", link=parent)
    parent.link = child
    return child


@case("cycle_grandparent", "A three-node cycle a -> b -> c -> a: R + u64 2 in c.")
def _cycle_grandparent():
    a = Node.C(label="a")
    b = Node.C(label="b")
    c = Node.C(label="c", link=a)
    a.link = b
    b.link = c
    return a


different("cycle_parent", "cycle_parent_from_child")
different("cycle_self", "cycle_self_in_list")


# --- generic classes, setmeta, InstanceConfig, deprecated classes, partial identifiers ---------

T = TypeVar("T")


class GenericHolder(Config, Generic[T]):
    __xpmid__ = "vec.holder"
    x: Param[T]


class HolderAny(Config):
    """The same type id with an Any parameter: a type variable encodes like Any."""

    __xpmid__ = "vec.holder"
    x: Param[Any]


@case("generic_typevar_int", "A generic class whose x: Param[T] is given 1: encoded like any other int.")
def _generic_typevar_int():
    return GenericHolder.C(x=1)


@case("generic_as_any", "The same type id with x: Param[Any] given 1.")
def _generic_as_any():
    return HolderAny.C(x=1)


equal("generic_typevar_int", "generic_as_any")


class MetaPair(Config):
    __xpmid__ = "vec.metapair"
    first: Param[Model]
    second: Param[Model | None] = field(default=None)
    more: Param[list[Model]] = field(default_factory=list)


@case("pair_first_only", "vec.pair with only its first model.")
def _pair_first_only():
    return MetaPair.C(first=Model.C(hidden=1))


@case("pair_second_meta", "The second model is marked meta (setmeta): left out like an unset optional.")
def _pair_second_meta():
    return MetaPair.C(first=Model.C(hidden=1), second=setmeta(Model.C(hidden=2), True))


@case("pair_list_with_meta", "A list holding a model marked meta: the item is dropped from the list.")
def _pair_list_with_meta():
    return MetaPair.C(first=Model.C(hidden=1), more=[Model.C(hidden=3), setmeta(Model.C(hidden=4), True)])


@case("pair_list_without_meta", "The same list without the marked model.")
def _pair_list_without_meta():
    return MetaPair.C(first=Model.C(hidden=1), more=[Model.C(hidden=3)])


@case("pair_second_unmarked", "setmeta(..., False) on the second model: it enters.")
def _pair_second_unmarked():
    return MetaPair.C(first=Model.C(hidden=1), second=setmeta(Model.C(hidden=2), False))


equal("pair_first_only", "pair_second_meta")
equal("pair_list_with_meta", "pair_list_without_meta")
different("pair_first_only", "pair_second_unmarked")


class Layer(InstanceConfig):
    __xpmid__ = "vec.layer"
    size: Param[int] = field(default=100)


class TwoLayers(Config):
    __xpmid__ = "vec.twolayers"
    a: Param[Layer]
    b: Param[Layer]


@case("instance_shared", "One InstanceConfig object used twice: both fields have its plain digest.")
def _instance_shared():
    layer = Layer.C()
    return TwoLayers.C(a=layer, b=layer)


@case("instance_separate", "Two InstanceConfig objects with the same values: the second is told apart.")
def _instance_separate():
    return TwoLayers.C(a=Layer.C(), b=Layer.C())


@case("instance_different_values", "Two InstanceConfig objects with different values: plain digests.")
def _instance_different_values():
    return TwoLayers.C(a=Layer.C(size=1), b=Layer.C(size=2))


different("instance_shared", "instance_separate", "instance_different_values")


class NewStyle(Config):
    __xpmid__ = "vec.newstyle"
    values: Param[list[int]]


class OldStyle(Config):
    __xpmid__ = "vec.oldstyle"
    value: Param[int]

    def __convert__(self):
        return NewStyle.C(values=[self.value])


deprecate(NewStyle)(OldStyle)


class UsesStyle(Config):
    __xpmid__ = "vec.usesstyle"
    style: Param[Config]


@case("deprecated_converted", "A deprecated class inside another: it enters as its conversion.")
def _deprecated_converted():
    return UsesStyle.C(style=OldStyle.C(value=3))


@case("deprecated_target", "The same with the new class given directly.")
def _deprecated_target():
    return UsesStyle.C(style=NewStyle.C(values=[3]))


equal("deprecated_converted", "deprecated_target")


iterations = param_group("iterations")


class Learner(Config):
    __xpmid__ = "vec.learner"
    max_iter: Param[int] = field(groups=[iterations])
    lr: Param[float]


class PartialOf:
    """A vector of a partial identifier: ``config`` without the ``excluded`` parameters, named ``name``."""

    def __init__(self, config: ConfigMixin, name: str, excluded: list[str]):
        self.config = config
        self.name = name
        self.excluded = excluded


@case("partial_iter10", "The partial identifier 'checkpoints' of a learner, max_iter left out (10).")
def _partial_iter10():
    return PartialOf(Learner.C(max_iter=10, lr=0.1), "checkpoints", ["max_iter"])


@case("partial_iter20", "The same with max_iter=20: the same partial identifier.")
def _partial_iter20():
    return PartialOf(Learner.C(max_iter=20, lr=0.1), "checkpoints", ["max_iter"])


@case("partial_other_lr", "lr=0.2: another partial identifier.")
def _partial_other_lr():
    return PartialOf(Learner.C(max_iter=10, lr=0.2), "checkpoints", ["max_iter"])


@case("partial_other_name", "Another partial name with the same parameters: another identifier.")
def _partial_other_name():
    return PartialOf(Learner.C(max_iter=10, lr=0.1), "logs", ["max_iter"])


@case("learner_iter10", "The full identifier of the first learner.")
def _learner_iter10():
    return Learner.C(max_iter=10, lr=0.1)


equal("partial_iter10", "partial_iter20")
different("partial_iter10", "partial_other_lr", "partial_other_name", "learner_iter10")


def identify(built: Any) -> str:
    """The identifier of what a case builds (a configuration, or a :class:`PartialOf`)."""
    import xpm
    from xpm.ids import partial_identifier

    if isinstance(built, PartialOf):
        return partial_identifier(built.config, built.name, frozenset(built.excluded))
    return xpm.identifier(built)


# ---------------------------------------------------------------------------
# Neutral descriptions
# ---------------------------------------------------------------------------


def type_id(cls: type) -> str:
    """The type id by the spec's rule: ``__xpmid__`` or ``module.qualname``, lower-cased."""
    own = cls.__dict__.get("__xpmid__")
    return (own if own is not None else f"{cls.__module__}.{cls.__qualname__}").lower()


def describe(config: ConfigMixin | PartialOf) -> dict[str, Any]:
    """The language-neutral description of a configuration (vectors file format)."""
    if isinstance(config, PartialOf):
        _OBJECT_NUMBERS.clear()
        result = _describe_config(config.config, [])
        result["partial"] = {"name": config.name, "excluded": sorted(config.excluded)}
        return result
    _OBJECT_NUMBERS.clear()
    return _describe_config(config, [])


def _describe_config(config: ConfigMixin, path: list[int]) -> dict[str, Any]:
    info = config.__xpm__
    xpmtype = info.xpmtype
    path = path + [id(info)]
    values = config.__dict__
    fields: dict[str, Any] = {}
    for name, arg in xpmtype.arguments.items():
        if arg.is_meta:
            kind = "meta"
        elif arg.is_constant:
            kind = "constant"
        else:
            kind = "param"
        entry: dict[str, Any] = {
            "kind": kind,
            "path": bool(arg.vtype.has_path),
            "optional": bool(arg.optional),
            "ignore_default": bool(arg.ignore_default),
        }
        if arg.has_default:
            entry["default"] = describe_value(arg.default, [])
        if name in values:
            entry["value"] = describe_value(values[name], path)
        fields[name] = entry
    result: dict[str, Any] = {
        "type": type_id(xpmtype.cls),
        "fields": fields,
        "init_tasks": [_describe_config(init, path) for init in info.init_tasks],
    }
    if info.task is not None and info.task is not config:
        result["task"] = _describe_config(info.task, path)
    if info.meta:
        result["meta"] = True
    if isinstance(config, InstanceConfig):
        # distinct objects get distinct numbers, in the order the description meets them
        result["instance"] = _OBJECT_NUMBERS.setdefault(id(info), len(_OBJECT_NUMBERS))
    if xpmtype.deprecated:
        result["converted"] = _describe_config(config.__convert__(), path[:-1])
    return result


#: in the description being made, the numbers given to InstanceConfig objects (by id of their info)
_OBJECT_NUMBERS: dict[int, int] = {}


def describe_value(value: Any, path: list[int]) -> dict[str, Any]:
    """The neutral description of a value; ``path`` holds the configurations being described."""
    if value is None:
        return {"none": None}
    if isinstance(value, ConfigMixin):
        key = id(value.__xpm__)
        if key in path:
            return {"ancestor": len(path) - 1 - path.index(key)}
        return {"config": _describe_config(value, path)}
    if isinstance(value, enum.Enum):
        cls = type(value)
        return {"enum": {"type": f"{cls.__module__}.{cls.__qualname__}", "member": value.name}}
    if isinstance(value, bool):
        return {"bool": value}
    if isinstance(value, int):
        return {"int": str(int(value))}
    if isinstance(value, float):
        return {"float": repr(float(value))}
    if isinstance(value, str):
        return {"str": str(value)}
    if isinstance(value, list):
        return {"list": [describe_value(v, path) for v in value]}
    if isinstance(value, tuple):
        return {"tuple": [describe_value(v, path) for v in value]}
    if isinstance(value, dict):
        return {"dict": [[describe_value(k, path), describe_value(v, path)] for k, v in value.items()]}
    if isinstance(value, (set, frozenset)):
        # Python's set order varies between runs (string hashing): list the elements
        # in a fixed order, which is not the encoding order.
        items = [describe_value(v, path) for v in value]
        return {"set": sorted(items, key=lambda d: json.dumps(d, sort_keys=True, ensure_ascii=False))}
    if isinstance(value, PathGenerator):
        return {"path_generator": value.path.as_posix()}
    if isinstance(value, PurePath):
        return {"path": value.as_posix()}
    raise TypeError(f"no neutral description for a value of type {type(value).__name__}")
