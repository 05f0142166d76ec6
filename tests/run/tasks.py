"""Tasks of the run tests: they run in real job processes (``python -m xpm run``).

They leave traces outside their job folders (``log`` files, given as ``Meta``
parameters so that they do not enter the identifiers) for the tests to count
how many times each job ran and when.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Optional

from xpm import (
    Config,
    GracefulTimeout,
    LightweightTask,
    Meta,
    Param,
    PathGenerator,
    Prepare,
    ResumableTask,
    Task,
    field,
    progress,
)


def _append(path: Path, line: str) -> None:
    with open(path, "a") as f:
        f.write(line + "\n")


class Record(Task):
    """Appends ``<key> start|end <time> <pid>`` lines to ``log``; may wait for a file, or fail."""

    __xpmid__ = "test.record"
    key: Param[str]
    fail: Param[bool] = field(default=False, ignore_default=True)
    log: Meta[Path]
    wait_for: Meta[Optional[Path]] = field(default=None)
    sleep: Meta[float] = field(default=0.0)
    #: the task fails while this file does not exist
    needs: Meta[Optional[Path]] = field(default=None)

    def execute(self) -> None:
        _append(self.log, f"{self.key} start {time.time()} {os.getpid()}")
        progress(0.25, desc="started")
        if self.wait_for is not None:
            while not self.wait_for.exists():
                time.sleep(0.05)
        time.sleep(self.sleep)
        if self.fail:
            raise RuntimeError(f"task {self.key} fails on purpose")
        if self.needs is not None and not self.needs.exists():
            raise RuntimeError(f"task {self.key} needs {self.needs}")
        print(f"record {self.key}")
        progress(1.0, desc="finished")
        _append(self.log, f"{self.key} end {time.time()} {os.getpid()}")


class Sum(Task):
    """``value`` plus the result of ``previous``, written in ``result``."""

    __xpmid__ = "test.sum"
    value: Param[int]
    previous: Param[Optional[Sum]] = field(default=None)
    result: Meta[Path] = field(default_factory=PathGenerator("result.txt"))

    def execute(self) -> None:
        before = int(self.previous.result.read_text()) if self.previous is not None else 0
        self.result.write_text(str(before + self.value))


class Model(Config):
    __xpmid__ = "test.model"
    size: Param[int]

    def __post_init__(self) -> None:
        self.scale = 1


class SetScale(LightweightTask):
    """An init task: changes the model object the main task holds."""

    __xpmid__ = "test.setscale"
    model: Param[Model]
    scale: Param[int]

    def execute(self) -> None:
        self.model.scale = self.scale


class UseModel(Task):
    __xpmid__ = "test.usemodel"
    model: Param[Model]

    def execute(self) -> None:
        print(f"scale={self.model.scale} size={self.model.size}")


class Resume(ResumableTask):
    """Stops on a (simulated) timeout ``timeouts`` times, then succeeds."""

    __xpmid__ = "test.resume"
    timeouts: Param[int]

    def execute(self) -> None:
        attempts = Path("attempts")  # the working directory is the job folder
        count = int(attempts.read_text()) + 1 if attempts.exists() else 1
        attempts.write_text(str(count))
        if count <= self.timeouts:
            raise GracefulTimeout()


class Data(Prepare):
    """Prepared in the experiment process: appends to ``log``."""

    __xpmid__ = "test.data"
    name: Param[str]
    log: Meta[Path]

    def prepare(self) -> None:
        _append(self.log, f"prepare {self.name}")


class Train(Task):
    __xpmid__ = "test.train"
    data: Param[Data]

    def execute(self) -> None:
        print(f"trained on {self.data.name}")


class UseData(Task):
    """Another task holding a ``Data``."""

    __xpmid__ = "test.usedata"
    data: Param[Data]

    def execute(self) -> None:
        print(f"used {self.data.name}")


class Env(Task):
    """Prints environment variables."""

    __xpmid__ = "test.env"
    names: Param[list[str]]

    def execute(self) -> None:
        for name in self.names:
            print(f"{name}={os.environ.get(name)}")


class WithOutputs(Task):
    """A task whose output is a model configuration (``task_outputs``)."""

    __xpmid__ = "test.withoutputs"
    size: Param[int]
    checkpoint: Meta[Path] = field(default_factory=PathGenerator("model.txt"))

    def task_outputs(self, dep):  # type: ignore[no-untyped-def]
        return dep(Model.C(size=self.size))

    def execute(self) -> None:
        self.checkpoint.write_text("weights")


def log_lines(path: Path) -> list[list[str]]:
    """The lines of a log written by :class:`Record`, split."""
    if not path.exists():
        return []
    return [line.split() for line in path.read_text().splitlines()]
