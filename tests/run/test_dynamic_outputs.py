"""Dynamic outputs: a running task registers outputs, the experiment's callbacks get them (and may submit
tasks); the outputs log is replayed when the experiment runs again. Every job runs in its own process.

The experiment follows the outputs here as ``xpm/runs.py`` does once wired (see :func:`watching`); the
test of the wired API, ``task.watch_output`` and ``self.register_task_output``, is
``tests/run/test_dynamic_outputs_e2e.py``.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.run.dynamic_tasks import Checkpoint, Evaluate, Learn, Model, Validation
from xpm import FailedExperiment, experiment, layout
from xpm.codec import encode_line
from xpm.dynamic import DynamicOutputs
from xpm.errors import ConfigError, XpmError
from xpm.runs import Experiment
from xpm.schema import OUTPUT_VERSION, TaskOutput
from xpm.store.log import EventLog
from xpm.store.outputs import OutputsLog
from xpm.taskglobals import Env
from xpm.taskoutputs import is_dynamic, register_task_output, watch_output
from xpm.workspace import Workspace


@contextlib.contextmanager
def watching(ws: Path, name: str, **kwargs: Any) -> Iterator[tuple[Experiment, DynamicOutputs, list[str]]]:
    """An experiment whose dynamic outputs are followed as the experiment itself does once wired: started
    with the run, settled when the jobs ended (again while callbacks submit more), stopped at the end.

    Yields the experiment, its outputs and the list of the problems reported.
    """
    reports: list[str] = []
    outputs = DynamicOutputs(report=reports.append, interval=0.05)
    with experiment(ws, name, **kwargs) as xp:
        wired = getattr(xp, "outputs", None)
        if wired is not None:  # the experiment has its own once wired: this one replaces it
            wired.stop(report=False)
        xp.outputs = outputs  # type: ignore[attr-defined]
        assert xp.workspace is not None
        outputs.start(xp.workspace)
        ok = False
        try:
            yield xp, outputs, reports
            xp.wait()
            while outputs.settle():
                xp.wait()
            ok = True
        finally:
            outputs.stop(report=ok)


def lines(path: Path) -> list[list[str]]:
    return [line.split()[:2] for line in path.read_text().splitlines()] if path.exists() else []


def learner(log: Path, **kwargs: Any) -> tuple[Learn, Validation]:
    model = Model.C(size=2)
    validation = Validation.C(model=model)
    return Learn.C(model=model, validation=validation, log=log, **kwargs), validation


def evaluating(log: Path, seen: list[Any]) -> Any:
    """A callback that keeps each checkpoint it gets and submits its evaluation."""

    def evaluate(checkpoint: Checkpoint) -> None:
        seen.append(checkpoint)
        Evaluate.C(checkpoint=checkpoint, log=log).submit()

    return evaluate


def outputs_log(ws: Path, task: Learn) -> Path:
    return ws / layout.job_outputs(task.job.task_id, task.job.identifier)


# --- in job processes ----------------------------------------------------------------------------


def test_each_registered_checkpoint_is_given_to_the_callback_which_submits_its_evaluation(
    ws: Path, tmp_path: Path
) -> None:
    log, seen, final = tmp_path / "log", [], []
    with watching(ws, "dynamic") as (xp, _, reports):
        learn, validation = learner(log)
        watch_output(learn, validation.checkpoint, evaluating(log, seen))
        watch_output(learn, learn.final, final.append)  # a method of the task itself
        learn.submit()
    assert [c.step for c in seen] == [1, 2, 3]
    assert [(m.size, m.__xpm__.task) for m in final] == [(3, learn)]
    for checkpoint in seen:
        # built in this process by the watched method, marked as an output of the learner
        assert checkpoint.model is validation.model and checkpoint.__xpm__.task is learn and is_dynamic(checkpoint)
        assert checkpoint.path == learn.jobpath / f"step-{checkpoint.step}.txt"
    assert sorted(lines(log)) == [["evaluate", "1"], ["evaluate", "2"], ["evaluate", "3"], ["learn", "end"],
                                  ["learn", "start"]]
    assert sorted(job.state for job in xp.jobs.values()) == ["done"] * 4
    assert reports == []
    records = OutputsLog(Workspace.open(ws), learn.job.task_id, learn.job.identifier).read()
    assert [(r.version, r.config, r.method, r.args, r.kwargs.get("step")) for r in records.outputs] == [
        (OUTPUT_VERSION, validation.__identifier__().all.hex(), "checkpoint", [], step) for step in (1, 2, 3)
    ] + [(OUTPUT_VERSION, learn.job.identifier, "final", [3], None)]


def test_a_second_run_replays_the_outputs_and_runs_no_job_again(ws: Path, tmp_path: Path) -> None:
    log = tmp_path / "log"
    for run in range(2):
        seen: list[Any] = []
        with watching(ws, "replay") as (xp, _, reports):
            learn, validation = learner(log)
            learn.submit()
            # watched after the submission: the same
            watch_output(learn, validation.checkpoint, evaluating(log, seen))
        assert [c.step for c in seen] == [1, 2, 3], run
        assert reports == []
    # each job ran once, in the first run
    assert sorted(lines(log)) == [["evaluate", "1"], ["evaluate", "2"], ["evaluate", "3"], ["learn", "end"],
                                  ["learn", "start"]]
    assert len(xp.jobs) == 4


def test_a_task_run_again_after_a_timeout_gives_each_output_once(ws: Path, tmp_path: Path) -> None:
    log, seen = tmp_path / "log", []
    with watching(ws, "timeout") as (_, _, reports):
        learn, validation = learner(log, timeout_at=2)
        watch_output(learn, validation.checkpoint, evaluating(log, seen))
        learn.submit()
    # the second attempt registered steps 1 and 2 again
    assert outputs_log(ws, learn).read_text().count('"method":"checkpoint"') == 5
    assert [c.step for c in seen] == [1, 2, 3]
    assert sorted(lines(log)).count(["learn", "start"]) == 2
    assert sorted(lines(log))[:3] == [["evaluate", "1"], ["evaluate", "2"], ["evaluate", "3"]]
    assert reports == []


def test_the_learner_enters_the_identifier_of_its_outputs(ws: Path, tmp_path: Path) -> None:
    log = tmp_path / "log"
    seen: dict[float, list[Any]] = {0.1: [], 0.2: []}
    with watching(ws, "identifiers") as _:
        for lr, got in seen.items():
            learn, validation = learner(log, lr=lr, steps=1)
            watch_output(learn, validation.checkpoint, got.append)
            learn.submit()
    (one,), (two,) = seen.values()
    assert one.__identifier__() != two.__identifier__()
    by_hand = Checkpoint.C(model=Model.C(size=2), step=1, path=one.path)
    assert by_hand.__identifier__() not in (one.__identifier__(), two.__identifier__())


def test_callbacks_given_late_get_the_outputs_so_far_and_a_callback_given_twice_runs_once(
    ws: Path, tmp_path: Path
) -> None:
    log, first, late = tmp_path / "log", [], []
    with watching(ws, "late") as (xp, outputs, _):
        learn, validation = learner(log)
        watch_output(learn, validation.checkpoint, first.append)
        watch_output(learn, validation.checkpoint, first.append)
        learn.submit()
        xp.wait()
        outputs.settle()
        assert [c.step for c in first] == [1, 2, 3]
        watch_output(learn, validation.checkpoint, late.append)
        assert outputs.settle() is True  # the late callback ran
        # the same objects: each output is built once and given to every callback
        assert late == first and all(a is b for a, b in zip(late, first))
        assert outputs.settle() is False


def test_a_callback_that_settles_does_not_wait_for_itself(ws: Path, tmp_path: Path) -> None:
    answers: list[bool] = []
    with watching(ws, "inside") as (_, outputs, _):
        learn, validation = learner(tmp_path / "log", steps=1)
        watch_output(learn, validation.checkpoint, lambda checkpoint: answers.append(outputs.settle()))
        learn.submit()
    assert answers == [False]


# --- bad input -------------------------------------------------------------------------------------


def test_damaged_lines_are_skipped_and_reported_once(ws: Path, tmp_path: Path) -> None:
    log = tmp_path / "log"
    with watching(ws, "damaged") as _:
        learn, _validation = learner(log)
        learn.submit()
    path = outputs_log(ws, learn)
    first, second, third, final = path.read_bytes().splitlines(keepends=True)
    damaged = second.replace(b'"step":2', b'"step":7')  # its checksum no longer matches
    path.write_bytes(first + damaged + b"not a line\n" + third + final + third[:20])  # and a torn last line
    for run in range(2):
        seen: list[Any] = []
        with watching(ws, "damaged") as (_, _, reports):
            learn, validation = learner(log)
            watch_output(learn, validation.checkpoint, evaluating(log, seen))
            learn.submit()
        assert [c.step for c in seen] == [1, 3], run
        where = f"{ws}/{layout.job_outputs(learn.job.task_id, learn.job.identifier)}"
        size = len(first + damaged + b"not a line\n" + third + final)
        assert reports == [
            f"{where}: byte {len(first)}: checksum mismatch",
            f"{where}: byte {len(first + damaged)}: not a log line",
            f"{where}: byte {size}: incomplete last line, skipped",
        ], run
    assert sorted(lines(log)) == [["evaluate", "1"], ["evaluate", "3"], ["learn", "end"], ["learn", "start"]]


def test_outputs_never_registered_are_reported_at_the_end(ws: Path, tmp_path: Path) -> None:
    called: list[Any] = []
    with watching(ws, "never") as (_, _, reports):
        learn, validation = learner(tmp_path / "log", steps=1)
        watch_output(learn, validation.never, called.append)
        learn.submit()
        unsubmitted, other = learner(tmp_path / "log", steps=5)
        watch_output(unsubmitted, other.checkpoint, called.append)
        assert reports == []
    assert called == []
    assert reports == [
        f"Learn.watch_output(Validation.never): the job {learn.job.name} registered no output of Validation.never; "
        "its callbacks never ran",
        "Learn.watch_output(Validation.checkpoint): the task was never submitted; its callbacks never ran",
    ]


def test_a_failing_method_or_callback_is_reported_and_the_others_go_on(ws: Path, tmp_path: Path) -> None:
    got: list[int] = []

    def fails(checkpoint: Checkpoint) -> None:
        raise RuntimeError(f"cannot evaluate {checkpoint.step}")

    # Once wired, the experiment fails at its end for them (tests/run/test_dynamic_outputs_e2e.py).
    with contextlib.suppress(FailedExperiment), watching(ws, "failing") as (_, outputs, reports):
        learn, validation = learner(tmp_path / "log", steps=2, also_broken=True)
        watch_output(learn, validation.checkpoint, fails)
        watch_output(learn, validation.checkpoint, lambda checkpoint: got.append(checkpoint.step))
        watch_output(learn, validation.broken, got.append)
        learn.submit()
    assert got == [1, 2]
    firsts = sorted(report.splitlines()[0] for report in reports)
    assert firsts == [
        "Learn.watch_output(Validation.broken): building the output (step=1) failed: ValueError: no checkpoint 1",
        "Learn.watch_output(Validation.broken): building the output (step=2) failed: ValueError: no checkpoint 2",
        "Learn.watch_output(Validation.checkpoint): the callback "
        "test_a_failing_method_or_callback_is_reported_and_the_others_go_on.<locals>.fails raised RuntimeError: "
        "cannot evaluate 1",
        "Learn.watch_output(Validation.checkpoint): the callback "
        "test_a_failing_method_or_callback_is_reported_and_the_others_go_on.<locals>.fails raised RuntimeError: "
        "cannot evaluate 2",
    ]
    assert all("Traceback" in report for report in reports)
    # what the experiment names when it fails for them
    assert sorted(failure.describe() for failure in outputs.failures) == [
        f"{learn.job.name}: Validation.broken(step=1) raised ValueError: no checkpoint 1",
        f"{learn.job.name}: Validation.broken(step=2) raised ValueError: no checkpoint 2",
        f"{learn.job.name}: watch_output(Validation.checkpoint) callback "
        "test_a_failing_method_or_callback_is_reported_and_the_others_go_on.<locals>.fails raised RuntimeError: "
        "cannot evaluate 1",
        f"{learn.job.name}: watch_output(Validation.checkpoint) callback "
        "test_a_failing_method_or_callback_is_reported_and_the_others_go_on.<locals>.fails raised RuntimeError: "
        "cannot evaluate 2",
    ]


def test_watching_needs_a_task_a_method_of_a_configuration_and_a_callback(ws: Path, tmp_path: Path) -> None:
    learn, validation = learner(tmp_path / "log")
    with pytest.raises(XpmError, match=r"^Learn.watch_output\(Validation.checkpoint\) needs a running experiment"):
        watch_output(learn, validation.checkpoint, print)
    with watching(ws, "bad") as _:
        with pytest.raises(ConfigError, match=r"^Learn.watch_output: <function .*> is not a method of a configura"):
            watch_output(learn, lambda dep: dep, print)
        with pytest.raises(ConfigError, match=r"^Learn.watch_output: the callback 3 is not callable$"):
            watch_output(learn, validation.checkpoint, 3)  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match=r"^watch_output is a method of tasks: Validation is not a task$"):
            watch_output(validation, validation.checkpoint, print)


# --- the records, in this process --------------------------------------------------------------------


@pytest.fixture
def in_a_job(tmp_path: Path) -> Iterator[Path]:
    """Makes this process look like the job of ``<tmp>/ws/jobs/test.x/<id>`` (as the job program does)."""
    env = Env.instance()
    folder = tmp_path / "ws" / "jobs" / "test.x" / ("0" * 64)
    folder.mkdir(parents=True)
    env.taskpath, env.wspath = folder, tmp_path / "ws"
    try:
        yield folder
    finally:
        env.taskpath = env.wspath = None


def test_register_writes_one_checked_line_named_by_the_configuration_identifier(in_a_job: Path) -> None:
    validation = Validation.C(model=Model.C(size=1))
    instance = validation.instance()  # what the job builds from its parameters
    register_task_output(instance.checkpoint, (1,), {"path": "/x", "nested": {"a": [1, 2.5, None, True]}})
    register_task_output(validation.checkpoint, (), {})
    records = OutputsLog(Workspace.open(in_a_job.parents[2], create=True), "test.x", "0" * 64).read()
    assert records.problems == [] and not records.partial
    ident = validation.__identifier__().all.hex()
    assert [(r.config, r.method, r.args, r.kwargs) for r in records.outputs] == [
        (ident, "checkpoint", [1], {"path": "/x", "nested": {"a": [1, 2.5, None, True]}}),
        (ident, "checkpoint", [], {}),
    ]
    assert (in_a_job / ".xpm" / "outputs.jsonl").read_bytes().startswith(b'["')


def test_register_refuses_what_it_cannot_record(in_a_job: Path) -> None:
    validation = Validation.C(model=Model.C(size=1))
    with pytest.raises(ConfigError, match=r"the arguments must be JSON values, but kwargs\['path'\] is a PosixPath"):
        register_task_output(validation.checkpoint, (), {"path": Path("/x")})
    with pytest.raises(ConfigError, match=r"but args\[0\] has the key 1, which is not a string"):
        register_task_output(validation.checkpoint, ({1: 2},), {})
    with pytest.raises(ConfigError, match=r"^register_task_output\(dumps\): <function dumps .*> is not a method of"):
        register_task_output(json.dumps, (), {})
    assert not (in_a_job / ".xpm" / "outputs.jsonl").exists()


def test_register_outside_a_job_is_an_error() -> None:
    validation = Validation.C(model=Model.C(size=1))
    with pytest.raises(XpmError, match=r"^register_task_output\(Validation.checkpoint\) records an output "
                                       r"of the running job"):
        register_task_output(validation.checkpoint, (), {"step": 1})


def test_records_of_a_newer_xpm_or_of_another_kind_are_skipped_and_said(tmp_path: Path) -> None:
    ws = Workspace.open(tmp_path, create=True)
    rel = layout.job_outputs("test.x", "0" * 64)
    newer = TaskOutput(ts=1.0, version=OUTPUT_VERSION + 1, config="c", method="m")
    good = TaskOutput(ts=2.0, version=OUTPUT_VERSION, config="c", method="m", kwargs={"step": 1})
    EventLog(ws, rel).append(newer, good)
    ws.append(rel, encode_line(json.loads('{"kind": "removed", "ts": 3.0, "task_id": "t", "identifier": "i"}')))
    got = OutputsLog(ws, "test.x", "0" * 64).read()
    assert got.outputs == [good]
    assert got.problems == [
        f"an output of m written by a newer xpm (record version {OUTPUT_VERSION + 1}, this xpm reads "
        f"{OUTPUT_VERSION}): skipped",
        "a 'removed' record, not an output: skipped",
    ]
    assert got.offset == len((tmp_path / rel).read_bytes())
