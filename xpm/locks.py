"""Locks of a workspace: portalocker on local disks, a lock-folder protocol elsewhere.

Both record their owner (host, pid, time) so that a waiter can say whom it waits
for. The protocol for remote (SSH) and in-memory workspaces:

1. acquire: create the lock folder with a plain ``mkdir`` (atomic on POSIX and
   over SFTP: it fails when the folder exists), then write ``owner.json`` in it;
2. release: remove ``owner.json``, then the folder;
3. a lock whose owner is on this host and whose process is dead is **stale**: it
   is broken (and said so in a warning); a lock held from another host is never
   broken automatically, only reported (``workspace check``).

Breaking is atomic: the lock folder is renamed to a *tombstone* named after the
stale owner (:func:`tombstone`); of the processes that saw the same stale owner,
only the first rename succeeds, since the tombstone then exists (a folder with a
file: a rename over it fails, on a local disk and over SFTP). A release leaves its
tombstone too: a process that read an owner, and finds it dead because it released
and ended meanwhile, meets that tombstone instead of taking the next holder's lock.
The winner of a break checks that its tombstone holds the stale owner (else it
moved a live lock, and puts it back). Tombstones stay :data:`TOMBSTONE_AGE`
seconds (the longest a process may take between reading an owner and acting on
it), then the next release or break of the lock sweeps them.
"""

from __future__ import annotations

import os
import socket
import time
import warnings
from pathlib import Path
from typing import Any, Protocol

import msgspec

from xpm import codec
from xpm.errors import XpmError
from xpm.process import pid_alive
from xpm.schema import LockOwner

OWNER_FILE = "owner.json"
#: In a tombstone: who retired the lock (released or broke it), and when (its age counts from this file)
RETIRED_FILE = "retired.json"
#: How long the tombstone of a broken lock is kept (seconds)
TOMBSTONE_AGE = 60.0
_POLL = 0.05


class LockTimeout(XpmError):
    """A lock could not be taken in time; ``owner`` says who holds it (if known)."""

    def __init__(self, path: str, owner: LockOwner | None):
        self.path = path
        self.owner = owner
        if owner is None:
            super().__init__(f"{path} is locked")
        else:
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(owner.acquired_at))
            super().__init__(f"{path} is locked by host {owner.host}, pid {owner.pid}, since {since}")


class LockSpace(Protocol):
    """What a lock needs of its workspace (:class:`xpm.workspace.Workspace`, which makes locks)."""

    def local_path(self, rel: str) -> Path | None: ...
    def parent(self, rel: str) -> str: ...
    def isdir(self, rel: str) -> bool: ...
    def read_optional(self, rel: str) -> bytes | None: ...
    def makedirs(self, rel: str) -> None: ...
    def mkdir_exclusive(self, rel: str) -> bool: ...
    def write_atomic(self, rel: str, data: bytes) -> None: ...
    def remove(self, rel: str, *, missing_ok: bool = False) -> None: ...
    def rmdir(self, rel: str, *, missing_ok: bool = False) -> None: ...
    def rename_new(self, src: str, dst: str) -> bool: ...
    def listdir(self, rel: str) -> list[str]: ...
    def mtime(self, rel: str) -> float | None: ...


def read_owner(ws: LockSpace, rel: str) -> LockOwner | None:
    """Who holds (or last held) the lock ``rel``, if it says (a lock folder, or a local lock file)."""
    data = ws.read_optional(f"{rel}/{OWNER_FILE}" if ws.isdir(rel) else rel)
    if not data:
        return None
    try:
        return msgspec.json.decode(data, type=LockOwner)
    except msgspec.DecodeError:
        return None


#: What a tombstone's name adds to its lock's
_TOMBSTONE = ".broken-"


def tombstone(rel: str, owner: LockOwner) -> str:
    """Where the lock ``rel`` of a stale ``owner`` goes when it is broken: a name of that owner,
    so that two processes breaking the same stale lock cannot both succeed."""
    return f"{rel}{_TOMBSTONE}{owner.host}-{owner.pid}-{owner.acquired_at!r}"


def this_owner() -> LockOwner:
    return LockOwner(host=socket.gethostname(), pid=os.getpid(), acquired_at=time.time())


def is_stale(owner: LockOwner) -> bool:
    """A lock is stale when its owner ran on this host and its process is gone."""
    return owner.host == socket.gethostname() and not pid_alive(owner.pid)


class Lock:
    """A held-or-not lock; use as a context manager (``with workspace.lock(name):``)."""

    def __init__(self, workspace: LockSpace, rel: str, timeout: float | None):
        self.workspace = workspace
        self.rel = rel
        self.timeout = timeout
        self._handle: Any = None

    def __enter__(self) -> Lock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def _deadline(self) -> float | None:
        return None if self.timeout is None else time.monotonic() + self.timeout

    @staticmethod
    def _expired(deadline: float | None) -> bool:
        return deadline is not None and time.monotonic() >= deadline


def _try_lock(handle: Any) -> bool:
    """Takes an exclusive OS lock on an open file without waiting; False if it is held.

    On POSIX this is ``flock`` (what portalocker uses there), called directly:
    every job process takes locks, and importing portalocker costs it ~20 ms.
    """
    if os.name == "posix":
        import fcntl

        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
    import portalocker

    try:
        portalocker.lock(handle, portalocker.LOCK_EX | portalocker.LOCK_NB)
    except portalocker.exceptions.LockException:
        return False
    return True


def _unlock(handle: Any) -> None:
    if os.name == "posix":
        import fcntl

        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    else:
        import portalocker

        portalocker.unlock(handle)


def _still_at(handle: Any, path: Any) -> bool:
    """Whether the open lock file is still the file at ``path`` (not deleted or replaced)."""
    try:
        return os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


class LocalLock(Lock):
    """An OS lock on a local file; released by the OS if the process dies."""

    def acquire(self) -> None:
        path = self.workspace.local_path(self.rel)
        assert path is not None
        path.parent.mkdir(parents=True, exist_ok=True)
        deadline = self._deadline()
        handle = open(path, "a+b")
        try:
            while not (_try_lock(handle) and _still_at(handle, path)):
                if self._expired(deadline):
                    raise LockTimeout(self.rel, read_owner(self.workspace, self.rel))
                if handle.closed or not _still_at(handle, path):
                    # The lock file was deleted (with its job folder) while we
                    # waited: a lock on the deleted file would exclude no one.
                    handle.close()
                    path.parent.mkdir(parents=True, exist_ok=True)
                    handle = open(path, "a+b")
                    continue
                time.sleep(_POLL)
            handle.seek(0)
            handle.truncate()
            handle.write(codec.encode(this_owner()))
            handle.flush()
        except BaseException:
            handle.close()
            raise
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            _unlock(self._handle)
            self._handle.close()
            self._handle = None


class FolderLock(Lock):
    """The lock-folder protocol (see the module documentation); works over SFTP."""

    def acquire(self) -> None:
        ws = self.workspace
        deadline = self._deadline()
        ws.makedirs(ws.parent(self.rel))
        while True:
            if ws.mkdir_exclusive(self.rel):
                mine = this_owner()
                ws.write_atomic(f"{self.rel}/{OWNER_FILE}", codec.encode(mine))
                self._handle = mine
                return
            owner = read_owner(ws, self.rel)
            if owner is not None and is_stale(owner):
                if self._break(owner):
                    warnings.warn(f"broke the stale lock {self.rel} of dead process {owner.pid} on {owner.host}")
                continue
            if self._expired(deadline):
                raise LockTimeout(self.rel, owner)
            time.sleep(_POLL)

    def _break(self, stale: LockOwner) -> bool:
        """Breaks the lock of the ``stale`` owner (moves it to its tombstone); whether this process
        did it (False: the lock of that owner left already: broken by another process, or released)."""
        ws = self.workspace
        tomb = tombstone(self.rel, stale)
        if not ws.rename_new(self.rel, tomb):
            return False
        if read_owner(ws, tomb) != stale:
            # A live lock: the stale one's tombstone was swept before this process acted on
            # what it read. The lock goes back to its holder.
            ws.rename_new(tomb, self.rel)
            return False
        self._retired(tomb)
        return True

    def _retired(self, tomb: str) -> None:
        """Dates a tombstone just made (its age counts from now), and sweeps the old ones."""
        ws = self.workspace
        ws.write_atomic(f"{tomb}/{RETIRED_FILE}", codec.encode(this_owner()))
        now = time.time()
        for path in tombstones(ws, self.rel):
            if path == tomb:
                continue
            # No date: its retirer died before writing it; the owner's time is older still.
            when = ws.mtime(f"{path}/{RETIRED_FILE}") or ws.mtime(f"{path}/{OWNER_FILE}") or 0.0
            if now - when >= TOMBSTONE_AGE:
                remove_tombstone(ws, path)

    def release(self) -> None:
        owner: LockOwner | None = self._handle
        self._handle = None
        if owner is None:
            return
        tomb = tombstone(self.rel, owner)
        if self.workspace.rename_new(self.rel, tomb):
            # The lock leaves its place as a broken one does: a process that read this owner
            # and finds it dead now meets the tombstone, and cannot take the next holder's lock.
            self._retired(tomb)
        else:
            self.workspace.remove(f"{self.rel}/{OWNER_FILE}", missing_ok=True)
            self.workspace.rmdir(self.rel, missing_ok=True)


def tombstones(ws: LockSpace, rel: str) -> list[str]:
    """The tombstones of the lock ``rel`` (see :func:`tombstone`)."""
    parent, prefix = ws.parent(rel), rel.rpartition("/")[2] + _TOMBSTONE
    return [f"{parent}/{name}" if parent else name for name in ws.listdir(parent) if name.startswith(prefix)]


def remove_tombstone(ws: LockSpace, path: str) -> None:
    """Removes a tombstone (its two files, then the folder)."""
    for entry in (RETIRED_FILE, OWNER_FILE):
        ws.remove(f"{path}/{entry}", missing_ok=True)
    ws.rmdir(path, missing_ok=True)
