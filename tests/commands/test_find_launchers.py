"""``experimaestro find-launchers``: the launcher launchers.py chooses, or one clear error line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

LAUNCHERS = '''
from xpm.launchers.local import LocalLauncher
from xpm.launchers.slurm import SlurmLauncher, SlurmOptions


def find_launcher(requirements, tags):
    if "slurm" in tags:
        return SlurmLauncher(SlurmOptions(partition="gpu"))
    if requirements.alternatives[0].cpu.cores <= 4:
        return LocalLauncher()
    return None
'''


def find(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "xpm", "find-launchers", *args], capture_output=True, text=True)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "launchers.py").write_text(LAUNCHERS)
    return tmp_path


def test_the_chosen_launcher_is_printed(config: Path) -> None:
    done = find("--config", str(config), "cpu(cores=2)")
    assert done.returncode == 0 and done.stdout == "LocalLauncher(max_jobs=None)\n", done.stderr
    done = find("--config", str(config), "--tag", "slurm", "cuda(mem=8G)*2")
    assert done.returncode == 0 and done.stdout == "SlurmLauncher(nodes=1, partition='gpu')\n", done.stderr


def test_alternatives_are_tried_in_order(config: Path) -> None:
    done = find("--config", str(config), "cpu(cores=16) | cpu(cores=4)")
    assert done.returncode == 0 and done.stdout.startswith("LocalLauncher("), done.stderr


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["cpu(cores=16)"], 1, "Error: no launcher for 'cpu(cores=16)': find_launcher() in "),
        (["cuda(mem=8G"], 2, "Error: bad requirement at column 12: expected ',' or ')'"),
    ],
)
def test_errors_are_one_line(config: Path, args: list[str], code: int, message: str) -> None:
    done = find("--config", str(config), *args)
    assert done.returncode == code and done.stderr.startswith(message) and done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr


def test_a_missing_launchers_file(tmp_path: Path) -> None:
    done = find("--config", str(tmp_path), "cpu(cores=1)")
    assert done.returncode == 1 and f"{tmp_path}/launchers.py does not exist" in done.stderr
