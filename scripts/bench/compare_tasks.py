"""Configurations and tasks of the side-by-side benchmark, written once for xpm and for experimaestro.

The package is chosen by the environment variable ``XPM_BENCH_TOOL``
(``xpm`` or ``experimaestro``): the job processes of both tools import this
module again, and inherit the variable from the experiment process. Porting
between the two is the change of the import line below, nothing else.
"""

from __future__ import annotations

import os
from typing import Optional

#: the environment variable that names the package the benchmark runs on
TOOL_VARIABLE = "XPM_BENCH_TOOL"
TOOL = os.environ.get(TOOL_VARIABLE, "xpm")

if TOOL == "experimaestro":
    from experimaestro import Config, Param, Task, field
elif TOOL == "xpm":
    from xpm import Config, Param, Task, field
else:
    raise ImportError(f"{TOOL_VARIABLE} must be 'xpm' or 'experimaestro', not {TOOL!r}")


class Inner(Config):
    """The nested configuration of the planned and run jobs."""

    __xpmid__ = "bench.inner"
    size: Param[int]
    name: Param[str]


class Trivial(Task):
    """Does nothing: what is measured is the cost of the tool around it."""

    __xpmid__ = "bench.trivial"
    index: Param[int]
    lr: Param[float]
    label: Param[str]
    inner: Param[Inner]

    def execute(self) -> None:
        pass


class Link(Task):
    """A step of a dependency chain; :class:`Step` adds the dependency on the step before."""

    __xpmid__ = "bench.link"
    index: Param[int]

    def execute(self) -> None:
        pass


class Step(Link):
    """A step that starts once the previous one (a parameter: the submitted task) is done."""

    __xpmid__ = "bench.step"
    previous: Param[Optional[Link]] = None


class Leaf(Config):
    __xpmid__ = "bench.leaf"
    a: Param[int]
    b: Param[float]
    c: Param[str]


class Middle(Config):
    __xpmid__ = "bench.middle"
    leaf: Param[Leaf]
    d: Param[int]
    e: Param[list[int]]


class Top(Config):
    """Depth 3 and 10 parameters with :class:`Middle` and :class:`Leaf` (as scripts/bench/identifiers.py)."""

    __xpmid__ = "bench.top"
    middle: Param[Middle]
    f: Param[str]
    g: Param[float]
    h: Param[int] = field(default=3, ignore_default=True)


def trivial(i: int, n: int) -> Trivial:
    """The i-th of n distinct planned jobs: int, float and str parameters and a nested configuration."""
    return Trivial.C(index=i, lr=i / n, label=f"job{i}", inner=Inner.C(size=i % 10, name="x"))


def top(i: int) -> Top:
    """A fresh depth-3 tree with 10 parameters, different for each i."""
    leaf = Leaf.C(a=i, b=i / 7, c=f"leaf-{i}")
    middle = Middle.C(leaf=leaf, d=i % 13, e=[i, i + 1, i + 2])
    return Top.C(middle=middle, f="top", g=0.5, h=i % 5)
