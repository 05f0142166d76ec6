"""The derived job index: the state and tags of every job, in one append-only log.

Reading one small file per job does not scale to 100,000 jobs; this index does.
It is a cache only: every entry is derived from the job folders and the runs'
``jobs.jsonl``, and ``experiments sync`` rebuilds it from them. Folding rule
(spec/workspace.md): for each job, the state is the one of its last entry, and
the tags are those of its entries merged in order (later values win).
"""

from __future__ import annotations

from typing import Any, Iterable, NamedTuple

from xpm import codec, layout
from xpm.codec import LineProblem
from xpm.schema import IndexEntry
from xpm.store.log import EventLog
from xpm.workspace import Workspace

JobKey = tuple[str, str]


class IndexedJob(NamedTuple):
    task_id: str
    identifier: str
    state: str
    failure_reason: str | None
    tags: dict[str, Any]
    updated_at: float


class IndexSnapshot(NamedTuple):
    jobs: dict[JobKey, IndexedJob]
    offset: int
    problems: list[LineProblem]
    lines: int


class JobIndex:
    def __init__(self, workspace: Workspace):
        self.workspace = workspace
        self.log = EventLog(workspace, layout.JOB_INDEX)

    def append(self, *entries: IndexEntry) -> None:
        self.log.append(*entries)

    def load(self, snapshot: IndexSnapshot | None = None) -> IndexSnapshot:
        """Folds the index; given an earlier snapshot, reads only what was appended since."""
        jobs = dict(snapshot.jobs) if snapshot else {}
        read = self.log.read(snapshot.offset if snapshot else 0)
        lines = snapshot.lines if snapshot else 0
        for entry in read.events:
            if not isinstance(entry, IndexEntry):
                continue
            lines += 1
            key = (entry.task_id, entry.identifier)
            previous = jobs.get(key)
            tags = entry.tags
            if previous is not None and previous.tags:
                tags = {**previous.tags, **entry.tags} if entry.tags else previous.tags
            jobs[key] = IndexedJob(entry.task_id, entry.identifier, entry.state, entry.failure_reason, tags, entry.ts)
        problems = (list(snapshot.problems) if snapshot else []) + read.problems
        return IndexSnapshot(jobs, read.offset, problems, lines)

    def rewrite(self, jobs: Iterable[IndexedJob]) -> None:
        """Replaces the index by one entry per job (atomically)."""
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
            for job in sorted(jobs, key=lambda j: (j.task_id, j.identifier))
        )
        self.workspace.write_atomic(layout.JOB_INDEX, data)
