"""Tasks of the submission tests (transient jobs, callbacks, preparations, ``__submit__``).

They run in real job processes and leave one line per run in ``log`` (a ``Meta``
parameter: outside the identifiers), so that the tests count how many times each
job ran.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Optional

from xpm import Config, Meta, Param, PathGenerator, Prepare, Task, field


def append(path: Path, line: str) -> None:
    with open(path, "a") as f:
        f.write(line + "\n")


def lines(path: Path) -> list[str]:
    """The first word of each line of a log (the key of what ran)."""
    return [line.split()[0] for line in path.read_text().splitlines()] if path.exists() else []


class Stage(Task):
    """Appends ``<key> <pid>`` to ``log``, writes ``output``; reads the output of ``previous`` first."""

    __xpmid__ = "test.submit.stage"
    key: Param[str]
    previous: Param[Optional[Stage]] = field(default=None)
    fail: Param[bool] = field(default=False, ignore_default=True)
    log: Meta[Path]
    output: Meta[Path] = field(default_factory=PathGenerator("out.txt"))

    def execute(self) -> None:
        append(self.log, f"{self.key} {os.getpid()}")
        if self.previous is not None:
            assert self.previous.output.read_text() == self.previous.key
        if self.fail:
            raise RuntimeError(f"stage {self.key} fails on purpose")
        self.output.write_text(self.key)


class Weights(Config):
    """What :class:`Learn` produces (its ``__submit__`` output)."""

    __xpmid__ = "test.submit.weights"
    size: Param[int]
    path: Meta[Path]


class Learn(Task):
    """A task whose output comes from ``__submit__``; it also gives an action."""

    __xpmid__ = "test.submit.learn"
    size: Param[int]
    log: Meta[Path]
    weights: Meta[Path] = field(default_factory=PathGenerator("weights.txt"))

    def __submit__(self, dep: Any, add_action: Any) -> Any:
        if add_action is not None:
            add_action(f"inspect {self.size}")
        return dep(Weights.C(size=self.size, path=self.weights))

    def execute(self) -> None:
        append(self.log, f"learn {os.getpid()}")
        self.weights.write_text(f"size={self.size}")


class Score(Task):
    """Uses the weights a :class:`Learn` produced."""

    __xpmid__ = "test.submit.score"
    weights: Param[Weights]
    log: Meta[Path]

    def execute(self) -> None:
        append(self.log, f"score {self.weights.path.read_text()}")


class Slow(Prepare):
    """Prepared in the experiment process: logs ``<name> start|end <time>`` around a sleep."""

    __xpmid__ = "test.submit.slow"
    name: Param[str]
    log: Meta[Path]
    sleep: Meta[float] = field(default=0.0)
    fail: Param[bool] = field(default=False, ignore_default=True)

    def prepare(self) -> None:
        append(self.log, f"{self.name} start {time.time()}")
        time.sleep(self.sleep)
        if self.fail:
            raise RuntimeError(f"preparing {self.name} fails on purpose")
        append(self.log, f"{self.name} end {time.time()}")


class Marked(Prepare):
    """A preparation that knows when it was done: the file ``marker`` exists."""

    __xpmid__ = "test.submit.marked"
    marker: Meta[Path]
    log: Meta[Path]

    def is_prepared(self) -> bool:
        return self.marker.exists()

    def prepare(self) -> None:
        append(self.log, "marked prepared")
        self.marker.write_text("ok")


class UsePrep(Task):
    """Holds a preparation (``variant`` makes other jobs holding the same one)."""

    __xpmid__ = "test.submit.useprep"
    prep: Param[Prepare]
    variant: Param[int] = field(default=0, ignore_default=True)
    log: Meta[Path]

    def execute(self) -> None:
        append(self.log, f"useprep {os.getpid()}")
