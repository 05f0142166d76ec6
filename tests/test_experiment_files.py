"""Experiment files with grid search and mocked imports, run by the real command line
(``python -m xpm run-experiment``, the program behind ``experimaestro run-experiment``) in
its own process, with real job processes; bad input is one line and a non-zero exit."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import restoring_imports

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "run-experiment.md"


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    with restoring_imports(tmp_path):
        yield tmp_path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def run_experiment(project: Path, *args: str, dropin: bool = False) -> subprocess.CompletedProcess[str]:
    """``run-experiment --workdir project/ws ARGS`` in a new process, xpm from this checkout."""
    env = {name: value for name, value in os.environ.items() if name != "XPM_EXPERIMAESTRO"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["XPM_CONFIG_DIR"] = str(project / "config")
    if dropin:
        env["XPM_EXPERIMAESTRO"] = "1"
    command = [sys.executable, "-m", "xpm", "run-experiment", "--workdir", str(project / "ws"), *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=project, env=env, timeout=120, check=False)


def job_folders(project: Path, task: str) -> list[Path]:
    folder = project / "ws" / "jobs" / task
    return sorted(folder.iterdir()) if folder.is_dir() else []


# --- grid search

TRAIN_TASK = """
from pathlib import Path
from xpm import Param, Task

class Train(Task):
    __xpmid__ = "demo.train"
    lr: Param[float]
    layers: Param[int]
    optimizer: Param[str]

    def execute(self):
        # One line per execution, next to this file: a job that runs twice shows.
        with (Path(__file__).parent / "executions.log").open("a") as log:
            log.write(f"{self.lr} {self.layers} {self.optimizer}\\n")
"""

GRID_EXPERIMENT = """
from dataclasses import field

from tasks import Train
from xpm.experiments import ConfigurationBase, ExperimentHelper, GridSearch, configuration, generate_grid

@configuration
class Model:
    layers: GridSearch[int] = 1

@configuration
class Configuration(ConfigurationBase):
    lr: GridSearch[float] = 0.1
    optimizer: str = "sgd"
    model: Model = field(default_factory=Model)

def run(helper: ExperimentHelper, cfg: Configuration):
    configurations, tags = generate_grid(cfg)
    for config, values in zip(configurations, tags):
        print("submitting", sorted(values.items()))
        Train.C(lr=config.lr, layers=config.model.layers, optimizer=config.optimizer).submit()
"""

GRID_YAML = """
id: sweep
lr: [0.1, "1e-2"]
model:
  layers: {range: [1, 4]}
grid_search:
  optimizer: [sgd, adam]
"""


@pytest.fixture
def grid_project(tmp_path: Path) -> Path:
    write(tmp_path / "tasks.py", TRAIN_TASK)
    write(tmp_path / "experiment.py", GRID_EXPERIMENT)
    write(tmp_path / "sweep.yaml", GRID_YAML)
    return tmp_path


def executions(project: Path) -> list[str]:
    log = project / "executions.log"
    return sorted(log.read_text().splitlines()) if log.exists() else []


def test_grid_search_submits_one_job_per_combination_and_runs_each_once(grid_project):
    combinations = itertools.product([0.1, 0.01], [1, 2, 3], ["sgd", "adam"])
    expected = sorted(f"{lr} {layers} {optimizer}" for lr, layers, optimizer in combinations)
    first = run_experiment(grid_project, "sweep.yaml")
    assert first.returncode == 0, first.stderr
    assert executions(grid_project) == expected
    assert len(job_folders(grid_project, "demo.train")) == 12
    submitted = [line for line in first.stdout.splitlines() if line.startswith("submitting")]
    assert len(submitted) == 12
    assert submitted[0] == "submitting [('lr', 0.1), ('model.layers', 1), ('optimizer', 'sgd')]"

    # The second run submits the same twelve jobs, finds them done, runs none of them.
    second = run_experiment(grid_project, "sweep.yaml")
    assert second.returncode == 0, second.stderr
    assert [line for line in second.stdout.splitlines() if line.startswith("submitting")] == submitted
    assert "12/12 jobs done" in second.stderr
    assert executions(grid_project) == expected
    assert len(job_folders(grid_project, "demo.train")) == 12


def test_grid_search_from_the_command_line(grid_project):
    """-c gives one value (a string, converted to the field's type): nothing left to search there."""
    out = run_experiment(grid_project, "-c", "lr=0.5", "-c", "model.layers=2", "sweep.yaml")
    assert out.returncode == 0, out.stderr
    assert executions(grid_project) == ["0.5 2 adam", "0.5 2 sgd"]


@pytest.mark.parametrize(
    "yaml_text, args, message",
    [
        (
            "id: s\nlr: {ranges: [0.1, 1]}\n",
            (),
            "sweep.yaml: lr: unknown grid key 'ranges' (did you mean 'range'? known keys: range, range_mult, value, "
            "values_list, values_mult, values_range)",
        ),
        (
            "id: s\ngrid_search:\n  model.layer: [1, 2]\n",
            (),
            "sweep.yaml: grid_search: unknown key 'model.layer' (did you mean 'model.layers'? known keys of model: "
            "layers)",
        ),
        ("id: s\nlr: [0.1, oops]\n", (), "sweep.yaml: lr[1]: expected float, got 'oops'"),
        ("id: s\nmodel: {layers: {range: [0.5, 3]}}\n", (), "sweep.yaml: model.layers.range[0]: expected int, got 0.5"),
        ("id: s\ngrid_search: {lr: [0.1, x]}\n", (), "sweep.yaml: grid_search.lr[1]: expected float, got 'x'"),
        ("id: s\n", ("-c", "lr=fast"), "sweep.yaml: lr: expected float, got 'fast' (set by -c lr=fast)"),
        (
            "id: s\ngrid_search:\n  config_dicts: [{lr: 0.1, optimizer: sgd}, {lr: 0.2}]\n",
            (),
            "sweep.yaml: grid_search.config_dicts[1]: every mapping must have the keys of the first one "
            "(missing: optimizer)",
        ),
    ],
)
def test_bad_grid_is_one_line_naming_the_key(grid_project, yaml_text, args, message):
    write(grid_project / "sweep.yaml", yaml_text)
    out = run_experiment(grid_project, *args, "sweep.yaml")
    assert out.returncode == 1
    assert out.stderr == f"Error: {message}\n"
    assert not (grid_project / "ws" / "jobs").exists()


# --- mocked modules


def test_mocked_modules_in_the_experiment_real_ones_in_the_jobs(tmp_path):
    """torch (absent) and heavy (installed next to the experiment) are fakes in the
    experiment process; the job process imports the real heavy."""
    write(tmp_path / "heavy" / "__init__.py", "VALUE = 42\n")
    write(
        tmp_path / "tasks.py",
        """
        from xpm import Param, Task

        class Report(Task):
            __xpmid__ = "demo.report"
            name: Param[str]

            def execute(self):
                import heavy
                print(f"{self.name}: {type(heavy).__name__} {heavy.VALUE}")
        """,
    )
    write(
        tmp_path / "experiment.py",
        """
        import heavy
        import torch
        import torch.nn.functional as F
        from torch import nn

        from tasks import Report
        from xpm.experiments import ConfigurationBase, ExperimentHelper, configuration

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.linear = nn.Linear(10, 5)

            @torch.no_grad()
            def predict(self, x):
                return F.relu(x)

        @configuration
        class Configuration(ConfigurationBase):
            name: str = "net"

        def run(helper: ExperimentHelper, cfg: Configuration):
            Net().predict(1)
            print("experiment:", heavy, torch)
            Report.C(name=cfg.name).submit()
        """,
    )
    mock = "from xpm.experiments import mock_modules\nmock_modules(['torch', 'heavy'])\n"
    write(tmp_path / "setup" / "mock.py", mock)
    write(tmp_path / "mocked.yaml", "id: mocked\npre_experiment: setup/mock.py\n")
    out = run_experiment(tmp_path, "mocked.yaml")
    assert out.returncode == 0, out.stderr
    assert "experiment: <fake module 'heavy'> <fake module 'torch'>" in out.stdout
    [job] = job_folders(tmp_path, "demo.report")
    assert (job / "report.out").read_text() == "net: module 42\n"

    # Without the mocking, the experiment imports the real heavy, which fails here.
    write(tmp_path / "heavy" / "__init__.py", "raise ImportError('heavy is too heavy for the experiment')\n")
    write(tmp_path / "plain.yaml", "id: plain\n")
    out = run_experiment(tmp_path, "plain.yaml")
    assert out.returncode == 1 and "heavy is too heavy for the experiment" in out.stderr
    out = run_experiment(tmp_path, "mocked.yaml")
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize(
    "pre_experiment, files, message",
    [
        (
            "setup.py",
            {"setup.py": "import os\nraise RuntimeError('no GPU here')\n"},
            "pre_experiment: {tmp}/setup.py failed: RuntimeError: no GPU here (line 2)",
        ),
        (
            "setup.py",
            {"setup.py": "x = (\n"},
            "pre_experiment: {tmp}/setup.py failed: SyntaxError: '(' was never closed (line 1)",
        ),
        ("gone.py", {}, "pre_experiment: no such file: {tmp}/gone.py"),
        (
            "setup_xp",
            {},
            "pre_experiment: cannot import the module 'setup_xp' (No module named 'setup_xp'); "
            "a file is named with a / or a .py suffix",
        ),
        (
            "pkg.setup",
            {"pkg/__init__.py": "", "pkg/setup.py": "import os\nimport xpm_test_not_there\n"},
            "pre_experiment: the module 'pkg.setup' failed: ModuleNotFoundError: No module named "
            "'xpm_test_not_there' ({tmp}/pkg/setup.py, line 2)",
        ),
    ],
)
def test_pre_experiment_errors_are_one_line(tmp_path, pre_experiment, files, message):
    write(
        tmp_path / "experiment.py",
        "from xpm.experiments import ExperimentHelper\ndef run(helper: ExperimentHelper, cfg):\n    pass\n",
    )
    for name, text in files.items():
        write(tmp_path / name, text)
    write(tmp_path / "xp.yaml", f"id: xp\npre_experiment: {pre_experiment}\n")
    out = run_experiment(tmp_path, "xp.yaml")
    assert out.returncode == 1
    assert out.stderr == f"Error: xp.yaml: {message.format(tmp=tmp_path)}\n"
    if files:
        debug = run_experiment(tmp_path, "--debug", "xp.yaml")
        assert "Traceback (most recent call last)" in debug.stderr
        assert debug.stderr.endswith(f"Error: xp.yaml: {message.format(tmp=tmp_path)}\n")


# --- the examples of docs/run-experiment.md


def doc_example(section: str) -> tuple[dict[str, str], list[str]]:
    """The files (from blocks after a "`name`:" line) and the run-experiment arguments of a doc section."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    body = text[start:end]
    files = dict(re.findall(r"^`([\w.]+)`:\n\n```\w*\n(.*?)^```", body, re.MULTILINE | re.DOTALL))
    [command] = re.findall(r"^experimaestro run-experiment --workdir ~/experiments (.*)$", body, re.MULTILINE)
    return files, command.split()


def test_doc_grid_search_example(tmp_path):
    files, args = doc_example("Grid search")
    assert set(files) == {"sweep.yaml", "experiment.py"}
    for name, text in files.items():
        write(tmp_path / name, text)
    out = run_experiment(tmp_path, *args)
    assert out.returncode == 0, out.stderr
    jobs = job_folders(tmp_path, "demo.train")
    assert sorted((job / "train.out").read_text() for job in jobs) == sorted(
        f"training with lr={lr}, {layers} layers\n" for lr in (0.1, 0.01) for layers in (1, 2)
    )
    assert "submitting {'lr': 0.1, 'model.layers': 1}" in out.stdout
    done = {job: (job / "train.out").stat().st_mtime_ns for job in jobs}
    again = run_experiment(tmp_path, *args)
    assert again.returncode == 0, again.stderr
    assert "4/4 jobs done" in again.stderr
    assert {job: (job / "train.out").stat().st_mtime_ns for job in job_folders(tmp_path, "demo.train")} == done


def test_doc_mocking_example(tmp_path):
    files, args = doc_example("Mocking heavy imports")
    assert set(files) == {"mocked.yaml", "pre_experiment.py", "tasks.py", "experiment.py"}
    for name, text in files.items():
        write(tmp_path / name, text)
    out = run_experiment(tmp_path, *args)
    assert out.returncode == 0, out.stderr
    [job] = job_folders(tmp_path, "demo.evaluate")
    assert (job / "evaluate.out").read_text() == "evaluating net\n"


# --- an experiment written for experimaestro, through the drop-in


def test_experimaestro_grid_experiment_through_the_dropin(tmp_path):
    write(
        tmp_path / "experiment.py",
        """
        from pathlib import Path

        from experimaestro import Param, Task
        from experimaestro.experiments import ConfigurationBase, ExperimentHelper, configuration, mock_modules
        from experimaestro.experiments.cli import ExperimentCallable, validate_attrs
        from experimaestro.experiments.grid import GenericParams, GridSearch, generate_grid

        class Train(Task):
            lr: Param[float]

            def execute(self):
                with (Path(__file__).parent / "executions.log").open("a") as log:
                    log.write(f"{self.lr}\\n")

        @configuration()
        class Configuration(ConfigurationBase):
            lr: GridSearch[float] = 0.1

        def run(helper: ExperimentHelper, cfg: Configuration):
            assert isinstance(cfg.lr, GenericParams)
            assert validate_attrs(Configuration, {"id": "x", "lr": 0.5}).lr.value == 0.5
            for config in generate_grid(cfg)[0]:
                Train.C(lr=config.lr).submit()
        """,
    )
    write(tmp_path / "setup.py", "from experimaestro.experiments import mock_modules\nmock_modules(['torch'])\n")
    write(tmp_path / "sweep.yaml", "id: sweep\npre_experiment: setup.py\nlr: {range_mult: [1e-3, 3, 10]}\n")
    for _ in range(2):
        out = run_experiment(tmp_path, "sweep.yaml", dropin=True)
        assert out.returncode == 0, out.stderr
        assert sorted(map(float, (tmp_path / "executions.log").read_text().split())) == pytest.approx(
            [1e-3, 1e-2, 1e-1]
        )
