"""Rebuilding derived data (``experiments sync``) and checking a workspace (``workspace check``).

Both read the files directly and never delete a job folder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from xpm import codec, layout, state
from xpm.errors import ClassImportError, XpmError
from xpm.ids import identifier as compute_identifier
from xpm.locks import describe_owner, host_pid_ended, is_stale, read_owner
from xpm.schema import RECORD_VERSION, JobStateChanged, JobStateRecord, JobSubmitted, ParamsFile, RunRecord
from xpm.serialize import loads
from xpm.sshworkspace import SSHWorkspace
from xpm.store.index import IndexedJob, JobIndex
from xpm.store.jobs import JobStore, decode_state
from xpm.store.log import EventLog, LogRead
from xpm.store.refs import RefStore
from xpm.store.runs import RunStore
from xpm.store.summaries import RunCounts
from xpm.workspace import Workspace


@dataclass
class Problem:
    """One problem found in a workspace: where, and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class SyncReport:
    jobs: int = 0
    fixed: list[str] = field(default_factory=list)


def _tags_from_runs(
    ws: Workspace, problems: list[Problem] | None = None
) -> dict[tuple[str, str], dict[str, Any]]:
    """The tags of every submitted job, from the runs' jobs.jsonl (damaged lines go to ``problems``)."""
    tags: dict[tuple[str, str], dict[str, Any]] = {}
    runs = RunStore(ws)
    for xp, run in runs.run_folders():
        rel = layout.run_jobs(xp, run)
        read = runs.jobs_log(xp, run).read()
        if problems is not None:
            problems.extend(_log_problems(ws, rel, read))
        for event in read.events:
            if isinstance(event, JobSubmitted):
                key = (event.task_id, event.identifier)
                tags[key] = {**tags.get(key, {}), **event.tags}
    return tags


def _job_entry(
    ws: Workspace,
    task_id: str,
    identifier: str,
    tags: dict[str, Any],
    problems: list[Problem] | None,
    damaged: set[tuple[str, str]] | None = None,
) -> IndexedJob:
    """The state of one job folder, from its state record (a job with none is unscheduled);
    a job whose record is damaged goes to ``damaged`` (for sync to repair)."""
    rel = layout.job_state(task_id, identifier)
    known, reason, updated = state.UNSCHEDULED, None, ws.mtime(layout.job_dir(task_id, identifier)) or 0.0
    if ws.isdir(rel):
        if damaged is not None:
            damaged.add((task_id, identifier))
        if problems is not None:
            problems.append(Problem(ws.describe(rel), "a folder, not a state record (experiments sync repairs it)"))
        return IndexedJob(task_id, identifier, known, reason, tags, updated)
    data = ws.read_optional(rel)
    if data is not None:
        try:
            record = decode_state(data, ws.describe(rel))
            known, reason, updated = record.state, record.failure_reason, record.updated_at
            if problems is not None and (record.task_id, record.identifier) != (task_id, identifier):
                problems.append(Problem(ws.describe(rel), "names another job"))
        except XpmError as exc:
            if damaged is not None:
                damaged.add((task_id, identifier))
            if problems is not None:
                problems.append(Problem(ws.describe(rel), f"unreadable ({exc})"))
    return IndexedJob(task_id, identifier, known, reason, tags, updated)


def _disk_jobs(ws: Workspace, damaged: set[tuple[str, str]] | None = None) -> dict[tuple[str, str], IndexedJob]:
    """The state of every job folder, from its files (the jobs whose record is damaged go to ``damaged``)."""
    tags = _tags_from_runs(ws)
    return {
        (t, i): _job_entry(ws, t, i, tags.get((t, i), {}), None, damaged)
        for t, i in ws.iter_job_dirs()
        if layout.is_task_id(t) and layout.is_identifier(i)
    }


def sync(ws: Workspace) -> SyncReport:
    """Rebuilds the job index from the job folders and repairs dangling refs.

    Returns:
        What was fixed: index entries that were missing, stale or pointing at no
        job folder; current-run refs pointing at a missing run.
    """
    report = SyncReport()
    for rel in (layout.JOB_INDEX, layout.JOB_INDEX_SNAPSHOT):
        if ws.isdir(rel):
            aside = _move_aside(ws, rel)
            report.fixed.append(f"{rel}: a folder where the index belongs (moved to {aside}, index rebuilt)")
    index = JobIndex(ws)
    indexed = index.load(full=True)
    damaged: set[tuple[str, str]] = set()
    disk = _disk_jobs(ws, damaged)
    # Only the damaged records are looked at again, under their job's lock.
    for key in sorted(damaged):
        fixed = _repair_state(ws, *key)
        if fixed:
            report.fixed.append(fixed)
            disk[key] = _job_entry(ws, *key, disk[key].tags, None)
    report.jobs = len(disk)
    for key, job in sorted(disk.items()):
        known = indexed.jobs.get(key)
        name = f"{key[0]}/{key[1]}"
        if known is None:
            report.fixed.append(f"{name}: missing from the index (added as {job.state})")
        elif known.state != job.state or known.failure_reason != job.failure_reason:
            report.fixed.append(f"{name}: stale state {known.state} in the index (now {job.state})")
        elif known.tags != job.tags:
            report.fixed.append(f"{name}: stale tags in the index")
    for key in sorted(set(indexed.jobs) - set(disk)):
        report.fixed.append(f"{key[0]}/{key[1]}: in the index but has no job folder (removed from the index)")
    if indexed.problems:
        report.fixed.append(f"{layout.JOB_INDEX}: {len(indexed.problems)} damaged line(s) dropped")
    if report.fixed or indexed.lines != len(disk):
        index.rewrite(disk.values())
    report.fixed.extend(_rebuild_summaries(ws, disk))
    refs = RefStore(ws)
    folders: list[tuple[str, str]] | None = None
    for name in refs.names(layout.EXPERIMENTS):
        experiment_id = name.split("/")[1]
        try:
            run_id, unreadable = refs.value(name), False
        except XpmError:
            run_id, unreadable = None, True
        if not unreadable and (run_id is None or ws.isdir(layout.run_dir(experiment_id, run_id))):
            continue  # gone meanwhile, or pointing at its run
        if folders is None:  # listed once, and only when a ref needs repairing
            folders = RunStore(ws).run_folders()
        runs = sorted(run for xp, run in folders if xp == experiment_id)
        if run_id is None:
            # A damaged ref: it only says which run is the latest, which the run folders tell.
            if runs:
                refs.set(name, runs[-1])
                report.fixed.append(f"refs/{name}: unreadable (now {runs[-1]})")
            else:
                aside = _move_aside(ws, layout.ref(name))
                report.fixed.append(f"refs/{name}: unreadable, and no run left (moved to {aside})")
        elif runs:
            if refs.set_if_equals(name, run_id, runs[-1]):
                report.fixed.append(f"refs/{name}: pointed at missing run {run_id} (now {runs[-1]})")
        elif refs.remove_if_equals(name, run_id):
            report.fixed.append(f"refs/{name}: pointed at missing run {run_id} (removed: no run left)")
    return report


def _rebuild_summaries(ws: Workspace, jobs: dict[tuple[str, str], IndexedJob]) -> list[str]:
    """Writes every run's summary again from ``jobs``, what the index now holds; says which ones were
    wrong (a stale one is the normal end of a cache, not a fix)."""
    counts = RunCounts(ws, jobs)
    fixed = []
    for experiment_id, run_id in RunStore(ws).run_folders():
        status, before = counts.read(experiment_id, run_id)
        after = counts(experiment_id, run_id, rebuild=True)
        rel = ws.describe(layout.run_summary(experiment_id, run_id))
        if status == "damaged":
            fixed.append(f"{rel}: damaged (rewritten)")
        elif before is not None and dict(before.states) != after:
            fixed.append(f"{rel}: counts differed from the index (rewritten)")
    return fixed


def _summary_problems(ws: Workspace) -> list[Problem]:
    """Run summaries that are damaged, or that hold but disagree with the index."""
    counts = RunCounts(ws)
    problems = []
    for experiment_id, run_id in RunStore(ws).run_folders():
        status, summary = counts.read(experiment_id, run_id)
        where = ws.describe(layout.run_summary(experiment_id, run_id))
        if status == "damaged":
            problems.append(Problem(where, "damaged (computed again when read; experiments sync rewrites it)"))
        elif summary is not None and dict(summary.states) != counts.compute(experiment_id, run_id):
            problems.append(Problem(where, "its counts differ from the index (experiments sync rewrites it)"))
    return problems


def _move_aside(ws: Workspace, rel: str) -> str:
    """Renames a damaged file or folder beside itself (``<name>.damaged-<time>``): repairs delete nothing."""
    aside = f"{rel}.damaged-{time.strftime('%Y%m%d-%H%M%S')}"
    n = 0
    while ws.exists(aside + (f".{n}" if n else "")):
        n += 1
    aside += f".{n}" if n else ""
    ws.rename(rel, aside)
    return aside


def _repair_state(ws: Workspace, task_id: str, identifier: str) -> str | None:
    """Rebuilds the state record of a job from its event log, when the record is damaged (or a
    folder) and the log says the job ended; what was fixed, or None.

    A job whose record is damaged and whose log does not say it ended is left as it is: only
    its own process knows (``workspace check`` reports it).
    """
    store = JobStore(ws)
    rel = layout.job_state(task_id, identifier)
    with store.lock(task_id, identifier):
        if not ws.exists(rel):
            return None
        if not ws.isdir(rel):
            try:
                decode_state(ws.read_bytes(rel), ws.describe(rel))
                return None
            except XpmError:
                pass
        ended = [e for e in store.events(task_id, identifier).read().events if isinstance(e, JobStateChanged)]
        if not ended or ended[-1].state not in state.FINAL:
            return None
        last = ended[-1]
        aside = _move_aside(ws, rel)
        record = JobStateRecord(
            version=RECORD_VERSION, task_id=task_id, identifier=identifier, state=last.state,
            failure_reason=last.failure_reason, updated_at=last.ts,
        )
        ws.write_atomic(rel, codec.encode(record))
    return f"{task_id}/{identifier}: damaged state record (moved to {aside}), rebuilt from its events: {last.state}"


def check(ws: Workspace, *, recompute: bool = True) -> list[Problem]:
    """Checks every job folder, record, log and lock; returns the problems found.

    With ``recompute``, each job's identifier is recomputed from its params.json
    (importing the task classes) and compared with its folder name; it is always
    compared with the identifier recorded in the file.
    """
    problems: list[Problem] = []
    run_problems: list[Problem] = []
    #: classes that could not be imported, with why and the jobs left unchecked: said once each
    unimported: dict[str, tuple[str, int]] = {}
    tags = _tags_from_runs(ws, run_problems)
    disk: dict[tuple[str, str], IndexedJob] = {}
    for task_id, identifier in ws.iter_job_dirs():
        folder = layout.job_dir(task_id, identifier)
        where = ws.describe(folder)
        if not (layout.is_task_id(task_id) and layout.is_identifier(identifier)):
            problems.append(Problem(where, "not a job folder name (task-id/64 hex characters)"))
            continue
        params = ws.read_optional(layout.job_params(task_id, identifier))
        if params is None:
            problems.append(Problem(where, "no params.json"))
        else:
            try:
                recorded = codec.params_identifier(msgspec.json.decode(params, type=ParamsFile))
                if recorded is None:
                    problems.append(Problem(f"{where}/params.json", "no task object"))
                elif recorded != identifier:
                    problems.append(
                        Problem(where, f"the folder name differs from the identifier {recorded} in params.json")
                    )
                elif recompute:
                    problems.extend(_recompute(ws, task_id, identifier, params, unimported))
            except (msgspec.DecodeError, TypeError, KeyError) as exc:
                problems.append(Problem(f"{where}/params.json", f"unreadable ({exc})"))
        key = (task_id, identifier)
        disk[key] = _job_entry(ws, task_id, identifier, tags.get(key, {}), problems)
        problems.extend(_check_log(ws, layout.job_events(task_id, identifier)))
    for name, (reason, jobs) in sorted(unimported.items()):
        problems.append(Problem(ws.describe(layout.JOBS), f"the identifiers of {jobs} job(s) could not be "
                                f"recomputed: cannot import {name} ({reason}); their other files were checked"))
    problems.extend(run_problems)
    if not ws.isdir(layout.JOB_INDEX):
        problems.extend(_check_log(ws, layout.JOB_INDEX))
    problems.extend(_check_index(ws, disk))
    problems.extend(_check_locks(ws))
    problems.extend(_check_runs_and_refs(ws))
    problems.extend(_summary_problems(ws))
    for task_id in ws.listdir(layout.JOBS):
        if not ws.isdir(layout.task_dir(task_id)):
            problems.append(Problem(ws.describe(layout.task_dir(task_id)), "a file where a task's folder belongs"))
    return problems


def _check_runs_and_refs(ws: Workspace) -> list[Problem]:
    """Run folders without their log or with a damaged record; refs that are damaged or point nowhere."""
    problems = []
    runs = RunStore(ws)
    for experiment_id, run_id in runs.run_folders():
        rel = layout.run_record(experiment_id, run_id)
        data = ws.read_optional(rel)
        if data is None:
            continue  # an experiment that stopped before writing it: nothing damaged
        if not ws.exists(layout.run_jobs(experiment_id, run_id)):
            # Created empty with the record (spec/workspace.md): it was lost.
            problems.append(Problem(ws.describe(layout.run_jobs(experiment_id, run_id)),
                                    "missing: the jobs this run submitted are unknown"))
        try:
            codec.decode_record(data, RunRecord, ws.describe(rel))
        except XpmError as exc:
            problems.append(Problem(ws.describe(rel), f"unreadable ({exc})"))
    refs = RefStore(ws)
    for name in refs.names(layout.EXPERIMENTS):
        try:
            target = refs.value(name)
        except XpmError as exc:
            problems.append(Problem(ws.describe(layout.ref(name)), f"unreadable ({exc}; experiments sync rewrites it)"))
            continue
        experiment_id = name.split("/")[1]
        if target is not None and not ws.isdir(layout.run_dir(experiment_id, target)):
            problems.append(Problem(ws.describe(layout.ref(name)),
                                    f"points at the missing run {target} (experiments sync repairs it)"))
    return problems


def _recompute(
    ws: Workspace, task_id: str, identifier: str, params: bytes, unimported: dict[str, tuple[str, int]]
) -> list[Problem]:
    """The identifier recomputed from ``params``; a class that cannot be imported (the task's
    modules are not installed where the check runs) is counted in ``unimported``, not reported
    once per job."""
    where = ws.describe(layout.job_dir(task_id, identifier))
    # Paths inside the job folder never enter identifiers; any folder resolves them.
    jobpath = ws.local_path(layout.job_dir(task_id, identifier)) or Path(layout.job_dir(task_id, identifier))
    try:
        config = loads(params, jobpath=jobpath, source=f"{where}/params.json")
    except ClassImportError as exc:
        reason, jobs = unimported.get(exc.name, (exc.reason, 0))
        unimported[exc.name] = (reason, jobs + 1)
        return []
    except XpmError as exc:
        return [Problem(where, f"identifier not recomputed: {exc}")]
    actual = compute_identifier(config)
    if actual != identifier:
        return [Problem(where, f"the parameters give the identifier {actual}, not the folder name")]
    return []


def _check_log(ws: Workspace, rel: str) -> list[Problem]:
    return _log_problems(ws, rel, EventLog(ws, rel).read())


def _log_problems(ws: Workspace, rel: str, read: LogRead) -> list[Problem]:
    problems = [Problem(ws.describe(rel), f"byte {p.offset}: {p.reason}") for p in read.problems]
    if read.partial:
        problems.append(Problem(ws.describe(rel), f"byte {read.offset}: incomplete last line"))
    return problems


def _check_index(ws: Workspace, disk: dict[tuple[str, str], IndexedJob]) -> list[Problem]:
    damaged = [rel for rel in (layout.JOB_INDEX, layout.JOB_INDEX_SNAPSHOT) if ws.isdir(rel)]
    if damaged:
        return [Problem(ws.describe(rel), "a folder where the index belongs (experiments sync repairs it)")
                for rel in damaged]
    if not ws.exists(layout.JOB_INDEX):
        if any(True for _ in ws.iter_job_dirs()):
            return [Problem(ws.describe(layout.JOB_INDEX), "missing (run experiments sync)")]
        return []
    indexed = JobIndex(ws).load(full=True).jobs
    problems = []
    for key in sorted(set(disk) | set(indexed)):
        name = f"{key[0]}/{key[1]}"
        if key not in indexed:
            problems.append(Problem(ws.describe(layout.JOB_INDEX), f"{name} is missing (run experiments sync)"))
        elif key not in disk:
            problems.append(Problem(ws.describe(layout.JOB_INDEX), f"{name} has no job folder"))
        elif indexed[key].state != disk[key].state:
            problems.append(
                Problem(ws.describe(layout.JOB_INDEX),
                        f"{name} is {indexed[key].state}, its folder says {disk[key].state}")
            )
    return problems


def _check_locks(ws: Workspace) -> list[Problem]:
    problems = []
    candidates = []

    def walk(rel: str) -> None:
        for entry in ws.listdir(rel):
            child = f"{rel}/{entry}"
            if entry.endswith(".lock"):
                candidates.append(child)
            elif ws.isdir(child):
                walk(child)

    walk(layout.LOCKS)
    candidates.extend(layout.job_lock(t, i) for t, i in ws.iter_job_dirs() if ws.isdir(layout.job_lock(t, i)))
    for rel in candidates:
        if not ws.isdir(rel):
            continue  # an OS lock file: released by the OS when its owner dies
        owner = read_owner(ws, rel)
        if isinstance(ws, SSHWorkspace) and not (owner is not None and host_pid_ended(ws, owner)):
            # Locks are files there (taken on the host): a lock folder is an older xpm's, and blocks them.
            message = f"a lock folder where a lock file belongs, {describe_owner(owner)}"
            problems.append(Problem(ws.describe(rel), f"{message}: remove it once its owner is gone"))
        elif owner is not None and (is_stale(owner) or isinstance(ws, SSHWorkspace)):
            problems.append(Problem(ws.describe(rel), f"stale lock of dead process {owner.pid} on {owner.host}"))
    return problems
