"""Contract tests: the same store behaviour on a local disk, in memory and over SSH."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from xpm import codec, layout
from xpm.locks import LockTimeout
from xpm.schema import JobProgress, JobStateChanged
from xpm.store.index import JobIndex
from xpm.store.jobs import JobStore
from xpm.store.log import EventLog
from xpm.store.refs import RefStore
from xpm.workspace import NotFound, UnsafeDelete, Workspace, WorkspaceNotFound

IDENT = "ab" * 32
IDENT2 = "cd" * 32


def test_marker_written_and_read(workspace: Workspace):
    assert workspace.layout_version == layout.LAYOUT_VERSION
    assert b'"version":1' in workspace.read_bytes(layout.MARKER)
    if not workspace.location.startswith("ssh://"):  # reopening over SSH needs the storage options
        assert Workspace.open(workspace.location).layout_version == layout.LAYOUT_VERSION


def test_atomic_write_read_and_overwrite(workspace: Workspace):
    workspace.write_atomic("a/b/c.json", b"one")
    assert workspace.read_bytes("a/b/c.json") == b"one"
    workspace.write_atomic("a/b/c.json", b"two")
    assert workspace.read_bytes("a/b/c.json") == b"two"
    assert workspace.listdir("a/b") == ["c.json"]  # no temporary file left behind
    assert workspace.size("a/b/c.json") == 3
    with pytest.raises(NotFound):
        workspace.read_bytes("a/missing")
    assert workspace.read_optional("a/missing") is None
    assert workspace.listdir("no/such/folder") == []


def test_append_and_read_from(workspace: Workspace):
    workspace.append("logs/x.log", b"12")
    workspace.append("logs/x.log", b"345")
    assert workspace.read_bytes("logs/x.log") == b"12345"
    assert workspace.read_from("logs/x.log", 2) == b"345"
    assert workspace.read_from("logs/x.log", 10) == b""


def test_event_log_append_read_incremental(workspace: Workspace):
    log = EventLog(workspace, "logs/events.jsonl")
    log.append(JobStateChanged(ts=1.0, state="running"))
    first = log.read()
    assert [e.state for e in first.events] == ["running"] and not first.problems
    log.append(JobProgress(ts=2.0, value=0.5, desc="epoch"), JobStateChanged(ts=3.0, state="done"))
    second = log.read(first.offset)
    assert [type(e).__name__ for e in second.events] == ["JobProgress", "JobStateChanged"]
    assert second.events[0].desc == "epoch"
    assert log.read(second.offset).events == []


def test_torn_last_line_is_skipped_then_recovered(workspace: Workspace):
    log = EventLog(workspace, "logs/events.jsonl")
    log.append(JobStateChanged(ts=1.0, state="running"))
    whole = codec.encode_line(JobStateChanged(ts=2.0, state="done"))
    workspace.append("logs/events.jsonl", whole[: len(whole) // 2])  # a crash in the middle of a write
    read = log.read()
    assert [e.state for e in read.events] == ["running"] and read.partial and not read.problems
    log.append(JobStateChanged(ts=3.0, state="error", failure_reason="failed"))
    read = log.read()
    assert [e.state for e in read.events] == ["running", "error"]
    assert [p.reason for p in read.problems] == ["torn line"]


def test_corrupted_line_is_detected_never_misread(workspace: Workspace):
    line = bytearray(codec.encode_line(JobStateChanged(ts=1.0, state="running")))
    line[line.index(b"running")] = ord("R")  # one flipped byte
    workspace.append("logs/e.jsonl", bytes(line))
    workspace.append("logs/e.jsonl", b"garbage\n")
    EventLog(workspace, "logs/e.jsonl").append(JobStateChanged(ts=2.0, state="done"))
    read = EventLog(workspace, "logs/e.jsonl").read()
    assert [e.state for e in read.events] == ["done"]
    assert [p.reason for p in read.problems] == ["checksum mismatch", "not a log line"]


def test_refs_compare_and_swap(workspace: Workspace):
    refs = RefStore(workspace)
    name = layout.current_run_ref("xp1")
    assert refs.get(name) is None
    assert refs.set_if_equals(name, None, "run1")
    assert not refs.set_if_equals(name, None, "run2")
    assert not refs.set_if_equals(name, "other", "run2")
    assert refs.set_if_equals(name, "run1", "run2")
    assert refs.value(name) == "run2"
    assert refs.names("experiments") == ["experiments/xp1/current"]
    assert not refs.remove_if_equals(name, "run1")
    assert refs.remove_if_equals(name, "run2")
    assert refs.get(name) is None


def test_lock_is_exclusive_and_says_who_holds_it(workspace: Workspace):
    rel = layout.lock("test")
    with workspace.lock(rel, timeout=1):
        with pytest.raises(LockTimeout) as info:
            workspace.lock(rel, timeout=0.2).acquire()
        assert "is locked by host" in str(info.value)
        assert info.value.owner is not None
    with workspace.lock(rel, timeout=1):
        pass  # released, so it can be taken again


def test_jobs_state_events_and_index(workspace: Workspace):
    jobs = JobStore(workspace)
    assert jobs.write_params("t.train", IDENT, b"{}")
    assert not jobs.write_params("t.train", IDENT, b"changed")
    assert workspace.read_bytes(layout.job_params("t.train", IDENT)) == b"{}"
    assert jobs.state("t.train", IDENT) is None
    jobs.record_state("t.train", IDENT, "waiting", tags={"lr": 0.1})
    jobs.record_state("t.train", IDENT, "running", process={"type": "local", "pid": 1})
    jobs.record_state("t.train", IDENT, "done", exit_code=0)
    jobs.progress("t.train", IDENT, 0.5)
    record = jobs.state("t.train", IDENT)
    assert record.state == "done" and record.exit_code == 0 and record.process == {"type": "local", "pid": 1}
    events = jobs.events("t.train", IDENT).read().events
    assert [getattr(e, "state", "progress") for e in events] == ["waiting", "running", "done", "progress"]
    snapshot = jobs.index.load()
    job = snapshot.jobs[("t.train", IDENT)]
    assert job.state == "done" and job.tags == {"lr": 0.1}
    # Incremental: a new entry is read from the last offset only
    jobs.record_state("t.eval", IDENT2, "error", "dependency")
    later = jobs.index.load(snapshot)
    assert later.jobs[("t.eval", IDENT2)].failure_reason == "dependency" and later.lines == 4


def test_state_transition_is_compare_and_swap(workspace: Workspace):
    jobs = JobStore(workspace)
    jobs.record_state("t.train", IDENT, "waiting")
    assert jobs.transition("t.train", IDENT, lambda s: s.state == "waiting", "running") is not None
    assert jobs.transition("t.train", IDENT, lambda s: s.state == "waiting", "running") is None
    assert jobs.state("t.train", IDENT).state == "running"


def test_index_rewrite(workspace: Workspace):
    jobs = JobStore(workspace)
    for i in range(3):
        jobs.record_state("t.train", IDENT, ["waiting", "running", "done"][i])
    before = jobs.index.load()
    assert before.lines == 3
    JobIndex(workspace).rewrite(before.jobs.values())
    after = JobIndex(workspace).load()
    assert after.lines == 1 and after.jobs == before.jobs


def test_remove_job_folder_only(workspace: Workspace):
    jobs = JobStore(workspace)
    jobs.write_params("t.train", IDENT, b"{}")
    workspace.write_atomic("experiments/keep.json", b"x")
    with pytest.raises(UnsafeDelete):
        workspace.remove_job_folder("..", IDENT)
    with pytest.raises(UnsafeDelete):
        workspace.remove_job_folder("t.train", "../../experiments")
    workspace.remove_job_folder("t.train", IDENT)
    assert not workspace.exists(layout.job_dir("t.train", IDENT))
    assert workspace.read_bytes("experiments/keep.json") == b"x"
    assert list(workspace.iter_job_dirs()) == []


def test_missing_workspace(tmp_path):
    with pytest.raises(WorkspaceNotFound, match="no such folder"):
        Workspace.open(tmp_path / "nope")
    (tmp_path / "plain").mkdir()
    with pytest.raises(WorkspaceNotFound, match="not an xpm workspace"):
        Workspace.open(tmp_path / "plain")


_CHILD = textwrap.dedent(
    """
    import sys, time
    from xpm.workspace import Workspace
    from xpm.store.refs import RefStore
    location, mode = sys.argv[1], sys.argv[2]
    options = {{}} if len(sys.argv) < 4 else {{"client_keys": [sys.argv[3]], "known_hosts": None}}
    ws = Workspace.open(location, **options)
    if mode == "hold":
        with ws.lock("locks/shared.lock", timeout=10):
            print("held", flush=True)
            time.sleep(1.5)
    else:
        refs = RefStore(ws)
        done = 0
        while done < {count}:
            value = refs.value("counter")
            if refs.set_if_equals("counter", value, str(int(value or 0) + 1)):
                done += 1
    """
)


def _child(location: str, options: dict, mode: str, count: int = 0) -> subprocess.Popen:
    args = [sys.executable, "-c", _CHILD.format(count=count), location, mode]
    if options:
        args.append(options["client_keys"][0])
    return subprocess.Popen(args, stdout=subprocess.PIPE, text=True)


def test_lock_held_by_another_process(shared_workspace):
    location, options = shared_workspace
    holder = _child(location, options, "hold")
    assert holder.stdout.readline().strip() == "held"
    ws = Workspace.open(location, **options)
    start = time.monotonic()
    with pytest.raises(LockTimeout) as info:
        ws.lock("locks/shared.lock", timeout=0.3).acquire()
    assert info.value.owner.pid == holder.pid
    with ws.lock("locks/shared.lock", timeout=10):
        assert time.monotonic() - start > 0.5  # waited for the holder to finish
    assert holder.wait(10) == 0


def test_compare_and_swap_between_processes(shared_workspace):
    location, options = shared_workspace
    count = 15
    children = [_child(location, options, "cas", count) for _ in range(2)]
    assert [c.wait(120) for c in children] == [0, 0]
    assert RefStore(Workspace.open(location, **options)).value("counter") == str(2 * count)


def test_files_listed_streamed_uploaded_and_downloaded(workspace: Workspace, tmp_path):
    workspace.write_atomic("d/a.txt", b"aa")
    workspace.write_atomic("d/sub/b.bin", b"b" * 5)
    assert workspace.list_files("d") == [("a.txt", 2, False), ("sub/b.bin", 5, False)]
    assert workspace.list_files("nowhere") == []
    with workspace.open_file("d/c.txt", "wb") as f:
        f.write(b"streamed")
    with workspace.open_file("d/c.txt", "rb") as f:
        assert f.read() == b"streamed"
    local = tmp_path / "big.bin"
    local.write_bytes(b"x" * (5 << 20))  # above the one-write size of remote workspaces
    sent: list[int] = []
    workspace.upload(local, "d/big.bin", sent.append)
    assert workspace.size("d/big.bin") == 5 << 20 and sum(sent) == 5 << 20
    back = tmp_path / "back.bin"
    got: list[int] = []
    workspace.download("d/big.bin", back, got.append)
    assert back.read_bytes() == local.read_bytes() and sum(got) == 5 << 20


def test_remove_staged_job_removes_only_a_staged_job(workspace: Workspace):
    ident = "c" * 64
    workspace.write_atomic(f"{layout.staged_job_dir('t.x', ident)}/params.json", b"{}")
    workspace.remove_staged_job("t.x", ident)
    assert not workspace.exists(layout.staged_job_dir("t.x", ident))
    with pytest.raises(UnsafeDelete):
        workspace.remove_staged_job("..", ident)
