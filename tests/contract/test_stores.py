"""The lookups the stores own: short job ids, runs, refs, the index's note, job folder paths.

They run on every backend (local, memory, SSH), as the other contract tests.
"""

from __future__ import annotations

import time
from pathlib import Path, PurePosixPath

import pytest

from xpm import layout
from xpm.schema import RECORD_VERSION, IndexEntry, JobSubmitted, RunRecord
from xpm.store.jobs import AmbiguousJob, InvalidJobId, JobDirs, JobStore, UnknownJob
from xpm.store.refs import RefStore
from xpm.store.runs import RunStore, UnknownExperiment
from xpm.workspace import Workspace

A = "0" * 58 + "abc123"
B = "0" * 58 + "abc999"


def make_jobs(workspace: Workspace, *identifiers: str) -> JobStore:
    store = JobStore(workspace)
    for identifier in identifiers:
        store.create("m.train", identifier, b"{}")
    return store


def test_resolve_takes_full_ids_and_unique_prefixes(workspace: Workspace):
    store = make_jobs(workspace, A, B)
    assert store.resolve(f"m.train/{A}") == ("m.train", A)
    assert store.resolve(f"M.Train/{A[:63]}") == ("m.train", A)  # the class name, in any case
    assert store.resolve(f"m.train/{'0' * 58}abc1") == ("m.train", A)


def test_an_ambiguous_prefix_lists_the_candidates(workspace: Workspace):
    store = make_jobs(workspace, A, B)
    with pytest.raises(AmbiguousJob) as caught:
        store.resolve(f"m.train/{'0' * 58}abc")
    assert caught.value.candidates == [("m.train", A), ("m.train", B)]
    assert f"m.train/{A}" in str(caught.value) and f"m.train/{B}" in str(caught.value)
    assert isinstance(caught.value, UnknownJob)  # callers that catch UnknownJob still do


@pytest.mark.parametrize("text", ["m.train/" + "1" * 64, "m.train/123456"])
def test_resolve_says_not_found(workspace: Workspace, text: str):
    with pytest.raises(UnknownJob, match="not found"):
        make_jobs(workspace, A).resolve(text)


@pytest.mark.parametrize("text", ["m.train/abc", "m.train/xyz123", "../x/" + A, "nothing"])
def test_resolve_refuses_what_is_not_a_job_id(workspace: Workspace, text: str):
    with pytest.raises(InvalidJobId):
        make_jobs(workspace, A).resolve(text)


def test_refs_speak_git(workspace: Workspace):
    refs = RefStore(workspace)
    assert refs.add_if_new("experiments/x/current", "run1")
    assert not refs.add_if_new("experiments/x/current", "run2")
    refs.set("experiments/x/current", "run3")
    assert refs.value("experiments/x/current") == "run3"
    assert not refs.set_if_equals("experiments/x/current", "run1", "run4")
    assert refs.set_if_equals("experiments/x/current", "run3", "run4")
    assert refs.value("experiments/x/current") == "run4"


def test_runs_are_created_listed_and_read(workspace: Workspace):
    runs = RunStore(workspace)
    started = time.mktime((2026, 12, 4, 10, 15, 0, 0, 0, -1))
    first = runs.create_run("xp", started)
    second = runs.create_run("xp", started)
    assert (first, second) == ("20261204_101500", "20261204_101500.1")
    record = RunRecord(
        version=RECORD_VERSION, experiment_id="xp", run_id=first, hostname="h", pid=1, started_at=started
    )
    runs.write_record(record)
    assert runs.record("xp", first) == record
    assert runs.record("xp", second) is None
    # No ref yet: the latest run folder is the current one; then the ref says.
    assert runs.current("xp") == second
    runs.set_current("xp", first)
    assert runs.current("xp") == first == runs.current_or_fail("xp")
    assert runs.experiment_ids() == ["xp"] and runs.run_ids("xp") == [first, second]
    assert sorted(runs.run_folders()) == [("xp", first), ("xp", second)]
    for identifier, tags in ((A, {"lr": 1}), (B, {}), (A, {"n": 2})):
        runs.append_submitted("xp", first, JobSubmitted(ts=1.0, task_id="m.train", identifier=identifier, tags=tags))
    jobs = runs.read_jobs("xp", first)
    assert jobs.order == [("m.train", B), ("m.train", A)]  # a job submitted again moves to the end
    assert jobs.tags[("m.train", A)] == {"lr": 1, "n": 2} and not jobs.damaged


def test_an_experiment_without_runs_is_unknown(workspace: Workspace):
    with pytest.raises(UnknownExperiment):
        RunStore(workspace).current_or_fail("nothing")
    with pytest.raises(UnknownExperiment):
        RunStore(workspace).current_or_fail("../escape")


def test_the_index_says_when_it_is_missing_or_damaged(workspace: Workspace):
    store = make_jobs(workspace, A)
    index = store.index
    assert "missing or empty" in (index.problem_note(index.load()) or "")
    index.append(IndexEntry(ts=1.0, task_id="m.train", identifier=A, state="done"))
    folded = index.load()
    assert index.problem_note(folded) is None and index.continues(folded)
    workspace.append(layout.JOB_INDEX, b"damaged line\n")
    assert "1 damaged line(s) skipped" in (index.problem_note(index.load()) or "")


def test_the_index_tells_what_changed_since_a_fold(workspace: Workspace):
    index = make_jobs(workspace).index
    index.append(IndexEntry(ts=1.0, task_id="m.train", identifier=A, state="waiting"))
    before = index.load()
    index.append(IndexEntry(ts=2.0, task_id="m.train", identifier=B, state="waiting"))
    after = index.load(before)
    assert index.changed_keys(before, after) == {("m.train", B)}
    assert index.changed_keys(after, after) == set()
    index.rewrite([])  # rebuilt: the old fold no longer continues it
    assert not index.continues(after)


def test_job_dirs_and_the_way_back(tmp_path: Path):
    local = Workspace.open(tmp_path / "ws", create=True)
    path = JobDirs(local, local.location)("m.train", A)
    assert path == tmp_path / "ws" / "jobs" / "m.train" / A
    assert layout.split_job_dir(str(path)) == (str(tmp_path / "ws"), "m.train", A)
    # A workspace that is not local (or not created yet, in a dry run): paths under its location.
    remote = JobDirs(None, "/cluster/ws")
    assert remote("m.train", A) == PurePosixPath("/cluster/ws/jobs/m.train") / A
    assert remote.path(layout.experiment_dir("xp")) == PurePosixPath("/cluster/ws/experiments/xp")


def test_links_are_seen_as_links_and_refused_as_job_folders(workspace: Workspace, tmp_path: Path):
    """A job folder that is a symbolic link is not a job folder (the SSH server of the tests is
    this machine: the link is made on its disk)."""
    store = make_jobs(workspace, A)
    assert store.folder_problem("m.train", A) is not None  # params.json records no identifier here
    if workspace.local_path("") is not None:
        root = Path(workspace.local_path("") or "")
    elif getattr(workspace, "fs", None) is not None and type(workspace.fs).__name__ == "SSHFileSystem":
        root = Path(workspace.root)  # type: ignore[attr-defined]
    else:
        assert not workspace.is_link(layout.job_dir("m.train", A))  # memory: no links
        return
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / layout.task_dir("m.train") / B).symlink_to(outside, target_is_directory=True)
    assert workspace.is_link(layout.job_dir("m.train", B)) and workspace.isdir(layout.job_dir("m.train", B))
    assert not workspace.is_link(layout.job_dir("m.train", A))
    assert "is a symbolic link" in (store.folder_problem("m.train", B) or "")
