"""Reading a workspace for the command line and the monitor: jobs, experiments, orphans.

Everything here reads files only (the job index, the runs' ``jobs.jsonl``, run
records); nothing is written, except the index snapshot the index itself keeps.
The same functions serve local and SSH workspaces.
"""

from __future__ import annotations

import json
from itertools import islice
from typing import TYPE_CHECKING, Any, Iterable, NamedTuple

from xpm import codec, layout
from xpm.errors import XpmError
from xpm.schema import JobSubmitted, RunRecord
from xpm.store.index import IndexedJob, JobKey
from xpm.store.jobs import JobStore, parse_job_id
from xpm.store.log import EventLog
from xpm.store.refs import RefStore
from xpm.workspace import Workspace

if TYPE_CHECKING:
    from xpm.filter import Filter

#: Shortest identifier prefix accepted in a job id
MIN_PREFIX = 6
#: Identifier characters shown by listings (unique in practice, and lines fit 80 columns)
SHORT_ID = 12


class UnknownExperiment(XpmError):
    """An experiment id with no run in the workspace."""

    def __init__(self, experiment_id: str, location: str):
        self.experiment_id = experiment_id
        super().__init__(f"no experiment {experiment_id!r} in the workspace {location}")


class UnknownJob(XpmError):
    """A job id that designates no job folder (or several)."""

    def __init__(self, job_id: str, reason: str):
        self.job_id = job_id
        super().__init__(f"job {job_id}: {reason}")


def short_name(job: IndexedJob | JobKey) -> str:
    """``task-id/<first 12 hex characters>``: what listings show."""
    return f"{job[0]}/{job[1][:SHORT_ID]}"


def resolve_job(ws: Workspace, text: str) -> JobKey:
    """The job a ``task-id/identifier`` designates; the identifier may be a unique prefix.

    Raises:
        InvalidJobId: the text is not a job id (or could escape the workspace).
        UnknownJob: no job folder matches, or a prefix matches several.
    """
    from xpm.store.jobs import InvalidJobId

    # Task ids are lower-case on disk; users write the class name (mymodule.MyTask/...).
    task_id, _, rest = text.partition("/")
    task_id = task_id.lower()
    if rest and len(rest) < 64 and "/" not in rest and layout.is_task_id(task_id):
        if not all(c in "0123456789abcdef" for c in rest):
            raise InvalidJobId(text, "the identifier must be lowercase hexadecimal")
        if len(rest) < MIN_PREFIX:
            raise InvalidJobId(text, f"give at least {MIN_PREFIX} characters of the identifier")
        matches = [name for name in ws.listdir(f"{layout.JOBS}/{task_id}") if name.startswith(rest)]
        matches = [name for name in matches if layout.is_identifier(name)]
        if not matches:
            raise UnknownJob(text, "not found")
        if len(matches) > 1:
            raise UnknownJob(text, f"ambiguous ({len(matches)} jobs start with {rest}); give more characters")
        return task_id, matches[0]
    try:
        key = parse_job_id(f"{task_id}/{rest}" if rest else text)
    except InvalidJobId as exc:
        raise InvalidJobId(text, exc.reason) from None
    if not ws.isdir(layout.job_dir(*key)):
        raise UnknownJob(text, "not found")
    return key


# --- runs ------------------------------------------------------------------------------


class RunJobs(NamedTuple):
    """The jobs a run submitted, in submission order, with the tags the run gave them.

    ``damaged`` says that some lines of the run's ``jobs.jsonl`` could not be
    read (or the last one is incomplete): the run may reference more jobs.
    """

    order: list[JobKey]
    tags: dict[JobKey, dict[str, Any]]
    damaged: bool


def run_jobs(ws: Workspace, experiment_id: str, run_id: str) -> RunJobs:
    """Reads a run's ``jobs.jsonl`` (damaged lines are skipped, and counted in ``damaged``)."""
    order: dict[JobKey, None] = {}
    tags: dict[JobKey, dict[str, Any]] = {}
    read = EventLog(ws, layout.run_jobs(experiment_id, run_id)).read()
    for event in read.events:
        if isinstance(event, JobSubmitted):
            key = (event.task_id, event.identifier)
            if key in order:
                # A job submitted again moves to the end: the order is the latest submission.
                del order[key]
                tags[key] = {**tags[key], **event.tags}
            else:
                tags[key] = event.tags  # a fresh object of this read: no copy needed
            order[key] = None
    return RunJobs(list(order), tags, bool(read.problems) or read.partial)


def experiment_ids(ws: Workspace) -> list[str]:
    """The experiments of the workspace: folders under ``experiments/`` with a valid name."""
    return [name for name in ws.listdir(layout.EXPERIMENTS) if layout.is_name(name)]


def run_ids(ws: Workspace, experiment_id: str) -> list[str]:
    """The runs of an experiment, oldest first (run ids sort by time)."""
    folder = layout.experiment_dir(experiment_id)
    return [run for run in ws.listdir(folder) if layout.is_name(run) and ws.isdir(f"{folder}/{run}")]


def current_run(ws: Workspace, experiment_id: str) -> str | None:
    """The current run of an experiment (its ref, or else its latest run folder)."""
    run_id = RefStore(ws).value(layout.current_run_ref(experiment_id))
    if run_id is not None and ws.isdir(layout.run_dir(experiment_id, run_id)):
        return run_id
    runs = run_ids(ws, experiment_id)
    return runs[-1] if runs else None


def run_record(ws: Workspace, experiment_id: str, run_id: str) -> RunRecord | None:
    """A run's record, or None when it is missing or unreadable."""
    rel = layout.run_record(experiment_id, run_id)
    data = ws.read_optional(rel)
    if data is None:
        return None
    try:
        return codec.decode_record(data, RunRecord, ws.describe(rel))
    except XpmError:
        return None


# --- jobs ------------------------------------------------------------------------------


def indexed_jobs(ws: Workspace, notes: list[str] | None = None) -> dict[JobKey, IndexedJob]:
    """Every job of the index; what a user should know about the index goes to ``notes``.

    The index is a cache: when it is damaged or missing, listings are
    incomplete, and the notes say so (and how to rebuild it).
    """
    folded = JobStore(ws).index.load()
    if notes is not None:
        rebuild = f"`experiments sync --workdir {ws.location}` rebuilds it"
        if folded.problems:
            notes.append(f"{ws.describe(layout.JOB_INDEX)}: {len(folded.problems)} damaged line(s) skipped; {rebuild}")
        elif folded.offset == 0 and ws.listdir(layout.JOBS):
            notes.append(f"the job index {ws.describe(layout.JOB_INDEX)} is missing or empty; {rebuild}")
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
        jobs: Iterable[IndexedJob] = sorted(
            indexed.values(), key=lambda j: (j.updated_at, j.task_id, j.identifier), reverse=True
        )
    else:
        jobs = _experiment_jobs(ws, experiment, indexed)
    if where is not None:
        matches = where.matches
        jobs = (job for job in jobs if matches(job.state, job.task_id, job.tags))
    return list(islice(jobs, count))


def _experiment_jobs(ws: Workspace, experiment_id: str, indexed: dict[JobKey, IndexedJob]) -> list[IndexedJob]:
    run_id = current_run(ws, experiment_id) if layout.is_name(experiment_id) else None
    if run_id is None:
        raise UnknownExperiment(experiment_id, ws.location)
    submitted = run_jobs(ws, experiment_id, run_id)
    jobs = []
    for key in reversed(submitted.order):
        known = indexed.get(key)
        if known is None:
            # Submitted, but cleaned since or never indexed: only a folder on disk counts.
            if not ws.isdir(layout.job_dir(*key)):
                continue
            known = IndexedJob(key[0], key[1], "unscheduled", None, {}, 0.0)
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
    """Every experiment with its current run and the states of that run's jobs."""
    indexed = indexed_jobs(ws, notes)
    summaries = []
    for experiment_id in experiment_ids(ws):
        run_id = current_run(ws, experiment_id)
        record = run_record(ws, experiment_id, run_id) if run_id else None
        states: dict[str, int] = {}
        if run_id is not None:
            for key in run_jobs(ws, experiment_id, run_id).order:
                job = indexed.get(key)
                if job is not None:
                    states[job.state] = states.get(job.state, 0) + 1
        summaries.append(
            ExperimentSummary(
                experiment_id,
                run_id,
                record.hostname if record else None,
                record.status if record else None,
                record.started_at if record else None,
                states.get("done", 0),
                sum(states.values()),
                states,
            )
        )
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
    from xpm.maintenance import run_folders

    referenced: set[JobKey] = set()
    damaged = []
    for experiment_id, run_id in run_folders(ws):
        submitted = run_jobs(ws, experiment_id, run_id)
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
            found.append(Orphan(key[0], key[1], job.state if job is not None else "unscheduled", orphan))
    return sorted(found)


# --- how listings show jobs (the command line and the monitor) -----------------------------


def state_text(state: str) -> str:
    """A state as listings show it: ``DONE``, ``RUNNING``..."""
    return state.upper()


def value_text(value: Any) -> str:
    """A tag value as listings show it: plain when it is one word, else as JSON."""
    if isinstance(value, str):
        if value and not any(c.isspace() or c in "=\"'" for c in value):
            return value
        return json.dumps(value)
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return repr(value) if isinstance(value, (int, float)) else json.dumps(str(value))


def tags_text(tags: dict[str, Any]) -> str:
    """``k=v k=v``, in the order the tags were given."""
    return " ".join(f"{name}={value_text(value)}" for name, value in tags.items())
