"""The index snapshot (index/jobs.snapshot) on every backend: used when it matches the log, else ignored."""

from __future__ import annotations

import pytest

import xpm.store.index as index_module
from xpm import layout
from xpm.schema import IndexRemoved
from xpm.store.index import IndexedJob, JobIndex
from xpm.store.jobs import JobStore
from xpm.workspace import Workspace


@pytest.fixture(autouse=True)
def small_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    """A snapshot after 3 folded lines, so that small logs exercise it."""
    monkeypatch.setattr(index_module, "SNAPSHOT_AFTER_LINES", 3)


def ident(i: int) -> str:
    return f"{i:064x}"


def fill(store: JobStore, n: int, state: str = "done") -> None:
    for i in range(n):
        store.record_state("t.train", ident(i), state, tags={"i": i})


def test_reader_writes_a_snapshot_and_the_next_reads_only_the_tail(workspace: Workspace):
    store = JobStore(workspace)
    fill(store, 4)
    first = JobIndex(workspace).load()
    assert workspace.exists(layout.JOB_INDEX_SNAPSHOT)
    store.record_state("t.train", ident(9), "running")
    second = JobIndex(workspace).load()
    assert second.offset == workspace.size(layout.JOB_INDEX)
    assert set(second.jobs) == set(first.jobs) | {("t.train", ident(9))}
    assert second.jobs[("t.train", ident(2))] == first.jobs[("t.train", ident(2))]
    assert second.jobs == JobIndex(workspace).load(full=True).jobs


def test_rewritten_log_is_not_paired_with_an_old_snapshot(workspace: Workspace):
    store = JobStore(workspace)
    fill(store, 4)
    JobIndex(workspace).load()
    # Another tool rebuilds the log (a sync) without knowing about the snapshot.
    workspace.write_atomic(layout.JOB_INDEX, b"")
    store.record_state("t.train", ident(7), "waiting")
    assert set(JobIndex(workspace).load().jobs) == {("t.train", ident(7))}


def test_truncated_log_ignores_the_snapshot(workspace: Workspace):
    store = JobStore(workspace)
    fill(store, 4)
    JobIndex(workspace).load()
    data = workspace.read_bytes(layout.JOB_INDEX)
    first_line = data[: data.index(b"\n") + 1]
    workspace.write_atomic(layout.JOB_INDEX, first_line)
    assert set(JobIndex(workspace).load().jobs) == {("t.train", ident(0))}


def test_damaged_snapshot_is_ignored(workspace: Workspace):
    store = JobStore(workspace)
    fill(store, 4)
    JobIndex(workspace).load()
    workspace.write_atomic(layout.JOB_INDEX_SNAPSHOT, b"\x93garbage")
    assert len(JobIndex(workspace).load().jobs) == 4


def test_rewrite_replaces_the_snapshot(workspace: Workspace):
    store = JobStore(workspace)
    fill(store, 4)
    folded = JobIndex(workspace).load()
    keep = [job for key, job in folded.jobs.items() if key[1] != ident(0)]
    JobIndex(workspace).rewrite(keep)
    again = JobIndex(workspace).load()
    assert set(again.jobs) == {(j.task_id, j.identifier) for j in keep}
    assert again.lines == 3


def test_removed_entry_forgets_a_job(workspace: Workspace):
    store = JobStore(workspace)
    fill(store, 4)
    JobIndex(workspace).load()
    store.index.append(IndexRemoved(ts=1.0, task_id="t.train", identifier=ident(1)))
    assert ("t.train", ident(1)) not in JobIndex(workspace).load().jobs
    assert ("t.train", ident(1)) not in JobIndex(workspace).load(full=True).jobs


def test_snapshot_keeps_tags_and_reasons(workspace: Workspace):
    store = JobStore(workspace)
    fill(store, 3)
    store.record_state("t.train", ident(5), "error", "timeout", tags={"name": "x y", "flag": True, "none": None})
    JobIndex(workspace).load()
    job = JobIndex(workspace).load().jobs[("t.train", ident(5))]
    assert isinstance(job, IndexedJob)
    assert job.failure_reason == "timeout" and job.tags == {"name": "x y", "flag": True, "none": None}
