"""The job-index vectors of spec/vectors/index.json, read by xpm's index (full fold and snapshot)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from xpm import layout
from xpm.store.index import JobIndex
from xpm.workspace import Workspace

VECTORS = json.loads((Path(__file__).resolve().parents[2] / "spec" / "vectors" / "index.json").read_text())
CASES = {case["name"]: case for case in VECTORS["cases"]}


def folded(index: JobIndex, **options: Any) -> tuple[list[dict[str, Any]], int, int]:
    snapshot = index.load(**options)
    jobs = [
        {
            "task_id": j.task_id,
            "identifier": j.identifier,
            "state": j.state,
            "failure_reason": j.failure_reason,
            "tags": j.tags,
            "ts": j.updated_at,
        }
        for _, j in sorted(snapshot.jobs.items())
    ]
    return jobs, snapshot.offset, len(snapshot.problems)


@pytest.mark.parametrize("name", sorted(CASES))
def test_index_vector(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    ws = Workspace.open(tmp_path / "ws", create=True)
    ws.write_atomic(layout.JOB_INDEX, "".join(case["log"]).encode())
    jobs, offset, problems = folded(JobIndex(ws), full=True)
    assert jobs == case["jobs"]
    assert offset == case["offset"]
    assert problems == case["problems"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_index_vector_through_a_snapshot(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A snapshot of the first lines, then the rest of the log: the same fold."""
    import xpm.store.index as index_module

    case = CASES[name]
    ws = Workspace.open(tmp_path / "ws", create=True)
    lines = case["log"]
    monkeypatch.setattr(index_module, "SNAPSHOT_AFTER_LINES", 1)
    ws.write_atomic(layout.JOB_INDEX, lines[0].encode())
    JobIndex(ws).load()
    assert ws.exists(layout.JOB_INDEX_SNAPSHOT)
    for line in lines[1:]:
        ws.append(layout.JOB_INDEX, line.encode())
    monkeypatch.setattr(index_module, "SNAPSHOT_AFTER_LINES", 10**9)
    jobs, offset, _ = folded(JobIndex(ws))
    assert jobs == case["jobs"]
    assert offset == case["offset"]
