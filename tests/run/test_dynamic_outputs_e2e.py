"""Dynamic outputs end to end, through the methods users call: ``self.register_task_output(...)`` in a
running task, ``task.watch_output(...)`` in the experiment, which follows the outputs by itself.

These tests need the wiring of docs/dynamic-outputs.md ("Wiring"): ``Config.register_task_output``,
``Task.watch_output``, the experiment's ``DynamicOutputs`` (xpm/runs.py) and the dependencies on dynamic
outputs that do not wait (xpm/submission.py).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.compat.conftest import python
from tests.run.dynamic_tasks import Checkpoint, Evaluate, Learn, Model, Validation
from xpm import FailedExperiment, experiment

#: A library written for experimaestro, as its documentation shows dynamic outputs: it never mentions xpm
LIBRARY = '''
import os
import time
import json
from pathlib import Path
from typing import Optional

from experimaestro import Config, DependentMarker, LightweightTask, Meta, Param, ResumableTask, Task, field


def append(path, line):
    with open(path, "a") as f:
        f.write(line + "\\n")


class Model(Config):
    size: Param[int]


class Checkpoint(Config):
    step: Param[int]
    model: Param[Model]


class Validation(Config):
    model: Param[Model]

    def checkpoint(self, dep: DependentMarker, *, step: int) -> Checkpoint:
        return dep(Checkpoint.C(model=self.model, step=step))

    def compute(self, step: int):
        self.register_task_output(self.checkpoint, step=step)


class CheckpointLoader(LightweightTask):
    checkpoint: Param[Checkpoint]
    log: Meta[Path]

    def execute(self):
        append(self.log, f"load {self.checkpoint.step}")


class Learn(ResumableTask):
    model: Param[Model]
    validation: Param[Validation]
    log: Meta[Path]
    #: while this file exists, the task stops after its first checkpoint (and removes it)
    crash_once: Meta[Optional[Path]] = field(default=None)
    #: after its first checkpoint, the task waits for this file (its evaluation makes it)
    wait_for: Meta[Optional[Path]] = field(default=None)

    def execute(self):
        append(self.log, "learn start")
        state = Path("state.json")
        last = json.loads(state.read_text())["step"] if state.exists() else 0
        for step in (1, 2, 3):
            if step <= last:
                continue
            self.validation.compute(step)
            state.write_text(json.dumps({"step": step}))
            if step == 1 and self.crash_once is not None and self.crash_once.exists():
                self.crash_once.unlink()
                raise RuntimeError("crash after the first checkpoint")
            if step == 1 and self.wait_for is not None:
                deadline = time.time() + 120
                while not self.wait_for.exists():
                    if time.time() > deadline:
                        raise RuntimeError("the first checkpoint was not evaluated while the task ran")
                    time.sleep(0.05)
        append(self.log, "learn end")


class Evaluate(Task):
    model: Param[Model]
    log: Meta[Path]
    signal: Meta[Optional[Path]] = field(default=None)

    def execute(self):
        append(self.log, "evaluate")
        if self.signal is not None:
            self.signal.write_text("evaluated")
'''

#: The experiment: each checkpoint the learner registers is evaluated, with the checkpoint as an init task
EXPERIMENT = '''
import json, sys
from pathlib import Path
sys.path.insert(0, {library!r})
from xpmdyn import CheckpointLoader, Evaluate, Learn, Model, Validation
from experimaestro import FailedExperiment, experiment

LOG = Path({log!r})
SIGNAL = Path({signal!r})
steps = []


def on_checkpoint(checkpoint):
    steps.append(checkpoint.step)
    loader = CheckpointLoader.C(checkpoint=checkpoint, log=LOG)
    evaluate = Evaluate.C(model=checkpoint.model, log=LOG, signal=SIGNAL if checkpoint.step == 1 else None)
    evaluate.submit(init_tasks=[loader])


status = "done"
try:
    with experiment({workspace!r}, "dynamic") as xp:
        model = Model.C(size=1)
        validation = Validation.C(model=model)
        learn = Learn.C(model=model, validation=validation, log=LOG, **{learn_args})
        learn.watch_output(validation.checkpoint, on_checkpoint)
        learn.submit()
except FailedExperiment:
    status = "failed"
print(json.dumps({{"status": status, "steps": steps}}))
'''


def run_experiment(tmp_path: Path, ws: Path, learn_args: str) -> dict[str, Any]:
    library = tmp_path / "library"
    library.mkdir(exist_ok=True)
    (library / "xpmdyn.py").write_text(LIBRARY)
    script = EXPERIMENT.format(library=str(library), log=str(tmp_path / "log"), signal=str(tmp_path / "signal"),
                               workspace=str(ws), learn_args=learn_args)
    (tmp_path / "experiment.py").write_text(textwrap.dedent(script))
    done = python("", args=[str(tmp_path / "experiment.py")], cwd=tmp_path, env={"XPM_EXPERIMAESTRO": "1"},
                  timeout=300)
    assert done.stdout.strip(), done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def log_lines(tmp_path: Path) -> list[str]:
    return sorted((tmp_path / "log").read_text().splitlines())


def test_an_experimaestro_experiment_evaluates_each_checkpoint_and_replays_them_on_each_run(
    tmp_path: Path, ws: Path
) -> None:
    (tmp_path / "crash").write_text("")
    learn_args = f"{{'crash_once': Path({str(tmp_path / 'crash')!r})}}"
    # The learner stops after its first checkpoint: that one is evaluated all the same.
    assert run_experiment(tmp_path, ws, learn_args) == {"status": "failed", "steps": [1]}
    assert log_lines(tmp_path) == ["evaluate", "learn start", "load 1"]
    # It resumes: the first checkpoint is replayed (not evaluated again), the next ones come.
    assert run_experiment(tmp_path, ws, learn_args) == {"status": "done", "steps": [1, 2, 3]}
    # Everything is done: every checkpoint is replayed, no job runs.
    assert run_experiment(tmp_path, ws, learn_args) == {"status": "done", "steps": [1, 2, 3]}
    assert log_lines(tmp_path) == ["evaluate"] * 3 + ["learn end"] + ["learn start"] * 2 + [
        "load 1", "load 2", "load 3"
    ]


def test_a_checkpoint_is_evaluated_while_its_learner_still_runs(tmp_path: Path, ws: Path) -> None:
    learn_args = f"{{'wait_for': Path({str(tmp_path / 'signal')!r})}}"
    assert run_experiment(tmp_path, ws, learn_args) == {"status": "done", "steps": [1, 2, 3]}
    assert log_lines(tmp_path)[-4:] == ["learn start", "load 1", "load 2", "load 3"]


def test_the_wired_methods_and_wait_with_xpms_own_api(
    ws: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    log, seen = tmp_path / "log", []

    def evaluate(checkpoint: Checkpoint) -> None:
        seen.append(checkpoint.step)
        evaluations.append(Evaluate.C(checkpoint=checkpoint, log=log).submit())

    evaluations: list[Any] = []
    with experiment(ws, "wired") as xp:
        model = Model.C(size=2)
        validation = Validation.C(model=model)
        learn = Learn.C(model=model, validation=validation, log=log, wired=True)
        learn.watch_output(validation.checkpoint, evaluate)
        learn.watch_output(validation.never, seen.append)
        learn.submit()
        assert xp.wait() == []
        # wait() waited for the evaluations the callbacks submitted, too
        assert seen == [1, 2, 3] and [e.job.state for e in evaluations] == ["done"] * 3
    assert capfd.readouterr().err.count(
        f"xpm: Learn.watch_output(Validation.never): the job {learn.job.name} registered no output of "
        "Validation.never; its callbacks never ran\n"
    ) == 1


def test_a_callback_that_raises_fails_the_experiment_at_its_end(
    ws: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    got: list[int] = []

    def fails(checkpoint: Checkpoint) -> None:
        raise RuntimeError(f"cannot evaluate {checkpoint.step}")

    with pytest.raises(FailedExperiment) as failed:
        with experiment(ws, "failing"):
            model = Model.C(size=2)
            validation = Validation.C(model=model)
            learn = Learn.C(model=model, validation=validation, log=tmp_path / "log", wired=True, steps=1)
            learn.watch_output(validation.checkpoint, fails)
            learn.watch_output(validation.checkpoint, lambda checkpoint: got.append(checkpoint.step))
            learn.submit()
    assert got == [1]  # the other callback ran
    assert (
        f"  {learn.job.name}: watch_output(Validation.checkpoint) callback "
        "test_a_callback_that_raises_fails_the_experiment_at_its_end.<locals>.fails raised RuntimeError: "
        "cannot evaluate 1"
    ) in str(failed.value).splitlines()
    assert "Traceback" in capfd.readouterr().err
