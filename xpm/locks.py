"""Locks of a workspace: portalocker on local disks, a lock-folder protocol elsewhere.

Both record their owner (host, pid, time) so that a waiter can say whom it waits
for. The lock-folder protocol (in-memory workspaces):

1. acquire: create the lock folder with a plain ``mkdir`` (atomic on POSIX and
   over SFTP: it fails when the folder exists), then write ``owner.json`` in it;
2. release: remove ``owner.json``, then the folder;
3. a lock whose owner is on this host and whose process is dead is **stale**: it
   is broken (and said so in a warning); a lock held from another host is never
   broken automatically, only reported (``workspace check``).

Over SSH, a workspace locks as the processes of its host do: an OS lock on the
same file, taken by a shell command on the host (:class:`HostFileLock`), so that a
command run from a laptop and the jobs running on the cluster exclude each other.
The folder protocol is then only that of in-memory workspaces; a lock folder found
where a lock file belongs (left by an older xpm) is reported with its owner.

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
import time
import warnings
from pathlib import Path
from typing import Any, Protocol

import msgspec

from xpm import codec
from xpm.errors import XpmError
from xpm.process import hostname, pid_alive
from xpm.schema import LockOwner

OWNER_FILE = "owner.json"
#: In a tombstone: who retired the lock (released or broke it), and when (its age counts from this file)
RETIRED_FILE = "retired.json"
#: How long the tombstone of a broken lock is kept (seconds)
TOMBSTONE_AGE = 60.0
_POLL = 0.05


class LockTimeout(XpmError):
    """A lock could not be taken in time; ``owner`` says who holds it (if known), ``note`` adds
    what is known of it (its process ended...)."""

    def __init__(self, path: str, owner: LockOwner | None, note: str = ""):
        self.path = path
        self.owner = owner
        self.note = note
        message = f"{path} is locked" if owner is None else f"{path} is locked {describe_owner(owner)}"
        super().__init__(f"{message} ({note})" if note else message)


def describe_owner(owner: LockOwner | None) -> str:
    """``by host H, pid P, since T`` (``by an unknown owner`` without a record)."""
    if owner is None:
        return "by an unknown owner"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(owner.acquired_at))
    return f"by host {owner.host}, pid {owner.pid}, since {since}"


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
    return decode_owner(ws.read_optional(f"{rel}/{OWNER_FILE}" if ws.isdir(rel) else rel))


def decode_owner(data: bytes | str | None) -> LockOwner | None:
    """A lock owner record, or None when there is none (or it is damaged)."""
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
    return LockOwner(host=hostname(), pid=os.getpid(), acquired_at=time.time())


def is_stale(owner: LockOwner) -> bool:
    """A lock is stale when its owner ran on this host and its process is gone."""
    return owner.host == hostname() and not pid_alive(owner.pid)


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


class HostShell(Protocol):
    """What a :class:`HostFileLock` needs: an SSH workspace (:class:`xpm.sshworkspace.SSHWorkspace`)."""

    host: str

    def host_path(self, rel: str) -> str: ...
    def start(self, script: str, *args: str) -> Any: ...
    def run(self, script: str, *args: str, timeout: float = 60.0) -> tuple[int, str, str]: ...
    def hostname(self) -> str: ...
    def session(self) -> Any: ...


#: Takes the lock $1 as LocalLock does (flock on the file, checked to be still the file at that path),
#: waiting $2 seconds ("-": no limit), writes the owner $3 in it, says "locked", and holds it until its
#: input ends. Otherwise it says "busy" (or "folder": a lock folder is there) and the owner record.
_HOST_LOCK = r"""
p=$1 t=$2 owner=$3
command -v flock >/dev/null 2>&1 || { echo "flock(1) is not installed" >&2; exit 127; }
case $p in */*) mkdir -p -- "${p%/*}" || exit 2 ;; esac
[ "$t" = - ] || end=$(( $(date +%s) + t ))
while :; do
  if [ -d "$p" ]; then echo folder; cat -- "$p/owner.json" 2>/dev/null; exit 0; fi
  exec 9>>"$p" || exit 2
  if [ "$t" = - ]; then flock 9; else
    left=$(( end - $(date +%s) )); [ "$left" -lt 0 ] && left=0
    flock -w "$left" 9
  fi
  if [ $? -eq 0 ]; then
    # A lock on a file deleted (with its job folder) while we waited would exclude no one.
    if [ ! -e /proc/$$/fd/9 ] || [ /proc/$$/fd/9 -ef "$p" ]; then
      printf '%s' "$owner" >"$p"
      echo locked
      while read -r _; do :; done
      exit 0
    fi
    exec 9>&-
    continue
  fi
  exec 9>&-
  echo busy; cat -- "$p" 2>/dev/null; exit 0
done
"""


#: Defined in the host session of an SSH workspace (:meth:`xpm.sshworkspace.SSHWorkspace.session`):
#: ``xpm_try_lock FD PATH OWNER`` tries the lock once, without waiting, on descriptor FD of the session's
#: shell, as :data:`_HOST_LOCK` does; it says "locked", "busy" or "folder" (and the owner record).
HOST_SESSION_FUNCTIONS = r"""
xpm_try_lock() {
  command -v flock >/dev/null 2>&1 || return 127
  case $2 in */*) mkdir -p -- "${2%/*}" 2>/dev/null || return 2 ;; esac
  if [ -d "$2" ]; then echo folder; cat -- "$2/owner.json" 2>/dev/null; return 0; fi
  # A redirection that fails on exec ends the shell: make sure it cannot.
  ( : >>"$2" ) 2>/dev/null || return 2
  eval "exec $1>>\"\$2\""
  if flock -n "$1" && { [ ! -e "/proc/$$/fd/$1" ] || [ "/proc/$$/fd/$1" -ef "$2" ]; }; then
    printf '%s' "$3" >"$2"; echo locked; return 0
  fi
  eval "exec $1>&-"
  echo busy; cat -- "$2" 2>/dev/null; return 0
}
"""


class HostFileLock(Lock):
    """The lock of a file on the host of an SSH workspace, taken there by a shell command.

    It is the lock the host's own processes take (:class:`LocalLock`: ``flock`` on
    the same file), so the two exclude each other. The command holds it until this
    process releases it or its connection ends: a dead client leaves no stale lock.
    """

    def acquire(self) -> None:
        ws: HostShell = self.workspace  # type: ignore[assignment]
        owner_record = codec.encode(this_owner()).decode()
        # First a try in the workspace's shell session on the host (a round trip); when the lock
        # is busy, or the session is, a command of its own waits for it.
        session = ws.session()
        tried = session.try_lock(ws.host_path(self.rel), owner_record) if session is not None else None
        if tried is not None and tried[1] == "locked":
            self._handle = (session, tried[0])
            return
        if tried is not None and tried[1] == "folder":
            answer, rest = tried[1:]
        else:
            wait = "-" if self.timeout is None else str(max(0, int(self.timeout + 0.999)))
            process = ws.start(_HOST_LOCK, ws.host_path(self.rel), wait, owner_record)
            answer = process.readline().strip()
            if answer == "locked":
                self._handle = process
                return
            rest = process.read()
            if answer not in ("busy", "folder"):
                error = process.errors().strip().replace("\n", " ")
                status = process.close()
                raise XpmError(f"{ws.host}: cannot lock {self.rel} ({error or f'exit status {status}'})")
            process.close()
        owner = decode_owner(rest.strip())
        notes = ["a lock folder left by an older xpm: remove it once its owner is gone"] if answer == "folder" else []
        if owner is not None and host_pid_ended(ws, owner):
            notes.insert(0, "that process has ended")
        raise LockTimeout(self.rel, owner, "; ".join(notes))

    def release(self) -> None:
        handle, self._handle = self._handle, None
        if isinstance(handle, tuple):
            session, fd = handle
            session.unlock(fd)
        elif handle is not None:
            handle.close()


def host_pid_ended(ws: HostShell, owner: LockOwner) -> bool:
    """Whether the owner of a lock is a process of the workspace's host that has ended."""
    try:
        if owner.host != ws.hostname():
            return False
        status, _, _ = ws.run('kill -0 "$1" 2>/dev/null || [ -d "/proc/$1" ]', str(owner.pid))
    except XpmError:
        return False
    return status != 0
