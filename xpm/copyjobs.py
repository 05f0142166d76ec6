"""What ``experiments copy`` moves, and how a staged job is checked and placed.

A copy (:mod:`xpm.copying`) follows a :class:`CopyPlan`: the jobs of a run
(:class:`JobCopy`, each with its files, :class:`FileEntry`) and the files of the
run folder. Each job is staged in :data:`STAGING` inside the destination
workspace, through the workspaces (fsspec) or by rsync (:mod:`xpm.copying_rsync`);
both paths then check the staged job the same way (every file's size, the
identifier its ``params.json`` records) and rename it into ``jobs/``
(:func:`place`), never over a job with other parameters (:class:`ParamsMismatch`).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any

from xpm import codec, layout, state
from xpm.errors import XpmError
from xpm.workspace import Workspace

__all__ = ["STAGING", "PART_SUFFIX", "LOCK_PREFIX", "COPY", "PRESENT", "ACTIVE", "MISSING", "CopyError", "CopyBusy",
           "ParamsMismatch", "FileEntry", "JobCopy", "CopyPlan", "Progress", "list_tree", "place", "staged_leftovers",
           "check_sizes", "check_identifier", "check_same_params", "prune_empty_staging"]

#: The staging folder of copies, at the root of the destination workspace (one folder per job)
STAGING = layout.STAGING
#: The suffix of a file being copied into the staging folder (renamed when complete)
PART_SUFFIX = ".xpm-part"
#: Inside a job folder: the job lock (and its tombstones), which belongs to the source's processes
LOCK_PREFIX = posixpath.relpath(layout.job_lock("t", "0" * 64), layout.job_dir("t", "0" * 64))

# What a job of the plan will become
COPY, PRESENT, ACTIVE, MISSING = "copy", "present", "active", "missing"


class CopyError(XpmError):
    """A copy that cannot be made, or that stopped (no job folder is ever left half-copied)."""


class CopyBusy(CopyError):
    """Another copy writes into the destination workspace (its lock names the owner)."""

    def __init__(self, lock: str, owner: str, note: str = ""):
        self.lock = lock
        self.owner = owner
        super().__init__(f"another copy into this workspace is under way ({lock} is held {owner}"
                         f"{'; ' + note if note else ''}): wait for it to end, then run this copy again")


class ParamsMismatch(CopyError):
    """A job folder at the destination holds other parameters than the source's: never overwritten."""

    def __init__(self, source: str, destination: str):
        self.source = source
        self.destination = destination
        super().__init__(
            f"{destination} exists with other parameters than {source}: it is not overwritten "
            "(compare them with `experimaestro parameters-difference`)"
        )


@dataclass(frozen=True)
class FileEntry:
    """A file of a job or run folder: its path relative to the folder, its size, whether it is a link."""

    rel: str
    size: int
    link: bool = False


@dataclass
class JobCopy:
    """A job of the run, and what the copy does with it.

    ``action``: copy; present (at the destination already); active (launched at the
    source: copied only with ``include_running``); missing (no folder at the source).
    """

    task_id: str
    identifier: str
    action: str
    state: str = state.UNSCHEDULED
    failure_reason: str | None = None
    files: list[FileEntry] = field(default_factory=list)
    #: its ``params.json`` at the source when planned (what the staged one must be)
    params: bytes = field(default=b"", repr=False)
    #: set once the job is in place at the destination (copied by this copy)
    placed: bool = False

    @property
    def name(self) -> str:
        return f"{self.task_id}/{self.identifier}"

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


@dataclass
class CopyPlan:
    """What copying a run would do (the dry run prints it; :func:`perform_copy` follows it)."""

    experiment_id: str
    run_id: str
    jobs: list[JobCopy]
    run_files: list[FileEntry]
    tags: dict[tuple[str, str], dict[str, Any]]
    include_running: bool
    warnings: list[str] = field(default_factory=list)

    def with_action(self, *actions: str) -> list[JobCopy]:
        return [job for job in self.jobs if job.action in actions]

    @property
    def to_copy(self) -> list[JobCopy]:
        """The jobs that will be copied (running ones only with ``include_running``)."""
        actions = (COPY, ACTIVE) if self.include_running else (COPY,)
        return self.with_action(*actions)

    @property
    def files(self) -> int:
        return sum(len(job.files) for job in self.to_copy) + len(self.run_files)

    @property
    def bytes(self) -> int:
        return sum(job.size for job in self.to_copy) + sum(f.size for f in self.run_files)


@dataclass
class Progress:
    """Where a copy is: jobs done of the total, files and bytes copied (of the planned totals)."""

    jobs: int
    total_jobs: int
    files: int
    total_files: int
    bytes: int
    total_bytes: int


# --- listing, checking and placing a staged job ----------------------------------------------


def list_tree(ws: Workspace, rel: str) -> list[FileEntry]:
    """Every file under a folder (links not followed), relative to it, sorted ([] when it does not exist)."""
    return [FileEntry(entry, size, link) for entry, size, link in ws.list_files(rel)]


def place(source: Workspace, destination: Workspace, job: JobCopy, staging: str, task_dirs: set[str]) -> None:
    """Checks a staged job and renames it into place (unless the same job got there meanwhile)."""
    folder = layout.job_dir(job.task_id, job.identifier)
    _check_staged(destination, staging, job)
    if job.task_id not in task_dirs:
        destination.makedirs(layout.task_dir(job.task_id))
        task_dirs.add(job.task_id)
    if not destination.rename_new(staging, folder):
        # Placed meanwhile (by another copy): the same job, or an error.
        check_same_params(source, destination, job)
        destination.remove_staged_job(job.task_id, job.identifier)
    job.placed = True


def _check_staged(destination: Workspace, staging: str, job: JobCopy) -> None:
    """Checks a staged job before it is renamed into place: every file and its size, its identifier.

    A running job's files change while they are copied: only its identifier is checked then.
    """
    if job.action != ACTIVE:
        staged = {f.rel: f.size for f in list_tree(destination, staging)}
        for rel in staged_leftovers(job, staged):
            destination.remove(f"{staging}/{rel}", missing_ok=True)
        check_sizes(destination, staging, job, staged)
    params_rel = f"{staging}/{layout.PARAMS_FILE}"
    check_identifier(destination.read_bytes(params_rel), job, destination.describe(params_rel))


def staged_leftovers(job: JobCopy, staged: dict[str, int]) -> list[str]:
    """The files of a staged job that an interrupted copy left there, not the source's: a temporary file
    of a killed rsync (whose host went down: rsync removes its own otherwise), or of the fsspec path."""
    from xpm.rsync import is_temporary

    planned = {entry.rel for entry in job.files}
    return [rel for rel in staged if rel not in planned
            and (rel.endswith(PART_SUFFIX) or is_temporary(posixpath.basename(rel)))]


def check_sizes(destination: Workspace, staging: str, job: JobCopy, staged: dict[str, int]) -> None:
    """Checks that every file of the job (links aside) is staged (``staged``: path -> size) with its size."""
    for entry in job.files:
        got = staged.get(entry.rel)
        if not entry.link and got != entry.size:
            found = "missing" if got is None else f"{got} bytes"
            raise CopyError(f"{destination.describe(f'{staging}/{entry.rel}')}: {found}, {entry.size} bytes "
                            "expected (the source changed? run the copy again)")


def check_identifier(params_bytes: bytes, job: JobCopy, where: str) -> None:
    """Checks that a staged ``params.json`` (read at ``where``) records the job's identifier."""
    recorded = codec.params_identifier(codec.decode_params(params_bytes, where))
    if recorded != job.identifier:
        raise CopyError(f"{where}: records the identifier {recorded}, not {job.identifier}")


def check_same_params(source: Workspace, destination: Workspace, job: JobCopy) -> None:
    """Checks that the job found at the destination has the source's ``params.json`` (else ParamsMismatch)."""
    rel = layout.job_params(job.task_id, job.identifier)
    if destination.read_optional(rel) != source.read_optional(rel):
        folder = layout.job_dir(job.task_id, job.identifier)
        raise ParamsMismatch(source.describe(folder), destination.describe(folder))


def prune_empty_staging(ws: Workspace, rel: str = STAGING) -> None:
    """Removes the empty folders of the staging folder, bottom up (the staging folder too, if empty).

    Run once all jobs are in place: a job staged meanwhile by another thread could lose its
    parent folder otherwise.
    """
    for name in ws.listdir(rel):
        if ws.isdir(f"{rel}/{name}"):
            prune_empty_staging(ws, f"{rel}/{name}")
    if ws.listdir(rel):
        return  # a job left staged (an error), or another copy's
    try:
        ws.rmdir(rel, missing_ok=True)
    except Exception:  # noqa: BLE001 - filled meanwhile (SFTP's errors are not all OSErrors): kept
        pass

