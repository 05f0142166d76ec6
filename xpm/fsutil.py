"""Local file helpers below the workspace: atomic writes and temporary names.

A reader of a file written here sees the old content or the new one, never a
partial file: the bytes go to a temporary file beside the target, which is then
renamed over it. These helpers know nothing of workspaces; the workspace's local
backend, the saved parameters of a task and the Slurm status cache use them.
"""

from __future__ import annotations

import itertools
import os

from xpm.process import hostname

__all__ = ["tmp_name", "write_local_atomic"]

#: The host name in temporary file names (asked once: planning writes thousands of files)
_hostname: str | None = None
#: This process's pid (a system call each time otherwise); a forked child sets its own
_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)
#: The random part of temporary file names: a random start, then one more per name;
#: with the host and pid, unique among the writers of a workspace
_tmp_counter = itertools.count(int.from_bytes(os.urandom(4), "big"))


def tmp_name(rel: str) -> str:
    """A temporary name beside ``rel``: ``.<name>.<host>.<pid>.<random>.tmp``."""
    global _hostname
    if _hostname is None:
        _hostname = hostname()
    parent, _, name = rel.rpartition("/")
    tmp = f".{name}.{_hostname}.{_pid}.{next(_tmp_counter) & 0xFFFFFFFF:08x}.tmp"
    return f"{parent}/{tmp}" if parent else tmp


def write_local_atomic(path: str, data: bytes, *, durable: bool = False) -> None:
    """Writes a local file atomically: a temporary file beside ``path``, then a rename over it.

    A reader sees the old content or the new one, never a partial file. With
    ``durable``, the data reaches the disk (fsync) before the rename.
    """
    tmp = tmp_name(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        try:
            # os.write rather than a file object: no buffer to allocate and flush.
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def append_local(path: str, data: bytes) -> None:
    """Appends ``data`` to a local file in one write, creating the file (and its folder) if needed.

    ``O_APPEND``: each write lands whole at the end, even with other writers.
    """
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
    try:
        fd = os.open(path, flags, 0o644)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, flags, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
