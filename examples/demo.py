"""A small xpm experiment: a grid of trainings, each followed by an evaluation.

Run it with ``python examples/demo.py [WORKSPACE]`` (default workspace:
``./xpm-workspace``). Each distinct set of parameters is one job, run once in
its own process and folder; run the script a second time and nothing runs again.
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from pathlib import Path

from xpm import Config, Meta, Param, PathGenerator, Task, experiment, field, progress, tag


class Model(Config):
    """A toy model.

    Attributes:
        hidden: the number of hidden units
    """

    __xpmid__ = "demo.model"
    hidden: Param[int]


class Train(Task):
    """Trains a model (here: pretends to, one epoch at a time)."""

    __xpmid__ = "demo.train"
    model: Param[Model]
    lr: Param[float]
    epochs: Param[int] = field(default=5, ignore_default=True)
    checkpoint: Meta[Path] = field(default_factory=PathGenerator("model.json"))

    def execute(self) -> None:
        loss = 1.0
        for epoch in range(self.epochs):
            time.sleep(0.1)
            loss *= 1 - self.lr * self.model.hidden / 64
            progress((epoch + 1) / self.epochs, desc=f"epoch {epoch + 1}")
            print(f"epoch {epoch + 1}: loss {loss:.4f}")
        self.checkpoint.write_text(json.dumps({"hidden": self.model.hidden, "loss": loss}))


class Evaluate(Task):
    """Evaluates a trained model; depends on its training job."""

    __xpmid__ = "demo.evaluate"
    trained: Param[Train]
    results: Meta[Path] = field(default_factory=PathGenerator("results.json"))

    def execute(self) -> None:
        model = json.loads(self.trained.checkpoint.read_text())
        accuracy = round(1 - model["loss"] / 2, 4)
        self.results.write_text(json.dumps({"accuracy": accuracy}))
        print(f"accuracy {accuracy}")


def main(workspace: str) -> int:
    evaluations = []
    with experiment(workspace, "demo") as xp:
        for hidden, lr in itertools.product([16, 32], [0.1, 0.01]):
            trained = Train.C(model=Model.C(hidden=tag(hidden)), lr=tag(lr)).submit()
            evaluations.append(Evaluate.C(trained=trained).submit())
    # Leaving the `with` block waited for every job (and raised if one failed).
    print(f"\n{len(xp.jobs)} jobs done; results in {xp.jobspath}:")
    for evaluation in evaluations:
        tags = " ".join(f"{k}={v}" for k, v in sorted(evaluation.tags().items()))
        accuracy = json.loads(evaluation.results.read_text())["accuracy"]
        where = evaluation.results.relative_to(xp.jobspath)
        print(f"  {tags:<20} accuracy {accuracy:.4f}  {where.parent.parent.name}/{where.parent.name[:12]}…")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "xpm-workspace"))
