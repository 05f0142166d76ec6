"""The Slurm tests run against a real single-node cluster (munged, slurmctld, slurmd on this machine).

CI starts it (scripts/ci/start-slurm.sh) and sets XPM_REQUIRE_SLURM=1: there a missing cluster
fails the tests. Elsewhere, as root with Slurm installed, the tests start it themselves; without
Slurm they skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.run.conftest import own_settings, start_script, wait_until, ws  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parents[2]


def cluster_up() -> bool:
    if shutil.which("sinfo") is None:
        return False
    out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
    return out.returncode == 0 and any(state in out.stdout for state in ("idle", "mixed", "alloc"))


@pytest.fixture(scope="session")
def slurm() -> None:
    """A running Slurm cluster, or a skip (a failure in CI)."""
    if not cluster_up() and os.geteuid() == 0 and shutil.which("slurmctld"):
        subprocess.run(["bash", str(ROOT / "scripts" / "ci" / "start-slurm.sh")], capture_output=True)
    if not cluster_up():
        if os.environ.get("XPM_REQUIRE_SLURM") == "1":
            pytest.fail("XPM_REQUIRE_SLURM=1 but no Slurm cluster answers (scripts/ci/start-slurm.sh)")
        pytest.skip("no Slurm cluster (install slurm-wlm slurmctld slurmd munge, and run as root)")


@pytest.fixture
def slurm_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every Slurm command xpm runs, one line each (XPM_SLURM_LOG), for this test's processes."""
    path = tmp_path / "slurm-commands.log"
    monkeypatch.setenv("XPM_SLURM_LOG", str(path))
    # A fresh host-wide cache: answers of earlier tests must not stand in for this one's.
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    return path


def commands(log: Path) -> list[str]:
    """The Slurm commands of a log, without their arguments' paths: ``sbatch``, ``squeue``..."""
    if not log.exists():
        return []
    return [line.split()[2] for line in log.read_text().splitlines()]
