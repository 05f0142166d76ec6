"""The history of an experiment: its runs listed, and pruned (by hand, or as the ``history`` settings ask).

Pruning deletes run folders (``experiments/<id>/<run-id>/``: the records of a
run) and the blobs that no remaining run names, never a job folder: the jobs a
pruned run submitted become *orphans* when no other run references them, and
``orphans --clean`` deletes those on request.
The current run, running runs and tagged runs are never removed.

The ``history`` settings' rules, applied in this order (those of experimaestro's
``history``), after an experiment ended well:

1. failed runs older than the newest successful run are removed (its success
   supersedes them), when ``max_failed`` is set;
2. at most ``max_failed`` failed runs are kept, the newest;
3. at most ``max_done`` successful runs are kept, the newest.

The counts are of the runs besides the current one and the tagged ones (which are always kept).
"""

from __future__ import annotations

import datetime
import logging
import os
from pathlib import Path
from typing import NamedTuple

from xpm import layout, state
from xpm.errors import XpmError
from xpm.process import hostname
from xpm.schema import RunRecord
from xpm.settings import HistorySettings, load_settings
from xpm.store.blobs import BlobStore
from xpm.store.index import JobKey
from xpm.store.runs import RunStore, run_order
from xpm.workspace import Workspace

__all__ = [
    "RunSummary",
    "run_history",
    "PrunePlan",
    "plan_prune",
    "parse_date",
    "unreferenced_after",
    "remove_unreferenced_blobs",
    "prune_runs",
    "runs_to_prune",
    "cleanup_experiment_history",
]

logger = logging.getLogger("xpm.history")

#: What ``--status`` accepts, to the recorded status (``completed``: experimaestro's name of ``done``)
STATUS_NAMES = {state.RUN_DONE: state.RUN_DONE, "completed": state.RUN_DONE, state.RUN_FAILED: state.RUN_FAILED}


class RunSummary(NamedTuple):
    """One line of an experiment's history."""

    run_id: str
    #: running, done, failed; None when the run record is missing or damaged
    status: str | None
    hostname: str | None
    started_at: float | None
    ended_at: float | None
    #: jobs of the run done, in error, and in all (those of its jobs.jsonl)
    done: int
    errors: int
    total: int
    tags: list[str]
    #: the commit of the run's first repository (None: not recorded), and whether its tree was dirty
    commit: str | None
    dirty: bool
    #: what could not be read, for example ``spec.json: unreadable (...)``
    problems: list[str]
    #: recorded as running, by a process of this host that has ended (killed before it could record its end)
    stale: bool = False


def run_history(workspace: Workspace, experiment_id: str) -> list[RunSummary]:
    """The runs of an experiment, newest first (a damaged record is a problem of its line, not an error).

    Raises:
        UnknownExperiment: the experiment has no run.
    """
    from xpm.store.summaries import RunCounts

    store = RunStore(workspace)
    runs = store.run_ids_or_fail(experiment_id)
    tags = store.tags_by_run(experiment_id)
    # A run's jobs by state: its summary while it holds, else counted from the index (folded once)
    counts = RunCounts(workspace)
    lines = []
    for run_id in reversed(runs):
        problems = []
        try:
            record = store.load_record(experiment_id, run_id)
        except XpmError as exc:
            record, problems = None, [str(exc)]
        try:
            spec = store.spec(experiment_id, run_id)
        except XpmError as exc:
            spec = None
            problems.append(str(exc))
        states = counts(experiment_id, run_id)
        submitted = store.read_jobs(experiment_id, run_id)  # the total, and whether it is damaged
        if submitted.damaged:
            problems.append(f"{layout.run_jobs(experiment_id, run_id)}: damaged lines skipped")
        repository = spec.repositories[0] if spec is not None and spec.repositories else None
        lines.append(RunSummary(
            run_id,
            record.status if record else None,
            record.hostname if record else None,
            record.started_at if record else None,
            record.ended_at if record else None,
            states.get(state.DONE, 0),
            states.get(state.ERROR, 0),
            len(submitted.order),
            tags.get(run_id, []),
            repository.commit if repository else None,
            bool(repository and repository.dirty),
            problems,
            record is not None and stale_run(record),
        ))
    return lines


def stale_run(record: RunRecord) -> bool:
    """Whether a run recorded as running is known to have ended: its process, of this host, is gone.

    A process of another host is assumed alive (this host cannot tell), as is a pid in use (maybe reused).
    """
    from xpm.process import pid_alive

    return record.status == state.RUN_RUNNING and record.hostname == hostname() \
        and not pid_alive(record.pid)


# --- pruning by hand ---------------------------------------------------------------------------

_DATE_FORMATS = ("%Y%m%d_%H%M%S", "%Y%m%d", "%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M",
                 "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M")


class BadDate(XpmError):
    """A ``--before``/``--after`` date in no known format."""

    def __init__(self, text: str):
        self.text = text
        super().__init__(f"invalid date {text!r}: expected YYYYMMDD_HHMMSS (a run id), YYYYMMDD, "
                         "YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]")


def parse_date(text: str) -> str:
    """A date as the run ids spell the local time, ``YYYYMMDD_HHMMSS``, to compare with run ids."""
    for pattern in _DATE_FORMATS:
        try:
            return datetime.datetime.strptime(text.strip(), pattern).strftime("%Y%m%d_%H%M%S")
        except ValueError:
            continue
    raise BadDate(text)


class PrunePlan(NamedTuple):
    """What ``experiments prune`` removes, and what it keeps although it matches, with why."""

    remove: list[str]
    kept: list[tuple[str, str]]
    #: the runs of ``remove`` recorded as running whose process ended (:func:`stale_run`)
    stale: set[str]


def plan_prune(
    workspace: Workspace,
    experiment_id: str,
    *,
    keep: int | None = None,
    before: str | None = None,
    after: str | None = None,
    status: str | None = None,
) -> PrunePlan:
    """The runs to remove: those matching every filter given, except the ``keep`` newest of them
    (experimaestro's ``history-prune``), and never the current, a running or a tagged run (a run
    recorded as running whose process of this host ended is not running: :func:`stale_run`).

    Args:
        before, after: dates (:func:`parse_date`): runs started before / after them.
        status: ``done`` (or ``completed``) or ``failed``.

    Raises:
        UnknownExperiment: the experiment has no run.
        BadDate: a date is in no known format.
        XpmError: an unknown status.
    """
    store = RunStore(workspace)
    runs = store.run_ids_or_fail(experiment_id)
    wanted = None
    if status is not None:
        if status.lower() not in STATUS_NAMES:
            raise XpmError(f"invalid status {status!r}: expected done (or completed) or failed")
        wanted = STATUS_NAMES[status.lower()]
    before_key = parse_date(before) if before is not None else None
    after_key = parse_date(after) if after is not None else None
    statuses: dict[str, str | None] = {}
    stale = set()
    for run in runs:
        record = store.record(experiment_id, run)
        statuses[run] = record.status if record is not None else None
        if record is not None and stale_run(record):
            stale.add(run)
    matching = [
        run for run in runs
        if (wanted is None or statuses[run] == wanted)
        and (before_key is None or run.split(".")[0] < before_key)
        and (after_key is None or run.split(".")[0] > after_key)
    ]
    if keep is not None:
        matching = matching[: max(0, len(matching) - keep)]
    current = store.current(experiment_id)
    tagged = store.tags_by_run(experiment_id)
    remove, kept = [], []
    for run in matching:
        if run == current:
            kept.append((run, "the current run"))
        elif statuses[run] == state.RUN_RUNNING and run not in stale:
            kept.append((run, state.RUN_RUNNING))
        elif statuses[run] is None:
            kept.append((run, "its record is missing or damaged"))
        elif run in tagged:
            kept.append((run, f"tagged {', '.join(tagged[run])}"))
        else:
            remove.append(run)
    return PrunePlan(remove, kept, stale & set(remove))


def remove_unreferenced_blobs(workspace: Workspace) -> list[str]:
    """Deletes the blobs (sources, patches) that no run of any experiment names any more; returns them.

    Under the blobs lock, which a starting run holds from storing its blobs to writing its spec.

    Raises:
        SerializationError: a run's ``spec.json`` cannot be read: what it names is unknown, so nothing is removed.
    """
    store, blobs = RunStore(workspace), BlobStore(workspace)
    with blobs.lock():
        named: set[str] = set()
        for experiment_id, run_id in store.run_folders():
            named.update(store.blob_digests(experiment_id, run_id))
        removed = [digest for digest in blobs.digests() if digest not in named]
        for digest in removed:
            blobs.remove(digest)
    return removed


def unreferenced_after(workspace: Workspace, removed: set[tuple[str, str]]) -> set[JobKey]:
    """The jobs that the runs ``removed`` (experiment id, run id) reference and no other run does."""
    store = RunStore(workspace)
    theirs: set[JobKey] = set()
    others: set[JobKey] = set()
    for experiment_id, run_id in store.run_folders():
        jobs = store.read_jobs(experiment_id, run_id).order
        (theirs if (experiment_id, run_id) in removed else others).update(jobs)
    return theirs - others


# --- pruning as the settings ask ---------------------------------------------------------------


def runs_to_prune(
    runs: list[tuple[str, str | None]], history: HistorySettings, *, current: str | None = None
) -> list[str]:
    """The runs the rules remove, given ``(run id, status)`` oldest first (pure: no I/O).

    ``status`` is ``done``, ``failed``, ``running`` or None (unknown: never removed).
    """
    done = [run for run, status in runs if status == state.RUN_DONE and run != current]
    failed = [run for run, status in runs if status == state.RUN_FAILED and run != current]
    removed: list[str] = []
    if history.max_failed is not None:
        newest_done = max((run for run, status in runs if status == state.RUN_DONE), default=None, key=run_order)
        if newest_done is not None:
            superseded = [run for run in failed if run_order(run) < run_order(newest_done)]
            removed += superseded
            failed = [run for run in failed if run not in superseded]
        removed += failed[: max(0, len(failed) - history.max_failed)]
    if history.max_done is not None:
        removed += done[: max(0, len(done) - history.max_done)]
    return sorted(removed, key=run_order)


def prune_runs(
    workspace: Workspace, experiment_id: str, history: HistorySettings, *, current: str | None = None
) -> list[str]:
    """Removes the runs of ``experiment_id`` that ``history`` does not keep; returns their ids.

    Tagged runs are left out of the rules: they are kept, and do not count.
    """
    if not history.prunes:
        return []
    store = RunStore(workspace)
    tagged = set(store.tags(experiment_id).values())
    statuses = []
    for run in store.run_ids(experiment_id):
        if run not in tagged:
            record = store.record(experiment_id, run)
            statuses.append((run, record.status if record is not None else None))
    current = current if current is not None else store.current(experiment_id)
    removed = []
    for run in runs_to_prune(statuses, history, current=current):
        store.remove_run(experiment_id, run)
        logger.info("%s: removed the run %s (history settings)", experiment_id, run)
        removed.append(run)
    if removed:
        try:
            remove_unreferenced_blobs(workspace)
        except XpmError as exc:
            logger.warning("%s: stored sources kept: %s", experiment_id, exc)
    return removed


def cleanup_experiment_history(
    experiment_base: str | os.PathLike[str],
    *,
    current_run_id: str | None = None,
    current_status: str | None = None,
    history: HistorySettings | None = None,
) -> list[Path]:
    """Removes the old runs of the experiment whose folder is ``experiment_base``
    (``<workspace>/experiments/<id>``, a local folder); returns the folders removed.

    ``history`` defaults to the ``history`` of the settings. ``current_status`` is
    accepted for compatibility: the current run is never removed, whatever its status.
    """
    base = Path(experiment_base)
    root = base.parent.parent
    if history is None:
        history = load_settings().history
    workspace = Workspace.open(root)
    removed = prune_runs(workspace, base.name, history, current=current_run_id)
    return [root / layout.run_dir(base.name, run) for run in removed]

