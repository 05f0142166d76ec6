"""The workspace: the only code that touches the filesystem of a workspace.

A :class:`Workspace` is a root folder on some filesystem: a local disk (plain
``os`` calls, the fast path), fsspec's memory filesystem (tests), or a remote
machine over SSH (fsspec ``ssh``, from sshfs). Every other module works with
``/``-separated paths relative to the root, named by :mod:`xpm.layout`, and calls
the operations below; so local and SSH workspaces share every code path above
this module.

Guarantees: :meth:`Workspace.write_atomic` never leaves a partial file (temporary
file in the same folder, then a rename over the target); :meth:`Workspace.append`
adds bytes in one write; :meth:`Workspace.lock` is exclusive across processes and
hosts sharing the workspace.
"""

from __future__ import annotations

import os
import posixpath
import stat
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Callable, Iterator

from xpm import codec, layout
from xpm._version import __version__
from xpm.errors import XpmError
from xpm.fsutil import append_local, tmp_name, write_local_atomic
from xpm.schema import WorkspaceMarker

if TYPE_CHECKING:  # the locks are imported by lock(): a listing takes none
    from xpm.locks import Lock

__all__ = ["Workspace", "FsspecWorkspace", "WorkspaceNotFound", "NotFound", "UnsafeDelete", "HostCommandError"]


class WorkspaceNotFound(XpmError):
    """The folder is missing or is not an xpm workspace."""

    def __init__(self, location: str, reason: str):
        self.location = location
        super().__init__(f"{location}: {reason}")


class NotFound(XpmError, FileNotFoundError):
    """A file of the workspace does not exist."""

    def __init__(self, path: str):
        self.path = path
        super().__init__(f"{path}: no such file")


class UnsafeDelete(XpmError):
    """A deletion outside the places xpm may delete was refused."""


class HostCommandError(XpmError):
    """A command on the host of an SSH workspace could not be run (no shell access, a tool missing...)."""


class Workspace:
    """A workspace root on a filesystem. Build it with :meth:`open`."""

    def __init__(self, location: str):
        self.location = location

    # -- opening -----------------------------------------------------------------------

    @staticmethod
    def open(location: str | os.PathLike[str], *, create: bool = False, **storage_options: Any) -> Workspace:
        """Opens the workspace at ``location``.

        Args:
            location: a local path, ``memory://name`` or ``ssh://[user@]host[:port]/path``.
            create: create the folder and its marker if missing.
            storage_options: passed to the fsspec filesystem (for instance
                ``client_keys`` and ``known_hosts`` for SSH).

        Raises:
            WorkspaceNotFound: the folder does not exist, or holds no workspace marker
                and ``create`` is false.
        """
        text = os.fspath(location)
        ws: Workspace
        if text.startswith("ssh://"):
            from xpm.sshworkspace import open_ssh

            ws = open_ssh(text, storage_options)
        elif text.startswith("memory://"):
            import fsspec

            ws = FsspecWorkspace(text, fsspec.filesystem("memory"), "/" + text[len("memory://") :].strip("/"))
        else:
            ws = LocalWorkspace(str(Path(text).expanduser().absolute()))
        ws._check_marker(create)
        return ws

    def _check_marker(self, create: bool) -> None:
        try:
            data = self.read_bytes(layout.MARKER)
        except NotFound:
            if not create:
                if not self.isdir(""):
                    raise WorkspaceNotFound(self.location, "no such folder") from None
                raise WorkspaceNotFound(
                    self.location, f"not an xpm workspace (no {layout.MARKER}; run an experiment there first)"
                ) from None
            self.makedirs("")
            marker = WorkspaceMarker(version=layout.LAYOUT_VERSION, created_at=time.time(), xpm=__version__)
            self.write_atomic(layout.MARKER, codec.encode(marker))
        else:
            marker = codec.decode_record(data, WorkspaceMarker, self.describe(layout.MARKER))
        self.layout_version = marker.version

    # -- what every backend provides --------------------------------------------------

    def describe(self, rel: str) -> str:
        """A path for messages: the location joined with ``rel``."""
        return f"{self.location.rstrip('/')}/{rel}" if rel else self.location

    def local_path(self, rel: str) -> Path | None:
        """The local path of ``rel``, or None when the workspace is not local."""
        return None

    @staticmethod
    def parent(rel: str) -> str:
        return posixpath.dirname(rel)

    def read_bytes(self, rel: str) -> bytes:
        raise NotImplementedError

    def read_from(self, rel: str, offset: int, length: int | None = None) -> bytes:
        """The bytes of ``rel`` from ``offset``: ``length`` of them, or up to its end (b"" if shorter)."""
        raise NotImplementedError

    def size(self, rel: str) -> int | None:
        """The size of a file, or None if it does not exist."""
        raise NotImplementedError

    def mtime(self, rel: str) -> float | None:
        raise NotImplementedError

    def exists(self, rel: str) -> bool:
        raise NotImplementedError

    def isdir(self, rel: str) -> bool:
        raise NotImplementedError

    def is_link(self, rel: str) -> bool:
        """Whether ``rel`` is a symbolic link (not followed)."""
        raise NotImplementedError

    def listdir(self, rel: str) -> list[str]:
        """The names in a folder, sorted ([] when it does not exist)."""
        raise NotImplementedError

    def makedirs(self, rel: str) -> None:
        raise NotImplementedError

    def mkdir_exclusive(self, rel: str) -> bool:
        """Creates a folder; False if it already exists (atomic: the lock primitive)."""
        raise NotImplementedError

    def create_dir(self, rel: str) -> bool:
        """Creates a folder, and its missing parents; whether this call created it (False: it existed).

        When it returns True, the folder was empty when this call made it: a
        caller that just created a job folder knows it holds no record yet.
        """
        parent = self.parent(rel)
        if parent and not self.isdir(parent):
            self.makedirs(parent)
        return self.mkdir_exclusive(rel)

    def write_atomic(self, rel: str, data: bytes) -> None:
        raise NotImplementedError

    def append(self, rel: str, data: bytes) -> None:
        """Appends ``data`` in one write, creating the file (and its folder) if needed."""
        raise NotImplementedError

    def rename(self, src: str, dst: str) -> None:
        """Renames ``src`` over ``dst`` (replacing it)."""
        raise NotImplementedError

    def rename_new(self, src: str, dst: str) -> bool:
        """Renames the folder ``src`` to ``dst`` unless ``dst`` exists (a folder with files: the
        rename fails then, atomically, on a local disk and over SFTP); whether it did (False: ``src``
        is gone, or ``dst`` exists)."""
        raise NotImplementedError

    def remove(self, rel: str, *, missing_ok: bool = False) -> None:
        raise NotImplementedError

    def rmdir(self, rel: str, *, missing_ok: bool = False) -> None:
        raise NotImplementedError

    def _remove_tree(self, rel: str) -> None:
        raise NotImplementedError

    def tree_size(self, rel: str) -> int:
        """The total size in bytes of the files under a folder (0 when it does not exist)."""
        raise NotImplementedError

    def list_files(self, rel: str) -> list[tuple[str, int, bool]]:
        """Every file under a folder, ``(path relative to it, size, is a link)``, sorted; links are
        listed as themselves, never followed; [] when the folder does not exist."""
        raise NotImplementedError

    def open_file(self, rel: str, mode: str) -> IO[bytes]:
        """A binary file object (``"rb"`` or ``"wb"``), for streaming between two workspaces."""
        raise NotImplementedError

    def upload(self, local: Path, rel: str, progress: Callable[[int], None]) -> None:
        """Copies the local file ``local`` to ``rel``; ``progress(n)`` is told of the bytes as they go."""
        raise NotImplementedError

    def download(self, rel: str, local: Path, progress: Callable[[int], None]) -> None:
        """Copies ``rel`` to the local file ``local``; ``progress(n)`` is told of the bytes as they go."""
        raise NotImplementedError

    def lock(self, rel: str, timeout: float | None = None) -> Lock:
        """An exclusive lock named by the path ``rel`` (see :mod:`xpm.locks`)."""
        from xpm.locks import FolderLock

        return FolderLock(self, rel, timeout)

    # -- built on the primitives ------------------------------------------------------

    def read_optional(self, rel: str) -> bytes | None:
        try:
            return self.read_bytes(rel)
        except NotFound:
            return None

    def remove_job_folder(self, task_id: str, identifier: str) -> None:
        """Deletes a job folder (with :meth:`remove_run_folder`, the only recursive deletions xpm does).

        Refuses anything that is not exactly ``jobs/<task-id>/<identifier>``.
        """
        if not (layout.is_task_id(task_id) and layout.is_identifier(identifier)):
            raise UnsafeDelete(f"refusing to delete {task_id!r}/{identifier!r}: not a job folder")
        self._remove_tree(layout.job_dir(task_id, identifier))

    def remove_run_folder(self, experiment_id: str, run_id: str) -> None:
        """Deletes the folder of a run of an experiment (its records; never a job folder).

        Refuses anything that is not exactly ``experiments/<id>/<run-id>``.
        """
        if not (layout.is_name(experiment_id) and layout.is_name(run_id)):
            raise UnsafeDelete(f"refusing to delete {experiment_id!r}/{run_id!r}: not a run folder")
        self._remove_tree(layout.run_dir(experiment_id, run_id))

    def remove_staged_job(self, task_id: str, identifier: str) -> None:
        """Deletes a job staged by ``experiments copy`` that is not needed (the job is in place).

        Refuses anything that is not exactly ``.xpm-staging/<task-id>/<identifier>``.
        """
        if not (layout.is_task_id(task_id) and layout.is_identifier(identifier)):
            raise UnsafeDelete(f"refusing to delete {task_id!r}/{identifier!r}: not a staged job")
        self._remove_tree(layout.staged_job_dir(task_id, identifier))

    def iter_job_dirs(self) -> Iterator[tuple[str, str]]:
        """Every ``(task id, identifier)`` folder under ``jobs/`` (names not checked)."""
        for task_id in self.listdir(layout.JOBS):
            for identifier in self.listdir(f"{layout.JOBS}/{task_id}"):
                yield task_id, identifier


class LocalWorkspace(Workspace):
    """A workspace on a local disk: plain ``os`` calls (the fast path)."""

    def __init__(self, root: str):
        super().__init__(root)
        self.root = root

    def _p(self, rel: str) -> str:
        return os.path.join(self.root, rel) if rel else self.root

    def local_path(self, rel: str) -> Path:
        return Path(self._p(rel))

    def lock(self, rel: str, timeout: float | None = None) -> Lock:
        from xpm.locks import LocalLock

        return LocalLock(self, rel, timeout)

    def read_bytes(self, rel: str) -> bytes:
        try:
            with open(self._p(rel), "rb") as f:
                return f.read()
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(self.describe(rel)) from None

    def read_from(self, rel: str, offset: int, length: int | None = None) -> bytes:
        try:
            with open(self._p(rel), "rb") as f:
                f.seek(offset)
                return f.read() if length is None else f.read(length)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(self.describe(rel)) from None

    def size(self, rel: str) -> int | None:
        try:
            return os.stat(self._p(rel)).st_size
        except (FileNotFoundError, NotADirectoryError):
            return None

    def mtime(self, rel: str) -> float | None:
        try:
            return os.stat(self._p(rel)).st_mtime
        except (FileNotFoundError, NotADirectoryError):
            return None

    def exists(self, rel: str) -> bool:
        return os.path.exists(self._p(rel))

    def isdir(self, rel: str) -> bool:
        return os.path.isdir(self._p(rel))

    def is_link(self, rel: str) -> bool:
        return os.path.islink(self._p(rel))

    def listdir(self, rel: str) -> list[str]:
        try:
            return sorted(os.listdir(self._p(rel)))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def makedirs(self, rel: str) -> None:
        os.makedirs(self._p(rel), exist_ok=True)

    def mkdir_exclusive(self, rel: str) -> bool:
        try:
            os.mkdir(self._p(rel))
            return True
        except FileExistsError:
            return False

    def create_dir(self, rel: str) -> bool:
        # The folder first: one mkdir when its parent exists (the common case).
        try:
            return self.mkdir_exclusive(rel)
        except FileNotFoundError:
            self.makedirs(self.parent(rel))
            return self.mkdir_exclusive(rel)

    def write_atomic(self, rel: str, data: bytes) -> None:
        write_local_atomic(self._p(rel), data)

    def append(self, rel: str, data: bytes) -> None:
        append_local(self._p(rel), data)

    def rename(self, src: str, dst: str) -> None:
        os.replace(self._p(src), self._p(dst))

    def rename_new(self, src: str, dst: str) -> bool:
        if os.path.lexists(self._p(dst)):
            return False
        try:
            # rename(2) of a folder fails over a folder that holds files (ENOTEMPTY, EEXIST).
            os.rename(self._p(src), self._p(dst))
        except OSError:
            return False
        return True

    def remove(self, rel: str, *, missing_ok: bool = False) -> None:
        try:
            os.unlink(self._p(rel))
        except FileNotFoundError:
            if not missing_ok:
                raise NotFound(self.describe(rel)) from None

    def rmdir(self, rel: str, *, missing_ok: bool = False) -> None:
        try:
            os.rmdir(self._p(rel))
        except FileNotFoundError:
            if not missing_ok:
                raise NotFound(self.describe(rel)) from None

    def _remove_tree(self, rel: str) -> None:
        import shutil

        shutil.rmtree(self._p(rel))

    def list_files(self, rel: str) -> list[tuple[str, int, bool]]:
        found: list[tuple[str, int, bool]] = []
        # One pass of scandir: the kind of each entry comes with the listing, a size costs one lstat.
        pending = [(self._p(rel), "")]
        while pending:
            folder, prefix = pending.pop()
            try:
                entries = list(os.scandir(folder))
            except (FileNotFoundError, NotADirectoryError):
                continue  # removed while walking (or no such folder)
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append((entry.path, f"{prefix}{entry.name}/"))
                        continue
                    info = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                found.append((prefix + entry.name, info.st_size, stat.S_ISLNK(info.st_mode)))
        return sorted(found)

    def open_file(self, rel: str, mode: str) -> IO[bytes]:
        return open(self._p(rel), mode)  # type: ignore[return-value]

    def upload(self, local: Path, rel: str, progress: Callable[[int], None]) -> None:
        import shutil

        shutil.copyfile(local, self._p(rel))
        progress(os.path.getsize(self._p(rel)))

    def download(self, rel: str, local: Path, progress: Callable[[int], None]) -> None:
        import shutil

        shutil.copyfile(self._p(rel), local)
        progress(os.path.getsize(local))

    def tree_size(self, rel: str) -> int:
        total = 0
        # Symbolic links count for themselves: a job folder may link to big shared data.
        for folder, _, files in os.walk(self._p(rel)):
            for name in files:
                try:
                    total += os.lstat(os.path.join(folder, name)).st_size
                except OSError:
                    pass  # removed while walking
        return total


class FsspecWorkspace(Workspace):
    """A workspace on an fsspec filesystem (memory, or SSH through sshfs)."""

    def __init__(self, location: str, fs: Any, root: str):
        super().__init__(location)
        self.fs = fs
        self.root = root.rstrip("/") or "/"

    def _p(self, rel: str) -> str:
        return posixpath.join(self.root, rel) if rel else self.root

    def read_bytes(self, rel: str) -> bytes:
        try:
            return self.fs.cat_file(self._p(rel))  # type: ignore[no-any-return]
        except FileNotFoundError:
            raise NotFound(self.describe(rel)) from None

    def read_from(self, rel: str, offset: int, length: int | None = None) -> bytes:
        size = self.size(rel)
        if size is None:
            raise NotFound(self.describe(rel))
        if offset >= size:
            return b""
        # Not cat_file(start=...): sshfs ignores the start offset.
        with self.fs.open(self._p(rel), "rb") as f:
            f.seek(offset)
            return f.read() if length is None else f.read(length)  # type: ignore[no-any-return]

    def _info(self, rel: str) -> dict[str, Any] | None:
        try:
            return self.fs.info(self._p(rel))  # type: ignore[no-any-return]
        except FileNotFoundError:
            return None

    def size(self, rel: str) -> int | None:
        info = self._info(rel)
        return None if info is None or info.get("type") == "directory" else int(info["size"])

    def mtime(self, rel: str) -> float | None:
        info = self._info(rel)
        if info is None:
            return None
        value = info.get("mtime", info.get("created"))
        if value is None:
            return None
        return value.timestamp() if hasattr(value, "timestamp") else float(value)

    def exists(self, rel: str) -> bool:
        return bool(self.fs.exists(self._p(rel)))

    def isdir(self, rel: str) -> bool:
        return bool(self.fs.isdir(self._p(rel)))

    def is_link(self, rel: str) -> bool:
        path = self._p(rel)
        pool = getattr(self.fs, "_pool", None)
        if pool is None:
            return False  # the memory filesystem has no links
        from fsspec.asyn import sync  # type: ignore[import-untyped]

        async def lstat() -> Any:
            # sshfs's info() follows links: ask the SFTP server for the entry itself.
            async with pool.get() as channel:
                return await channel.lstat(path)

        try:
            attributes = sync(self.fs.loop, lstat)
        except Exception:  # noqa: BLE001 - missing (SFTP's errors are not all OSErrors): not a link
            return False
        return stat.S_ISLNK(attributes.permissions or 0)

    def listdir(self, rel: str) -> list[str]:
        try:
            entries = self.fs.ls(self._p(rel), detail=False)
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(posixpath.basename(e.rstrip("/")) for e in entries)

    def makedirs(self, rel: str) -> None:
        self.fs.makedirs(self._p(rel), exist_ok=True)

    def mkdir_exclusive(self, rel: str) -> bool:
        path = self._p(rel)
        for _ in range(5):
            try:
                self.fs.mkdir(path, create_parents=False)
                return True
            except FileExistsError:
                return False
            except Exception:
                # SFTP reports an existing folder as a generic failure (asyncssh's
                # SFTPFailure, not an OSError): look whether it exists. If it is
                # gone already, its holder released it in between: try again.
                if self.fs.isdir(path):
                    return False
        raise OSError(f"{self.describe(rel)}: cannot create the folder")

    def write_atomic(self, rel: str, data: bytes) -> None:
        tmp = tmp_name(rel)
        parent = self.parent(rel)
        if parent and not self.fs.exists(self._p(parent)):
            self.makedirs(parent)
        self.fs.pipe_file(self._p(tmp), data)
        try:
            self.rename(tmp, rel)
        except BaseException:
            self.remove(tmp, missing_ok=True)
            raise

    def append(self, rel: str, data: bytes) -> None:
        parent = self.parent(rel)
        if parent and not self.fs.exists(self._p(parent)):
            self.makedirs(parent)
        with self.fs.open(self._p(rel), "ab") as f:
            f.write(data)

    def rename(self, src: str, dst: str) -> None:
        # Folders need recursive=True on the memory filesystem (sshfs renames either).
        self.fs.mv(self._p(src), self._p(dst), recursive=self.fs.isdir(self._p(src)))

    def rename_new(self, src: str, dst: str) -> bool:
        if self.fs.exists(self._p(dst)) or not self.fs.isdir(self._p(src)):
            return False
        try:
            # Over SFTP, sshfs renames with posix-rename: it fails over a folder with files.
            self.rename(src, dst)
        except Exception:  # noqa: BLE001 - SFTP's errors are not all OSErrors (asyncssh's SFTPFailure)
            return False
        return True

    def remove(self, rel: str, *, missing_ok: bool = False) -> None:
        try:
            self.fs.rm_file(self._p(rel))
        except FileNotFoundError:
            if not missing_ok:
                raise NotFound(self.describe(rel)) from None

    def rmdir(self, rel: str, *, missing_ok: bool = False) -> None:
        try:
            # Not fs.rmdir: sshfs leaves it as fsspec's no-op.
            self.fs.rm(self._p(rel), recursive=False)
        except FileNotFoundError:
            if not missing_ok:
                raise NotFound(self.describe(rel)) from None

    def _remove_tree(self, rel: str) -> None:
        self.fs.rm(self._p(rel), recursive=True)

    def connection_options(self) -> dict[str, Any]:
        """The options its filesystem was opened with (over SSH: host, username, port, known_hosts,
        client_keys...): what another client needs to reach the host the same way (``experiments copy``'s
        rsync over ssh)."""
        return dict(getattr(self.fs, "storage_options", {}))

    def list_files(self, rel: str) -> list[tuple[str, int, bool]]:
        top = self._p(rel)
        try:
            listing = self.fs.find(top, detail=True)
        except FileNotFoundError:
            return []
        return sorted(
            (posixpath.relpath(path, top), int(info.get("size") or 0), info.get("type") == "link")
            for path, info in listing.items()
        )

    def open_file(self, rel: str, mode: str) -> IO[bytes]:
        return self.fs.open(self._p(rel), mode)  # type: ignore[no-any-return]

    def upload(self, local: Path, rel: str, progress: Callable[[int], None]) -> None:
        size = os.path.getsize(local)
        if size <= _ONE_WRITE:
            # One open, write, close (put_file would first stat every ancestor folder).
            self.fs.pipe_file(self._p(rel), Path(local).read_bytes())
            progress(size)
        else:
            self.fs.put_file(str(local), self._p(rel), callback=_progress_callback(progress))

    def download(self, rel: str, local: Path, progress: Callable[[int], None]) -> None:
        self.fs.get_file(self._p(rel), str(local), callback=_progress_callback(progress))

    def tree_size(self, rel: str) -> int:
        try:
            return int(self.fs.du(self._p(rel), total=True))
        except FileNotFoundError:
            return 0


#: Files up to this size go to a remote workspace in one write (:meth:`FsspecWorkspace.upload`)
_ONE_WRITE = 4 << 20


def _progress_callback(progress: Callable[[int], None]) -> Any:
    """An fsspec callback that passes on the bytes transferred since its last call."""
    from fsspec.callbacks import Callback  # type: ignore[import-untyped]

    class Bytes(Callback):  # type: ignore[misc]
        reported = 0

        def call(self, *args: Any, **kwargs: Any) -> None:
            value = int(self.value or 0)
            if value > self.reported:
                progress(value - self.reported)
                self.reported = value

    return Bytes()
