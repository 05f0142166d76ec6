"""Damaged files: `workspace check` reports each kind, `experiments sync` repairs what can be derived.

On every backend (local, memory, SSH). Repairs move a damaged file or folder aside
(``<name>.damaged-<time>``) and delete nothing.
"""

from __future__ import annotations

import pytest

from tests.commands.conftest import params_of
from xpm import codec, layout
from xpm.errors import SerializationError
from xpm.maintenance import check, sync
from xpm.schema import RECORD_VERSION, JobStateRecord, JobSubmitted, RunRecord
from xpm.store.jobs import JobStore
from xpm.store.log import EventLog
from xpm.store.runs import RunStore
from xpm.workspace import Workspace

IDENT = "ab" * 32
PARAMS = params_of("t.train", IDENT)


def a_run(ws: Workspace, experiment_id: str = "xp", run_id: str = "20260101_000000", jobs: bool = True) -> str:
    ws.makedirs(layout.run_dir(experiment_id, run_id))
    record = RunRecord(version=RECORD_VERSION, experiment_id=experiment_id, run_id=run_id, hostname="h", pid=1,
                       started_at=1.0, status="done")
    ws.write_atomic(layout.run_record(experiment_id, run_id), codec.encode(record))
    if jobs:
        EventLog(ws, layout.run_jobs(experiment_id, run_id)).append(
            JobSubmitted(ts=1.0, task_id="t.train", identifier=IDENT, tags={})
        )
    RunStore(ws).set_current(experiment_id, run_id)
    return run_id


def a_done_job(ws: Workspace) -> JobStore:
    store = JobStore(ws)
    store.create("t.train", IDENT, PARAMS)
    store.record_state("t.train", IDENT, "running", process={"type": "local", "pid": 1, "host": "h"})
    store.record_state("t.train", IDENT, "done", exit_code=0)
    return store


def messages(ws: Workspace) -> list[str]:
    return [f"{p.path}: {p.message}" for p in check(ws, recompute=False)]


def test_a_folder_where_the_index_belongs_is_reported_and_moved_aside(workspace: Workspace):
    a_done_job(workspace)
    workspace.remove(layout.JOB_INDEX)
    workspace.makedirs(layout.JOB_INDEX)
    assert any("a folder where the index belongs" in m for m in messages(workspace))
    report = sync(workspace)
    assert any("moved to index/jobs.jsonl.damaged-" in fixed for fixed in report.fixed)
    assert not workspace.isdir(layout.JOB_INDEX) and messages(workspace) == []
    assert [n for n in workspace.listdir(layout.INDEX) if ".damaged-" in n], "the folder was deleted"
    assert JobStore(workspace).index.load().jobs[("t.train", IDENT)].state == "done"


@pytest.mark.parametrize("damage", ["garbage", "folder", "unknown state"])
def test_a_damaged_state_record_of_an_ended_job_is_rebuilt_from_its_events(workspace: Workspace, damage: str):
    store = a_done_job(workspace)
    rel = layout.job_state("t.train", IDENT)
    if damage == "folder":
        workspace.remove(rel)
        workspace.makedirs(rel)
    elif damage == "garbage":
        workspace.write_atomic(rel, b"\x00garbage")
    else:
        record = JobStateRecord(version=RECORD_VERSION, task_id="t.train", identifier=IDENT, state="finished",
                                updated_at=1.0)
        workspace.write_atomic(rel, codec.encode(record))
    if damage != "folder":
        # Read by the scheduler, the job process or kill: never taken for "never run".
        with pytest.raises(SerializationError):
            store.state("t.train", IDENT)
    assert any("state.json" in m for m in messages(workspace))
    report = sync(workspace)
    assert any("rebuilt from its events: done" in fixed for fixed in report.fixed), report.fixed
    record = store.state("t.train", IDENT)
    assert record is not None and record.state == "done"
    assert messages(workspace) == []
    assert [n for n in workspace.listdir(layout.job_meta("t.train", IDENT)) if ".damaged-" in n]


def test_a_damaged_record_of_a_job_that_did_not_end_is_left_and_reported(workspace: Workspace):
    store = JobStore(workspace)
    store.create("t.train", IDENT, PARAMS)
    store.record_state("t.train", IDENT, "running", process={"type": "local", "pid": 1, "host": "h"})
    workspace.write_atomic(layout.job_state("t.train", IDENT), b"garbage")
    sync(workspace)
    assert workspace.read_bytes(layout.job_state("t.train", IDENT)) == b"garbage"
    assert any("unreadable" in m for m in messages(workspace))


def test_runs_and_refs_damage_is_reported(workspace: Workspace):
    a_done_job(workspace)
    a_run(workspace, "nolog", jobs=False)
    a_run(workspace, "garbled")
    workspace.write_atomic(layout.run_record("garbled", "20260101_000000"), b'{"version": 1, "experim')
    a_run(workspace, "badref")
    workspace.write_atomic(layout.ref(layout.current_run_ref("badref")), b"not json")
    a_run(workspace, "gone")
    RunStore(workspace).set_current("gone", "20991231_000000")
    workspace.write_atomic(f"{layout.JOBS}/not-a-folder", b"x")
    found = messages(workspace)
    assert any("nolog" in m and "jobs.jsonl" in m and "missing" in m for m in found)
    assert any("garbled" in m and "run.json" in m and "unreadable" in m for m in found)
    assert any("badref" in m and "unreadable" in m for m in found)
    assert any("gone" in m and "missing run 20991231_000000" in m for m in found)
    assert any("not-a-folder" in m and "a file where a task's folder belongs" in m for m in found)


def test_a_damaged_current_ref_blocks_nothing_and_sync_rewrites_it(workspace: Workspace):
    run_id = a_run(workspace, "xp")
    workspace.write_atomic(layout.ref(layout.current_run_ref("xp")), b"\x00\x01")
    runs = RunStore(workspace)
    assert runs.current("xp") == run_id  # listings and the experiment go on with the latest run
    report = sync(workspace)
    assert any("unreadable (now 20260101_000000)" in fixed for fixed in report.fixed)
    assert runs.current("xp") == run_id
    assert workspace.read_bytes(layout.ref(layout.current_run_ref("xp"))) != b"\x00\x01"
    assert not [m for m in messages(workspace) if "refs" in m]
