"""A small xpm plan: a grid of training configurations and an evaluation of each.

Run it with ``python examples/demo.py``. It shows what xpm computes before any job
runs: one identifier per distinct set of parameters (the job folder name), the
tags of each job, and that a saved plan loads back with the same identifiers.
"""

from __future__ import annotations

import itertools
import sys
import tempfile
from pathlib import Path

import xpm
from xpm import Config, Meta, Param, PathGenerator, Task, field, tag


class Model(Config):
    """A toy model.

    Attributes:
        hidden: the number of hidden units
    """

    __xpmid__ = "demo.model"
    hidden: Param[int]


class Train(Task):
    """Trains a model."""

    __xpmid__ = "demo.train"
    model: Param[Model]
    lr: Param[float]
    epochs: Param[int] = field(default=10, ignore_default=True)
    checkpoint: Meta[Path] = field(default_factory=PathGenerator("model.txt"))

    def execute(self) -> None:
        self.checkpoint.write_text(f"hidden={self.model.hidden} lr={self.lr}\n")


class Evaluate(Task):
    """Evaluates a trained model."""

    __xpmid__ = "demo.evaluate"
    trained: Param[Train]

    def execute(self) -> None:
        print(self.trained.checkpoint.read_text())


def plan() -> list[Evaluate]:
    """The grid: 2 model sizes x 2 learning rates, each trained then evaluated."""
    evaluations = []
    for hidden, lr in itertools.product([16, 32], [0.1, 0.01]):
        train = Train.C(model=Model.C(hidden=tag(hidden)), lr=tag(lr))
        evaluations.append(Evaluate.C(trained=train))
    return evaluations


def main() -> int:
    evaluations = plan()
    print(f"{len(evaluations)} evaluations, {len(evaluations)} trainings:")
    for ev in evaluations:
        tags = " ".join(f"{k}={v}" for k, v in sorted(ev.tags().items()))
        print(f"  demo.train/{xpm.identifier(ev.trained)[:12]}…  demo.evaluate/{xpm.identifier(ev)[:12]}…  {tags}")

    again = Train.C(model=Model.C(hidden=16), lr=0.1, epochs=10)
    same = xpm.identifier(again) == xpm.identifier(evaluations[0].trained)
    print(f"Same parameters (tags and an explicit default aside), same identifier: {same}")

    with tempfile.TemporaryDirectory() as folder:
        xpm.save(evaluations, folder)
        loaded = xpm.load(folder)
        kept = [xpm.identifier(a) for a in loaded] == [xpm.identifier(a) for a in evaluations]
        print(f"Saved and loaded back with the same identifiers: {kept}")
    return 0 if same and kept else 1


if __name__ == "__main__":
    sys.exit(main())
