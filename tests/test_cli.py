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
