"""Saved state loaded into a configuration's object by an init task, in a real job process."""

from __future__ import annotations

import shutil
from pathlib import Path

from xpm import Config, Meta, Param, PathGenerator, Task, experiment, field, identifier
from xpm.config.serializers import PathSerializationLWTask
from xpm.serialize import deserialize, load_configs, serialize


class Classifier(Config):
    """A model whose weights are not parameters: a loader fills them in the job process."""

    classes: Param[int]

    def __post_init__(self) -> None:
        self.weights: str | None = None


class LoadWeights(PathSerializationLWTask):
    """Reads ``weights.txt`` of the saved folder into the classifier object."""

    def execute(self) -> None:
        self.value.weights = (self.path / "weights.txt").read_text()
        self.register(self.value)


class Evaluate(Task):
    """Writes what its model holds to ``report.txt``."""

    model: Param[Classifier]
    report: Meta[Path] = field(default_factory=PathGenerator("report.txt"))

    def execute(self) -> None:
        self.report.write_text(f"classes={self.model.classes} weights={self.model.weights}")


def test_a_saved_model_is_loaded_in_the_job_before_the_task_runs(ws: Path, tmp_path: Path) -> None:
    trained = tmp_path / "trained"
    trained.mkdir()
    (trained / "weights.txt").write_text("0.25,0.75")
    model = Classifier.C(classes=2)
    serialize(model, tmp_path / "saved", init_tasks=[LoadWeights.C(value=model, path=trained)])
    shutil.rmtree(trained)  # the job must read the copy in the saved folder

    loaded, init_tasks = deserialize(tmp_path / "saved")
    assert identifier(loaded) == identifier(model)
    with experiment(ws, "serializers") as xp:
        task = Evaluate.C(model=loaded).submit(init_tasks=init_tasks)
        plain = Evaluate.C(model=Classifier.C(classes=2)).submit()
    assert task.report.read_text() == "classes=2 weights=0.25,0.75"
    assert plain.report.read_text() == "classes=2 weights=None"
    assert task.job.identifier != plain.job.identifier, "init tasks are part of the identifier"

    configs = load_configs(xp.workdir)
    assert set(configs) == {task.job.identifier, plain.job.identifier}
    again = configs[task.job.identifier]
    assert isinstance(again, Evaluate) and identifier(again) == identifier(task)
    assert again.__xpm__.init_tasks[0].path == tmp_path / "saved" / "path"


def test_the_data_path_of_a_loader_does_not_change_the_identifier(ws: Path, tmp_path: Path) -> None:
    """Where the saved state lies is not what the job is: moving the saved folder keeps the job."""
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "weights.txt").write_text("w")
    model = Classifier.C(classes=3)
    with experiment(ws, "same-job") as xp:
        first = Evaluate.C(model=model).submit(init_tasks=[LoadWeights.C(value=model, path=tmp_path / "one")])
        second = Evaluate.C(model=model).submit(init_tasks=[LoadWeights.C(value=model, path=tmp_path / "two")])
    assert first.job is second.job and len(xp.jobs) == 1
