"""The derived job index: the state and tags of every job, in one append-only log.

Reading one small file per job does not scale to 100,000 jobs; this index does.
It is a cache only: every entry is derived from the job folders and the runs'
``jobs.jsonl``, and ``experiments sync`` rebuilds it from them. Folding rule
(spec/workspace.md): for each job, the state is the one of its last entry, and
the tags are those of its entries merged in order (later values win); a
``removed`` entry forgets the job.

Folding 100,000 JSON lines costs most of a second, so a reader that folded many
new lines leaves a MessagePack *snapshot* of its result (``index/jobs.snapshot``)
for the next one, which then folds only the lines appended since. The snapshot
names the last line it folded; a log that was rewritten or truncated does not
have that line at that place any more, and the snapshot is ignored.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterable, Iterator, NamedTuple

import msgspec

from xpm import codec, layout
from xpm.codec import LineProblem
from xpm.errors import XpmError
from xpm.schema import RECORD_VERSION, IndexedJob, IndexEntry, IndexRemoved, IndexSnapshotFile
from xpm.store.log import EventLog
from xpm.workspace import NotFound, Workspace

JobKey = tuple[str, str]

#: A reader that folded at least this many log lines writes a new snapshot
SNAPSHOT_AFTER_LINES = 5_000

_snapshot_encoder = msgspec.msgpack.Encoder()
_snapshot_decoder = msgspec.msgpack.Decoder(IndexSnapshotFile)


class IndexSnapshot(NamedTuple):
    """The folded index, and where to resume reading the log.

    Attributes:
        jobs: every indexed job.
        offset: the end of the last complete line folded.
        problems: damaged lines skipped (only those read by this fold and the
            earlier ones it continues: lines folded into a snapshot file are not
            re-read; ``full=True`` reads them all).
        lines: index entries folded (a rebuilt index has one per job).
        last_line: the last line folded (what a snapshot file checks the log with).
    """

    jobs: dict[JobKey, IndexedJob]
    offset: int
    problems: list[LineProblem]
    lines: int
    last_line: bytes = b""


@contextmanager
def no_gc() -> Iterator[None]:
    """Pauses the cyclic garbage collector while a fold allocates 100,000s of objects.

    None of them form cycles, yet each allocation burst triggers full collections
    that walk them all: pausing it halves the time of a fold.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class JobIndex:
    """The job index of a workspace (``index/jobs.jsonl``): a log of job states, folded on read."""

    #: entries :meth:`append_later` keeps before writing them in one append
    BATCH = 1024

    def __init__(self, workspace: Workspace):
        self.workspace = workspace
        self.log = EventLog(workspace, layout.JOB_INDEX)
        self._later: list[IndexEntry | IndexRemoved] = []

    def continues(self, snapshot: IndexSnapshot) -> bool:
        """Whether the log still holds, just before the snapshot's offset, the last line it folded
        (False: the log was rebuilt or truncated since, fold it again)."""
        n = len(snapshot.last_line)
        if n == 0:
            return snapshot.offset == 0
        return self._holds(snapshot.offset, snapshot.last_line)

    def _holds(self, offset: int, last_line: bytes) -> bool:
        try:
            found = self.workspace.read_from(layout.JOB_INDEX, offset - len(last_line), len(last_line))
        except NotFound:
            return False
        return found == last_line

    def changed_keys(self, previous: IndexSnapshot, folded: IndexSnapshot) -> set[JobKey]:
        """The jobs of the lines folded after ``previous`` (``folded`` continues it): read again, only them."""
        if folded.offset == previous.offset:
            return set()
        start = previous.offset
        data = self.workspace.read_from(layout.JOB_INDEX, start, folded.offset - start)
        return {
            (event.task_id, event.identifier)
            for _, event in codec.iter_lines(data, start)
            if isinstance(event, (IndexEntry, IndexRemoved))
        }

    def problem_note(self, folded: IndexSnapshot) -> str | None:
        """What a reader should tell users of the index it folded (damaged, or missing), or None.

        The index is a cache: when it is damaged or missing, listings are
        incomplete, and the note says so and how to rebuild it.
        """
        ws = self.workspace
        rebuild = f"`experiments sync --workdir {ws.location}` rebuilds it"
        if folded.problems:
            return f"{ws.describe(layout.JOB_INDEX)}: {len(folded.problems)} damaged line(s) skipped; {rebuild}"
        if folded.offset == 0 and ws.listdir(layout.JOBS):
            return f"the job index {ws.describe(layout.JOB_INDEX)} is missing or empty; {rebuild}"
        return None

    def append(self, *entries: IndexEntry | IndexRemoved) -> None:
        self.log.append(*entries)

    def append_later(self, entry: IndexEntry | IndexRemoved) -> None:
        """Appends ``entry`` with others, :attr:`BATCH` at a time (planning writes one entry per
        job: one append per job would cost as much as the job's folder); :meth:`flush` writes
        the rest. Only for entries that no other process waits for."""
        self._later.append(entry)
        if len(self._later) >= self.BATCH:
            self.flush()

    def flush(self) -> None:
        """Writes the entries kept by :meth:`append_later`."""
        if self._later:
            later, self._later = self._later, []
            self.log.append(*later)

    def load(self, snapshot: IndexSnapshot | None = None, *, full: bool = False) -> IndexSnapshot:
        """Folds the index.

        Args:
            snapshot: an earlier result: only what was appended since is read.
            full: fold the whole log, ignoring the snapshot file (to see every
                damaged line, or to check the snapshot).
        """
        with no_gc():
            return self._load(snapshot, full)

    def _load(self, snapshot: IndexSnapshot | None, full: bool) -> IndexSnapshot:
        if snapshot is None and not full:
            snapshot = self._read_snapshot_file()
        jobs = dict(snapshot.jobs) if snapshot else {}
        read = self.log.read(snapshot.offset if snapshot else 0)
        lines = snapshot.lines if snapshot else 0
        folded = 0
        for entry in read.events:
            if isinstance(entry, IndexEntry):
                folded += 1
                key = (entry.task_id, entry.identifier)
                previous = jobs.get(key)
                tags = entry.tags
                if previous is not None and previous.tags:
                    tags = {**previous.tags, **entry.tags} if entry.tags else previous.tags
                jobs[key] = IndexedJob(
                    entry.task_id, entry.identifier, entry.state, entry.failure_reason, tags, entry.ts
                )
            elif isinstance(entry, IndexRemoved):
                folded += 1
                jobs.pop((entry.task_id, entry.identifier), None)
        problems = (list(snapshot.problems) if snapshot else []) + read.problems
        last_line = read.last_line or (snapshot.last_line if snapshot else b"")
        result = IndexSnapshot(jobs, read.offset, problems, lines + folded, last_line)
        if folded >= SNAPSHOT_AFTER_LINES:
            self._write_snapshot_file(result)
        return result

    def rewrite(self, jobs: Iterable[IndexedJob]) -> None:
        """Replaces the index by one entry per job (atomically), and its snapshot by a fresh one."""
        ordered = sorted(jobs, key=lambda j: (j.task_id, j.identifier))
        # The old snapshot goes first: it must never be paired with the new log.
        self.workspace.remove(layout.JOB_INDEX_SNAPSHOT, missing_ok=True)
        data = b"".join(
            codec.encode_line(
                IndexEntry(
                    ts=job.updated_at,
                    task_id=job.task_id,
                    identifier=job.identifier,
                    state=job.state,
                    failure_reason=job.failure_reason,
                    tags=job.tags,
                )
            )
            for job in ordered
        )
        self.workspace.write_atomic(layout.JOB_INDEX, data)
        if len(ordered) >= SNAPSHOT_AFTER_LINES:
            jobs_by_key = {(j.task_id, j.identifier): j for j in ordered}
            self._write_snapshot_file(IndexSnapshot(jobs_by_key, len(data), [], len(ordered), codec.last_line(data)))

    # --- the snapshot file ------------------------------------------------------------

    def _read_snapshot_file(self) -> IndexSnapshot | None:
        """The snapshot file, if it still matches the log (else None: fold everything)."""
        data = self.workspace.read_optional(layout.JOB_INDEX_SNAPSHOT)
        if data is None:
            return None
        try:
            saved = _snapshot_decoder.decode(data)
        except msgspec.DecodeError as exc:
            import logging  # here, not at the start-up of every listing

            where = self.workspace.describe(layout.JOB_INDEX_SNAPSHOT)
            logging.getLogger("xpm.index").warning("%s: ignored (%s)", where, exc)
            return None
        if saved.version != RECORD_VERSION or not saved.last_line or saved.offset < len(saved.last_line):
            return None
        if not self._holds(saved.offset, saved.last_line):
            return None
        jobs = {(job[0], job[1]): job for job in saved.jobs}
        return IndexSnapshot(jobs, saved.offset, [], len(jobs), saved.last_line)

    def _write_snapshot_file(self, folded: IndexSnapshot) -> None:
        """Saves a fold for the next reader; a cache, so failing to write it is not an error.

        The line that identifies the log is the last one *folded*, not one read
        again now: the log may have been rebuilt since the fold.
        """
        if folded.offset == 0 or not folded.last_line.endswith(b"\n"):
            return
        record = IndexSnapshotFile(
            version=RECORD_VERSION,
            offset=folded.offset,
            last_line=folded.last_line,
            jobs=list(folded.jobs.values()),  # type: ignore[arg-type]
        )
        try:
            self.workspace.write_atomic(layout.JOB_INDEX_SNAPSHOT, _snapshot_encoder.encode(record))
        except (OSError, XpmError) as exc:
            import logging  # here, not at the start-up of every listing

            logging.getLogger("xpm.index").debug("no index snapshot written: %s", exc)
