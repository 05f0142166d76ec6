"""Runs of experiments: the one reader and writer of run folders.

A run is a folder ``experiments/<id>/<run-id>`` holding its record (``run.json``),
the environment it ran in, and the log of the jobs it submitted (``jobs.jsonl``);
the ref ``experiments/<id>/current`` names an experiment's current run (see
``spec/workspace.md``). The experiment writes runs through :class:`RunStore`; the
listings, the monitors, ``experiments sync`` and orphans read them through it.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

from xpm import codec, layout, state
from xpm.errors import XpmError
from xpm.schema import EnvironmentRecord, JobSubmitted, RunRecord
from xpm.store.index import JobKey
from xpm.store.log import EventLog
from xpm.store.refs import RefStore
from xpm.workspace import Workspace

__all__ = ["RunStore", "RunJobs", "UnknownExperiment"]

class UnknownExperiment(XpmError):
    """An experiment id with no run in the workspace."""

    def __init__(self, experiment_id: str, location: str):
        self.experiment_id = experiment_id
        super().__init__(f"no experiment {experiment_id!r} in the workspace {location}")


class RunJobs(NamedTuple):
    """The jobs a run submitted, in submission order, with the tags the run gave them.

    ``damaged`` says that some lines of the run's ``jobs.jsonl`` could not be
    read (or the last one is incomplete): the run may reference more jobs.
    """

    order: list[JobKey]
    tags: dict[JobKey, dict[str, Any]]
    damaged: bool


class RunStore:
    """The runs of a workspace's experiments."""

    def __init__(self, workspace: Workspace):
        self.workspace = workspace

    # --- writing (the experiment) ------------------------------------------------------------

    def create_run(self, experiment_id: str, started_at: float) -> str:
        """Creates a new run folder; returns its id: the local time ``YYYYMMDD_HHMMSS``, with
        ``.1``, ``.2``... when that folder exists (made with an exclusive ``mkdir``)."""
        ws = self.workspace
        ws.makedirs(layout.experiment_dir(experiment_id))
        base = time.strftime("%Y%m%d_%H%M%S", time.localtime(started_at))
        run_id, n = base, 0
        while not ws.mkdir_exclusive(layout.run_dir(experiment_id, run_id)):
            n += 1
            run_id = f"{base}.{n}"
        return run_id

    def write_record(self, record: RunRecord) -> None:
        """Writes (or rewrites) a run's record; the first write also creates the run's (empty) job log,
        so that a run with a record and no log is known to have lost it."""
        rel = layout.run_record(record.experiment_id, record.run_id)
        if not self.workspace.exists(rel):
            self.jobs_log(record.experiment_id, record.run_id).append()
        self.workspace.write_atomic(rel, codec.encode(record))

    def write_environment(self, experiment_id: str, run_id: str, environment: EnvironmentRecord) -> None:
        """Writes the environment a run ran in (Python, packages, git state)."""
        self.workspace.write_atomic(layout.run_environment(experiment_id, run_id), codec.encode(environment))

    def jobs_log(self, experiment_id: str, run_id: str) -> EventLog:
        """The log of the jobs a run submitted (``jobs.jsonl``)."""
        return EventLog(self.workspace, layout.run_jobs(experiment_id, run_id))

    def append_submitted(self, experiment_id: str, run_id: str, event: JobSubmitted) -> None:
        """Records that a run submitted a job (with the tags it gave it)."""
        self.jobs_log(experiment_id, run_id).append(event)

    def set_current(self, experiment_id: str, run_id: str) -> None:
        """Makes ``run_id`` the current run of the experiment."""
        RefStore(self.workspace).set(layout.current_run_ref(experiment_id), run_id)

    def remove_run(self, experiment_id: str, run_id: str) -> None:
        """Deletes a run's folder: its records only (the jobs it submitted stay).

        Raises:
            XpmError: the run is the experiment's current run, or is still running.
        """
        if self.current(experiment_id) == run_id:
            raise XpmError(f"{experiment_id}/{run_id} is the current run of the experiment: it is kept")
        record = self.record(experiment_id, run_id)
        if record is not None and record.status == state.RUN_RUNNING:
            raise XpmError(f"{experiment_id}/{run_id} is running: it is kept")
        self.workspace.remove_run_folder(experiment_id, run_id)

    # --- reading -----------------------------------------------------------------------------

    def experiment_ids(self) -> list[str]:
        """The experiments of the workspace: folders under ``experiments/`` with a valid name."""
        return [name for name in self.workspace.listdir(layout.EXPERIMENTS) if layout.is_name(name)]

    def run_ids(self, experiment_id: str) -> list[str]:
        """The runs of an experiment, oldest first (run ids sort by time)."""
        ws = self.workspace
        folder = layout.experiment_dir(experiment_id)
        return [run for run in ws.listdir(folder) if layout.is_name(run) and ws.isdir(f"{folder}/{run}")]

    def run_folders(self) -> list[tuple[str, str]]:
        """Every ``(experiment id, run id)`` that has a run folder (whatever their names)."""
        ws = self.workspace
        runs = []
        for xp in ws.listdir(layout.EXPERIMENTS):
            for run in ws.listdir(layout.experiment_dir(xp)):
                if ws.isdir(layout.run_dir(xp, run)):
                    runs.append((xp, run))
        return runs

    def current(self, experiment_id: str) -> str | None:
        """The current run of an experiment (its ref, or else its latest run folder)."""
        ws = self.workspace
        try:
            run_id = RefStore(ws).value(layout.current_run_ref(experiment_id))
        except XpmError:
            run_id = None  # a damaged ref: the latest run folder says (experiments sync rewrites the ref)
        if run_id is not None and ws.isdir(layout.run_dir(experiment_id, run_id)):
            return run_id
        runs = self.run_ids(experiment_id)
        return runs[-1] if runs else None

    def current_or_fail(self, experiment_id: str) -> str:
        """The current run of an experiment.

        Raises:
            UnknownExperiment: the experiment has no run in the workspace (or its id is not valid).
        """
        run_id = self.current(experiment_id) if layout.is_name(experiment_id) else None
        if run_id is None:
            raise UnknownExperiment(experiment_id, self.workspace.location)
        return run_id

    def record(self, experiment_id: str, run_id: str) -> RunRecord | None:
        """A run's record, or None when it is missing or unreadable."""
        ws = self.workspace
        rel = layout.run_record(experiment_id, run_id)
        data = ws.read_optional(rel)
        if data is None:
            return None
        try:
            return codec.decode_record(data, RunRecord, ws.describe(rel))
        except XpmError:
            return None

    def read_jobs(self, experiment_id: str, run_id: str) -> RunJobs:
        """Reads a run's ``jobs.jsonl`` (damaged lines are skipped, and counted in ``damaged``)."""
        order: dict[JobKey, None] = {}
        tags: dict[JobKey, dict[str, Any]] = {}
        read = self.jobs_log(experiment_id, run_id).read()
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
