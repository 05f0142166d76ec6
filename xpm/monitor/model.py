"""What the console monitor shows, read from a workspace: experiments, job rows, job details, logs.

No urwid here: :class:`MonitorModel` is a plain class, tested without a terminal.
It keeps what it read, and each :meth:`MonitorModel.refresh` reads only what
changed since: the lines appended to the job index, to the current runs'
``jobs.jsonl`` (and to those of the other runs listed that still run) and to
the event logs of the jobs on screen. When nothing changed,
a refresh costs one ``size`` per file it watches. A damaged or missing file never
stops it: what could not be read becomes a short problem text (:attr:`MonitorModel.problems`)
and the rest goes on.

The job rows of 100,000 jobs are a sorted list of keys: the view asks for the
rows it draws (:meth:`MonitorModel.job_row`), and a refresh moves only the rows
of the jobs that changed.

What the model tells of one job (detail, logs, folder, kill) is in :mod:`xpm.monitor.onejob`.
"""

from __future__ import annotations

import bisect
import time
from typing import Any, Callable

from xpm import layout, state
from xpm.errors import XpmError
from xpm.filter import Filter, FilterError, parse
from xpm.launchers.slurm_status import recent_failures
from xpm.monitor.files import LogFollower, one_line, params_lines
from xpm.monitor.onejob import OneJob
from xpm.monitor.rows import ExperimentRow, JobDetail, JobRow, RowOrder, RunRow, _Events, _Run
from xpm.schema import JobSubmitted
from xpm.store.index import IndexedJob, IndexSnapshot, JobKey, no_gc
from xpm.store.jobs import JobStore
from xpm.store.log import EventLog
from xpm.store.runs import RunStore
from xpm.workspace import Workspace

__all__ = [
    "ExperimentRow", "FilterError", "JobDetail", "JobRow", "LogFollower", "MonitorModel", "RunRow", "params_lines",
]

#: The event logs of rows drawn during the last refreshes are followed (progress, times)
FOLLOW_REFRESHES = 3
#: Event logs read for the first time in one refresh, at most (the others wait for the next)
FIRST_READS_PER_REFRESH = 100
#: More changed jobs than this in one refresh: the rows are sorted again, not moved one by one
REBUILD_AFTER = 2_000
#: Most lines of parameters a job detail shows


class MonitorModel(RowOrder, OneJob):
    """The experiments and jobs of a workspace, kept up to date by :meth:`refresh`.

    Nothing is read before the first :meth:`refresh`.

    Args:
        workspace: the workspace (local or SSH).
        experiment: show the jobs of this experiment's current run (None: all jobs).

    The rows may also be the jobs of another run of the experiment (:meth:`select_run`);
    :meth:`run_rows` lists its runs.
    """

    def __init__(self, workspace: Workspace, *, experiment: str | None = None):
        self.workspace = workspace
        self.store = JobStore(workspace)
        self.runs = RunStore(workspace)
        #: the experiment whose jobs are the rows (None: every job of the index)
        self.experiment = experiment
        #: the order of the rows (one of :meth:`sorts`)
        self.sort = self.sorts()[0]
        #: the filter the rows pass (None: all of them)
        self.filter: Filter | None = None
        #: increases whenever a refresh found a change (the view redraws then)
        self.version = 0
        #: the job whose events are followed whatever its state (the detail view's)
        self.followed: JobKey | None = None
        self._index: IndexSnapshot | None = None
        self._index_mtime: float | None = None
        #: experiment -> its current run
        self._runs: dict[str, _Run] = {}
        #: the other runs listed or opened: read once (a running one, as it grows)
        self._older: dict[tuple[str, str], _Run] = {}
        self._events: dict[JobKey, _Events] = {}
        #: job -> the refresh during which its row was last drawn
        self._shown: dict[JobKey, int] = {}
        self._generation = 0
        #: the rows: sort keys whose last item is the job key, sorted
        self._rows: list[tuple[Any, ...]] = []
        self._row_of: dict[JobKey, tuple[Any, ...]] = {}
        self._rows_dirty = True
        self._details: dict[JobKey, JobDetail] = {}
        self._params: dict[JobKey, tuple[list[str], list[JobKey]]] = {}
        self._problems: dict[str, str] = {}
        #: (size, time) of the small records watched (refs, run records)
        self._stats: dict[str, tuple[int | None, float | None]] = {}
        self._dirty = False

    # --- refreshing ------------------------------------------------------------------

    def refresh(self) -> bool:
        """Reads what changed in the workspace since the last refresh.

        Never raises for a damaged or missing file: see :attr:`problems`.

        Returns:
            Whether anything the view shows changed.
        """
        self._generation += 1
        self._dirty = False
        changed: set[JobKey] = set()
        with no_gc():
            self._guard("job index", lambda: self._refresh_index(changed))
            self._guard("experiments", lambda: self._refresh_runs(changed))
            self._guard("runs", lambda: self._refresh_older(changed))
            self._guard("slurm", self._refresh_slurm)
        if self.experiment is not None and self.experiment not in self._runs:
            self._problem("experiment", f"no experiment {self.experiment!r} in the workspace")
        else:
            self._problem("experiment", None)
        for key in changed:
            self._details.pop(key, None)
            events = self._events.get(key)
            if events is not None:
                events.stale = True
        if changed:
            # (the counts are kept current by _refresh_index and _read_run)
            for run in [*self._runs.values(), *self._older.values()]:
                for key in changed:
                    run.present.pop(key, None)
        self._guard("job rows", lambda: self._update_rows(changed))
        self._guard("job events", self._refresh_events)
        if changed or self._dirty:
            self.version += 1
            return True
        return False

    @property
    def problems(self) -> list[str]:
        """What could not be read (damaged or missing files), one short line each."""
        return list(self._problems.values())

    def _refresh_slurm(self) -> None:
        """Says when Slurm does not answer this host's experiments (their jobs keep their last state)."""
        failing = recent_failures()
        text = None
        if failing:
            failures, since, message = max(failing, key=lambda f: f[1])
            text = (f"Slurm does not answer ({message}): {failures} failed queries, the last at "
                    f"{time.strftime('%H:%M:%S', time.localtime(since))}; its jobs keep their last known state")
        self._problem("slurm", text)

    def _problem(self, source: str, text: str | None) -> None:
        if text is None:
            if self._problems.pop(source, None) is not None:
                self._dirty = True
        elif self._problems.get(source) != text:
            self._problems[source] = text
            self._dirty = True

    def _guard(self, step: str, action: Callable[[], Any]) -> None:
        try:
            action()
        except Exception as exc:  # noqa: BLE001 - a monitor says what it could not read and goes on
            self._problem(f"refresh:{step}", f"{step}: {one_line(exc)}")
            self._rows_dirty = True
        else:
            self._problem(f"refresh:{step}", None)

    def _refresh_index(self, changed: set[JobKey]) -> None:
        ws = self.workspace
        previous = self._index
        size, mtime = ws.size(layout.JOB_INDEX), ws.mtime(layout.JOB_INDEX)
        if previous is not None:
            if (size or 0) == previous.offset and mtime == self._index_mtime:
                return
            if size is None or size < previous.offset or not self.store.index.continues(previous):
                previous = None  # rebuilt or truncated: fold it again
        folded = self.store.index.load(previous)
        self._index_mtime = mtime
        self._index = folded
        if previous is None:
            self._rows_dirty = True
            self._details.clear()
            for runs in [*self._runs.values(), *self._older.values()]:
                runs.counts = None
                runs.present.clear()
            for events in self._events.values():
                events.stale = True
            self._dirty = True
        else:
            keys = self.store.index.changed_keys(previous, folded)
            changed |= keys
            # The runs' counts follow the changed jobs: counting a run of 100,000 jobs again
            # after each change would cost the monitor 25 ms a refresh.
            known_runs = [*self._runs.values(), *self._older.values()]
            for key in keys:
                old, new = previous.jobs.get(key), folded.jobs.get(key)
                before, after = (old.state if old else None), (new.state if new else None)
                for run in known_runs:
                    run.move(key, before, after)
        self._problem("index", self.store.index.problem_note(folded))

    def _refresh_runs(self, changed: set[JobKey]) -> None:
        ids = self.runs.experiment_ids()
        for gone in [e for e in self._runs if e not in ids]:
            del self._runs[gone]
            for older in [k for k in self._older if k[0] == gone]:
                del self._older[older]
            self._dirty = True
            self._rows_dirty |= gone == self.experiment
        for experiment_id in ids:
            self._guard(f"experiment {experiment_id}", lambda: self._refresh_run(experiment_id, changed))

    def _refresh_run(self, experiment_id: str, changed: set[JobKey]) -> None:
        run = self._runs.get(experiment_id)
        ref = layout.ref(layout.current_run_ref(experiment_id))
        # The current run changes with the ref; without a ref, the latest run folder is the current one.
        if self._file_changed(ref) or run is None or run.run_id is None or self._stats[ref][0] is None:
            run_id = self.runs.current(experiment_id)
            if run is None or run.run_id != run_id:
                if run is not None and run.run_id is not None:  # (what was read of it stays, for its listing)
                    self._older[(experiment_id, run.run_id)] = run
                known = self._older.pop((experiment_id, run_id), None) if run_id is not None else None
                run = self._runs[experiment_id] = known or _Run(experiment_id, run_id)
                self._dirty = True
                self._rows_dirty |= experiment_id == self.experiment
        if run.run_id is not None:
            self._read_run(run, changed)

    def _read_run(self, run: _Run, changed: set[JobKey]) -> None:
        """Reads what changed of a run: its record (when rewritten), the lines appended to its ``jobs.jsonl``."""
        ws = self.workspace
        experiment_id, run_id = run.experiment_id, run.run_id
        assert run_id is not None
        shown = run is self._scope_run()
        record_rel = layout.run_record(experiment_id, run_id)
        if self._file_changed(record_rel) or run.record is None:
            record = self.runs.record(experiment_id, run_id)
            if record != run.record:
                run.record = record
                self._dirty = True
        rel = layout.run_jobs(experiment_id, run_id)
        size = ws.size(rel)
        if size is None or size == run.offset:
            return
        if size < run.offset:  # rewritten: read it again
            run.offset, run.seq, run.tags, run.damaged, run.submissions = 0, {}, {}, 0, 0
            self._rows_dirty |= shown
        read = self.runs.jobs_log(experiment_id, run_id).read(run.offset)
        # A first read makes the rows of the run anew: no need to list what changed in it.
        added: set[JobKey] = set() if run.offset == 0 else changed
        self._rows_dirty |= run.offset == 0 and shown
        for event in read.events:
            if isinstance(event, JobSubmitted):
                added.add(run.submitted(event))
        run.offset = read.offset
        run.damaged += len(read.problems)
        run.counts = None
        self._dirty = True
        if run.damaged:
            self._problem(rel, f"{ws.describe(rel)}: {run.damaged} damaged line(s) skipped")

    def _refresh_older(self, changed: set[JobKey]) -> None:
        """Reads the runs other than the current ones that are running (the others do not change)."""
        for run in list(self._older.values()):
            if run.record is not None and run.record.status == state.RUN_RUNNING:
                self._read_run(run, changed)

    def _file_changed(self, rel: str) -> bool:
        """Whether a small record was rewritten since the last call (its size or time changed)."""
        seen = (self.workspace.size(rel), self.workspace.mtime(rel))
        if self._stats.get(rel) == seen:
            return False
        self._stats[rel] = seen
        return True

    def _refresh_events(self) -> None:
        horizon = self._generation - FOLLOW_REFRESHES
        for key in [k for k, seen in self._shown.items() if seen < horizon]:
            del self._shown[key]
        wanted = list(self._shown)
        if self.followed is not None and self.followed not in self._shown:
            wanted.append(self.followed)
        jobs = self._index.jobs if self._index is not None else {}
        first_reads = 0
        for key in wanted:
            events = self._events.get(key)
            if events is None:
                if first_reads >= FIRST_READS_PER_REFRESH and key != self.followed:
                    continue
                first_reads += 1
                events = self._events[key] = _Events()
            else:
                job = jobs.get(key)
                # A launched job's event log grows: progress and times are read again at each refresh.
                active = job is not None and job.state in state.LAUNCHED
                if not (events.stale or active or key == self.followed):
                    continue
            self._read_events(key, events)

    def _read_events(self, key: JobKey, events: _Events) -> None:
        ws = self.workspace
        rel = layout.job_events(*key)
        events.stale = False
        size = ws.size(rel)
        if size is None or size == events.offset:
            return
        if size < events.offset:  # the job folder was made again
            self._events[key] = events = _Events()
        read = EventLog(ws, rel).read(events.offset)
        for event in read.events:
            events.apply(event)
        events.offset = read.offset
        if read.events:
            self._dirty = True
        if read.problems:
            events.damaged += len(read.problems)
            self._problem(rel, f"{ws.describe(rel)}: {events.damaged} damaged line(s) skipped")

    # --- experiments ------------------------------------------------------------------

    def experiments(self) -> list[ExperimentRow]:
        """Every experiment with its current run, by id."""
        jobs = self._index.jobs if self._index is not None else {}
        rows = []
        for experiment_id in sorted(self._runs):
            run = self._runs[experiment_id]
            counts = run.state_counts(jobs)
            record = run.record
            rows.append(
                ExperimentRow(
                    experiment_id,
                    run.run_id,
                    record.hostname if record else None,
                    record.status if record else None,
                    record.started_at if record else None,
                    dict(counts),
                )
            )
        return rows

    # --- runs ---------------------------------------------------------------------------

    def run_rows(self, experiment_id: str) -> list[RunRow]:
        """The runs of an experiment, newest first, with their jobs done, in error and in all, and their tags.

        A run's ``jobs.jsonl`` is read once, the first time it is listed (a running run's is then
        followed by :meth:`refresh`); the listing itself reads the experiment's folder and its tags.
        """
        current = self._runs.get(experiment_id)
        named: dict[str, list[str]] = {}
        try:
            named = self.runs.tags_by_run(experiment_id)
            self._problem(f"tags:{experiment_id}", None)
        except (OSError, XpmError) as exc:
            self._problem(f"tags:{experiment_id}", f"tags of {experiment_id}: {one_line(exc)}")
        jobs = self._index.jobs if self._index is not None else {}
        rows = []
        for run_id in reversed(self.runs.run_ids(experiment_id)):
            is_current = current is not None and current.run_id == run_id
            run = current if is_current and current is not None else self._older_run(experiment_id, run_id)
            rows.append(run.row(jobs, is_current, named.get(run_id, [])))
        return rows

    def _older_run(self, experiment_id: str, run_id: str) -> _Run:
        """A run other than the current one, read the first time it is asked for."""
        run = self._older.get((experiment_id, run_id))
        if run is None:
            run = self._older[(experiment_id, run_id)] = _Run(experiment_id, run_id)
            self._guard(f"run {experiment_id}/{run_id}", lambda: self._read_run(run, set()))
        return run

    def select_run(self, run_id: str | None) -> None:
        """Shows the jobs of a run of the selected experiment (None, or its current run's id: the current run).

        Raises:
            ValueError: no experiment is selected.
        """
        if self.experiment is None:
            raise ValueError("select an experiment first")
        current = self._runs.get(self.experiment)
        if current is not None and run_id == current.run_id:
            run_id = None
        if run_id is not None:
            self._older_run(self.experiment, run_id)
        if run_id != self.run:
            self.run = run_id
            self._rows_dirty = True

    def shown_run(self) -> str | None:
        """The run whose jobs are the rows (None: all jobs, or an experiment without a run)."""
        run = self._scope_run()
        return run.run_id if run is not None else None

    def _scope_run(self) -> _Run | None:
        """The run whose jobs are the rows (the selected one, or the current one)."""
        if self.experiment is None:
            return None
        current = self._runs.get(self.experiment)
        if self.run is None or (current is not None and current.run_id == self.run):
            return current
        return self._older.get((self.experiment, self.run))

    def indexed_count(self) -> int:
        """How many jobs the index knows (the "all jobs" entry)."""
        return len(self._index.jobs) if self._index is not None else 0

    # --- job rows -------------------------------------------------------------------

    def sorts(self) -> tuple[str, ...]:
        """The orders the rows can take, the default first.

        ``submitted``: the run's submission order, last first (an experiment's
        jobs only); ``updated``: the last change of state, most recent first;
        ``state``: running, error, scheduled, ready, waiting, unscheduled, done;
        ``task``: by task id then identifier.
        """
        if self.experiment is not None:
            return ("submitted", "state", "task", "updated")
        return ("updated", "state", "task")

    def _rows_changed(self) -> None:
        self._rows_dirty = True

    def set_filter(self, text: str) -> None:
        """Keeps only the rows that match a filter expression ('' or blanks: all rows).

        Raises:
            FilterError: the expression is malformed (the rows do not change).
        """
        self.filter = parse(text) if text.strip() else None
        self._rows_dirty = True

    @property
    def filter_text(self) -> str:
        return self.filter.text if self.filter is not None else ""

    def job_count(self) -> int:
        """How many rows there are (after the filter)."""
        self._ensure_rows()
        return len(self._rows)

    def job_key(self, position: int) -> JobKey:
        """The job of the row at ``position`` (0 <= position < :meth:`job_count`)."""
        self._ensure_rows()
        return self._rows[position][-1]  # type: ignore[no-any-return]

    def job_row(self, position: int) -> JobRow:
        """The row at ``position``; its job's events are followed while it is drawn.

        Raises:
            IndexError: no row there.
        """
        key = self.job_key(position)
        self._shown[key] = self._generation
        row = self.row(key)
        return row if row is not None else JobRow(key, state.UNSCHEDULED, None, {}, 0.0)

    def row(self, key: JobKey) -> JobRow | None:
        """What the model knows of a job of the rows' scope, whether it passes the filter or not."""
        job = self._job(key)
        if job is None:
            return None
        events = self._events.get(key)
        if events is None:
            return JobRow(key, job.state, job.failure_reason, job.tags, job.updated_at)
        return JobRow(
            key, job.state, job.failure_reason, job.tags, job.updated_at,
            events.progress, events.desc, events.started_at, events.ended_at,
        )

    def job_position(self, key: JobKey) -> int | None:
        """Where a job's row is now (None: not among the rows)."""
        self._ensure_rows()
        row = self._row_of.get(key)
        return None if row is None else bisect.bisect_left(self._rows, row)

    def job_state(self, key: JobKey) -> str | None:
        """A job's state as the index says (None: unknown)."""
        job = self._index.jobs.get(key) if self._index is not None else None
        return job.state if job is not None else None

    def _job(self, key: JobKey) -> IndexedJob | None:
        """A job of the rows' scope, with the tags its run gave it (None: not in the scope)."""
        job = self._index.jobs.get(key) if self._index is not None else None
        if self.experiment is None:
            return job
        run = self._scope_run()
        if run is None or key not in run.seq:
            return None
        tags = run.tags.get(key)
        if job is None:
            # Submitted, but not indexed (yet, or cleaned since): only a folder on disk counts.
            present = run.present.get(key)
            if present is None:
                present = run.present[key] = self.workspace.isdir(layout.job_dir(*key))
            return IndexedJob(key[0], key[1], state.UNSCHEDULED, None, tags or {}, 0.0) if present else None
        return job._replace(tags=tags) if tags else job

    def _row(self, key: JobKey, known: str, updated_at: float, tags: dict[str, Any]) -> tuple[Any, ...] | None:
        """The sort key of a job's row (the job key last), or None when the filter rejects it."""
        if self.filter is not None and not self.filter.matches(known, key[0], tags):
            return None
        sort = self.sort
        if sort == "task":
            return (key,)
        if sort == "updated" or self.experiment is None:
            recent: float = -updated_at
        else:
            scope = self._scope_run()
            recent = -scope.seq[key] if scope is not None else 0
        if sort == "state":
            return (state.STATE_RANK.get(known, len(state.STATE_RANK)), recent, key)
        return (recent, key)

    def _ensure_rows(self) -> None:
        """Sorts the rows again if they must be (built on first use: the first screen does not wait for them)."""
        if not self._rows_dirty:
            return
        with no_gc():
            self._sort_rows()

    def _sort_rows(self) -> None:
        rows = []
        row_of = self._row
        if self.experiment is None:
            for job in (self._index.jobs.values() if self._index is not None else ()):
                row = row_of((job.task_id, job.identifier), job.state, job.updated_at, job.tags)
                if row is not None:
                    rows.append(row)
        elif (run := self._scope_run()) is not None:
            jobs = self._index.jobs if self._index is not None else {}
            run_tags = run.tags
            for key in run.seq:
                found = jobs.get(key) or self._job(key)  # (not indexed: its folder decides)
                if found is not None:
                    row = row_of(key, found.state, found.updated_at, run_tags.get(key) or found.tags)
                    if row is not None:
                        rows.append(row)
        rows.sort()
        self._rows = rows
        self._row_of = {row[-1]: row for row in rows}
        self._rows_dirty = False

    def _update_rows(self, changed: set[JobKey]) -> None:
        if self._rows_dirty or len(changed) > REBUILD_AFTER:
            self._rows_dirty = True
            return
        for key in changed:
            old = self._row_of.pop(key, None)
            if old is not None:
                del self._rows[bisect.bisect_left(self._rows, old)]
            job = self._job(key)
            row = self._row(key, job.state, job.updated_at, job.tags) if job is not None else None
            if row is not None:
                bisect.insort(self._rows, row)
                self._row_of[key] = row
