"""Job folders: parameters, state records and event logs.

Recording a state change costs three file operations whatever the size of the
workspace: the state record is rewritten atomically, and one line is appended to
the job's event log and one to the job index.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path, PurePosixPath
from typing import Any, Callable

from xpm import codec, layout
from xpm.errors import SerializationError, XpmError
from xpm.schema import (
    FAILURE_REASONS,
    JOB_STATES,
    RECORD_VERSION,
    IndexEntry,
    JobProgress,
    JobStateChanged,
    JobStateRecord,
)
from xpm.store.index import JobIndex
from xpm.store.log import EventLog
from xpm.workspace import Workspace

#: How long a state compare-and-swap waits for the job lock
LOCK_TIMEOUT = 30.0


#: ``record_state`` reads the current record itself
_UNREAD = object()


class InvalidJobId(XpmError, ValueError):
    """A job id that is not ``task-id/identifier`` with safe parts."""

    exit_code = 2

    def __init__(self, text: str, reason: str):
        self.text = text
        self.reason = reason
        super().__init__(f"invalid job id {text!r}: {reason}")


def parse_job_id(text: str) -> tuple[str, str]:
    """Splits and validates ``task-id/identifier``; refuses anything that could escape ``jobs/``."""
    parts = text.split("/")
    if len(parts) != 2:
        raise InvalidJobId(text, "expected task-id/identifier")
    task_id, identifier = parts
    if not layout.is_task_id(task_id):
        raise InvalidJobId(text, f"{task_id!r} is not a task id")
    if not layout.is_identifier(identifier):
        raise InvalidJobId(text, "the identifier must be 64 lowercase hexadecimal characters")
    return task_id, identifier


def decode_state(data: bytes, source: str) -> JobStateRecord:
    """A job's state record from its bytes, its state and failure reason checked.

    Raises:
        SerializationError: the record is damaged, or names a state or reason this xpm does not know
            (a job in a state nobody can decide on must not be taken for one never run).
    """
    record = codec.decode_record(data, JobStateRecord, source)
    if record.state not in JOB_STATES:
        raise SerializationError(f"unknown job state {record.state!r}", source)
    if record.failure_reason is not None and record.failure_reason not in FAILURE_REASONS:
        raise SerializationError(f"unknown failure reason {record.failure_reason!r}", source)
    return record


class UnknownJob(XpmError):
    """A job id that designates no job folder."""

    def __init__(self, job_id: str, reason: str):
        self.job_id = job_id
        super().__init__(f"job {job_id}: {reason}")


class AmbiguousJob(UnknownJob):
    """An identifier prefix that several job folders start with; ``candidates`` lists them."""

    #: how many candidates the message names
    SHOWN = 10

    def __init__(self, job_id: str, prefix: str, candidates: list[tuple[str, str]]):
        self.candidates = candidates
        names = ", ".join(f"{t}/{i}" for t, i in candidates[: self.SHOWN])
        more = f" and {len(candidates) - self.SHOWN} more" if len(candidates) > self.SHOWN else ""
        super().__init__(
            job_id, f"ambiguous ({len(candidates)} jobs start with {prefix}); give more characters: {names}{more}"
        )


#: Shortest identifier prefix accepted in a job id
MIN_PREFIX = 6


class JobDirs:
    """The paths of a workspace's files, for the code that opens them as paths (a job's
    generated paths, launchers, the job process): the one place where a workspace name
    (``jobs/<task-id>/<identifier>``) becomes a path (:func:`xpm.layout.split_job_dir`
    is the way back).

    A local workspace gives local paths; a remote one (or the location of a workspace
    that a dry run does not create) gives ``PurePosixPath`` under its location.
    """

    def __init__(self, workspace: Workspace | None, location: str):
        self.workspace = workspace
        self.location = location
        #: the folder of each task's jobs: parsing a path is a good part of its cost,
        #: and a job folder is one component below its task's
        self._task_dirs: dict[str, Path | PurePosixPath] = {}

    def path(self, rel: str) -> Path | PurePosixPath:
        """The path of a workspace name."""
        if self.workspace is not None:
            local = self.workspace.local_path(rel)
            if local is not None:
                return local
        return PurePosixPath(self.location) / rel

    def __call__(self, task_id: str, identifier: str) -> Path | PurePosixPath:
        """The path of a job folder."""
        folder = self._task_dirs.get(task_id)
        if folder is None:
            folder = self._task_dirs[task_id] = self.path(layout.task_dir(task_id))
        return folder / identifier


class JobStore:
    """The job folders of a workspace: parameters, state records, event logs, the job index."""

    def __init__(self, workspace: Workspace):
        self.workspace = workspace
        self.index = JobIndex(workspace)
        #: the tags the index knows, read once, when a job found done brings tags (see add_tags)
        self._indexed_tags: dict[tuple[str, str], dict[str, Any]] | None = None
        self._tags_lock = threading.Lock()

    def add_tags(self, task_id: str, identifier: str, state: str, tags: dict[str, Any]) -> None:
        """Indexes the tags a run gives a job that needs no state change (it is found done).

        The index's tags of a job are those of every run that submitted it (what
        ``experiments sync`` rebuilds from the runs' ``jobs.jsonl``); a job changes state
        only in the run that runs it, so a later run that tags it differently appends one
        entry, and only when its tags add to what the index knows: running an experiment
        again appends nothing. The index is read once per store, at the first such job.
        """
        key = (task_id, identifier)
        with self._tags_lock:
            if self._indexed_tags is None:
                self._indexed_tags = {k: job.tags for k, job in self.index.load().jobs.items()}
            known = self._indexed_tags.get(key, {})
            merged = {**known, **tags}
            if merged == known:
                return
            self._indexed_tags[key] = merged
        self.index.append(IndexEntry(ts=time.time(), task_id=task_id, identifier=identifier, state=state, tags=tags))

    def resolve(self, text: str) -> tuple[str, str]:
        """The job a ``task-id/identifier`` designates; the identifier may be a unique prefix.

        Raises:
            InvalidJobId: the text is not a job id (or could escape the workspace).
            UnknownJob: no job folder matches.
            AmbiguousJob: a prefix matches several job folders.
        """
        ws = self.workspace
        # Task ids are lower-case on disk; users write the class name (mymodule.MyTask/...).
        task_id, _, rest = text.partition("/")
        task_id = task_id.lower()
        if rest and len(rest) < 64 and "/" not in rest and layout.is_task_id(task_id):
            if not all(c in "0123456789abcdef" for c in rest):
                raise InvalidJobId(text, "the identifier must be lowercase hexadecimal")
            if len(rest) < MIN_PREFIX:
                raise InvalidJobId(text, f"give at least {MIN_PREFIX} characters of the identifier")
            matches = [name for name in ws.listdir(layout.task_dir(task_id)) if name.startswith(rest)]
            matches = [name for name in matches if layout.is_identifier(name)]
            if not matches:
                raise UnknownJob(text, "not found")
            if len(matches) > 1:
                raise AmbiguousJob(text, rest, [(task_id, name) for name in matches])
            return task_id, matches[0]
        try:
            key = parse_job_id(f"{task_id}/{rest}" if rest else text)
        except InvalidJobId as exc:
            raise InvalidJobId(text, exc.reason) from None
        if not ws.isdir(layout.job_dir(*key)):
            raise UnknownJob(text, "not found")
        return key

    def events(self, task_id: str, identifier: str) -> EventLog:
        return EventLog(self.workspace, layout.job_events(task_id, identifier))

    def lock(self, task_id: str, identifier: str, timeout: float | None = LOCK_TIMEOUT) -> Any:
        """The job lock: every read-decide-write of a job's state happens under it."""
        return self.workspace.lock(layout.job_lock(task_id, identifier), timeout=timeout)

    def remove_leftover_lock(self, task_id: str, identifier: str) -> None:
        """After locking a job whose folder was deleted meanwhile: removes what the lock
        recreated (the lock file and empty folders), nothing else."""
        ws = self.workspace
        lock = layout.job_lock(task_id, identifier)
        try:
            # The lock-folder protocol (SSH workspaces) leaves tombstones beside the lock.
            from xpm.locks import remove_tombstone, tombstones  # here: listings never need locks

            for tomb in tombstones(ws, lock):
                remove_tombstone(ws, tomb)
            ws.remove(lock, missing_ok=True)
            for rel in (layout.job_meta(task_id, identifier), layout.job_dir(task_id, identifier)):
                ws.rmdir(rel, missing_ok=True)
        except (OSError, XpmError):
            pass  # not empty (someone writes there now), or locked again: leave it

    def folder_problem(self, task_id: str, identifier: str) -> str | None:
        """Why ``jobs/<task_id>/<identifier>`` is not a job folder of this workspace that a command
        may write in or delete (None: it is one).

        A derived file (the job index, a run's log) names jobs; its word is never enough to
        write or delete: the folder must be a real folder under ``jobs/`` (no symbolic link on
        the way, nor for its lock), with a ``params.json`` that records its identifier.
        """
        if not (layout.is_task_id(task_id) and layout.is_identifier(identifier)):
            return "not a job id"
        ws = self.workspace
        folder = layout.job_dir(task_id, identifier)
        params_rel = layout.job_params(task_id, identifier)
        for rel in (layout.JOBS, layout.task_dir(task_id), folder, layout.job_meta(task_id, identifier),
                    layout.job_lock(task_id, identifier), params_rel):
            if ws.is_link(rel):
                return f"{ws.describe(rel)} is a symbolic link"
        data = ws.read_optional(params_rel)
        if data is None:
            return f"no {layout.PARAMS_FILE} in {ws.describe(folder)}"
        try:
            recorded = codec.params_identifier(codec.decode_params(data, ws.describe(params_rel)))
        except XpmError as exc:
            return str(exc)
        if recorded != identifier:
            return f"{ws.describe(params_rel)} is that of another job ({recorded})"
        return None

    def rotate_logs(self, task_id: str, identifier: str) -> None:
        """Before a new attempt (under the job lock): keeps the logs of the earlier one as
        ``<name>.err.1``, ``.2``...; nothing is overwritten."""
        ws = self.workspace
        logs = {"out": layout.job_stdout(task_id, identifier), "err": layout.job_stderr(task_id, identifier)}
        if not any(ws.size(rel) for rel in logs.values()):
            return
        n = 1
        while any(ws.exists(layout.job_rotated_log(task_id, identifier, s, n)) for s in logs):
            n += 1
        for suffix, rel in logs.items():
            if ws.exists(rel):
                ws.rename(rel, layout.job_rotated_log(task_id, identifier, suffix, n))

    def exists(self, task_id: str, identifier: str) -> bool:
        return self.workspace.exists(layout.job_params(task_id, identifier))

    def write_params(self, task_id: str, identifier: str, data: bytes) -> bool:
        """Writes params.json once: a job folder is content-addressed, never rewritten.

        Returns:
            Whether the file was written (False: it already existed).
        """
        return self.create(task_id, identifier, data) is not None

    def create(self, task_id: str, identifier: str, params: bytes) -> bool | None:
        """Makes sure that the job folder exists with its params.json (written once, atomically).

        A new job folder costs one ``mkdir`` and the atomic write: when the
        folder did not exist, nothing needs to be read in it.

        Returns:
            True when this call created the job folder (it was empty then: the
            job had no state record), False when it wrote params.json in an
            existing folder, None when params.json was there already.
        """
        ws = self.workspace
        params_rel = layout.job_params(task_id, identifier)
        if ws.create_dir(layout.job_dir(task_id, identifier)):
            ws.write_atomic(params_rel, params)
            return True
        if ws.exists(params_rel):
            return None
        ws.write_atomic(params_rel, params)
        return False

    def restore(self, task_id: str, identifier: str, params: Callable[[], bytes]) -> None:
        """Writes the job's folder again if it was deleted; call it under the job's lock, before
        its first state record.

        ``jobs clean`` deletes a job without a state record (one planned in GENERATE_ONLY
        mode) under the job's lock; an experiment may have created or found that folder
        just before it took the lock. ``params`` encodes params.json again (only then).
        """
        if not self.workspace.exists(layout.job_params(task_id, identifier)):
            self.create(task_id, identifier, params())

    def state(self, task_id: str, identifier: str) -> JobStateRecord | None:
        rel = layout.job_state(task_id, identifier)
        data = self.workspace.read_optional(rel)
        if data is None:
            return None
        return decode_state(data, self.workspace.describe(rel))

    def record_state(
        self,
        task_id: str,
        identifier: str,
        state: str,
        failure_reason: str | None = None,
        *,
        tags: dict[str, Any] | None = None,
        previous: JobStateRecord | None | object = _UNREAD,
        **fields: Any,
    ) -> JobStateRecord:
        """Records a new state: state record, job event, index entry.

        ``previous`` is the current record when the caller (holding the lock) has
        just read it: it is not read again.
        """
        if state not in JOB_STATES:
            raise ValueError(f"unknown job state {state!r}")
        if failure_reason is not None and failure_reason not in FAILURE_REASONS:
            raise ValueError(f"unknown failure reason {failure_reason!r}")
        now = time.time()
        if previous is _UNREAD:
            previous = self.state(task_id, identifier)
        assert previous is None or isinstance(previous, JobStateRecord)
        base = {} if previous is None else {
            "started_at": previous.started_at,
            "retry_count": previous.retry_count,
            "process": previous.process,
        }
        base.update(fields)
        record = JobStateRecord(
            version=RECORD_VERSION,
            task_id=task_id,
            identifier=identifier,
            state=state,
            failure_reason=failure_reason,
            updated_at=now,
            **base,
        )
        self.workspace.write_atomic(layout.job_state(task_id, identifier), codec.encode(record))
        self.events(task_id, identifier).append(JobStateChanged(ts=now, state=state, failure_reason=failure_reason))
        self.index.append(
            IndexEntry(
                ts=now,
                task_id=task_id,
                identifier=identifier,
                state=state,
                failure_reason=failure_reason,
                tags=tags or {},
            )
        )
        return record

    def transition(
        self,
        task_id: str,
        identifier: str,
        expected: Callable[[JobStateRecord | None], bool],
        state: str,
        failure_reason: str | None = None,
        **fields: Any,
    ) -> JobStateRecord | None:
        """Compare-and-swap: records ``state`` only if ``expected(current)`` holds, under the job lock.

        Returns:
            The new record, or None when the current state did not match.
        """
        with self.lock(task_id, identifier):
            current = self.state(task_id, identifier)
            if not expected(current):
                return None
            return self.record_state(task_id, identifier, state, failure_reason, previous=current, **fields)

    def progress(self, task_id: str, identifier: str, value: float, level: int = 0, desc: str | None = None) -> None:
        """Records the progress of a running job in its event log."""
        self.events(task_id, identifier).append(JobProgress(ts=time.time(), value=value, level=level, desc=desc))
