"""Pruning the past runs of an experiment, as the ``history`` settings ask.

Only run folders (``experiments/<id>/<run-id>/``: the records of a run) are
deleted, never a job folder; the current run and running runs are never touched;
and nothing is deleted unless the settings (or the caller) give a limit.

The rules, applied in this order (those of experimaestro's ``history``):

1. failed runs older than the newest successful run are removed (its success
   supersedes them), when ``max_failed`` is set;
2. at most ``max_failed`` failed runs are kept, the newest;
3. at most ``max_done`` successful runs are kept, the newest.

The counts are of the runs besides the current one (which is always kept).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from xpm import layout, state
from xpm.settings import HistorySettings, load_settings
from xpm.store.runs import RunStore
from xpm.workspace import Workspace

__all__ = ["prune_runs", "runs_to_prune", "cleanup_experiment_history"]

logger = logging.getLogger("xpm.history")


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
        newest_done = max((run for run, status in runs if status == state.RUN_DONE), default=None, key=_order)
        if newest_done is not None:
            superseded = [run for run in failed if _order(run) < _order(newest_done)]
            removed += superseded
            failed = [run for run in failed if run not in superseded]
        removed += failed[: max(0, len(failed) - history.max_failed)]
    if history.max_done is not None:
        removed += done[: max(0, len(done) - history.max_done)]
    return sorted(removed, key=_order)


def _order(run_id: str) -> tuple[str, int]:
    """Run ids sort by time; ``20261204_101500.2`` comes after ``20261204_101500.1``."""
    base, _, n = run_id.partition(".")
    return (base, int(n) if n.isdigit() else 0)


def prune_runs(
    workspace: Workspace, experiment_id: str, history: HistorySettings, *, current: str | None = None
) -> list[str]:
    """Removes the runs of ``experiment_id`` that ``history`` does not keep; returns their ids."""
    if not history.prunes:
        return []
    store = RunStore(workspace)
    runs = sorted(store.run_ids(experiment_id), key=_order)
    statuses = []
    for run in runs:
        record = store.record(experiment_id, run)
        statuses.append((run, record.status if record is not None else None))
    current = current if current is not None else store.current(experiment_id)
    removed = []
    for run in runs_to_prune(statuses, history, current=current):
        store.remove_run(experiment_id, run)
        logger.info("%s: removed the run %s (history settings)", experiment_id, run)
        removed.append(run)
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
