"""Copying a run of an experiment, with the jobs it references, from one workspace to another.

Both workspaces are reached through :class:`~xpm.workspace.Workspace` (a local disk
or SSH through fsspec), so one code path serves every direction. Jobs are
content-addressed: a job already at the destination is not copied again (its
``params.json`` must be the same, or the copy stops before writing anything).

Each job is copied into a staging folder inside the destination workspace
(:data:`STAGING`), each file under a temporary name renamed when complete; the
staged job is checked (every file's size, the identifier its ``params.json``
records) and only then renamed into ``jobs/``. An interrupted copy thus never
leaves a half-copied job folder, and the same copy run again resumes from the
files already staged. The run folder is copied last, then the destination's job
index and current-run ref are updated. Nothing is ever deleted at the source.

When rsync can serve the two workspaces (:func:`xpm.rsync.route`: local↔local,
local↔SSH), the files of the finished jobs go by rsync into the same staging
folders, many jobs per rsync (one ssh connection for a thousand small jobs), and
are checked and renamed the same way (:mod:`xpm.copying_rsync`). One copy at a
time writes into a workspace: it holds :data:`~xpm.layout.COPY_LOCK` there while it
copies. The plan's types, the errors and the checks and renames of a staged job,
which both paths share, are in :mod:`xpm.copyjobs`.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Callable

from xpm import codec, layout, state
from xpm.copyjobs import (
    ACTIVE,
    COPY,
    LOCK_PREFIX,
    MISSING,
    PART_SUFFIX,
    PRESENT,
    STAGING,
    CopyBusy,
    CopyError,
    CopyPlan,
    FileEntry,
    JobCopy,
    ParamsMismatch,
    Progress,
    list_tree,
    place,
)
from xpm.errors import XpmError
from xpm.schema import IndexEntry
from xpm.store.blobs import BlobStore, digest_of
from xpm.store.jobs import JobStore, decode_state
from xpm.store.runs import RunStore
from xpm.workspace import Workspace

if TYPE_CHECKING:
    from xpm.rsync import Route

# The plan's types, errors and constants live in xpm.copyjobs (shared with the rsync path): named here too.
__all__ = ["STAGING", "COPY", "PRESENT", "ACTIVE", "MISSING", "CopyError", "CopyBusy", "ParamsMismatch", "CopyPlan",
           "FileEntry", "JobCopy", "Progress", "list_tree", "plan_copy", "perform_copy"]

#: Bytes read and written at a time when streaming between two remote workspaces
CHUNK = 4 << 20
#: Files up to this size are written to an SSH workspace in one request, without a temporary name
ONE_WRITE = 16 << 10
#: Jobs copied at once when one end is remote (each waits on round trips most of the time)
PARALLEL_JOBS = 8


# --- planning ---------------------------------------------------------------------------------


def plan_copy(
    source: Workspace, destination: Workspace, experiment_id: str, run_id: str | None = None,
    *, include_running: bool = False,
) -> CopyPlan:
    """What copying a run (by default the experiment's current run) would do; writes nothing.

    Raises:
        UnknownExperiment: no such experiment at the source.
        CopyError: no such run, or the source and the destination are the same workspace.
        ParamsMismatch: a job exists at the destination with other parameters.
    """
    if source.location.rstrip("/") == destination.location.rstrip("/"):
        raise CopyError(f"{source.location}: the source and the destination are the same workspace")
    runs = RunStore(source)
    if run_id is None:
        run_id = runs.current_or_fail(experiment_id)
    elif not (layout.is_name(experiment_id) and layout.is_name(run_id)) or not source.isdir(
        layout.run_dir(experiment_id, run_id)
    ):
        raise CopyError(f"no run {experiment_id}/{run_id} in the workspace {source.location}")
    read = runs.read_jobs(experiment_id, run_id)
    plan = CopyPlan(experiment_id, run_id, [], list_tree(source, layout.run_dir(experiment_id, run_id)), read.tags,
                    include_running)
    if read.damaged:
        plan.warnings.append(f"{source.describe(layout.run_jobs(experiment_id, run_id))}: damaged lines skipped")
    # What the destination holds: one listing per task, not a round trip per job.
    there = {task: set(destination.listdir(layout.task_dir(task))) for task in {t for t, _ in read.order}
             if layout.is_task_id(task)}
    for task_id, identifier in read.order:
        plan.jobs.append(_plan_job(source, destination, task_id, identifier, plan.warnings,
                                   identifier in there.get(task_id, ())))
    return plan


def _plan_job(source: Workspace, destination: Workspace, task_id: str, identifier: str,
              warnings: list[str], listed: bool) -> JobCopy:
    folder = layout.job_dir(task_id, identifier)
    name = f"{task_id}/{identifier}"
    if not (layout.is_task_id(task_id) and layout.is_identifier(identifier)):
        warnings.append(f"{name}: not a valid job id (skipped)")
        return JobCopy(task_id, identifier, MISSING)
    params = source.read_optional(layout.job_params(task_id, identifier))
    if params is None:
        what = f"no {layout.PARAMS_FILE}" if source.isdir(folder) else "no such job folder"
        warnings.append(f"{source.describe(folder)}: {what} (skipped)")
        return JobCopy(task_id, identifier, MISSING)
    if listed and destination.isdir(folder):
        there = destination.read_optional(layout.job_params(task_id, identifier))
        if there != params:
            raise ParamsMismatch(source.describe(folder), destination.describe(folder))
        return JobCopy(task_id, identifier, PRESENT)
    known, reason = _state_of(source, task_id, identifier)
    files = [f for f in list_tree(source, folder) if not f.rel.startswith(LOCK_PREFIX)]
    action = ACTIVE if known in state.LAUNCHED else COPY
    return JobCopy(task_id, identifier, action, known, reason, files, params)


def _state_of(ws: Workspace, task_id: str, identifier: str) -> tuple[str, str | None]:
    """A job's state and failure reason (unscheduled: no record, or a damaged one, which
    ``experiments sync`` repairs)."""
    rel = layout.job_state(task_id, identifier)
    data = ws.read_optional(rel)
    if data is None:
        return state.UNSCHEDULED, None
    try:
        record = decode_state(data, ws.describe(rel))
    except XpmError:
        return state.UNSCHEDULED, None
    return record.state, record.failure_reason


# --- copying ----------------------------------------------------------------------------------


def perform_copy(plan: CopyPlan, source: Workspace, destination: Workspace,
                 progress: Callable[[Progress], None] | None = None, *, rsync: Route | None = None) -> list[str]:
    """Copies what the plan says; returns warnings (links not copied...).

    Each job is staged then renamed into place; the run folder comes last, then
    the destination's index and current-run ref are updated. With ``rsync`` (see
    :func:`xpm.rsync.route`), the files of the finished jobs go by rsync, many jobs
    per rsync; otherwise, and for running jobs, through the workspaces (fsspec).
    One copy at a time writes into a workspace (:data:`~xpm.layout.COPY_LOCK`).

    Raises:
        CopyBusy: another copy into the destination is under way.
        ParamsMismatch: a job appeared at the destination meanwhile with other parameters.
        CopyError: a staged job does not check (sizes, identifier), or rsync failed.
    """
    from xpm.locks import LockTimeout, describe_owner

    try:
        lock = destination.lock(layout.COPY_LOCK, timeout=0)
        lock.acquire()
    except LockTimeout as exc:
        raise CopyBusy(destination.describe(layout.COPY_LOCK), describe_owner(exc.owner), exc.note) from None
    try:
        return _perform(plan, source, destination, progress, rsync)
    finally:
        lock.release()


def _perform(plan: CopyPlan, source: Workspace, destination: Workspace,
             progress: Callable[[Progress], None] | None, rsync: Route | None) -> list[str]:
    # The rsync path, beside (it loads subprocess and the rsync module: only when a copy runs).
    from xpm.copying_rsync import prune_staging, send_jobs

    notes: list[str] = []
    jobs = plan.to_copy
    done = Progress(0, len(jobs), 0, plan.files, 0, plan.bytes)
    guard = threading.Lock()

    def advanced(files: int, size: int, finished: int = 0) -> None:
        with guard:
            done.files += files
            done.bytes += size
            done.jobs += finished
            if progress is not None:
                progress(done)

    task_dirs: set[str] = set()  # the task folders made at the destination (once each)

    def one(job: JobCopy) -> None:
        _copy_job(source, destination, job, advanced, notes, task_dirs)
        advanced(0, 0, 1)

    def placed(job: JobCopy) -> None:
        # Staged by rsync: its links (not sent by rsync), then the checks and the rename.
        links = [entry for entry in job.files if entry.link]
        staging = layout.staged_job_dir(job.task_id, job.identifier)
        _copy_files(source, layout.job_dir(job.task_id, job.identifier), destination, staging, links, advanced,
                    notes, replace=True)
        place(source, destination, job, staging, task_dirs)
        advanced(0, 0, 1)

    # Over SFTP each file costs a few round trips: several jobs at once keep the connection busy.
    remote = source.local_path("") is None or destination.local_path("") is None
    pool = ThreadPoolExecutor(max_workers=PARALLEL_JOBS if remote else 1)
    by_rsync = [job for job in jobs if job.action == COPY] if rsync is not None else []
    try:
        if rsync is not None and by_rsync and not send_jobs(rsync, source, destination, by_rsync, advanced, notes,
                                                            lambda chunk: _run_all(pool, placed, chunk)):
            rsync = None  # the ssh command could not reach the host: nothing was sent, all go through SFTP
        _run_all(pool, one, [job for job in jobs if rsync is None or job.action != COPY])
    except Exception:
        # The first error stops the copy: the jobs not started are not, those under way finish.
        pool.shutdown(wait=True, cancel_futures=True)
        _index_jobs(destination, plan)  # the jobs put in place are listed there all the same
        raise
    except BaseException:
        # Ctrl-C: return at once (the jobs under way stay staged; the same copy resumes them).
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    # Under the blobs lock: a prune at the destination removes the blobs no run names, and the
    # run naming these is put in place only now.
    with BlobStore(destination).lock():
        _copy_blobs(source, destination, plan, notes)
        _copy_run(source, destination, plan, advanced)
    prune_staging(destination)
    _index_jobs(destination, plan)
    runs = RunStore(destination)
    current = runs.current(plan.experiment_id)
    if current is None or current <= plan.run_id:  # the run becomes current there, unless a newer one is
        runs.set_current(plan.experiment_id, plan.run_id)
    return notes


def _run_all(pool: ThreadPoolExecutor, fn: Callable[[JobCopy], None], jobs: list[JobCopy]) -> None:
    """Runs ``fn`` on every job in the pool; the first error stops the jobs not started, and is raised
    once those under way are done."""
    futures = [pool.submit(fn, job) for job in jobs]
    wait(futures, return_when=FIRST_EXCEPTION)
    for future in futures:
        future.cancel()
    wait(futures)
    errors = [error for f in futures if not f.cancelled() and (error := f.exception()) is not None]
    if errors:
        raise errors[0]


def _copy_job(source: Workspace, destination: Workspace, job: JobCopy,
              advanced: Callable[[int, int], None], notes: list[str], task_dirs: set[str]) -> None:
    folder = layout.job_dir(job.task_id, job.identifier)
    staging = layout.staged_job_dir(job.task_id, job.identifier)
    # A staging folder made now is empty: nothing to resume, no listing to ask for.
    fresh = destination.create_dir(staging)
    _copy_files(source, folder, destination, staging, job.files, advanced, notes, fresh=fresh,
                changing=job.action == ACTIVE)
    if job.action == ACTIVE:
        _mark_unfinished(destination, staging, job)
    place(source, destination, job, staging, task_dirs)


def _copy_files(source: Workspace, src_dir: str, destination: Workspace, dst_dir: str, files: list[FileEntry],
                advanced: Callable[[int, int], None], notes: list[str], *, replace: bool = False,
                fresh: bool = False, changing: bool = False) -> None:
    """Copies files into the folder ``dst_dir`` (which exists), each under a temporary name renamed
    when complete.

    A file already there with the right size is kept (a resumed copy), unless ``replace``
    (run folders, which may have grown); ``fresh`` says that ``dst_dir`` was just made, empty;
    ``changing`` that the files may change meanwhile (a running job): one that vanished is skipped.
    """
    made: set[str] = {dst_dir}
    there: dict[str, int] = {}
    if fresh:
        # Its sub-folders, parents first, one mkdir each (makedirs over SFTP stats every ancestor).
        for folder in sorted({posixpath.dirname(f.rel) for f in files} - {""}):
            for step in _ancestors(folder):
                if f"{dst_dir}/{step}" not in made:
                    destination.mkdir_exclusive(f"{dst_dir}/{step}")
                    made.add(f"{dst_dir}/{step}")
    elif not replace:
        # What an interrupted copy staged already: one listing, not a round trip per file.
        there = {f.rel: f.size for f in list_tree(destination, dst_dir)}
    for entry in files:
        target = f"{dst_dir}/{entry.rel}"
        if entry.link:
            if not _copy_link(source, f"{src_dir}/{entry.rel}", destination, target):
                notes.append(f"{source.describe(f'{src_dir}/{entry.rel}')}: a symbolic link, not copied")
            advanced(1, entry.size)
            continue
        if there.get(entry.rel) == entry.size:
            advanced(1, entry.size)
            continue
        parent = posixpath.dirname(target)
        if parent not in made:
            destination.makedirs(parent)
            made.add(parent)
        # A small file goes in one SFTP write: cut short, it is shorter than expected (or absent),
        # never holed; a larger one is written in parallel blocks, so under another name first.
        part = target if entry.size <= ONE_WRITE and destination.local_path("") is None else target + PART_SUFFIX
        try:
            _transfer(source, f"{src_dir}/{entry.rel}", destination, part, lambda n: advanced(0, n))
        except FileNotFoundError:
            if not changing:
                raise
            notes.append(f"{source.describe(f'{src_dir}/{entry.rel}')}: removed while copied (skipped)")
            continue
        except Exception as exc:
            # SFTP's failures (a full disk, a lost connection) are not all OSErrors: one line all the same.
            if type(exc).__module__.split(".")[0] in ("asyncssh", "sshfs"):
                raise CopyError(f"{destination.describe(part)}: {exc}") from exc
            raise
        if part != target:
            destination.rename(part, target)
        advanced(1, 0)


def _ancestors(folder: str) -> list[str]:
    """``a/b/c`` -> ``a``, ``a/b``, ``a/b/c``."""
    parts = folder.split("/")
    return ["/".join(parts[: n + 1]) for n in range(len(parts))]


def _copy_link(source: Workspace, src: str, destination: Workspace, dst: str) -> bool:
    """Copies a symbolic link as a link when both ends are local; whether it did."""
    src_path, dst_path = source.local_path(src), destination.local_path(dst)
    if src_path is None or dst_path is None:
        return False
    if os.path.lexists(dst_path):
        return True
    dst_path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(os.readlink(src_path), dst_path)
    return True


def _transfer(source: Workspace, src: str, destination: Workspace, dst: str, copied: Callable[[int], None]) -> None:
    """Copies one file's bytes (a local copy, an upload or download, or a stream between two remote
    workspaces), telling ``copied`` how many bytes went as they go."""
    src_path, dst_path = source.local_path(src), destination.local_path(dst)
    if src_path is not None and dst_path is not None:
        shutil.copyfile(src_path, dst_path)
        copied(os.path.getsize(dst_path))
    elif src_path is not None:
        destination.upload(src_path, dst, copied)
    elif dst_path is not None:
        source.download(src, dst_path, copied)
    else:
        with source.open_file(src, "rb") as fin, destination.open_file(dst, "wb") as fout:
            while chunk := fin.read(CHUNK):
                fout.write(chunk)
                copied(len(chunk))


def _mark_unfinished(destination: Workspace, staging: str, job: JobCopy) -> None:
    """A job copied while it ran: its copy is recorded as cancelled (an experiment there runs it again)."""
    rel = f"{staging}/{layout.JOB_STATE_FILE}"
    data = destination.read_optional(rel)
    if data is None:
        return
    record = decode_state(data, destination.describe(rel))
    record.state, record.failure_reason, record.process = state.ERROR, state.CANCELLED, None
    record.updated_at = time.time()
    destination.write_atomic(rel, codec.encode(record))
    job.state, job.failure_reason = state.ERROR, state.CANCELLED


def _copy_run(source: Workspace, destination: Workspace, plan: CopyPlan,
              advanced: Callable[[int, int], None]) -> None:
    """Copies the run folder: staged and renamed when new, else its files are brought up to date."""
    folder = layout.run_dir(plan.experiment_id, plan.run_id)
    if destination.isdir(folder):
        # Runs are not content-addressed: an experiment that went on at the source has more to say.
        _copy_files(source, folder, destination, folder, plan.run_files, advanced, [], replace=True)
        return
    staging = f"{STAGING}/{layout.EXPERIMENTS}/{plan.experiment_id}/{plan.run_id}"
    fresh = destination.create_dir(staging)
    _copy_files(source, folder, destination, staging, plan.run_files, advanced, [], fresh=fresh)
    destination.makedirs(layout.experiment_dir(plan.experiment_id))
    if not destination.rename_new(staging, folder):
        raise CopyError(f"{destination.describe(folder)}: could not be created (it appeared meanwhile?)")


def _copy_blobs(source: Workspace, destination: Workspace, plan: CopyPlan, notes: list[str]) -> None:
    """Copies the blobs the run's ``spec.json`` names (its sources and git patches) that the
    destination lacks; each is checked against its digest. A blob missing at the source, or a
    spec that cannot be read, is a note: the jobs and the run are copied all the same."""
    try:
        digests = RunStore(source).blob_digests(plan.experiment_id, plan.run_id)
    except XpmError as exc:
        notes.append(f"{source.describe(layout.run_spec(plan.experiment_id, plan.run_id))}: {exc} "
                     "(the run's sources and patches are not copied)")
        return
    have, put = BlobStore(source), BlobStore(destination)
    for digest in digests:
        if destination.exists(layout.blob(digest)):
            continue
        try:
            data = have.get(digest)
        except XpmError as exc:
            notes.append(f"{exc} (not copied)")
            continue
        if digest_of(data) != digest:
            notes.append(f"{source.describe(layout.blob(digest))}: its content does not match its name (not copied)")
            continue
        put.put(data)


def _index_jobs(destination: Workspace, plan: CopyPlan) -> None:
    """Adds the jobs of the run that are at the destination to its job index (with the run's tags)."""
    store = JobStore(destination)
    now = time.time()
    entries = []
    for job in plan.jobs:
        if job.placed:
            known, reason = job.state, job.failure_reason  # what was copied (or marked, for a running job)
        elif job.action == PRESENT:
            known, reason = _state_of(destination, job.task_id, job.identifier)
        else:
            continue
        entries.append(IndexEntry(ts=now, task_id=job.task_id, identifier=job.identifier, state=known,
                                  failure_reason=reason, tags=plan.tags.get((job.task_id, job.identifier), {})))
    if entries:
        store.index.append(*entries)
