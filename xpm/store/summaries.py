"""Run summaries: a run's jobs counted by state, so that ``experiments list`` costs O(experiments).

Counting a run's jobs by state takes the whole job index (100,000 jobs: most of a second) and
the run's ``jobs.jsonl``. ``summary.json`` keeps the counts with what they were computed from:
the size and last bytes of the index, and the size of ``jobs.jsonl``. A reader uses it only
when both files are still exactly so; any job that changed state since appended to the index,
a rebuilt index ends otherwise, a resubmission grew ``jobs.jsonl``: then the counts are
computed again and the summary rewritten. A damaged file fails its ``check`` digest and is
computed again too: the counts shown are never those of a stale or damaged summary.
"""

from __future__ import annotations

import blake3
import msgspec

from xpm import codec, layout
from xpm.errors import XpmError
from xpm.schema import RECORD_VERSION, RunSummary
from xpm.store.index import IndexedJob, JobIndex, JobKey
from xpm.store.runs import RunStore
from xpm.workspace import Workspace

__all__ = ["IndexState", "RunCounts", "digest", "index_state"]


#: Bytes at the end of the index that a summary keeps (a rebuilt index of the same size differs there)
TAIL = 64


class IndexState(msgspec.Struct, frozen=True):
    """The job index as a summary saw it: its size, and its last bytes (hex)."""

    size: int
    tail: str


def index_state(ws: Workspace) -> IndexState:
    """The index as it is now (size 0 when it is missing; size -1, which no summary holds, when it
    cannot be read: the fold then says what is wrong)."""
    try:
        if ws.isdir(layout.JOB_INDEX):
            return IndexState(-1, "")
        size = ws.size(layout.JOB_INDEX) or 0
        start = max(0, size - TAIL)
        tail = ws.read_from(layout.JOB_INDEX, start, size - start) if size else b""
    except (OSError, XpmError):
        return IndexState(-1, "")
    return IndexState(size, tail.hex())


def digest(summary: RunSummary) -> str:
    """The ``check`` of a summary: blake3 of its encoding with ``check`` empty."""
    return blake3.blake3(codec.encode(msgspec.structs.replace(summary, check=""))).hexdigest()


class RunCounts:
    """Counts the jobs of runs by state, from their summaries when they hold, else from the index.

    The index is folded at most once, and only when a summary does not hold. When the index is
    damaged or missing, what a user should know goes to :attr:`notes`, and no summary is written
    (so that every listing says it again until ``experiments sync`` rebuilds the index).
    """

    def __init__(self, ws: Workspace, jobs: dict[JobKey, IndexedJob] | None = None):
        """``jobs``: the index already folded (by a caller that has it), else folded here when needed."""
        self.ws = ws
        self.runs = RunStore(ws)
        self.notes: list[str] = []
        self._jobs = jobs
        self._keep = True
        # Read before the index is folded: counts folded from a longer index are then stored as
        # of this older state, and the next reader computes them again (never the reverse).
        self.index = index_state(ws)
        #: summaries written, and those that did not hold (for tests and benchmarks)
        self.computed = 0

    def jobs(self) -> dict[JobKey, IndexedJob]:
        """The folded index (folded on first use)."""
        if self._jobs is None:
            index = JobIndex(self.ws)
            folded = index.load()
            note = index.problem_note(folded)
            if note is not None:
                self.notes.append(note)
                self._keep = False
            self._jobs = folded.jobs
        return self._jobs

    def read(self, experiment_id: str, run_id: str) -> tuple[str, RunSummary | None]:
        """The run's summary and what it is worth now: ``"valid"`` (it holds), ``"stale"`` (the
        index or ``jobs.jsonl`` changed since: the normal end of a cache), ``"damaged"`` (not a
        summary, or its ``check`` fails) or ``"missing"``; the summary only when valid."""
        ws = self.ws
        data = ws.read_optional(layout.run_summary(experiment_id, run_id))
        if data is None:
            return "missing", None
        try:
            summary = codec.decode_record(data, RunSummary)
        except XpmError:
            return "damaged", None
        if summary.check != digest(summary):
            return "damaged", None
        jobs_size = ws.size(layout.run_jobs(experiment_id, run_id)) or 0
        if (summary.index_size, summary.index_tail, summary.jobs_size) != (self.index.size, self.index.tail, jobs_size):
            return "stale", None
        return "valid", summary

    def valid(self, experiment_id: str, run_id: str) -> RunSummary | None:
        """The run's summary when it holds now, else None."""
        return self.read(experiment_id, run_id)[1]

    def compute(self, experiment_id: str, run_id: str) -> dict[str, int]:
        """The run's counts from the index and its ``jobs.jsonl``, whatever its summary says."""
        jobs = self.jobs()
        states: dict[str, int] = {}
        for key in self.runs.read_jobs(experiment_id, run_id).order:
            job = jobs.get(key)
            if job is not None:
                states[job.state] = states.get(job.state, 0) + 1
        return states

    def __call__(self, experiment_id: str, run_id: str, *, rebuild: bool = False) -> dict[str, int]:
        """The run's jobs counted by state (a valid summary, else computed and the summary rewritten;
        ``rebuild``: computed and rewritten whatever the summary says)."""
        summary = None if rebuild else self.valid(experiment_id, run_id)
        if summary is not None:
            return dict(summary.states)
        jobs_size = self.ws.size(layout.run_jobs(experiment_id, run_id)) or 0  # before reading it
        states = self.compute(experiment_id, run_id)
        self.computed += 1
        if not self._keep:
            return states
        fresh = RunSummary(version=RECORD_VERSION, index_size=self.index.size, index_tail=self.index.tail,
                           jobs_size=jobs_size, states=states)
        fresh = msgspec.structs.replace(fresh, check=digest(fresh))
        try:
            self.ws.write_atomic(layout.run_summary(experiment_id, run_id), codec.encode(fresh))
        except OSError as exc:  # a read-only workspace: the counts are right, only not kept
            import logging  # here, not at the start-up of every listing

            where = self.ws.describe(layout.run_dir(experiment_id, run_id))
            logging.getLogger("xpm.store.summaries").debug("%s: summary not written: %s", where, exc)
        return states
