"""``experimaestro install-skill``: the agent skill, installed per tool; its examples run as written."""

from __future__ import annotations

import ast
import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner, Result

from xpm.cli import cli
from xpm.skill import SKILL_NAME, skill_files

SKILL = skill_files()["SKILL.md"].decode("utf-8")
#: The fenced blocks of SKILL.md: (language, text)
BLOCKS = re.findall(r"^```(\w*)\n(.*?)^```$", SKILL, re.S | re.M)
BIN = Path(sys.executable).parent


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv("HOME", str(folder))
    return folder


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["install-skill", *args], catch_exceptions=False, prog_name="experimaestro")


def listing(home: Path) -> list[list[str]]:
    result = run("--list")
    assert result.exit_code == 0, result.output
    return [re.split(r"\s{2,}", line) for line in result.stdout.splitlines()]


def test_the_skill_has_the_front_matter_of_agent_skills():
    assert SKILL.startswith("---\n")
    front = yaml.safe_load(SKILL.split("---\n")[1])
    assert front["name"] == SKILL_NAME and re.fullmatch(r"[a-z0-9-]+", front["name"])
    assert 50 < len(front["description"]) <= 1024


def test_install_list_and_update(home: Path):
    result = run()
    folder = home / ".agents" / "skills" / SKILL_NAME
    assert result.exit_code == 0 and result.stdout == f"Installed {folder}\n"
    assert (folder / "SKILL.md").read_text(encoding="utf-8") == SKILL
    assert listing(home) == [
        ["agents", "detected", "current", str(folder)],
        ["claude", "not detected", "not installed", str(home / ".claude" / "skills" / SKILL_NAME)],
        ["cursor", "not detected", "not installed", str(home / ".cursor" / "skills" / SKILL_NAME)],
    ]

    # A tool is detected by its home folder; several targets at once; again: up to date.
    (home / ".claude").mkdir()
    claude = home / ".claude" / "skills" / SKILL_NAME
    result = run("claude", "cursor", "claude")
    assert result.exit_code == 0
    assert result.stdout == f"Installed {claude}\nInstalled {home / '.cursor' / 'skills' / SKILL_NAME}\n"
    assert run("claude").stdout == f"Up to date: {claude}\n"

    # An older (or edited) copy is not current; installing again updates it, and keeps the user's own files.
    (claude / "SKILL.md").write_text("an older skill\n")
    (claude / "notes.md").write_text("mine\n")
    assert listing(home)[1][:3] == ["claude", "detected", "outdated"]
    assert run("claude").stdout == f"Updated {claude}\n"
    assert (claude / "SKILL.md").read_text(encoding="utf-8") == SKILL
    assert (claude / "notes.md").read_text() == "mine\n"
    assert [row[2] for row in listing(home)] == ["current", "current", "current"]


def test_an_unknown_target_is_one_line_and_nothing_is_written(home: Path):
    result = run("claude", "vscode")
    assert result.exit_code == 2
    assert result.stderr == "Error: unknown skill target 'vscode' (targets: agents, claude, cursor)\n"
    assert list(home.iterdir()) == []
    assert run("--list", "vscode").exit_code == 2


def test_help_fits_80_columns_and_shows_examples():
    result = run("--help")
    assert result.exit_code == 0 and "experimaestro install-skill claude cursor" in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 80


def _file_blocks() -> dict[str, str]:
    """The blocks whose first line is ``# file: NAME``, by NAME."""
    found = {}
    for _, text in BLOCKS:
        first = text.split("\n", 1)[0]
        if first.startswith("# file: "):
            found[first.removeprefix("# file: ").strip()] = text
    return found


def _environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("XPM_CONFIG_DIR", "XDG_CONFIG_HOME", "PYTHONPATH")}
    env.update(HOME=str(home), PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")
    return env


def test_the_examples_of_the_skill_run_as_written(tmp_path: Path, home: Path):
    """Writes the files of SKILL.md, runs the Python experiment, then every command of its bash block."""
    project = tmp_path / "project"
    project.mkdir()
    files = _file_blocks()
    assert {"tasks.py", "run.py", "sweep.yaml", "experiment.py", "~/.config/experimaestro/settings.yaml"} <= set(files)
    for name, text in files.items():
        path = home / name[2:] if name.startswith("~/") else project / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    env = _environment(home)

    def python(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, *args], cwd=project, env=env, capture_output=True, text=True,
                              timeout=120)

    done = python("run.py")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("done hidden=16 lr=0.01")
    evaluations = sorted((project / "xpm-workspace" / "jobs" / "skill.evaluate").glob("*/evaluate.out"))
    assert [p.read_text() for p in evaluations] != [] and all(p.read_text().startswith("evaluating hidden=16")
                                                              for p in evaluations)

    # Snippets without a file (the launchers): they compile, and everything but the experiment block runs.
    snippets = [text for lang, text in BLOCKS if lang == "python" and not text.startswith("# file: ")]
    assert snippets
    for text in snippets:
        tree = ast.parse(text)
        tree.body = [node for node in tree.body if not isinstance(node, ast.With)]
        done = python("-c", ast.unparse(tree))
        assert done.returncode == 0, done.stderr

    # The settings example: both workspaces read as written.
    done = python("-c", textwrap.dedent("""
        from xpm.settings import resolve_workspace
        main, cluster = resolve_workspace(workspace="main"), resolve_workspace(workspace="cluster")
        print(main.path, cluster.launcher["slurm"]["partition"])
    """))
    assert done.returncode == 0 and done.stdout == f"{home / 'experiments'} gpu\n", done.stderr

    lines = [line for lang, text in BLOCKS if lang == "bash" for line in text.splitlines() if line.strip()]
    assert len(lines) >= 5
    for line in lines:
        words = shlex.split(line, comments=True)
        assert words[0] == "experimaestro"
        done = subprocess.run([str(BIN / "experimaestro"), *words[1:]], cwd=project, env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, (line, done.stdout, done.stderr)
        assert "Error" not in done.stderr, line
    # The YAML experiment ran its two trainings (hidden=32).
    listed = subprocess.run([str(BIN / "experimaestro"), "jobs", "list", "--workdir", "xpm-workspace",
                             "--experiment", "skill-sweep", "--tags"], cwd=project, env=env, capture_output=True,
                            text=True)
    assert sorted(line.split()[-1] for line in listed.stdout.splitlines()) == ["lr=0.01", "lr=0.1"]


def test_the_commands_named_in_the_text_exist_with_their_options():
    """Every ``experimaestro ...`` quoted in the text parses (command, options, arguments) as written."""
    quoted = re.findall(r"`(experimaestro [^`]+)`", SKILL)
    assert len(quoted) >= 5
    for text in quoted:
        words = shlex.split(text)[1:]
        command: click.Command = cli
        while isinstance(command, click.Group) and words:
            sub = command.get_command(click.Context(command), words[0])  # lazy groups import it here
            if sub is None:
                break
            command, words = sub, words[1:]
        assert command is not cli, text
        command.make_context(command.name or "", list(words))


@pytest.mark.parametrize(
    "example",
    ["experimaestro install-skill", "experimaestro install-skill claude",
     "experimaestro install-skill agents claude cursor", "experimaestro install-skill --list"],
)
def test_the_reference_examples_run_as_written(home: Path, example: str):
    result = CliRunner().invoke(cli, shlex.split(example)[1:], catch_exceptions=False, prog_name="experimaestro")
    assert result.exit_code == 0 and result.stderr == "", result.output
    installed = {p.parent.parent.parent.name for p in home.glob(f".*/skills/{SKILL_NAME}/SKILL.md")}
    expected = {"install-skill": {".agents"}, "claude": {".claude"}, "cursor": {".agents", ".claude", ".cursor"},
                "--list": set()}[example.split()[-1]]
    assert installed == expected
