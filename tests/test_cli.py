"""The command-line entry points: experimaestro, xpm and python -m xpm."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

import xpm
from xpm.cli import cli


def test_version_option_and_command():
    runner = CliRunner()
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0 and result.output == f"xpm, version {xpm.__version__}\n"
    result = runner.invoke(cli, ["version"])
    assert result.exit_code == 0 and result.output == f"{xpm.__version__}\n"


def test_help_lists_commands_and_an_example():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "version" in result.output and "Examples:" in result.output


def test_unknown_command_exits_2():
    result = CliRunner().invoke(cli, ["no-such-command"])
    assert result.exit_code == 2 and "No such command" in result.output


def test_python_dash_m():
    out = subprocess.run([sys.executable, "-m", "xpm", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout == f"xpm, version {xpm.__version__}\n"


@pytest.mark.parametrize("script", ["experimaestro", "xpm"])
def test_console_scripts(script):
    path = shutil.which(script) or shutil.which(script, path=str(__import__("pathlib").Path(sys.executable).parent))
    assert path, f"the {script} console script is not installed"
    out = subprocess.run([path, "version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == xpm.__version__


def test_without_workdir_nor_settings_the_one_workspace_of_the_current_folder_is_used(tmp_path, monkeypatch):
    """The demo's case: `jobs list` in the folder holding `xpm-workspace`, no settings file."""
    import os

    from xpm.workspace import Workspace

    config = tmp_path / "config"
    config.mkdir()
    env = {**os.environ, "XPM_CONFIG_DIR": str(config)}

    def run(cwd):
        return subprocess.run([sys.executable, "-m", "xpm", "jobs", "list"], cwd=cwd, env=env,
                              capture_output=True, text=True)

    here = tmp_path / "project"
    Workspace.open(here / "xpm-workspace", create=True)
    (here / "src").mkdir()  # other folders are not workspaces
    found = run(here)
    assert found.returncode == 0 and found.stdout == "No jobs found.\n"
    assert found.stderr == (f"Using the workspace {here / 'xpm-workspace'} (found in the current folder: "
                            "--workdir chooses another)\n")
    assert run(here / "xpm-workspace").returncode == 0  # inside the workspace itself
    # Two workspaces: no guess, the usual error.
    Workspace.open(here / "other", create=True)
    ambiguous = run(here)
    assert ambiguous.returncode != 0 and ambiguous.stderr.startswith("Error: ")
    assert "no workspace given: use --workdir PATH or --workspace ID" in ambiguous.stderr
