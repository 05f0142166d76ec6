"""The index knows the tags of every run that submitted a job, not only of the run that ran it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.run.conftest import script_env

SCRIPT = """
import sys
from xpm import experiment, tag
from tests.run.tasks import Record

workspace, experiment_id, tagged = sys.argv[1], sys.argv[2], sys.argv[3] == "tagged"
with experiment(workspace, experiment_id) as xp:
    Record.C(key="shared", log=sys.argv[4], **({"fail": tag(False)} if tagged else {})).submit()
"""


def run(tmp_path: Path, ws: Path, experiment_id: str, tagged: bool) -> None:
    script = tmp_path / "xp.py"
    script.write_text(SCRIPT)
    args = [sys.executable, str(script), str(ws), experiment_id, "tagged" if tagged else "plain", str(tmp_path / "log")]
    done = subprocess.run(args, env=script_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def xpm(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "xpm", *args], env=script_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_later_run_tagging_a_done_job_is_indexed_and_sync_finds_nothing_to_fix(ws: Path, tmp_path: Path) -> None:
    run(tmp_path, ws, "first", tagged=False)  # runs the job, untagged
    run(tmp_path, ws, "second", tagged=True)  # finds it done, and tags it
    assert "fail=false" in xpm("jobs", "list", "--workdir", str(ws), "--tags")
    lines = (ws / "index" / "jobs.jsonl").read_text().count("\n")
    run(tmp_path, ws, "second", tagged=True)  # the index knows these tags: nothing appended
    assert (ws / "index" / "jobs.jsonl").read_text().count("\n") == lines
    assert xpm("experiments", "sync", "--workdir", str(ws)).splitlines() == ["1 jobs, 0 fixes"]
