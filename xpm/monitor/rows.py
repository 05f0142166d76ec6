"""The rows the console monitor shows (experiments, jobs, a job's detail), and what it keeps per run and per job."""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

from xpm import query, state
from xpm.schema import JobProgress, JobStateChanged, JobStateRecord, JobSubmitted, RunRecord
from xpm.store.index import IndexedJob, JobKey


class ExperimentRow(NamedTuple):
    """An experiment with its current run, and the states of that run's jobs (from the index)."""

    experiment_id: str
    run_id: str | None
    hostname: str | None
    #: running, done or failed (None: no readable run record)
    status: str | None
    started_at: float | None
    #: jobs of the current run in each state
    states: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.states.values())

    @property
    def finished(self) -> int:
        return self.states.get(state.DONE, 0)


class RunRow(NamedTuple):
    """A run of an experiment: its record, its jobs done, in error and in all (index states), its tags."""

    experiment_id: str
    run_id: str
    #: whether it is the experiment's current run
    current: bool
    #: running, done or failed (None: no readable run record)
    status: str | None
    hostname: str | None
    started_at: float | None
    ended_at: float | None
    done: int
    errors: int
    total: int
    #: the tags naming it, by name
    tags: list[str]

    def duration(self, now: float) -> float | None:
        """Seconds it ran (until now while it runs); None when unknown."""
        if self.started_at is None:
            return None
        if self.ended_at is None:
            return max(0.0, now - self.started_at) if self.status == state.RUN_RUNNING else None
        return max(0.0, self.ended_at - self.started_at)


class JobRow(NamedTuple):
    """One line of the jobs view.

    ``progress`` and the times come from the job's event log, read once the row
    was drawn: None until then, or when the job reported none.
    """

    key: JobKey
    state: str
    failure_reason: str | None
    tags: dict[str, Any]
    #: the last change of state (index)
    updated_at: float
    #: the latest progress of the current run (0 to 1, level 0) and its description
    progress: float | None = None
    progress_desc: str | None = None
    started_at: float | None = None
    ended_at: float | None = None

    @property
    def name(self) -> str:
        return query.short_name(self.key)

    def duration(self, now: float) -> float | None:
        """Seconds it ran (until now when it still runs); None when it did not start."""
        if self.started_at is None:
            return None
        end = self.ended_at if self.ended_at is not None else now
        return max(0.0, end - self.started_at)


class JobDetail(NamedTuple):
    """What the job detail view shows besides the log."""

    key: JobKey
    #: the job folder (a local path, or the workspace URL joined with it)
    folder: str
    #: the state record (None: none yet, or unreadable: see ``problems``)
    state: JobStateRecord | None
    #: ``name = value`` lines of the parameters
    params: list[str]
    #: the jobs of the workspace whose outputs the parameters use: (short name, state)
    dependencies: list[tuple[str, str]]
    #: what could not be read
    problems: list[str]


class _Run:
    """What the model knows of a run of an experiment (its current run, or one listed or opened)."""

    def __init__(self, experiment_id: str, run_id: str | None):
        self.experiment_id = experiment_id
        self.run_id = run_id
        self.record: RunRecord | None = None
        #: bytes of jobs.jsonl read
        self.offset = 0
        #: job -> its submission number (a job submitted again moves to the end)
        self.seq: dict[JobKey, int] = {}
        self.submissions = 0
        self.tags: dict[JobKey, dict[str, Any]] = {}
        self.damaged = 0
        #: for jobs the index does not know: whether their folder exists
        self.present: dict[JobKey, bool] = {}
        #: jobs in each state (None: to count again)
        self.counts: dict[str, int] | None = None

    def state_counts(self, jobs: Mapping[JobKey, IndexedJob]) -> dict[str, int]:
        """The jobs of the run in each state (the index's ``jobs``), counted again only after ``counts`` was reset."""
        if self.counts is None:
            counts: dict[str, int] = {}
            for key in self.seq:
                job = jobs.get(key)
                if job is not None:
                    counts[job.state] = counts.get(job.state, 0) + 1
            self.counts = counts
        return self.counts

    def move(self, key: JobKey, before: str | None, after: str | None) -> None:
        """Moves a job of the run from one state's count to another's (None: not in the index)."""
        counts = self.counts
        if counts is None or before == after or key not in self.seq:
            return
        if before is not None:
            left = counts.get(before, 0) - 1
            if left > 0:
                counts[before] = left
            else:
                counts.pop(before, None)
        if after is not None:
            counts[after] = counts.get(after, 0) + 1

    def row(self, jobs: Mapping[JobKey, IndexedJob], current: bool, tags: list[str]) -> RunRow:
        """The run as the runs screens list it."""
        assert self.run_id is not None
        counts, record = self.state_counts(jobs), self.record
        return RunRow(
            self.experiment_id, self.run_id, current,
            record.status if record else None,
            record.hostname if record else None,
            record.started_at if record else None,
            record.ended_at if record else None,
            counts.get(state.DONE, 0), counts.get(state.ERROR, 0), len(self.seq),
            tags,
        )

    def submitted(self, event: JobSubmitted) -> JobKey:
        key = (event.task_id, event.identifier)
        self.submissions += 1
        self.seq[key] = self.submissions
        if event.tags:
            known = self.tags.get(key)
            self.tags[key] = {**known, **event.tags} if known else event.tags
        return key


class _Events:
    """What a job's event log said so far: progress and the times of its current run."""

    __slots__ = ("offset", "started_at", "ended_at", "progress", "desc", "stale", "damaged")

    def __init__(self) -> None:
        self.offset = 0
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.progress: float | None = None
        self.desc: str | None = None
        #: the job changed since the last read (its log must be read again when shown)
        self.stale = False
        self.damaged = 0

    def apply(self, event: Any) -> None:
        if isinstance(event, JobStateChanged):
            if event.state in (state.UNSCHEDULED, state.WAITING):
                # Submitted again: a new run starts from nothing.
                self.started_at = self.ended_at = self.progress = self.desc = None
            elif event.state == state.RUNNING:
                self.started_at, self.ended_at, self.progress, self.desc = event.ts, None, None, None
            elif event.state in state.FINAL:
                self.ended_at = event.ts
        elif isinstance(event, JobProgress) and event.level == 0:
            self.progress, self.desc = event.value, event.desc


class RowOrder:
    """The experiment and the order of the job rows a monitor model shows (local or remote).

    A model says which orders it offers (:meth:`sorts`, the first being the default) and
    what changing them invalidates (:meth:`_rows_changed`).
    """

    experiment: str | None
    sort: str
    #: the run of :attr:`experiment` whose jobs are the rows (None: its current run)
    run: str | None = None

    def sorts(self) -> tuple[str, ...]:
        raise NotImplementedError

    def _rows_changed(self) -> None:
        raise NotImplementedError

    def select(self, experiment: str | None) -> None:
        """Shows the jobs of an experiment's current run (None: every job), in its default order."""
        if experiment != self.experiment:
            self.experiment = experiment
            self.run = None
            self.sort = self.sorts()[0]
            self._rows_changed()

    def set_sort(self, name: str) -> None:
        if name not in self.sorts():
            raise ValueError(f"unknown sort {name!r}: expected one of {', '.join(self.sorts())}")
        if name != self.sort:
            self.sort = name
            self._rows_changed()

    def next_sort(self) -> str:
        """Moves to the next order of :meth:`sorts` (after the last, the first); returns its name."""
        sorts = self.sorts()
        following = sorts[(sorts.index(self.sort) + 1) % len(sorts)] if self.sort in sorts else sorts[0]
        self.set_sort(following)
        return following
