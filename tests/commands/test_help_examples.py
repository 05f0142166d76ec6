"""Every example of every ``--help`` text is a command line that works.

Each example is read from the help texts themselves (so a new one is tested without a line
here). All of them must name existing commands and options: click parses each one (with
``--help`` appended, which stops before anything runs). Then the examples that read or
dry-run a workspace run for real, in their own process, against a workspace made by a real
experiment, with the placeholders of the help texts (``/path/to/workspace``, ``my-xp``,
``mymodule.mytask/0721c3a9b8e4``...) replaced by what that workspace holds; each must exit
0. The others need what a test cannot lend them (a cluster named ``hpc``, a browser, the
user's home folder, a Sphinx build) and have their own tests; they are listed in ``PARSED_ONLY``
so that a new example is never silently left out.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import textwrap
from typing import Iterator

import click
import pytest
from click.testing import CliRunner

from tests.run.conftest import script_env
from xpm.cli import cli


def examples() -> Iterator[tuple[str, str]]:
    """(command path, example line) for every example of every help text."""

    def walk(command: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
        yield path, command
        if isinstance(command, click.Group):
            ctx = click.Context(command)
            for name in command.list_commands(ctx):  # loads the lazy commands
                sub = command.get_command(ctx, name)
                assert sub is not None, f"{path} {name}"
                yield from walk(sub, f"{path} {name}".strip())

    for path, command in walk(cli, ""):
        text = command.help or ""
        found = re.search(r"\n\s*Examples?:\n(.*)", text, re.S)
        if found is None:
            continue
        pending = ""
        for raw in found.group(1).splitlines():
            line = pending + raw.strip()
            if line.endswith("\\"):
                pending = line[:-1].strip() + " "
                continue
            pending = ""
            if line:
                yield path, line


def command_words(line: str) -> list[str]:
    """The words of the ``experimaestro`` command an example runs (its comment, shell redirection,
    ``eval "$(...)"`` wrapper and ``ssh HOST`` prefix left out)."""
    inner = re.fullmatch(r'eval "\$\((.*)\)".*', line)
    if inner:
        line = inner.group(1)
    words = shlex.split(line, comments=True)
    if ">" in words:
        words = words[: words.index(">")]
    assert "experimaestro" in words, line
    return words[words.index("experimaestro") + 1:]


ALL = list(examples())

#: Examples that are only parsed here: why, and where they run for real
PARSED_ONLY = {
    "experiments copy": "a cluster named hpc (tests/commands/test_experiments_copy.py)",
    "experiments monitor": "a server until Ctrl-C (tests/web, tests/terminal)",
    "experiments ssh-monitor": "an SSH host (tests/commands/test_ssh_monitor.py)",
    "experiments monitor-server": "an ssh client speaking its protocol (tests/monitor/test_monitor_server.py)",
    "install-skill": "the user's home folder (tests/commands/test_install_skill.py)",
    "refactor": "rewrites the current folder (tests/commands/test_refactor.py)",
    "refactor default-values": "rewrites the current folder (tests/commands/test_refactor.py)",
    "check-documentation": "a Sphinx build (tests/commands/test_check_documentation.py)",
    "run-experiment": "an experiment.yaml (tests/test_run_experiment.py)",
    "find-launchers": "a launchers.py (tests/commands/test_find_launchers.py)",
    "completion": "a shell's start-up file (tests/commands/test_completion.py)",
    "experiments history-prune": "asks for confirmation (tests/commands/test_history.py)",
}


def test_the_help_texts_have_examples() -> None:
    assert len(ALL) > 50
    assert {path for path, _ in ALL} >= {"jobs list", "jobs log", "experiments list", "orphans"}


@pytest.mark.parametrize(("path", "line"), ALL, ids=[f"{p}: {line}" for p, line in ALL])
def test_every_example_parses(path: str, line: str) -> None:
    """Existing commands and options only (the top-level help once named a command that did not exist)."""
    result = CliRunner().invoke(cli, [*command_words(line), "--help"], prog_name="experimaestro")
    assert result.exit_code == 0, f"{line}\n{result.output}"
    assert result.output.startswith("Usage: experimaestro"), result.output


TASKS = '''
from xpm import Param, Task


class Train(Task):
    model: Param[str]
    fail: Param[bool] = False

    def execute(self):
        if self.fail:
            raise RuntimeError("this training fails on purpose")
        print("trained", self.model)
'''

EXPERIMENT = '''
from xpm import experiment, tag
from tasks import Train

with experiment({ws!r}, {name!r}):
    Train.C(model=tag("bm25")).submit()
    Train.C(model=tag("splade"), fail=True).submit()
'''


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A workspace with a run of ``my-xp`` and two of ``demo`` (the latest tagged ``baseline``), each
    with a done job and a failed one."""
    root = tmp_path_factory.mktemp("examples")
    ws = root / "workspace"
    (root / "tasks.py").write_text(TASKS)
    env = {**script_env(), "PYTHONPATH": f"{root}{os.pathsep}{script_env()['PYTHONPATH']}",
           "XPM_CONFIG_DIR": str(root / "config"), "HOME": str(root)}
    (root / "config").mkdir()
    (root / "config" / "settings.yaml").write_text(f"workspaces:\n  - id: main\n    path: {ws}\n")
    for name in ("my-xp", "demo", "demo"):
        script = root / "xp.py"
        script.write_text(textwrap.dedent(EXPERIMENT.format(ws=str(ws), name=name)))
        subprocess.run([sys.executable, str(script)], cwd=root, env=env, capture_output=True, timeout=120)
    jobs = sorted((ws / "jobs" / "tasks.train").iterdir())
    assert len(jobs) == 2
    done = next(j for j in jobs if "bm25" in (j / "params.json").read_text())
    failed = next(j for j in jobs if j != done)
    tagged = subprocess.run([sys.executable, "-m", "xpm", "experiments", "--workdir", str(ws), "tag", "demo",
                             "latest", "baseline"], env=env, capture_output=True, text=True, timeout=60)
    assert tagged.returncode == 0, tagged.stderr
    oldest = sorted(p.name for p in (ws / "experiments" / "demo").iterdir() if p.is_dir())[0]
    return {"root": str(root), "ws": str(ws), "done": f"tasks.train/{done.name[:12]}",
            "failed": f"tasks.train/{failed.name[:12]}", "done_folder": str(done), "failed_folder": str(failed),
            "oldest_demo_run": oldest, "config": str(root / "config"), "pythonpath": env["PYTHONPATH"]}


def substitute(words: list[str], project: dict[str, str]) -> list[str]:
    """The help texts' placeholders, replaced by what the project's workspace holds."""
    table = {
        "/path/to/workspace": project["ws"], "~/xp": project["ws"], "W": project["ws"],
        "mymodule.mytask/0721c3a9b8e4": project["done"], "my.train/0721c3": project["done"],
        "my.train/9a1": project["failed"], "JOB_FOLDER": project["done_folder"],
        "old/params.json": f"{project['failed_folder']}/params.json", "20261204_101500": project["oldest_demo_run"],
        "experiment.yaml": "xp.py",  # the demo experiment is a Python file
    }
    return [table.get(word, word) for word in words]


def runs_for_real(path: str, line: str) -> bool:
    return path not in PARSED_ONLY and not path.startswith("experiments history-prune")


@pytest.mark.parametrize(
    ("path", "line"), [(p, x) for p, x in ALL if runs_for_real(p, x)],
    ids=[f"{p}: {x}" for p, x in ALL if runs_for_real(p, x)],
)
def test_every_example_that_reads_a_workspace_runs(path: str, line: str, project: dict[str, str]) -> None:
    words = substitute(command_words(line), project)
    if "--perform" in words and path in ("jobs kill", "jobs clean", "experiments prune") or "--clean" in words:
        words = [w for w in words if w not in ("--perform", "--clean")]  # the dry run: the workspace is shared
    env = {**os.environ, "XPM_CONFIG_DIR": project["config"], "HOME": project["root"],
           "PYTHONPATH": project["pythonpath"]}
    done = subprocess.run([sys.executable, "-m", "xpm", *words], cwd=project["root"], env=env,
                          capture_output=True, text=True, timeout=120)
    # parameters-difference exits 0; experiments diff says "the runs differ" with 1 (as diff does).
    expected = (0, 1) if path == "experiments diff" else (0,)
    assert done.returncode in expected, f"{shlex.join(words)}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr


def test_every_command_with_examples_is_run_or_said_why_not() -> None:
    paths = {path for path, _ in ALL}
    assert set(PARSED_ONLY) <= paths, set(PARSED_ONLY) - paths
