"""``experimaestro run-experiment``: options, messages and exit codes (CliRunner, with a
stand-in for xpm.experiment), then real runs in other processes (TestEndToEnd)."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import restoring_imports
from click.testing import CliRunner

import xpm
from xpm.cli import cli
from xpm.errors import XpmError
from xpm.runmode import RunMode

ROOT = Path(__file__).resolve().parents[1]

EXPERIMENT = """
import json
from dataclasses import field
from pathlib import Path
from xpm.experiments import ExperimentHelper, configuration, ConfigurationBase

@configuration
class Model:
    layers: int = 1

@configuration
class Configuration(ConfigurationBase):
    epochs: int = 10
    lrs: list[float] = field(default_factory=lambda: [0.1])
    model: Model = field(default_factory=Model)

def run(helper: ExperimentHelper, cfg: Configuration):
    if cfg.epochs < 0:
        raise RuntimeError("a bug in the user's code")
    Path(__file__).with_name("seen.json").write_text(json.dumps({
        "args": helper.args,
        "epochs": cfg.epochs,
        "lrs": cfg.lrs,
        "layers": cfg.model.layers,
        "same_cfg": helper.cfg is cfg,
        "xp": helper.xp.name,
    }))
"""


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Runs in tmp_path with empty settings; forgets the sys.path entries and the
    modules (the experiment files) a run adds to this process."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XPM_CONFIG_DIR", str(tmp_path / "config"))
    with restoring_imports(tmp_path):
        yield tmp_path


class FakeExperiment:
    """Records what run-experiment asks of an experiment."""

    def __init__(self, where: Any, name: str, run_mode: Any) -> None:
        self.where, self.name, self.run_mode = where, name, run_mode
        self.env: dict[str, str] = {}
        self.exited = False

    def setenv(self, name: str, value: str) -> None:
        self.env[name] = value


@pytest.fixture
def fake_xp(monkeypatch: pytest.MonkeyPatch) -> list[FakeExperiment]:
    """Replaces xpm.experiment() by a stand-in; returns the experiments it made.

    ``FAIL_ON_EXIT`` in an experiment's env makes it raise an XpmError on exit, as a
    failed job does with the real one.
    """
    made: list[FakeExperiment] = []

    @contextlib.contextmanager
    def experiment(
        where: Any, name: str, *, launcher: Any = None, run_mode: Any = None, host: Any = None, port: Any = None
    ) -> Iterator[FakeExperiment]:
        xp = FakeExperiment(where, name, run_mode)
        made.append(xp)
        yield xp
        xp.exited = True
        if "FAIL_ON_EXIT" in xp.env:
            raise XpmError("experiment failed: 1 job(s) ended in error")

    monkeypatch.setattr(xpm, "experiment", experiment, raising=False)
    return made


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, ["run-experiment", *args], catch_exceptions=False)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An experiment: experiment.yaml (importing base.yaml) and experiment.py."""
    write(tmp_path / "experiment.py", EXPERIMENT)
    write(tmp_path / "base.yaml", "epochs: 5\nlrs: [0.5, 0.25]\nmodel: {layers: 2}\n")
    write(tmp_path / "experiment.yaml", "id: demo\nimports: [base]\nepochs: 7\n")
    return tmp_path


def seen(project: Path) -> dict[str, Any]:
    return json.loads((project / "seen.json").read_text())


# --- running (with the stand-in experiment)


def test_runs_with_merged_configuration_and_args(project, fake_xp):
    result = invoke("--workdir", "ws", "experiment", "first", "--", "--second")
    assert result.exit_code == 0, result.output
    assert seen(project) == {
        "args": ["first", "--second"],
        "epochs": 7,
        "lrs": [0.5, 0.25],
        "layers": 2,
        "same_cfg": True,
        "xp": "demo",
    }
    (xp,) = fake_xp
    assert xp.name == "demo" and xp.run_mode is RunMode.NORMAL and xp.exited
    assert xp.where.location.path == str(project / "ws")


def test_overrides_pre_and_post_yaml(project, fake_xp):
    write(project / "pre.yaml", "epochs: 1\nmodel: {layers: 9}\n")
    write(project / "post.yaml", "lrs: [0.3]\n")
    result = invoke(
        "--workdir", "ws", "--pre-yaml", "pre.yaml", "--post-yaml", "post", "-c", "model.layers=4", "experiment.yaml"
    )
    assert result.exit_code == 0, result.output
    # pre.yaml comes before base.yaml (imported by the main file), which sets layers again.
    assert (seen(project)["epochs"], seen(project)["lrs"], seen(project)["layers"]) == (7, [0.3], 4)


@pytest.mark.parametrize(
    "mode, expected",
    [
        ("dry_run", RunMode.DRY_RUN),
        ("GENERATE_ONLY", RunMode.GENERATE_ONLY),
        ("Prepare", RunMode.PREPARE),
        ("NORMAL", RunMode.NORMAL),
    ],
)
def test_run_mode_any_case(project, fake_xp, mode, expected):
    assert invoke("--workdir", "ws", "--run-mode", mode, "experiment").exit_code == 0
    assert fake_xp[0].run_mode is expected


def test_env_and_timestamp(project, fake_xp):
    write(project / "experiment.yaml", "id: demo\nadd_timestamp: true\n")
    result = invoke("--workdir", "ws", "--env", "A", "1", "--env", "B", "two words", "experiment")
    assert result.exit_code == 0, result.output
    (xp,) = fake_xp
    assert xp.env == {"A": "1", "B": "two words"}
    assert xp.name.startswith("demo-") and len(xp.name) == len("demo-20240101-1200")


def test_workspace_from_settings(project, fake_xp):
    write(project / "config" / "settings.yaml", f"workspaces:\n  - id: main\n    path: {project / 'main-ws'}\n")
    assert invoke("--workspace", "main", "experiment").exit_code == 0
    assert fake_xp[0].where.id == "main"
    assert invoke("--xpm-config-dir", str(project / "nowhere"), "--workspace", "main", "experiment").exit_code == 1


def test_no_workspace_is_an_error(project, fake_xp):
    result = invoke("experiment")
    assert result.exit_code == 1 and "no workspace given" in result.output and not fake_xp


def test_file_and_module_options(project, fake_xp):
    write(project / "other" / "my_code.py", EXPERIMENT)
    write(project / "experiment.yaml", "id: demo\nfile: gone\n")
    result = invoke("--workdir", "ws", "--file", "other/my_code", "experiment")
    assert result.exit_code == 0, result.output
    assert (project / "other" / "seen.json").exists()

    write(project / "pkg_for_xpm_cli_test" / "__init__.py", "")
    write(project / "pkg_for_xpm_cli_test" / "xp.py", EXPERIMENT)
    assert invoke("--workdir", "ws", "--module-name", "pkg_for_xpm_cli_test.xp", "experiment").exit_code == 0
    assert (project / "pkg_for_xpm_cli_test" / "seen.json").exists()


def test_console_without_a_terminal_runs_nothing(project, fake_xp):
    result = invoke("--workdir", "ws", "--console", "--port", "8080", "--host", "here", "experiment")
    assert result.exit_code == 1
    assert result.stderr == "Error: the console monitor needs a terminal: stdin and stdout must be one\n"
    assert not (project / "ws").exists()


def test_failed_experiment_is_one_error_line(project, fake_xp):
    result = invoke("--workdir", "ws", "--env", "FAIL_ON_EXIT", "1", "experiment")
    assert result.exit_code == 1
    assert result.stderr == "Error: experiment failed: 1 job(s) ended in error\n"


def test_a_bug_in_run_shows_a_traceback(project, fake_xp):
    out = subprocess.run(
        [sys.executable, "-m", "xpm", "run-experiment", "--workdir", "ws", "-c", "epochs=-1", "experiment"],
        check=False,
        capture_output=True,
        text=True,
        cwd=project,
        env=_env(project),
    )
    # The stand-in is not in that process: the real experiment runs, and run() fails first.
    assert out.returncode == 1
    assert "Traceback" in out.stderr and "RuntimeError: a bug in the user's code" in out.stderr


# --- --show, and errors before anything runs


def test_show_prints_the_merged_json_and_imports_nothing(project, fake_xp):
    (project / "experiment.py").write_text("raise SystemExit('must not be imported')\n")
    result = invoke("--show", "-c", "model.layers=3", "--module-name", "some.module", "experiment")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "epochs": 7,
        "lrs": [0.5, 0.25],
        "model": {"layers": "3"},
        "id": "demo",
        "imports": ["base"],
        "module": "some.module",
    }
    assert result.stdout.startswith('{\n  "epochs": 7,') and not fake_xp


def test_show_through_python_dash_m(project):
    out = subprocess.run(
        [sys.executable, "-m", "xpm", "run-experiment", "--show", "experiment.yaml"],
        check=False,
        capture_output=True,
        text=True,
        cwd=project,
        env=_env(project),
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["epochs"] == 7


@pytest.mark.parametrize(
    "yaml_text, args, message",
    [
        ("id: demo\nepochs: ten\n", [], "Error: experiment.yaml: epochs: expected int, got 'ten'\n"),
        (
            "id: demo\n",
            ["-c", "epochs=ten"],
            "Error: experiment.yaml: epochs: expected int, got 'ten' (set by -c epochs=ten)\n",
        ),
        (
            "id: demo\nepoch: 3\n",
            [],
            "Error: experiment.yaml: unknown key 'epoch' (did you mean 'epochs'? known keys: ",
        ),
        (
            "id: demo\nmodel: {layer: 3}\n",
            [],
            "Error: experiment.yaml: model: unknown key 'layer' (did you mean 'layers'? known keys: layers)\n",
        ),
        ("epochs: 3\n", [], "Error: experiment.yaml: id: required key is missing\n"),
        ("id: demo\nepochs: [1\n", [], "Error: experiment.yaml: line 3, column 1: invalid YAML"),
        ("- id\n", [], "Error: experiment.yaml: expected a mapping at the top level, got ['id']\n"),
        ("id: demo\n", ["-c", "epochs"], "Error: -c epochs: expected key=value (for example -c epochs=10)\n"),
        (
            "id: demo\nimports: [gone]\n",
            [],
            "Error: experiment.yaml: imports[0]: gone: no such file (tried gone and gone.yaml)\n",
        ),
        ("id: demo\nfile: x\nmodule: y\n", [], "Error: experiment.yaml: module: give either file"),
        ("id: demo\nfile: missing\n", [], "Error: experiment.yaml: file: no such file: "),
    ],
)
def test_configuration_errors(project, fake_xp, yaml_text, args, message):
    write(project / "experiment.yaml", yaml_text)
    result = invoke("--workdir", "ws", *args, "experiment")
    assert result.exit_code == 1
    assert result.stderr.startswith(message), result.stderr
    assert result.stderr.count("\n") == 1 and not fake_xp


def test_missing_yaml_file(project, fake_xp):
    result = invoke("--workdir", "ws", "nothing")
    assert result.exit_code == 1
    assert result.stderr == "Error: nothing: no such file (tried nothing and nothing.yaml)\n"


def test_bad_run_mode_is_a_usage_error(project, fake_xp):
    result = invoke("--run-mode", "fast", "experiment")
    assert result.exit_code == 2
    assert "Invalid value for '--run-mode': unknown run mode 'fast'" in result.stderr


def test_help_has_every_option_and_an_example():
    result = CliRunner().invoke(cli, ["run-experiment", "--help"])
    assert result.exit_code == 0
    assert "Usage: cli run-experiment [OPTIONS] YAML_FILE [ARGS]..." in result.output
    for option in (
        "--run-mode [NORMAL|GENERATE_ONLY|DRY_RUN|PREPARE]",
        "--workspace ID",
        "--workdir PATH",
        "--port INT",
        "--console",
        "--host TEXT",
        "--pre-yaml PATH",
        "--post-yaml PATH",
        "-c, --conf KEY=VALUE",
        "--file PATH",
        "--module-name NAME",
        "--env NAME VALUE",
        "--xpm-config-dir DIR",
        "--show",
        "--debug",
        "Examples:",
    ):
        assert option in result.output


# --- real runs (xpm.experiment, the local launcher, job processes)


def _env(project: Path, **extra: str) -> dict[str, str]:
    """The environment of a run-experiment process: xpm from this checkout, empty settings."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["XPM_CONFIG_DIR"] = str(project / "config")
    env.update(extra)
    return env


HELLO_TASKS = """
from xpm import Task, Param

class Hello(Task):
    __xpmid__ = "demo.hello"
    name: Param[str]

    def execute(self):
        if self.name == "fail":
            raise RuntimeError("failing on purpose")
        print(f"hello {self.name}")
"""

HELLO_EXPERIMENT = """
import os
from hello_tasks import Hello
from xpm.experiments import ExperimentHelper, configuration, ConfigurationBase

@configuration
class Configuration(ConfigurationBase):
    who: list[str]

def run(helper: ExperimentHelper, cfg: Configuration):
    for name in cfg.who:
        Hello.C(name=name).submit()
"""


class TestEndToEnd:
    """run-experiment in its own process, with real job processes."""

    @pytest.fixture
    def hello(self, tmp_path: Path) -> Path:
        write(tmp_path / "xp" / "hello_tasks.py", HELLO_TASKS)
        write(tmp_path / "xp" / "experiment.py", HELLO_EXPERIMENT)
        write(tmp_path / "hello.yaml", "id: hello\nfile: xp/experiment\nwho: [world]\n")
        return tmp_path

    @staticmethod
    def run_xp(project: Path, *options: str, args: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
        """Runs hello.yaml with these options, then these ARGS."""
        command = [sys.executable, "-m", "xpm", "run-experiment", "--workdir", str(project / "ws"), *options]
        return subprocess.run(
            [*command, "hello", *args],
            check=False,
            capture_output=True,
            text=True,
            cwd=project,
            env=_env(project),
            timeout=120,
        )

    @staticmethod
    def identifier(project: Path, name: str) -> str:
        """The identifier of Hello(name=...), computed in this process."""
        spec = importlib.util.spec_from_file_location("hello_tasks_for_identifier", project / "xp" / "hello_tasks.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        try:
            spec.loader.exec_module(module)
            return xpm.identifier(module.Hello.C(name=name))
        finally:
            del sys.modules[spec.name]

    def test_normal_runs_the_job(self, hello):
        out = self.run_xp(hello)
        assert out.returncode == 0, out.stderr
        job = hello / "ws" / "jobs" / "demo.hello" / self.identifier(hello, "world")
        assert job.is_dir() and (job / "params.json").is_file()
        assert (job / "hello.out").read_text() == "hello world\n"

    def test_dry_run_writes_nothing(self, hello):
        out = self.run_xp(hello, "--run-mode", "DRY_RUN", "-c", "who=[a]")
        # -c values stay strings: a list cannot be given that way.
        assert out.returncode == 1 and "who: expected list, got '[a]'" in out.stderr
        out = self.run_xp(hello, "--run-mode", "DRY_RUN")
        assert out.returncode == 0, out.stderr
        assert f"demo.hello/{self.identifier(hello, 'world')}" in out.stdout + out.stderr
        assert not (hello / "ws" / "jobs").exists()

    def test_generate_only_writes_the_job_folder(self, hello):
        out = self.run_xp(hello, "--run-mode", "generate_only")
        assert out.returncode == 0, out.stderr
        job = hello / "ws" / "jobs" / "demo.hello" / self.identifier(hello, "world")
        assert (job / "params.json").is_file() and not (job / "hello.out").exists()

    def test_env_reaches_the_jobs(self, hello):
        write(
            hello / "xp" / "hello_tasks.py",
            HELLO_TASKS.replace('f"hello {self.name}"', "f\"hello {os.environ.get('GREETING')}\"").replace(
                "from xpm", "import os\nfrom xpm"
            ),
        )
        out = self.run_xp(hello, "--env", "GREETING", "bonjour")
        assert out.returncode == 0, out.stderr
        job = hello / "ws" / "jobs" / "demo.hello" / self.identifier(hello, "world")
        assert (job / "hello.out").read_text() == "hello bonjour\n"

    def test_a_failed_job_fails_the_experiment(self, hello):
        write(hello / "hello.yaml", "id: hello\nfile: xp/experiment\nwho: [fail, world]\n")
        out = self.run_xp(hello)
        assert out.returncode == 1
        assert "Error: experiment hello failed: 1 job(s) ended in error" in out.stderr
        assert (hello / "ws" / "jobs" / "demo.hello" / self.identifier(hello, "world") / "hello.out").is_file()

    def test_task_defined_in_the_experiment_file(self, tmp_path):
        """The layout of the documentation: the task class lives in experiment.py itself."""
        write(
            tmp_path / "experiment.py",
            """
            from xpm import Task, Param
            from xpm.experiments import ExperimentHelper, configuration, ConfigurationBase

            class Hello(Task):
                __xpmid__ = "demo.hello"
                name: Param[str]

                def execute(self):
                    print(f"hello {self.name}")

            @configuration
            class Configuration(ConfigurationBase):
                who: str = "nobody"

            def run(helper: ExperimentHelper, cfg: Configuration):
                print("args:", helper.args)
                Hello.C(name=cfg.who).submit()
            """,
        )
        write(tmp_path / "hello.yaml", "id: hello\nwho: world\n")
        out = self.run_xp(tmp_path, "--debug", "-c", "who=there", args=("--", "--fast"))
        assert out.returncode == 0, out.stderr
        assert "args: ['--fast']" in out.stdout
        assert "DEBUG xpm.run_experiment: Folders added to sys.path:" in out.stderr
        jobs = list((tmp_path / "ws" / "jobs" / "demo.hello").iterdir())
        assert len(jobs) == 1 and len(jobs[0].name) == 64
        assert (jobs[0] / "hello.out").read_text() == "hello there\n"
