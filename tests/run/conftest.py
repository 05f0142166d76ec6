"""Fixtures of the run tests: a workspace folder, and experiments in other processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Callable

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def own_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test has its own (empty) configuration folder: a user's settings never leak in."""
    folder = tmp_path / "config"
    folder.mkdir()
    monkeypatch.setenv("XPM_CONFIG_DIR", str(folder))
    return folder


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    """A workspace folder (created by the first experiment)."""
    return tmp_path / "workspace"


def script_env(**extra: str) -> dict[str, str]:
    """The environment of an experiment process: it imports ``tests.run.tasks`` from the repository."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


@pytest.fixture
def start_script(tmp_path: Path) -> Callable[..., subprocess.Popen[str]]:
    """Starts a Python script (given as source) in its own process; stdout and stderr are captured."""
    started: list[subprocess.Popen[str]] = []

    def start(source: str, name: str = "script.py") -> subprocess.Popen[str]:
        path = tmp_path / name
        path.write_text(textwrap.dedent(source))
        proc = subprocess.Popen(
            [sys.executable, str(path)],
            cwd=tmp_path,
            env=script_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(proc)
        return proc

    yield start  # type: ignore[misc]
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def wait_until(condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    """Polls ``condition`` until it holds; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
