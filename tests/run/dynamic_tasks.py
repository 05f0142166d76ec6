"""Tasks of the dynamic-output tests, run in real job processes.

The learner registers its checkpoints with :func:`xpm.taskoutputs.register_task_output`
(what ``self.register_task_output(...)`` calls once ``Config`` has the method). Each
task appends a line to a ``log`` (a ``Meta``: not in the identifiers), so that the
tests count how many times each job ran.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Optional

from xpm import Config, GracefulTimeout, Meta, Param, ResumableTask, Task, field
from xpm.taskoutputs import register_task_output


def append(path: Path, line: str) -> None:
    with open(path, "a") as f:
        f.write(line + "\n")


class Model(Config):
    __xpmid__ = "test.dynamic.model"
    size: Param[int]


class Checkpoint(Config):
    """A checkpoint of a model: an output of the learner, registered while it runs."""

    __xpmid__ = "test.dynamic.checkpoint"
    model: Param[Model]
    step: Param[int]
    path: Meta[Path]


class Validation(Config):
    __xpmid__ = "test.dynamic.validation"
    model: Param[Model]

    def checkpoint(self, dep: Any, *, step: int, path: str) -> Checkpoint:
        """Builds the output a registered checkpoint stands for."""
        return dep(Checkpoint.C(model=self.model, step=step, path=Path(path)))

    def never(self, dep: Any, *, step: int) -> Checkpoint:
        """An output no task registers."""
        raise AssertionError("never registered")

    def broken(self, dep: Any, *, step: int) -> Checkpoint:
        """An output whose method fails in the experiment."""
        raise ValueError(f"no checkpoint {step}")


class Learn(ResumableTask):
    """Writes ``steps`` checkpoints in its folder and registers each.

    With ``timeout_at``, the first attempt stops on a (simulated) timeout right after
    registering that step, and the next attempt starts again from step 1.
    With ``wait_for``, it waits for that file before it ends.
    """

    __xpmid__ = "test.dynamic.learn"
    model: Param[Model]
    validation: Param[Validation]
    steps: Param[int] = field(default=3, ignore_default=True)
    lr: Param[float] = field(default=0.1, ignore_default=True)
    log: Meta[Path]
    timeout_at: Meta[int] = field(default=0)
    wait_for: Meta[Optional[Path]] = field(default=None)
    also_broken: Meta[bool] = field(default=False)
    #: register through the configuration's own method (once ``Config.register_task_output`` is wired)
    wired: Meta[bool] = field(default=False)

    def execute(self) -> None:
        append(self.log, f"learn start {os.getpid()}")
        attempts = Path("attempts")  # the working directory is the job folder
        attempt = int(attempts.read_text()) + 1 if attempts.exists() else 1
        attempts.write_text(str(attempt))
        for step in range(1, self.steps + 1):
            path = Path(f"step-{step}.txt").absolute()
            path.write_text(f"weights at step {step}")
            if self.wired:
                self.validation.register_task_output(self.validation.checkpoint, step=step, path=str(path))
            else:
                register_task_output(self.validation.checkpoint, (), {"step": step, "path": str(path)})
            if self.also_broken:
                register_task_output(self.validation.broken, (), {"step": step})
            if step == self.timeout_at and attempt == 1:
                raise GracefulTimeout()
        if self.wait_for is not None:
            while not self.wait_for.exists():
                time.sleep(0.05)
        register_task_output(self.final, (self.steps,), {})
        append(self.log, f"learn end {os.getpid()}")

    def final(self, dep: Any, steps: int) -> Model:
        """An output built by a method of the task itself."""
        return dep(Model.C(size=steps))


class Evaluate(Task):
    """Evaluates a checkpoint: reads its file."""

    __xpmid__ = "test.dynamic.evaluate"
    checkpoint: Param[Checkpoint]
    log: Meta[Path]
    #: a file created when the evaluation runs (the learner may wait for it)
    signal: Meta[Optional[Path]] = field(default=None)

    def execute(self) -> None:
        weights = self.checkpoint.path.read_text()
        append(self.log, f"evaluate {self.checkpoint.step} {os.getpid()} {weights!r}")
        if self.signal is not None:
            self.signal.write_text("evaluated")
