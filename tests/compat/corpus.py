"""A module written for experimaestro 2.7.0's documented API, unchanged: the identifier corpus.

It is imported as is by experimaestro itself (``scripts/compat/relations.py``
records which of its configurations share an identifier) and by xpm through the
drop-in import (``tests/compat/test_relations.py`` checks xpm finds the same
relations). Only the ``from experimaestro import ...`` lines name a library.
"""

from enum import Enum
from pathlib import Path
from typing import Dict, Generic, List, Optional, TypeVar, Union

from experimaestro import (
    Config,
    Constant,
    InstanceConfig,
    Meta,
    Param,
    deprecate,
    field,
    setmeta,
    tag,
)

T = TypeVar("T")


class Color(Enum):
    RED = 1
    BLUE = 2


class Numbers(Config):
    __xpmid__ = "corpus.numbers"
    i: Param[int] = field(default=0)
    x: Param[float] = field(default=0.0)
    flag: Param[bool] = field(default=False)
    either: Param[Union[int, str]] = field(default=0)


class Model(Config):
    __xpmid__ = "corpus.model"
    hidden: Param[int]


class BigModel(Model):
    __xpmid__ = "corpus.bigmodel"
    layers: Param[int] = field(default=2)


class ModelWithMeta(Config):
    """The same type id as Model, with a Meta and a Path: identifiers must not change."""

    __xpmid__ = "corpus.model"
    hidden: Param[int]
    device: Meta[str] = field(default="cpu")
    data: Param[Path] = field(default=Path("/tmp"))


class ModelWithNew(Config):
    """The same type id, with a parameter added at an ignored default."""

    __xpmid__ = "corpus.model"
    hidden: Param[int]
    dropout: Param[float] = field(default=0.0, ignore_default=True)


class ModelWithDefault(Config):
    """The same type id, with a parameter added at a default that enters."""

    __xpmid__ = "corpus.model"
    hidden: Param[int]
    dropout: Param[float] = field(default=0.0)


class ModelWithOptional(Config):
    __xpmid__ = "corpus.model"
    hidden: Param[int]
    extra: Param[Optional[int]]
    other: Param[int] = field(default=None)


class ModelWithConstant(Config):
    __xpmid__ = "corpus.model"
    hidden: Param[int]
    version: Constant[int] = 2


class Containers(Config):
    __xpmid__ = "corpus.containers"
    items: Param[List[int]] = field(default_factory=list)
    table: Param[Dict[str, int]] = field(default_factory=dict)
    color: Param[Color] = field(default=Color.RED)


class Pair(Config):
    __xpmid__ = "corpus.pair"
    first: Param[Model]
    second: Param[Optional[Model]]


class Layer(InstanceConfig):
    __xpmid__ = "corpus.layer"
    size: Param[int] = field(default=10)


class TwoLayers(Config):
    __xpmid__ = "corpus.twolayers"
    a: Param[Layer]
    b: Param[Layer]


class NewStyle(Config):
    __xpmid__ = "corpus.newstyle"
    values: Param[List[int]]


@deprecate(NewStyle)
class OldStyle(Config):
    __xpmid__ = "corpus.oldstyle"
    value: Param[int]

    def __convert__(self):
        return NewStyle.C(values=[self.value])


class Holder(Config, Generic[T]):
    __xpmid__ = "corpus.holder"
    x: Param[T]


class Uses(Config):
    __xpmid__ = "corpus.uses"
    model: Param[Config]


#: name -> a function building a fresh configuration
CASES = {
    "int_1": lambda: Numbers.C(i=1),
    "int_1_float": lambda: Numbers.C(i=1.0),
    "int_1_text": lambda: Numbers.C(i="1"),
    "int_true": lambda: Numbers.C(i=True),
    "int_2": lambda: Numbers.C(i=2),
    "float_1": lambda: Numbers.C(x=1.0),
    "float_1_int": lambda: Numbers.C(x=1),
    "float_1_text": lambda: Numbers.C(x="1"),
    "bool_true": lambda: Numbers.C(flag=True),
    "bool_one": lambda: Numbers.C(flag=1),
    "bool_yes": lambda: Numbers.C(flag="yes"),
    "either_1": lambda: Numbers.C(either=1),
    "either_1_float": lambda: Numbers.C(either=1.0),
    "either_text": lambda: Numbers.C(either="a"),
    "numbers_defaults": lambda: Numbers.C(),
    "numbers_defaults_given": lambda: Numbers.C(i=0, x=0.0, flag=False, either=0),
    "model_10": lambda: Model.C(hidden=10),
    "model_10_tagged": lambda: Model.C(hidden=tag(10)),
    "model_11": lambda: Model.C(hidden=11),
    "model_meta": lambda: ModelWithMeta.C(hidden=10, device="cuda", data=Path("/data")),
    "model_new_at_default": lambda: ModelWithNew.C(hidden=10),
    "model_new_set": lambda: ModelWithNew.C(hidden=10, dropout=0.5),
    "model_default_entering": lambda: ModelWithDefault.C(hidden=10),
    "model_optional_unset": lambda: ModelWithOptional.C(hidden=10),
    "model_optional_none": lambda: ModelWithOptional.C(hidden=10, extra=None, other=None),
    "model_optional_set": lambda: ModelWithOptional.C(hidden=10, extra=1),
    "model_other_set": lambda: ModelWithOptional.C(hidden=10, other=1),
    "model_constant": lambda: ModelWithConstant.C(hidden=10),
    "bigmodel_10": lambda: BigModel.C(hidden=10),
    "containers_empty": lambda: Containers.C(),
    "containers_list": lambda: Containers.C(items=[1, 2]),
    "containers_tuple": lambda: Containers.C(items=(1, 2)),
    "containers_dict_ab": lambda: Containers.C(table={"a": 1, "b": 2}),
    "containers_dict_ba": lambda: Containers.C(table={"b": 2, "a": 1}),
    "containers_blue": lambda: Containers.C(color=Color.BLUE),
    "pair_first": lambda: Pair.C(first=Model.C(hidden=1)),
    "pair_second_meta": lambda: Pair.C(first=Model.C(hidden=1), second=setmeta(Model.C(hidden=2), True)),
    "pair_second": lambda: Pair.C(first=Model.C(hidden=1), second=Model.C(hidden=2)),
    "pair_big_second": lambda: Pair.C(first=Model.C(hidden=1), second=BigModel.C(hidden=2)),
    "layers_shared": lambda: _shared_layers(),
    "layers_separate": lambda: TwoLayers.C(a=Layer.C(), b=Layer.C()),
    "layers_different": lambda: TwoLayers.C(a=Layer.C(size=1), b=Layer.C(size=2)),
    "uses_old": lambda: Uses.C(model=OldStyle.C(value=3)),
    "uses_new": lambda: Uses.C(model=NewStyle.C(values=[3])),
    "uses_new_other": lambda: Uses.C(model=NewStyle.C(values=[4])),
    "holder_int": lambda: Holder.C(x=1),
    "holder_str": lambda: Holder.C(x="1"),
    "holder_model": lambda: Holder.C(x=Model.C(hidden=10)),
}


def _shared_layers():
    layer = Layer.C()
    return TwoLayers.C(a=layer, b=layer)


def identifier(config) -> str:
    """The identifier, through the API both libraries share."""
    return config.__identifier__().all.hex()
