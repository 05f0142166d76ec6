"""Issue 16's "done when": an experiment written for experimaestro 2.7.0 runs unchanged, twice.

A library and an experiment file, written only against experimaestro's documented API
(a grid-search YAML file, a transient preprocessing task, a learner that registers a
checkpoint per step, a watched output whose callback submits an evaluation, on_completed,
a ``launchers.py`` that chooses the launcher by requirement, ``JobState``), run by the real
command line with the drop-in, as separate processes. The second run must run nothing:
every job ran exactly once, and the transient task (needed) ran once too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

LIBRARY = '''
from pathlib import Path

from experimaestro import Config, DependentMarker, Meta, Param, PathGenerator, Task, field


def append(path, line):
    with open(path, "a") as f:
        f.write(line + "\\n")


class Corpus(Task):
    """A preprocessing step: submitted as transient, it runs only because a learner needs it."""

    size: Param[int]
    log: Meta[Path]
    out: Meta[Path] = field(default_factory=PathGenerator("corpus.txt"))

    def execute(self):
        append(self.log, "corpus")
        self.out.write_text("x" * self.size)


class Checkpoint(Config):
    lr: Param[float]
    step: Param[int]


class Learner(Task):
    corpus: Param[Corpus]
    lr: Param[float]
    log: Meta[Path]

    def checkpoint(self, dep: DependentMarker, *, step: int) -> Checkpoint:
        return dep(Checkpoint.C(lr=self.lr, step=step))

    def execute(self):
        assert self.corpus.out.read_text()
        append(self.log, f"learn {self.lr}")
        for step in (1, 2):
            self.register_task_output(self.checkpoint, step=step)


class Evaluate(Task):
    checkpoint: Param[Checkpoint]
    log: Meta[Path]

    def execute(self):
        append(self.log, f"evaluate {self.checkpoint.lr} {self.checkpoint.step}")
'''

EXPERIMENT = '''
from pathlib import Path

from experimaestro import field
from experimaestro.experiments import ConfigurationBase, ExperimentHelper, configuration
from experimaestro.experiments.grid import GridSearch, generate_grid
from experimaestro.launcherfinder import cpu, find_launcher
from experimaestro.scheduler import JobState
from experimaestro.scheduler.transient import TransientMode

from library import Corpus, Evaluate, Learner, append


@configuration()
class Configuration(ConfigurationBase):
    lr: GridSearch[float] = 0.1
    log: str = "log.txt"


def run(helper: ExperimentHelper, cfg: Configuration):
    log = Path(cfg.log)
    launcher = find_launcher(cpu())
    corpus = Corpus.C(size=3, log=log).submit(transient=TransientMode.TRANSIENT, launcher=launcher)
    configurations, tags = generate_grid(cfg)
    for config, values in zip(configurations, tags):
        learner = Learner.C(corpus=corpus, lr=config.lr, log=log).submit(launcher=launcher)
        learner.watch_output(
            learner.checkpoint,
            lambda checkpoint: Evaluate.C(checkpoint=checkpoint, log=log).submit(launcher=launcher),
        )
        learner.on_completed(lambda values=values: append(log, f"completed {values['lr']}"))
    helper.xp.wait()
    assert corpus.job.state == JobState.DONE
'''

LAUNCHERS = '''
from experimaestro.connectors.local import LocalConnector
from experimaestro.launcherfinder import CPUSpecification, HostRequirement, HostSpecification
from experimaestro.launchers.direct import DirectLauncher


def find_launcher(requirements: HostRequirement, tags=set()):
    host = HostSpecification(cpu=CPUSpecification(4 * 1024**3, 4))
    if requirements.match(host):
        return DirectLauncher(connector=LocalConnector.instance())
    return None
'''

YAML = """
id: ported
file: experiment
lr: [0.1, 0.01]
log: {log}
"""


def _run(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()}
    env.update(XPM_EXPERIMAESTRO="1", PYTHONPATH=str(tmp_path / "code"), XPM_CONFIG_DIR=str(tmp_path / "config"))
    command = [
        sys.executable, "-m", "xpm", "run-experiment",
        "--workdir", str(tmp_path / "ws"),
        "--xpm-config-dir", str(tmp_path / "config"),
        str(tmp_path / "code" / "ported.yaml"),
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)


def test_an_experimaestro_experiment_runs_unchanged_twice_each_job_once(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (tmp_path / "config").mkdir(exist_ok=True)  # the settings folder of the test (conftest)
    (code / "library.py").write_text(LIBRARY)
    (code / "experiment.py").write_text(EXPERIMENT)
    (tmp_path / "config" / "launchers.py").write_text(LAUNCHERS)
    log = tmp_path / "log.txt"
    (code / "ported.yaml").write_text(YAML.format(log=log))

    first = _run(tmp_path)
    assert first.returncode == 0, first.stderr
    ran = sorted(log.read_text().splitlines())
    assert ran == sorted(
        ["corpus", "learn 0.1", "learn 0.01"]
        + [f"evaluate {lr} {step}" for lr in (0.1, 0.01) for step in (1, 2)]
        + ["completed 0.1", "completed 0.01"]
    )

    second = _run(tmp_path)
    assert second.returncode == 0, second.stderr
    again = sorted(log.read_text().splitlines())
    # Nothing ran again: only the on_completed callbacks (experiment-side) were called once more
    assert again == sorted(ran + ["completed 0.1", "completed 0.01"])
    jobs = tmp_path / "ws" / "jobs"
    assert sum(1 for task in jobs.iterdir() for _ in task.iterdir()) == 1 + 2 + 4
