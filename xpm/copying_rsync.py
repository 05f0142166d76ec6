"""The rsync path of ``experiments copy`` (:mod:`xpm.copying`): many jobs per rsync, checked and renamed
on the host in a few commands (the checks are those of :mod:`xpm.copyjobs`).

The finished jobs of a plan are cut in groups (:func:`chunks`); the folders of a group go
in one rsync (:func:`xpm.rsync.transfer`) into their staging folders, the same ones the
fsspec path uses; then the group's jobs are checked (every file's size, the identifier
of the staged ``params.json``) and renamed into place. On the host of an SSH destination
the listing, the checks' data and the renames take a few commands there
(:func:`xpm.rsync.host_staged`, :func:`~xpm.rsync.host_move`) rather than a dozen SFTP
round trips per job; elsewhere each job goes through :func:`xpm.copyjobs.place`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from xpm import layout
from xpm.copyjobs import (
    LOCK_PREFIX,
    STAGING,
    CopyError,
    JobCopy,
    check_identifier,
    check_same_params,
    check_sizes,
    place,
    prune_empty_staging,
    staged_leftovers,
)
from xpm.rsync import Route, RsyncError, host_move, host_prune, host_staged, transfer
from xpm.workspace import Workspace

if TYPE_CHECKING:
    from xpm.sshworkspace import SSHWorkspace

__all__ = ["RSYNC_TEMP", "send_jobs", "prune_staging", "chunks"]

#: Where earlier copies had rsync write the files being sent (emptied when a copy ends); rsync now writes
#: them beside their final names, which is faster (see :func:`xpm.rsync.transfer`)
RSYNC_TEMP = f"{STAGING}/.rsync"
#: What rsync does not send from a job folder: its lock (and the lock's tombstones), the source's own
_EXCLUDE = [f"/*/*/{LOCK_PREFIX}*"]
#: At most this many files, and bytes, per rsync (the jobs of one rsync are put in place when it ends)
RSYNC_FILES = 20_000
RSYNC_BYTES = 1 << 30


def send_jobs(path: Route, source: Workspace, destination: Workspace, jobs: list[JobCopy],
              advanced: Callable[..., None], notes: list[str],
              place_each: Callable[[list[JobCopy]], None]) -> bool:
    """Copies ``jobs`` by rsync, a group at a time, each group put in place before the next is sent
    (on the host, or by ``place_each``); False when the ssh command could not reach the host at the
    first rsync (nothing was sent: the caller copies them through the workspaces, and a note says so).

    Raises:
        CopyError: rsync failed, or a staged job does not check.
    """
    for n, chunk in enumerate(chunks(jobs)):
        try:
            _send(path, chunk, advanced)
        except RsyncError as exc:
            if not (exc.unreachable and n == 0):
                raise CopyError(str(exc)) from None
            notes.append(f"{exc} (the files went through SFTP instead)")
            return False
        if not _place_on_host(source, destination, chunk, notes, advanced):
            place_each(chunk)
    return True


def prune_staging(destination: Workspace) -> None:
    """Once the copy is done: removes what killed rsyncs left in their temporary folder, and the empty
    folders of the staging folder (on the host of an SSH destination, in one command)."""
    host = _host(destination)
    if host is None or not host_prune(host, host.host_path(""), STAGING, RSYNC_TEMP):
        _clear_temp(destination)
        prune_empty_staging(destination)


def chunks(jobs: list[JobCopy]) -> list[list[JobCopy]]:
    """The jobs cut in groups of at most :data:`RSYNC_FILES` files and :data:`RSYNC_BYTES` bytes (at least
    one job each): one rsync each, the jobs of a group put in place before the next group is sent."""
    groups: list[list[JobCopy]] = []
    files = size = 0
    for job in jobs:
        if groups and groups[-1] and (files + len(job.files) <= RSYNC_FILES and size + job.size <= RSYNC_BYTES):
            groups[-1].append(job)
            files, size = files + len(job.files), size + job.size
        else:
            groups.append([job])
            files, size = len(job.files), job.size
    return groups


def _send(path: Route, jobs: list[JobCopy], advanced: Callable[[int, int], None]) -> None:
    """Sends the folders of ``jobs`` (links aside) to their staging folders, in one rsync."""
    # jobs/<task>/<id> goes to .xpm-staging/<task>/<id>: the same path under another base.
    folders = [f"{job.task_id}/{job.identifier}" for job in jobs]
    expected = (sum(1 for job in jobs for entry in job.files if not entry.link),
                sum(entry.size for job in jobs for entry in job.files if not entry.link))
    told = [0, 0]

    def sent(files: int, size: int) -> None:
        told[0] += files
        told[1] += size
        advanced(files, size)

    transfer(path, layout.JOBS, STAGING, folders, _EXCLUDE, sent)
    # rsync counts neither the files it found there already (a resumed copy) nor, always, the last ones.
    advanced(max(0, expected[0] - told[0]), max(0, expected[1] - told[1]))


def _place_on_host(source: Workspace, destination: Workspace, jobs: list[JobCopy], notes: list[str],
                   advanced: Callable[[int, int, int], None]) -> bool:
    """Checks the jobs staged by rsync on the host of an SSH destination and renames them into place with a
    few commands there, not a dozen SFTP round trips per job; False when the host cannot (the caller then
    places them one by one). The staged ``params.json`` is checked by its SHA-256: the bytes whose
    identifier is recomputed here are those staged."""
    import hashlib

    host = _host(destination)
    if host is None:
        return False
    root = host.host_path("")
    staged = host_staged(host, root, [layout.staged_job_dir(job.task_id, job.identifier) for job in jobs])
    if staged is None:
        return False
    files, hashes = staged
    leftovers: list[str] = []
    for job in jobs:
        staging = layout.staged_job_dir(job.task_id, job.identifier)
        leftovers += [f"{staging}/{rel}" for rel in staged_leftovers(job, files[staging])]
        check_sizes(destination, staging, job, files[staging])
        params = job.params or source.read_bytes(layout.job_params(job.task_id, job.identifier))
        if hashes.get(staging) != hashlib.sha256(params).hexdigest():
            raise CopyError(f"{destination.describe(staging)}/{layout.PARAMS_FILE}: not the source's "
                            "(the source changed? run the copy again)")
        check_identifier(params, job, source.describe(layout.job_params(job.task_id, job.identifier)))
        notes.extend(f"{source.describe(f'{layout.job_dir(job.task_id, job.identifier)}/{entry.rel}')}: "
                     "a symbolic link, not copied" for entry in job.files if entry.link)
    # Every task's jobs in one command: the leftovers removed, then one mv per task.
    moves: dict[str, list[str]] = {}
    for job in jobs:
        moves.setdefault(layout.task_dir(job.task_id), []).append(layout.staged_job_dir(job.task_id, job.identifier))
    left = host_move(host, root, moves, leftovers)
    for job in jobs:
        staging = layout.staged_job_dir(job.task_id, job.identifier)
        if left is None:
            # The host could not move them all (no GNU mv?): those still staged go one by one.
            if destination.isdir(staging):
                place(source, destination, job, staging, set())
        elif staging in left:
            # Made there meanwhile (by an experiment there): the same job, or an error.
            check_same_params(source, destination, job)
            destination.remove_staged_job(job.task_id, job.identifier)
        job.placed = True
        advanced(0, 0, 1)
    return True


def _host(ws: Workspace) -> SSHWorkspace | None:
    """The workspace as an SSH workspace (whose host runs commands), or None."""
    from xpm.sshworkspace import SSHWorkspace

    return ws if isinstance(ws, SSHWorkspace) else None


def _clear_temp(destination: Workspace) -> None:
    """Removes what killed rsyncs left in their temporary folder (partial files of this copy's own)."""
    for rel, _, _ in destination.list_files(RSYNC_TEMP):
        destination.remove(f"{RSYNC_TEMP}/{rel}", missing_ok=True)
