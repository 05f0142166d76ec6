"""An experiment in a damaged workspace says what is wrong in one line; `experiments sync` repairs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.run.conftest import script_env
from tests.run.tasks import log_lines

SCRIPT = """
import sys
from xpm import experiment, tag
from tests.run.tasks import Record

with experiment(sys.argv[1], "damaged") as xp:
    for key in ("a", "b"):
        Record.C(key=tag(key), log=sys.argv[2]).submit()
"""


def run(script: Path, ws: Path, log: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(script), str(ws), str(log)], env=script_env(), capture_output=True,
                          text=True, timeout=120)


def test_a_folder_where_the_index_belongs(tmp_path: Path):
    ws, log, script = tmp_path / "ws", tmp_path / "log", tmp_path / "xp.py"
    script.write_text(SCRIPT)
    ws.mkdir()
    (ws / "index" / "jobs.jsonl").mkdir(parents=True)
    first = run(script, ws, log)
    assert first.returncode == 1 and "Traceback" not in first.stderr, first.stderr
    error = [line for line in first.stderr.splitlines() if line.startswith("Error: ")]
    assert len(error) == 1 and "cannot record the job" in error[0] and "experiments sync" in error[0]
    synced = subprocess.run([sys.executable, "-m", "xpm", "experiments", "sync", "--workdir", str(ws)],
                            capture_output=True, text=True, timeout=120, env=script_env())
    assert synced.returncode == 0 and "moved to index/jobs.jsonl.damaged-" in synced.stdout, synced.stdout
    again = run(script, ws, log)
    assert again.returncode == 0, again.stderr
    assert sorted(line[0] for line in log_lines(log) if line[1] == "end") == ["a", "b"]


def test_a_damaged_state_record_of_a_done_job_never_runs_it_again(tmp_path: Path):
    ws, log, script = tmp_path / "ws", tmp_path / "log", tmp_path / "xp.py"
    script.write_text(SCRIPT)
    assert run(script, ws, log).returncode == 0
    state = sorted(ws.glob("jobs/*/*/.xpm/state.json"))[0]
    state.write_bytes(b"\x00damaged")
    second = run(script, ws, log)
    assert second.returncode == 1 and "Traceback" not in second.stderr
    assert any(line.startswith("Error: ") and "state.json" in line for line in second.stderr.splitlines())
    assert len([line for line in log_lines(log) if line[1] == "end"]) == 2, "a done job ran again"
    synced = subprocess.run([sys.executable, "-m", "xpm", "experiments", "sync", "--workdir", str(ws)],
                            capture_output=True, text=True, timeout=120, env=script_env())
    assert "rebuilt from its events: done" in synced.stdout, synced.stdout
    third = run(script, ws, log)
    assert third.returncode == 0, third.stderr
    assert len([line for line in log_lines(log) if line[1] == "end"]) == 2, "a done job ran again"
