"""A job that ran before one of its classes was deprecated is found again where it ran.

Real experiments and job processes: the first run uses a model class; then the
class is deprecated (its ``__convert__`` gives the new class), which changes the
task's identifier; the job is found in its folder under the former identifier
and does not run again.
"""

from __future__ import annotations

from pathlib import Path

from xpm import Config, Meta, Param, PathGenerator, Task, experiment, field
from xpm.config.deprecate import deprecate
from xpm.ids import raw_identifier


class NewModel(Config):
    __xpmid__ = "tests.dep.newmodel"
    values: Param[list[int]]


class ModelBefore(Config):
    """The class as it was (same type id as ModelAfter)."""

    __xpmid__ = "tests.dep.model"
    value: Param[int]


@deprecate(NewModel)
class ModelAfter(Config):
    """The same class, deprecated."""

    __xpmid__ = "tests.dep.model"
    value: Param[int]

    def __convert__(self):
        return NewModel.C(values=[self.value])


class Train(Task):
    __xpmid__ = "tests.dep.train"
    model: Param[Config]
    runs: Meta[Path] = field(default_factory=PathGenerator("runs.txt"))

    def execute(self) -> None:
        with open(self.runs, "a") as f:
            f.write("ran\n")


def test_a_job_is_found_under_its_identifier_from_before_the_deprecation(ws: Path) -> None:
    with experiment(ws, "before"):
        before = Train.C(model=ModelBefore.C(value=1)).submit()
    assert before.job.wait()
    first = Path(before.jobpath)

    with experiment(ws, "after"):
        after = Train.C(model=ModelAfter.C(value=1)).submit()
        # identified by the conversion, found in the folder named by the former identifier
        assert Path(after.jobpath) == first
        assert raw_identifier(Train.C(model=ModelAfter.C(value=1))) == first.name
    assert after.job.wait()
    assert (first / "runs.txt").read_text() == "ran\n"  # it did not run again

    # Nothing was moved: the folder of the first run is where it was, and no other was made
    assert sorted(p.name for p in first.parent.iterdir()) == [first.name]
