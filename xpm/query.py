"""Reading a workspace for the command line and the monitor: jobs, experiments, orphans.

Everything here reads files only (the job index, the runs' ``jobs.jsonl``, run
records); nothing is written, except the index snapshot the index itself keeps.
The same functions serve local and SSH workspaces.
"""

from __future__ import annotations

import heapq
from itertools import islice
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Iterable, NamedTuple

from xpm import layout, state
from xpm.store.index import IndexedJob, JobKey
from xpm.store.jobs import JobStore
from xpm.store.runs import RunStore, UnknownExperiment
from xpm.workspace import Workspace

if TYPE_CHECKING:  # only annotated here: the listings that filter have parsed one already
    from xpm.filter import Filter

__all__ = [
    "UnknownExperiment",
    "short_name",
    "indexed_jobs",
    "select_jobs",
    "ExperimentSummary",
    "experiments",
    "Orphan",
    "References",
    "referenced_jobs",
    "orphans",
    "state_text",
    "value_text",
    "tags_text",
]

#: Identifier characters shown by listings (unique in practice, and lines fit 80 columns)
SHORT_ID = 12


def short_name(job: IndexedJob | JobKey) -> str:
    """``task-id/<first 12 hex characters>``: what listings show."""
    return f"{job[0]}/{job[1][:SHORT_ID]}"


# --- jobs ------------------------------------------------------------------------------


def indexed_jobs(ws: Workspace, notes: list[str] | None = None) -> dict[JobKey, IndexedJob]:
    """Every job of the index; what a user should know about the index goes to ``notes``.

    The index is a cache: when it is damaged or missing, listings are
    incomplete, and the notes say so (and how to rebuild it).
    """
    index = JobStore(ws).index
    folded = index.load()
    if notes is not None:
        note = index.problem_note(folded)
        if note is not None:
            notes.append(note)
    return folded.jobs


def select_jobs(
    ws: Workspace,
    *,
    experiment: str | None = None,
    where: Filter | None = None,
    count: int | None = None,
    notes: list[str] | None = None,
) -> list[IndexedJob]:
    """The jobs of the workspace (or of an experiment's current run), most recent first.

    Without ``experiment``, "most recent" is the last change of state; with it,
    the order of submission in the run, and the tags are those the run gave.

    Raises:
        UnknownExperiment: ``experiment`` has no run in the workspace.
    """
    indexed = indexed_jobs(ws, notes)
    if experiment is None:
        # (updated_at, task_id, identifier): the fields of IndexedJob at 5, 0 and 1
        recent = itemgetter(5, 0, 1)
        if count is not None and where is None:
            # -c N: the N most recent in one pass, without sorting the others
            return heapq.nlargest(count, indexed.values(), key=recent)
        jobs: Iterable[IndexedJob] = sorted(indexed.values(), key=recent, reverse=True)
    else:
        jobs = _experiment_jobs(ws, experiment, indexed)
    if where is not None:
        matches = where.matches
        jobs = (job for job in jobs if matches(job.state, job.task_id, job.tags))
    return list(islice(jobs, count))


def _experiment_jobs(ws: Workspace, experiment_id: str, indexed: dict[JobKey, IndexedJob]) -> list[IndexedJob]:
    runs = RunStore(ws)
    submitted = runs.read_jobs(experiment_id, runs.current_or_fail(experiment_id))
    jobs = []
    for key in reversed(submitted.order):
        known = indexed.get(key)
        if known is None:
            # Submitted, but cleaned since or never indexed: only a folder on disk counts.
            if not ws.isdir(layout.job_dir(*key)):
                continue
            known = IndexedJob(key[0], key[1], state.UNSCHEDULED, None, {}, 0.0)
        jobs.append(known._replace(tags=submitted.tags.get(key) or known.tags))
    return jobs


# --- experiments -----------------------------------------------------------------------


class ExperimentSummary(NamedTuple):
    experiment_id: str
    run_id: str | None
    hostname: str | None
    status: str | None
    started_at: float | None
    #: jobs of the current run that are done
    finished: int
    #: jobs of the current run (still in the workspace)
    total: int
    #: jobs of the current run in each state
    states: dict[str, int]


def experiments(ws: Workspace, notes: list[str] | None = None) -> list[ExperimentSummary]:
    """Every experiment with its current run and the states of that run's jobs.

    The counts come from the runs' summaries while they hold (``xpm.store.summaries``): the
    index is folded only when one does not, so that a quiet workspace lists its experiments
    without reading its jobs.
    """
    from xpm.store.summaries import RunCounts

    counts = RunCounts(ws)
    runs = counts.runs
    summaries = []
    for experiment_id in runs.experiment_ids():
        run_id = runs.current(experiment_id)
        record = runs.record(experiment_id, run_id) if run_id else None
        states = counts(experiment_id, run_id) if run_id is not None else {}
        summaries.append(
            ExperimentSummary(
                experiment_id,
                run_id,
                record.hostname if record else None,
                record.status if record else None,
                record.started_at if record else None,
                states.get(state.DONE, 0),
                sum(states.values()),
                states,
            )
        )
    if notes is not None:
        notes.extend(counts.notes)
    return summaries


# --- orphans ---------------------------------------------------------------------------


class Orphan(NamedTuple):
    task_id: str
    identifier: str
    #: the state of the job (from the index; "unscheduled" when it has none)
    state: str
    #: False for a job that a run references (listed with ``show_all``)
    orphan: bool = True


class References(NamedTuple):
    """The jobs that runs reference, and the run logs that could not be read whole."""

    jobs: set[JobKey]
    damaged: list[str]


def referenced_jobs(ws: Workspace) -> References:
    """Every job that a run of an experiment submitted (all runs kept in the workspace)."""
    runs = RunStore(ws)
    referenced: set[JobKey] = set()
    damaged = []
    for experiment_id, run_id in runs.run_folders():
        submitted = runs.read_jobs(experiment_id, run_id)
        referenced.update(submitted.order)
        if submitted.damaged:
            damaged.append(ws.describe(layout.run_jobs(experiment_id, run_id)))
    return References(referenced, damaged)


def orphans(ws: Workspace, references: References, *, show_all: bool = False) -> list[Orphan]:
    """Job folders that no run of any experiment references (with ``show_all``, all jobs), by job id."""
    indexed = indexed_jobs(ws)
    found = []
    for key in ws.iter_job_dirs():
        if not (layout.is_task_id(key[0]) and layout.is_identifier(key[1])):
            continue
        orphan = key not in references.jobs
        if orphan or show_all:
            job = indexed.get(key)
            found.append(Orphan(key[0], key[1], job.state if job is not None else state.UNSCHEDULED, orphan))
    return sorted(found)


# --- how listings show jobs (the command line and the monitor) -----------------------------


def state_text(known: str) -> str:
    """A state as listings show it: ``DONE``, ``RUNNING``..."""
    return known.upper()


def value_text(value: Any) -> str:
    """A tag value as listings show it: plain when it is one word, else as JSON."""
    if isinstance(value, str):
        if value and not any(c.isspace() or c in "=\"'" for c in value):
            return value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    # The rarer values as JSON; json is imported here, not at the start-up of every command.
    import json

    if isinstance(value, str) or isinstance(value, bool) or value is None:
        return json.dumps(value)
    return json.dumps(str(value))


def tags_text(tags: dict[str, Any]) -> str:
    """``k=v k=v``, in the order the tags were given."""
    return " ".join(f"{name}={value_text(value)}" for name, value in tags.items())
