"""Fixtures of the drop-in tests: fresh interpreters, whose ``sys.modules`` and ``sys.meta_path`` are clean.

Each test runs its Python code in a new process of this environment, without
``XPM_EXPERIMAESTRO`` unless the test sets it: what the drop-in does to a process
(and what ``import xpm`` must not do) is only seen in a process of its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.run.conftest import own_settings, ws  # noqa: F401 - fixtures
from tests.slurm.conftest import slurm, slurm_log  # noqa: F401 - fixtures

#: The version of the fake "real" experimaestro distribution
FAKE_VERSION = "9.9.9"


def python(
    code: str, *, cwd: Path, env: dict[str, str] | None = None, args: list[str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Runs ``code`` (or ``args``) with this environment's interpreter; returns the finished process.

    The variable ``XPM_EXPERIMAESTRO`` of the test's own environment is left out:
    only ``env`` sets it.
    """
    full = {name: value for name, value in os.environ.items() if name != "XPM_EXPERIMAESTRO"}
    full.update(env or {})
    command = [sys.executable, *(args if args is not None else ["-c", textwrap.dedent(code)])]
    return subprocess.run(command, cwd=cwd, env=full, capture_output=True, text=True, timeout=timeout)


def check(done: subprocess.CompletedProcess[str]) -> str:
    """The standard output of a process that must have succeeded (else its output, in the failure)."""
    assert done.returncode == 0, f"exit status {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    return done.stdout


@pytest.fixture
def fake_real(tmp_path: Path) -> Path:
    """A folder holding a stand-in for a real experimaestro distribution: a package and its metadata.

    Put it on ``PYTHONPATH`` and the import system (and ``importlib.metadata``) finds
    ``experimaestro`` there, as with an installed one.
    """
    site = tmp_path / "site"
    package = site / "experimaestro"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(f'__version__ = "{FAKE_VERSION}"\nREAL = True\n')
    info = site / f"experimaestro-{FAKE_VERSION}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: experimaestro\nVersion: {FAKE_VERSION}\n")
    (info / "RECORD").write_text("")
    return site


@pytest.fixture(scope="session", autouse=True)
def no_real_experimaestro() -> None:
    """These tests expect an environment without a real experimaestro (each adds its own fake when it needs one)."""
    done = subprocess.run(
        [sys.executable, "-c", "import importlib.util; print(importlib.util.find_spec('experimaestro') is None)"],
        capture_output=True,
        text=True,
        env={name: value for name, value in os.environ.items() if name != "XPM_EXPERIMAESTRO"},
    )
    if done.stdout.strip() != "True":
        pytest.skip("a real experimaestro is installed in this environment")
