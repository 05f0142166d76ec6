"""Breaking a stale folder lock never makes two holders.

The lock-folder protocol (SSH and memory workspaces) breaks a lock whose owner is a dead
process of this host. Several processes that saw the same stale owner used to break it in
turn, the later ones deleting the live lock an earlier one had just taken. Here processes
race for a stale lock with a delay in every read of the owner (as SFTP's latency makes it),
and each one logs when it holds the lock: never two at once.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from xpm import codec
from xpm.locks import FolderLock, read_owner, tombstone
from xpm.schema import LockOwner
from xpm.workspace import LocalWorkspace, Workspace

ROOT = Path(__file__).resolve().parents[2]
REL = "locks/experiments/xp.lock"

CHILD = textwrap.dedent("""
    import os, sys, time, warnings
    from xpm.locks import FolderLock
    from xpm.workspace import LocalWorkspace

    class Slow(LocalWorkspace):
        # What SFTP's latency does: the owner read here may be stale by the time we act on it.
        def read_optional(self, rel):
            data = super().read_optional(rel)
            time.sleep(0.2)
            return data

    root, log = sys.argv[1], sys.argv[2]
    warnings.simplefilter("ignore")
    ws = Slow(root)
    lock = FolderLock(ws, "locks/experiments/xp.lock", timeout=60)
    lock.acquire()
    with open(log, "a") as f:
        f.write(f"in {os.getpid()} {time.monotonic()}\\n")
    time.sleep(0.3)
    with open(log, "a") as f:
        f.write(f"out {os.getpid()} {time.monotonic()}\\n")
    lock.release()
""")


def dead_owner() -> LockOwner:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return LockOwner(host=socket.gethostname(), pid=child.pid, acquired_at=1.0)


def make_stale(ws: Workspace, owner: LockOwner) -> None:
    ws.makedirs(REL)
    ws.write_atomic(f"{REL}/owner.json", codec.encode(owner))


def test_processes_racing_for_a_stale_lock_never_hold_it_together(tmp_path: Path):
    root = tmp_path / "ws"
    ws = LocalWorkspace(str(root))
    make_stale(ws, dead_owner())
    log = tmp_path / "holders.log"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    children = [subprocess.Popen([sys.executable, str(script), str(root), str(log)], env=env) for _ in range(6)]
    assert [child.wait(120) for child in children] == [0] * 6
    holders, most = 0, 0
    events = sorted((float(t), kind) for kind, _, t in (line.split() for line in log.read_text().splitlines()))
    for _, kind in events:
        holders += 1 if kind == "in" else -1
        most = max(most, holders)
    assert len(events) == 12 and most == 1, events


def test_only_the_first_breaker_wins_and_its_tombstone_stops_the_others(workspace: Workspace):
    stale = dead_owner()
    make_stale(workspace, stale)
    first, second = FolderLock(workspace, REL, 1), FolderLock(workspace, REL, 1)
    assert first._break(stale)
    # The first takes the lock again at once; the second acts on the stale owner it read before.
    first.acquire()
    assert not second._break(stale), "the second breaker took a live lock for the stale one"
    assert read_owner(workspace, REL) is not None and read_owner(workspace, REL) != stale
    assert read_owner(workspace, tombstone(REL, stale)) == stale
    first.release()


def test_a_live_lock_renamed_by_mistake_is_put_back(workspace: Workspace):
    """A breaker that finds in its tombstone an owner other than the stale one it meant (the
    tombstone of the first break was gone) puts the lock back, and does not take it."""
    stale = dead_owner()
    holder = FolderLock(workspace, REL, 1)
    holder.acquire()
    live = read_owner(workspace, REL)
    assert not FolderLock(workspace, REL, 1)._break(stale)
    assert read_owner(workspace, REL) == live
    assert not workspace.exists(tombstone(REL, stale))
    holder.release()


def test_a_released_lock_leaves_a_tombstone_that_stops_a_late_breaker(workspace: Workspace):
    """A process read the owner of a lock, then that owner released it and ended: to the late
    process it looks stale, but breaking it would take the next holder's lock. The release's
    tombstone stops it."""
    first = FolderLock(workspace, REL, 1)
    first.acquire()
    seen = read_owner(workspace, REL)
    first.release()
    assert seen is not None and read_owner(workspace, tombstone(REL, seen)) == seen
    second = FolderLock(workspace, REL, 1)
    second.acquire()
    assert not FolderLock(workspace, REL, 1)._break(seen)
    assert read_owner(workspace, REL) not in (None, seen)
    second.release()


def test_old_tombstones_are_swept_by_the_next_break(workspace: Workspace, monkeypatch: pytest.MonkeyPatch):
    import xpm.locks as locks

    old = dead_owner()
    make_stale(workspace, old)
    assert FolderLock(workspace, REL, 1)._break(old)
    monkeypatch.setattr(locks, "TOMBSTONE_AGE", 0.0)
    newer = LockOwner(host=old.host, pid=old.pid, acquired_at=2.0)
    make_stale(workspace, newer)
    assert FolderLock(workspace, REL, 1)._break(newer)
    assert not workspace.exists(tombstone(REL, old))
    assert workspace.exists(tombstone(REL, newer))
