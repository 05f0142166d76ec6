"""Submit hooks: class decorators whose ``process(job, launcher)`` changes a job's environment or launcher.

Every job runs in its own real process: the tasks write what their process's
environment holds to a file of their job folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Hashable

import pytest

from tests.slurm.conftest import slurm  # noqa: F401 - the fixture of a running Slurm cluster
from xpm import Config, Meta, Param, PathGenerator, RunMode, Task, experiment, field, layout
from xpm.config.hooks import SubmitHook, class_hooks, submit_hooks
from xpm.errors import ConfigError
from xpm.launchers.local import LocalLauncher

#: The variables the tasks report
NAMES = ("XPM_HOOK_JAVA", "XPM_HOOK_COUNT", "XPM_HOOK_GPU", "XPM_HOOK_SHARED")


class setenv(SubmitHook):
    """Sets one variable of the job's environment."""

    def __init__(self, name: str, value: str):
        self.name, self.value = name, value

    def spec(self) -> Hashable:
        return (self.name, self.value)

    def process(self, job: Any, launcher: Any) -> None:
        job.environ[self.name] = self.value


class count(SubmitHook):
    """Counts how many times hooks of equal spec ran on one job (must be once)."""

    def __init__(self, key: str):
        self.key = key

    def spec(self) -> Hashable:
        return self.key

    def process(self, job: Any, launcher: Any) -> None:
        job.environ["XPM_HOOK_COUNT"] = int(job.environ.get("XPM_HOOK_COUNT", 0)) + 1


class on_launcher(SubmitHook):
    """Sends the job to another launcher."""

    launcher = LocalLauncher(max_jobs=1)

    def spec(self) -> Hashable:
        return None

    def process(self, job: Any, launcher: Any) -> None:
        job.environ["XPM_HOOK_FROM"] = type(launcher).__name__
        job.launcher = self.launcher


class Report(Task):
    """Writes the hook variables of its process's environment to ``env.json``."""

    key: Param[str]
    out: Meta[Path] = field(default_factory=PathGenerator("env.json"))

    def execute(self) -> None:
        self.out.write_text(json.dumps({name: os.environ.get(name) for name in (*NAMES, "XPM_HOOK_FROM")}))


@setenv("XPM_HOOK_JAVA", "/opt/java11")
@count("once")
@count("once")
class Java(Report):
    pass


@count("once")
class JavaAgain(Java):
    """Its own hook has the spec of one of its base: still once."""


@setenv("XPM_HOOK_GPU", "1")
class Device(Config):
    name: Param[str]


class OnDevice(Report):
    device: Param[Device]


@setenv("XPM_HOOK_SHARED", "from-dependency")
class Upstream(Report):
    pass


class Downstream(Report):
    upstream: Param[Report]


@on_launcher()
class Elsewhere(Report):
    pass


def reported(task: Any) -> dict[str, str | None]:
    return json.loads(Path(task.out).read_text())


def test_hooks_set_the_environment_of_the_job_process(ws: Path) -> None:
    with experiment(ws, "hooks"):
        java = Java.C(key="java").submit()
        plain = Report.C(key="plain").submit()
    assert reported(java)["XPM_HOOK_JAVA"] == "/opt/java11"
    assert reported(plain)["XPM_HOOK_JAVA"] is None
    assert java.job.environ == {"XPM_HOOK_JAVA": "/opt/java11", "XPM_HOOK_COUNT": "1"}


def test_hooks_with_equal_specs_apply_once(ws: Path) -> None:
    assert len(Java.__dict__["__xpm_submit_hooks__"]) == 2, "the second @count('once') was not recorded"
    with experiment(ws, "once"):
        java = Java.C(key="once").submit()
    assert reported(java)["XPM_HOOK_COUNT"] == "1"


def test_hooks_of_base_classes_apply_to_subclasses(ws: Path) -> None:
    assert "__xpm_submit_hooks__" in JavaAgain.__dict__
    # Bases first; on one class, in the order the decorators ran (the nearest to the class first).
    assert class_hooks(JavaAgain) == [count("once"), setenv("XPM_HOOK_JAVA", "/opt/java11")]
    with experiment(ws, "inherit"):
        again = JavaAgain.C(key="sub").submit()
    assert reported(again)["XPM_HOOK_JAVA"] == "/opt/java11"
    assert reported(again)["XPM_HOOK_COUNT"] == "1"


def test_hooks_of_configurations_in_the_parameters_apply(ws: Path) -> None:
    with experiment(ws, "params"):
        task = OnDevice.C(key="gpu", device=Device.C(name="cuda:0")).submit()
    assert reported(task)["XPM_HOOK_GPU"] == "1"


def test_hooks_of_a_dependency_stay_with_its_own_job(ws: Path) -> None:
    with experiment(ws, "deps"):
        up = Upstream.C(key="up").submit()
        down = Downstream.C(key="down", upstream=up).submit()
        assert down.job.dependencies == [up.job]
    assert reported(up)["XPM_HOOK_SHARED"] == "from-dependency"
    assert reported(down)["XPM_HOOK_SHARED"] is None


def test_a_hook_can_change_the_launcher(ws: Path) -> None:
    with experiment(ws, "launcher"):
        task = Elsewhere.C(key="elsewhere").submit()
    assert task.job.launcher is on_launcher.launcher
    assert reported(task)["XPM_HOOK_FROM"] == "LocalLauncher"


def test_the_job_variables_win_over_the_experiment_ones(ws: Path) -> None:
    with experiment(ws, "override") as xp:
        xp.setenv("XPM_HOOK_JAVA", "/usr/lib/jvm")
        xp.setenv("XPM_HOOK_GPU", "0")
        java = Java.C(key="override").submit()
    assert reported(java)["XPM_HOOK_JAVA"] == "/opt/java11"
    assert reported(java)["XPM_HOOK_GPU"] == "0"


def test_hooks_run_in_a_dry_run_too(ws: Path) -> None:
    with experiment(ws, "dry", run_mode=RunMode.DRY_RUN):
        java = Java.C(key="dry").submit()
    assert java.job.environ["XPM_HOOK_JAVA"] == "/opt/java11"


def test_without_hooks_nothing_is_walked() -> None:
    assert submit_hooks(Report.C(key="none")) == []
    assert submit_hooks(OnDevice.C(key="x", device=Device.C(name="d"))) == [setenv("XPM_HOOK_GPU", "1")]


def test_hooks_decorate_configuration_classes_only() -> None:
    with pytest.raises(ConfigError, match="setenv decorates configuration classes, not <class 'int'>"):
        setenv("A", "1")(int)


def test_equal_specs_of_different_hook_classes_are_different_hooks() -> None:
    class other(count):
        pass

    assert count("x") == count("x") and hash(count("x")) == hash(count("x"))
    assert other("x") != count("x")
    assert setenv("A", "1") != setenv("A", "2")


@pytest.mark.usefixtures("slurm")
def test_hooks_reach_slurm_jobs_each_with_its_own_environment(ws: Path) -> None:
    """Two jobs in one job array: the hooked one sees its variables, the other does not."""
    from xpm.launchers.slurm import SlurmLauncher, SlurmOptions

    launcher = SlurmLauncher(SlurmOptions(time="0:10:00"), interval=1)
    with experiment(ws, "slurm", launcher=launcher):
        java = Java.C(key="slurm-java").submit()
        plain = Report.C(key="slurm-plain").submit()
    assert reported(java)["XPM_HOOK_JAVA"] == "/opt/java11"
    assert reported(java)["XPM_HOOK_COUNT"] == "1"
    assert reported(plain)["XPM_HOOK_JAVA"] is None
    script = Path(java.jobpath) / layout.job_script_name(java.job.task_id)
    assert "export XPM_HOOK_JAVA=/opt/java11" in script.read_text(), "the job went through sbatch"
