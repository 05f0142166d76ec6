"""Configuration classes shared by the unit tests (module level, so they can be loaded back)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any, Optional

from xpm import Config, Constant, LightweightTask, Meta, Param, PathGenerator, Task, field


class Color(Enum):
    RED = 1
    GREEN = 2


class Model(Config):
    """A small model.

    Attributes:
        hidden: the number of hidden units
    """

    hidden: Param[int]


class BigModel(Model):
    """A subclass: accepted wherever a Model is declared."""

    layers: Param[int] = field(default=2)


class Train(Task):
    model: Param[Model]
    lr: Param[float]
    epochs: Param[int] = field(default=3, ignore_default=True)
    color: Param[Color] = field(default=Color.RED)
    out: Meta[Path] = field(default_factory=PathGenerator("model.txt"))

    def execute(self) -> None:
        pass


class Out(Config):
    step: Param[int]
    path: Meta[Path]


class Producer(Task):
    x: Param[int]

    def task_outputs(self, dep: Any) -> Any:
        return dep(Out.C(step=self.x, path=Path("/tmp/out")))

    def execute(self) -> None:
        pass


class Consumer(Task):
    inp: Param[Out]

    def execute(self) -> None:
        pass


class Init(LightweightTask):
    v: Param[int]

    def execute(self) -> None:
        pass


class AnyValue(Config):
    value: Param[Any]


class Node(Config):
    """A configuration that can point at another one (to build cycles)."""

    name: Param[str]
    next: Param[Optional[Node]] = None


class WithPaths(Config):
    a: Param[int]
    p: Param[Path]
    ps: Param[list[Path]] = field(default_factory=list)
    po: Param[Optional[Path]]


class Everything(Config):
    i: Param[int]
    f: Param[float]
    s: Param[str]
    b: Param[bool]
    e: Param[Color]
    li: Param[list[int]]
    d: Param[dict[str, float]]
    st: Param[set[str]]
    t2: Param[tuple[int, str]]
    tv: Param[tuple[int, ...]]
    o: Param[Optional[int]]
    u: Param[int | str]
    a: Param[Any]
    m: Param[Model]


class Versioned(Config):
    __xpmid__ = "Tests.VERSIONED"
    version: Constant[int] = 1
    x: Param[int]


class Documented(Config):
    """Documented configuration.

    More text.

    Attributes:
        a: from the section,
            on two lines
    """

    a: Param[int]
    b: Param[int]
    """from an attribute docstring"""
