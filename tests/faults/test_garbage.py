"""Fault injection: truncated and garbage-filled files of a finished workspace.

For each kind of file (the job index, a state record, a run's job log, a params.json, a run
record, a ref), truncated at half or overwritten with random bytes (fixed seed): every command
still answers (an answer, or one line saying what is wrong), never a traceback; `experiments sync`
repairs what can be derived; nothing is deleted but what sync moves aside.
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from tests.run.conftest import script_env

SCRIPT = """
import sys
from xpm import experiment, tag
from tests.run.tasks import Record

with experiment(sys.argv[1], "garbage") as xp:
    previous = None
    for i in range(8):
        task = Record.C(key=tag(f"job{i}"), log=sys.argv[2])
        if previous is not None and i % 2:
            task.add_dependencies(previous.job)
        previous = task.submit()
"""

COMMANDS = [
    ["jobs", "list"],
    ["jobs", "list", "--experiment", "garbage", "--tags"],
    ["jobs", "list", "--filter", '@state = "DONE"', "--json"],
    ["experiments", "list"],
    ["workspace", "check"],
    ["jobs", "clean"],
    ["orphans"],
]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("garbage")
    (root / "xp.py").write_text(SCRIPT)
    done = subprocess.run([sys.executable, str(root / "xp.py"), str(root / "ws"), str(root / "log")],
                          env=script_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return root / "ws"


def targets(ws: Path) -> dict[str, Path]:
    return {
        "index": ws / "index" / "jobs.jsonl",
        "state": sorted(ws.glob("jobs/*/*/.xpm/state.json"))[0],
        "run log": sorted(ws.glob("experiments/garbage/*/jobs.jsonl"))[0],
        "params": sorted(ws.glob("jobs/*/*/params.json"))[0],
        "run record": sorted(ws.glob("experiments/garbage/*/run.json"))[0],
        "ref": next((ws / "refs").rglob("*.json")),
    }


def files(ws: Path) -> set[str]:
    return {str(p.relative_to(ws)) for p in ws.rglob("*") if p.is_file() and ".damaged-" not in str(p)}


def command(ws: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    where = [str(ws)] if args[0] == "orphans" else ["--workdir", str(ws)]
    return subprocess.run([sys.executable, "-m", "xpm", *args, *where], capture_output=True, text=True, timeout=120,
                          env=script_env())


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
@pytest.mark.parametrize("kind", ["index", "state", "run log", "params", "run record", "ref"])
def test_every_command_answers_and_sync_repairs(finished: Path, tmp_path: Path, kind: str, damage: str):
    ws = tmp_path / "ws"
    subprocess.run(["cp", "-a", str(finished), str(ws)], check=True)
    target = targets(ws)[kind]
    data = target.read_bytes()
    rng = random.Random(f"{kind}/{damage}")
    target.write_bytes(data[: len(data) // 2] if damage == "truncated" else rng.randbytes(len(data)))
    before = files(ws)
    for args in COMMANDS:
        result = command(ws, args)
        assert "Traceback" not in result.stderr, (args, result.stderr)
        assert result.returncode in (0, 1, 2), (args, result.stderr)
        if result.returncode:
            # What is wrong, in a line (check lists one line per problem, and a count).
            assert result.stderr.strip() or result.stdout.strip(), args
    synced = command(ws, ["experiments", "sync"])
    assert "Traceback" not in synced.stderr and synced.returncode in (0, 1), synced.stderr
    assert files(ws) >= before - {str(target.relative_to(ws))}, "sync deleted a file"
    after = command(ws, ["jobs", "list", "--json"])
    assert after.returncode == 0 and "Traceback" not in after.stderr
