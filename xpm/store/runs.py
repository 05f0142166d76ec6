"""Runs of experiments: the one reader and writer of run folders.

A run is a folder ``experiments/<id>/<run-id>`` holding its record (``run.json``),
the environment it ran in, and the log of the jobs it submitted (``jobs.jsonl``);
the ref ``experiments/<id>/current`` names an experiment's current run (see
``spec/workspace.md``). The experiment writes runs through :class:`RunStore`; the
listings, the monitors, ``experiments sync`` and orphans read them through it.
"""

from __future__ import annotations

import re
import time
from typing import Any, NamedTuple

from xpm import codec, layout, state
from xpm.errors import XpmError
from xpm.schema import EnvironmentRecord, JobSubmitted, RunRecord, RunSpec
from xpm.store.index import JobKey
from xpm.store.log import EventLog
from xpm.store.refs import RefStore
from xpm.workspace import Workspace

__all__ = [
    "RunStore",
    "RunJobs",
    "UnknownExperiment",
    "UnknownRun",
    "AmbiguousRun",
    "MissingRecord",
    "TagTaken",
    "UnknownTag",
    "BadTagName",
    "run_order",
    "RESERVED_REFS",
]

#: Run references that are not run ids: the newest and the oldest run
RESERVED_REFS = ("latest", "oldest")
#: ``REF~N``: the Nth run before REF (``~N``: before the latest)
_BEFORE = re.compile(r"^(.*)~([0-9]+)$")
#: What a run id looks like (local start time); a tag may not look like one
_RUN_ID = re.compile(r"^[0-9]{8}_[0-9]{6}(\.[0-9]+)?$")


class UnknownExperiment(XpmError):
    """An experiment id with no run in the workspace."""

    def __init__(self, experiment_id: str, location: str):
        self.experiment_id = experiment_id
        super().__init__(f"no experiment {experiment_id!r} in the workspace {location}")


class UnknownRun(XpmError):
    """A run reference that names no run of the experiment."""

    def __init__(self, experiment_id: str, reference: str, reason: str = ""):
        self.experiment_id = experiment_id
        self.reference = reference
        super().__init__(
            reason or f"no run {reference!r} of the experiment {experiment_id} "
            "(give a run id or a unique prefix, latest, oldest, a tag, or ~N)"
        )


class AmbiguousRun(XpmError):
    """A run reference that names several runs (a prefix of several run ids, or a tag and a prefix)."""

    def __init__(self, experiment_id: str, reference: str, candidates: list[str]):
        self.experiment_id = experiment_id
        self.reference = reference
        self.candidates = candidates
        shown = ", ".join(candidates[:5]) + (", ..." if len(candidates) > 5 else "")
        super().__init__(f"{reference!r} names several runs of {experiment_id}: {shown}")


class MissingRecord(XpmError):
    """A run folder without its ``run.json`` (lost, or the run folder is not one)."""

    def __init__(self, where: str):
        self.where = where
        super().__init__(f"{where}: missing (a damaged run folder)")


class TagTaken(XpmError):
    """``experiments tag`` of a name that already names another run (without ``--force``)."""

    def __init__(self, experiment_id: str, name: str, run_id: str):
        self.experiment_id, self.name, self.run_id = experiment_id, name, run_id
        super().__init__(f"the tag {name!r} of {experiment_id} names the run {run_id}: use --force to move it")


class UnknownTag(XpmError):
    """A tag that names no run of the experiment."""

    def __init__(self, experiment_id: str, name: str):
        self.experiment_id, self.name = experiment_id, name
        super().__init__(f"no tag {name!r} for the experiment {experiment_id}")


class BadTagName(XpmError):
    """A tag name that cannot be one (a run reference of its own, or not a valid name)."""

    def __init__(self, name: str, reason: str):
        self.name = name
        super().__init__(f"invalid tag name {name!r}: {reason}")


def run_order(run_id: str) -> tuple[str, int]:
    """Sort key of run ids (they sort by time); ``20261204_101500.2`` comes after ``20261204_101500.1``
    and before ``20261204_101500.10``."""
    base, _, n = run_id.partition(".")
    return (base, int(n) if n.isdigit() else 0)


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

    def write_spec(self, experiment_id: str, run_id: str, spec: RunSpec) -> None:
        """Writes what a run was asked to do and with which code (its blobs are stored already)."""
        self.workspace.write_atomic(layout.run_spec(experiment_id, run_id), codec.encode(spec))

    def jobs_log(self, experiment_id: str, run_id: str) -> EventLog:
        """The log of the jobs a run submitted (``jobs.jsonl``)."""
        return EventLog(self.workspace, layout.run_jobs(experiment_id, run_id))

    def append_submitted(self, experiment_id: str, run_id: str, event: JobSubmitted) -> None:
        """Records that a run submitted a job (with the tags it gave it)."""
        self.jobs_log(experiment_id, run_id).append(event)

    def set_current(self, experiment_id: str, run_id: str) -> None:
        """Makes ``run_id`` the current run of the experiment."""
        RefStore(self.workspace).set(layout.current_run_ref(experiment_id), run_id)

    def remove_run(self, experiment_id: str, run_id: str, *, ended: bool = False) -> None:
        """Deletes a run's folder: its records only (the jobs it submitted stay).

        ``ended``: the caller checked that the run, if recorded as running, has ended (its process is gone).

        Raises:
            XpmError: the run is the experiment's current run, is still running, or is tagged.
        """
        if self.current(experiment_id) == run_id:
            raise XpmError(f"{experiment_id}/{run_id} is the current run of the experiment: it is kept")
        record = self.record(experiment_id, run_id)
        if record is not None and record.status == state.RUN_RUNNING and not ended:
            raise XpmError(f"{experiment_id}/{run_id} is running: it is kept")
        named = self.tags_by_run(experiment_id).get(run_id)
        if named:
            raise XpmError(f"{experiment_id}/{run_id} is tagged ({', '.join(named)}): it is kept")
        self.workspace.remove_run_folder(experiment_id, run_id)

    # --- reading -----------------------------------------------------------------------------

    def experiment_ids(self) -> list[str]:
        """The experiments of the workspace: folders under ``experiments/`` with a valid name."""
        return [name for name in self.workspace.listdir(layout.EXPERIMENTS) if layout.is_name(name)]

    def run_ids(self, experiment_id: str) -> list[str]:
        """The runs of an experiment, oldest first (run ids sort by time)."""
        ws = self.workspace
        folder = layout.experiment_dir(experiment_id)
        runs = [run for run in ws.listdir(folder) if layout.is_name(run) and ws.isdir(f"{folder}/{run}")]
        return sorted(runs, key=run_order)

    def run_ids_or_fail(self, experiment_id: str) -> list[str]:
        """The runs of an experiment, oldest first.

        Raises:
            UnknownExperiment: the experiment has no run (or its id is not valid).
        """
        runs = self.run_ids(experiment_id) if layout.is_name(experiment_id) else []
        if not runs:
            raise UnknownExperiment(experiment_id, self.workspace.location)
        return runs

    def resolve(self, experiment_id: str, reference: str) -> str:
        """The run id a reference names: a run id or a unique prefix of one, ``latest``, ``oldest``,
        a tag, and any of them followed by ``~N`` (the Nth run before it; ``~N`` alone: before the latest).

        Raises:
            UnknownExperiment: the experiment has no run.
            UnknownRun: the reference names no run (or goes back past the oldest).
            AmbiguousRun: it names several.
        """
        runs = self.run_ids_or_fail(experiment_id)
        before = _BEFORE.match(reference)
        base, back = (before.group(1) or "latest", int(before.group(2))) if before else (reference, 0)
        run_id = self._resolve_base(experiment_id, base, runs)
        position = runs.index(run_id) - back
        if position < 0:
            raise UnknownRun(experiment_id, reference,
                             f"{reference!r}: {experiment_id} has only {runs.index(run_id)} run(s) before {run_id}")
        return runs[position]

    def _resolve_base(self, experiment_id: str, base: str, runs: list[str]) -> str:
        if base == "latest":
            return runs[-1]
        if base == "oldest":
            return runs[0]
        if base in runs:
            return base
        tagged = self.tags(experiment_id).get(base) if layout.is_name(base) else None
        prefixed = [run for run in runs if run.startswith(base)] if base else []
        if tagged is not None and prefixed:
            raise AmbiguousRun(experiment_id, base, [f"tag {base} ({tagged})", *prefixed])
        if tagged is not None:
            if tagged not in runs:
                raise UnknownRun(experiment_id, base, f"the tag {base!r} names the run {tagged}, which is gone")
            return tagged
        if len(prefixed) > 1:
            raise AmbiguousRun(experiment_id, base, prefixed)
        if not prefixed:
            raise UnknownRun(experiment_id, base)
        return prefixed[0]

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

    def load_record(self, experiment_id: str, run_id: str) -> RunRecord:
        """A run's record.

        Raises:
            MissingRecord: the run folder has no ``run.json``.
            SerializationError: it cannot be read (the message names the file).
        """
        ws = self.workspace
        rel = layout.run_record(experiment_id, run_id)
        data = ws.read_optional(rel)
        if data is None:
            raise MissingRecord(ws.describe(rel))
        return codec.decode_record(data, RunRecord, ws.describe(rel))

    def spec(self, experiment_id: str, run_id: str) -> RunSpec | None:
        """What a run recorded of its spec; None for a run of an xpm that recorded none.

        Raises:
            SerializationError: ``spec.json`` cannot be read (the message names it).
        """
        return self._optional(layout.run_spec(experiment_id, run_id), RunSpec)

    def blob_digests(self, experiment_id: str, run_id: str) -> list[str]:
        """The blobs a run's spec names (its sources, then its patches): what a copy of the run needs.

        Raises:
            SerializationError: ``spec.json`` cannot be read.
        """
        spec = self.spec(experiment_id, run_id)
        if spec is None:
            return []
        named = [source.digest for source in spec.sources]
        named += [repo.patch for repo in spec.repositories if repo.patch]
        return list(dict.fromkeys(named))

    def environment(self, experiment_id: str, run_id: str) -> EnvironmentRecord | None:
        """The environment a run recorded (None when it has none).

        Raises:
            SerializationError: ``environment.json`` cannot be read (the message names it).
        """
        return self._optional(layout.run_environment(experiment_id, run_id), EnvironmentRecord)

    def _optional(self, rel: str, cls: Any) -> Any:
        data = self.workspace.read_optional(rel)
        return None if data is None else codec.decode_record(data, cls, self.workspace.describe(rel))

    # --- tags: refs under refs/tags/<experiment-id>/ ---------------------------------------------

    def tags(self, experiment_id: str) -> dict[str, str]:
        """The tags of an experiment's runs: name to run id, by name.

        Raises:
            SerializationError: a tag's ref cannot be read (which run it protects is unknown).
        """
        refs = RefStore(self.workspace)
        prefix = f"{layout.RUN_TAGS}/{experiment_id}"
        found = {}
        for name in refs.names(prefix):
            value = refs.value(name)
            if value is not None:
                found[name[len(prefix) + 1:]] = value
        return found

    def tags_by_run(self, experiment_id: str) -> dict[str, list[str]]:
        """The tags of an experiment's runs by run id (each run's names sorted): :meth:`tags` turned around.

        Raises:
            SerializationError: a tag's ref cannot be read.
        """
        by_run: dict[str, list[str]] = {}
        for name, run_id in sorted(self.tags(experiment_id).items()):
            by_run.setdefault(run_id, []).append(name)
        return by_run

    def tag(self, experiment_id: str, run_id: str, name: str, *, force: bool = False) -> str | None:
        """Makes the tag ``name`` name the run ``run_id`` (compare-and-swap); returns the run it named before.

        Raises:
            BadTagName: ``name`` is not a valid name, or reads as a run reference.
            TagTaken: the tag names another run, and ``force`` is not given.
        """
        if not layout.is_name(name):
            raise BadTagName(name, "use letters, digits, '_', '-' and '.'")
        if name in RESERVED_REFS or _RUN_ID.match(name) or name in self.run_ids(experiment_id):
            raise BadTagName(name, "it reads as a run reference (latest, oldest, a run id)")
        refs = RefStore(self.workspace)
        ref = layout.run_tag_ref(experiment_id, name)
        while True:
            old = refs.value(ref)
            if old == run_id:
                return old
            if old is not None and not force:
                raise TagTaken(experiment_id, name, old)
            if refs.set_if_equals(ref, old, run_id):
                return old
            # Another process moved the tag meanwhile: decide again on what it wrote.

    def untag(self, experiment_id: str, name: str) -> str:
        """Removes a tag; returns the run it named.

        Raises:
            UnknownTag: there is no such tag.
        """
        refs = RefStore(self.workspace)
        ref = layout.run_tag_ref(experiment_id, name)
        while True:
            old = refs.value(ref) if layout.is_name(name) else None
            if old is None:
                raise UnknownTag(experiment_id, name)
            if refs.remove_if_equals(ref, old):
                return old

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
