"""``experimaestro experiments history|show|diff|tag|untag|tags|prune``: runs as commits.

Each run of an experiment records its spec (``spec.json``: configuration, sources,
git commits), its environment and the jobs it submitted; these commands read them
back, compare two runs, name runs with tags and remove old runs.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable, TypeVar

import click

from xpm import state
from xpm.cli.common import emit, emit_json, group_workspace, warn, workspace_options
from xpm.errors import XpmError

__all__ = ["history", "show", "diff", "tag", "untag", "tags", "prune", "history_prune"]

#: Characters of a commit hash that listings show
SHORT_COMMIT = 10


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def _duration(started: float | None, ended: float | None, status: str | None) -> str:
    if not started:
        return "-"
    if ended is None:
        return state.RUN_RUNNING if status == state.RUN_RUNNING else "-"
    seconds = max(0, int(round(ended - started)))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _commit(commit: str | None, dirty: bool) -> str:
    return "-" if commit is None else commit[:SHORT_COMMIT] + ("+dirty" if dirty else "")


@click.command("history")
@click.argument("experiment_id", metavar="XP")
@workspace_options
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array, newest run first.")
def history(experiment_id: str, workspace_id: str | None, workdir: str | None, xpm_config_dir: str | None,
            as_json: bool) -> None:
    """List the runs of an experiment, newest first.

    One line per run: run id, status, jobs done/in error/total, duration, tags,
    the git commit of its code (+dirty: uncommitted changes), host.

    \b
    Example:
      experimaestro experiments --workdir W history demo
    """
    from xpm.history import run_history

    lines = run_history(group_workspace(workspace_id, workdir, xpm_config_dir), experiment_id)
    if as_json:
        emit_json([line._asdict() for line in lines])
        return
    rows = [("RUN", "STATUS", "JOBS", "DURATION", "TAGS", "COMMIT", "HOST")]
    for line in lines:
        rows.append((
            line.run_id,
            "stale" if line.stale else line.status or "damaged",
            f"{line.done}/{line.errors}/{line.total}",
            _duration(line.started_at, line.ended_at, line.status),
            ",".join(line.tags) or "-",
            _commit(line.commit, line.dirty),
            line.hostname or "-",
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    emit(" ".join(cell.ljust(width) for cell, width in zip(row, widths)) + " " + row[-1] for row in rows)
    warn(f"{line.run_id}: {problem}" for line in lines for problem in line.problems)


@click.command("show")
@click.argument("experiment_id", metavar="XP")
@click.argument("run", metavar="[RUN]", default="latest")
@workspace_options
@click.option("--patch", is_flag=True, help="Also print the uncommitted changes (git diff) of each repository.")
@click.option("--source", metavar="NAME", help="Print only the recorded content of this source file (a path or "
              "its end, e.g. experiment.yaml).")
@click.option("--json", "as_json", is_flag=True, help="Print the run's records as one JSON object.")
def show(experiment_id: str, run: str, workspace_id: str | None, workdir: str | None, xpm_config_dir: str | None,
         patch: bool, source: str | None, as_json: bool) -> None:
    """Show what a run did: its spec, environment, code version and jobs.

    RUN is a run id (or a unique prefix), latest (the default), oldest, a tag,
    or ~N (the Nth run before the latest; also RUN~N).

    \b
    Examples:
      experimaestro experiments --workdir W show demo
      experimaestro experiments --workdir W show demo ~1 --patch
      experimaestro experiments --workdir W show demo baseline --source experiment.yaml
    """
    from xpm.query import SHORT_ID, indexed_jobs, short_name, state_text, tags_text
    from xpm.store.blobs import BlobStore
    from xpm.store.runs import RunStore

    ws = group_workspace(workspace_id, workdir, xpm_config_dir)
    store = RunStore(ws)
    run_id = store.resolve(experiment_id, run)
    record = store.load_record(experiment_id, run_id)
    spec = store.spec(experiment_id, run_id)
    if source is not None:
        _print_source(ws, experiment_id, run_id, spec, source)
        return
    env = store.environment(experiment_id, run_id)
    named = store.tags_by_run(experiment_id).get(run_id, [])
    jobs = store.read_jobs(experiment_id, run_id)
    indexed = indexed_jobs(ws)
    states = [indexed[key].state if key in indexed else state.UNSCHEDULED for key in jobs.order]
    if as_json:
        import msgspec

        emit_json({
            "run": msgspec.to_builtins(record),
            "spec": msgspec.to_builtins(spec),
            "environment": msgspec.to_builtins(env),
            "tags": named,
            "jobs": [{"task_id": key[0], "identifier": key[1], "state": job_state, "tags": jobs.tags.get(key) or {}}
                     for key, job_state in zip(jobs.order, states)],
        })
        return
    counts = ", ".join(f"{states.count(s)} {s}" for s in dict.fromkeys(states)) or "none"
    lines = [
        f"run {run_id} of {experiment_id}" + (f" (tags: {', '.join(named)})" if named else ""),
        f"status:   {record.status}; jobs: {len(jobs.order)} ({counts})",
        f"started:  {_when(record.started_at)}   ended: {_when(record.ended_at)}   "
        f"duration: {_duration(record.started_at, record.ended_at, record.status)}",
        f"host:     {record.hostname}, pid {record.pid}",
    ]
    if record.command:
        lines.append(f"command:  {' '.join(record.command)}")
    if record.cwd:
        lines.append(f"cwd:      {record.cwd}")
    if env is not None:
        lines.append(f"python:   {env.python}, {len(env.packages)} packages")
    if spec is None:
        lines.append("spec:     not recorded (a run of an older xpm)")
    else:
        lines.append("code:" if spec.repositories else "code:     no git repository recorded")
        for repo in spec.repositories:
            extra = [f"({repo.branch})" if repo.branch else "(detached)"]
            if repo.dirty:
                extra.append("+dirty")
            if repo.untracked:
                extra.append(f"{repo.untracked} untracked file(s)")
            lines.append(f"  {repo.path}  {repo.commit}  {' '.join(extra)}")
        if spec.sources:
            lines.append("sources:")
            lines.extend(f"  {source.path}  {source.digest[:SHORT_ID]}  {source.size} B" for source in spec.sources)
        if spec.configuration is not None:
            given = f" (-c {' -c '.join(spec.overrides)})" if spec.overrides else ""
            lines.append(f"configuration{given}:")
            lines.extend("  " + line for line in json.dumps(spec.configuration, indent=2).splitlines())
        lines.extend(f"problem:  {problem}" for problem in spec.problems)
    lines.append("jobs:" if jobs.order else "jobs:     none")
    for key, job_state in zip(jobs.order, states):
        tags = tags_text(jobs.tags.get(key) or {})
        lines.append(f"  {state_text(job_state):<11} {short_name(key)}" + (f"  {tags}" if tags else ""))
    if patch and spec is not None:
        blobs = BlobStore(ws)
        for repo in spec.repositories:
            if repo.patch:
                lines.append(f"--- uncommitted changes of {repo.path} (on {repo.commit[:SHORT_COMMIT]})")
                lines.extend(blobs.get(repo.patch).decode(errors="replace").splitlines())
    emit(lines)
    if jobs.damaged:
        warn([f"{run_id}: damaged lines of jobs.jsonl skipped"])


class UnknownSource(XpmError):
    """``show --source NAME`` that names no recorded source of the run, or several."""

    def __init__(self, run_id: str, name: str, matches: list[str]):
        self.run_id, self.name, self.matches = run_id, name, matches
        found = f"several sources match: {', '.join(matches)}" if matches else "no recorded source matches"
        super().__init__(f"{name}: {found} (run {run_id}; `show` lists its sources)")


def _print_source(ws: Any, experiment_id: str, run_id: str, spec: Any, name: str) -> None:
    """Prints the recorded content of the source whose path is ``name`` or ends with ``/name``."""
    from xpm.store.blobs import BlobStore

    sources = spec.sources if spec is not None else []
    matches = [s for s in sources if s.path == name or s.path.endswith("/" + name.lstrip("/"))]
    if len(matches) != 1:
        raise UnknownSource(run_id, name, [s.path for s in matches])
    click.echo(BlobStore(ws).get(matches[0].digest), nl=False)  # bytes: written as recorded


def _value(value: Any) -> str:
    from xpm.rundiff import MISSING

    return "(not set)" if value is MISSING else json.dumps(value)


def _repository(value: Any) -> str:
    from xpm.rundiff import MISSING

    if value is MISSING:
        return "(none)"
    commit, dirty, patch = value
    return commit[:SHORT_COMMIT] + (f"+dirty ({patch[:8]})" if dirty and patch else "+dirty" if dirty else "")


@click.command("diff")
@click.argument("experiment_id", metavar="XP")
@click.argument("run_a", metavar="RUN_A")
@click.argument("run_b", metavar="[RUN_B]", default="latest")
@workspace_options
def diff(experiment_id: str, run_a: str, run_b: str, workspace_id: str | None, workdir: str | None,
         xpm_config_dir: str | None) -> None:
    """Show what changed between two runs; exit 0 if nothing did, 1 otherwise.

    Compares the configuration keys, the source files, the code's commits (and
    whether the trees were dirty), the packages, and the jobs: only in RUN_A,
    only in RUN_B, and pairs of matching jobs with the parameters that differ.
    RUN_B defaults to the latest run; runs are given as for `show`.

    \b
    Examples:
      experimaestro experiments --workdir W diff demo ~1
      experimaestro experiments --workdir W diff demo baseline latest
    """
    from xpm.paramdiff import format_difference
    from xpm.query import short_name
    from xpm.rundiff import MISSING, diff_runs
    from xpm.store.runs import RunStore

    ws = group_workspace(workspace_id, workdir, xpm_config_dir)
    store = RunStore(ws)
    left, right = store.resolve(experiment_id, run_a), store.resolve(experiment_id, run_b)
    found = diff_runs(ws, experiment_id, left, right)
    lines = [f"diff {experiment_id} {left} {right}"]
    if found.configuration or found.overrides:
        lines.append("configuration:")
        for change in found.configuration:
            if change.left is MISSING:
                lines.append(f"  + {change.key}: {_value(change.right)}")
            elif change.right is MISSING:
                lines.append(f"  - {change.key}: {_value(change.left)}")
            else:
                lines.append(f"  ~ {change.key}: {_value(change.left)} -> {_value(change.right)}")
        if found.overrides:
            lines.append(f"  -c: {' '.join(found.overrides.left) or '(none)'} -> "
                         f"{' '.join(found.overrides.right) or '(none)'}")
    if found.repositories:
        lines.append("code:")
        lines.extend(f"  {c.key}: {_repository(c.left)} -> {_repository(c.right)}" for c in found.repositories)
    if found.sources:
        lines.append("sources:")
        for change in found.sources:
            mark = "A" if change.left is MISSING else "D" if change.right is MISSING else "M"
            lines.append(f"  {mark} {change.key}")
    if found.python or found.packages:
        lines.append("packages:")
        changes = [found.python] if found.python else []
        for change in [*changes, *found.packages]:
            old = "(none)" if change.left is MISSING else change.left
            new = "(none)" if change.right is MISSING else change.right
            lines.append(f"  {change.key}: {old} -> {new}")
    if found.only_left:
        lines.append(f"jobs only in {left} ({len(found.only_left)}):")
        lines.extend(f"  - {short_name(key)}" for key in found.only_left)
    if found.only_right:
        lines.append(f"jobs only in {right} ({len(found.only_right)}):")
        lines.extend(f"  + {short_name(key)}" for key in found.only_right)
    if found.paired:
        lines.append("matching jobs that differ:")
        for pair in found.paired:
            lines.append(f"  {short_name(pair.left)} -> {short_name(pair.right)}")
            if pair.problem:
                lines.append(f"    ({pair.problem})")
            lines.extend(f"    {format_difference(d)}" for d in pair.differences)
    lines.append(f"jobs in both: {found.shared}")
    if found.same:
        lines.append("no difference")
    emit(lines)
    warn(found.notes)
    if not found.same:
        raise SystemExit(1)


@click.command("tag")
@click.argument("experiment_id", metavar="XP")
@click.argument("run", metavar="RUN")
@click.argument("name", metavar="NAME")
@workspace_options
@click.option("--force", is_flag=True, help="Move the tag if it names another run.")
def tag(experiment_id: str, run: str, name: str, workspace_id: str | None, workdir: str | None,
        xpm_config_dir: str | None, force: bool) -> None:
    """Name a run: a tagged run is never pruned. RUN as for `show`.

    \b
    Examples:
      experimaestro experiments --workdir W tag demo latest baseline
      experimaestro experiments --workdir W tag demo 20261204_101500 baseline --force
    """
    from xpm.store.runs import RunStore

    store = RunStore(group_workspace(workspace_id, workdir, xpm_config_dir))
    run_id = store.resolve(experiment_id, run)
    old = store.tag(experiment_id, run_id, name, force=force)
    if old == run_id:
        click.echo(f"{name} already names {run_id}")
    elif old is not None:
        click.echo(f"{name}: {old} -> {run_id}")
    else:
        click.echo(f"{name} -> {run_id}")


@click.command("untag")
@click.argument("experiment_id", metavar="XP")
@click.argument("name", metavar="NAME")
@workspace_options
def untag(experiment_id: str, name: str, workspace_id: str | None, workdir: str | None,
          xpm_config_dir: str | None) -> None:
    """Remove a tag (the run stays).

    \b
    Example:
      experimaestro experiments --workdir W untag demo baseline
    """
    from xpm.store.runs import RunStore

    store = RunStore(group_workspace(workspace_id, workdir, xpm_config_dir))
    store.run_ids_or_fail(experiment_id)
    click.echo(f"removed {name} (was {store.untag(experiment_id, name)})")


@click.command("tags")
@click.argument("experiment_id", metavar="XP")
@workspace_options
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object: tag name to run id.")
def tags(experiment_id: str, workspace_id: str | None, workdir: str | None, xpm_config_dir: str | None,
         as_json: bool) -> None:
    """List the tags of an experiment's runs.

    \b
    Example:
      experimaestro experiments --workdir W tags demo
    """
    from xpm.store.runs import RunStore

    store = RunStore(group_workspace(workspace_id, workdir, xpm_config_dir))
    store.run_ids_or_fail(experiment_id)
    found = store.tags(experiment_id)
    if as_json:
        emit_json(found)
    elif not found:
        click.echo(f"No tags for the experiment {experiment_id}.")
    else:
        width = max(len(name) for name in found)
        emit(f"{name:<{width}} {run_id}" for name, run_id in found.items())


def _prune(experiment_id: str, workspace: tuple[str | None, str | None, str | None], keep: int | None,
           before: str | None, after: str | None, status: str | None, perform: bool, confirm: bool) -> None:
    from xpm.history import plan_prune, remove_unreferenced_blobs, unreferenced_after
    from xpm.store.runs import RunStore

    ws = group_workspace(*workspace)
    plan = plan_prune(ws, experiment_id, keep=keep, before=before, after=after, status=status)
    store = RunStore(ws)
    lines = [f"kept: {run} ({why})" for run, why in plan.kept]
    if not plan.remove:
        emit([*lines, "No runs to remove."])
        return
    statuses = {}
    for run in plan.remove:
        record = store.record(experiment_id, run)
        statuses[run] = "?" if record is None else "running, its process ended" if run in plan.stale else record.status
    orphans = unreferenced_after(ws, {(experiment_id, run) for run in plan.remove})
    where = ws.location
    if not perform:
        lines.append("would remove (dry run; --perform removes them):")
        lines.extend(f"  {run} ({statuses[run]})" for run in plan.remove)
        if orphans:
            lines.append(f"{len(orphans)} job(s) would then be referenced by no run: "
                         f"`experimaestro orphans {where}` would list them")
        emit(lines)
        return
    emit([*lines, *(f"removing {run} ({statuses[run]})" for run in plan.remove)])
    if confirm and not click.confirm(f"Remove {len(plan.remove)} run(s)?"):
        click.echo("Aborted: nothing removed.")
        return
    failed = 0
    for run in plan.remove:
        try:
            store.remove_run(experiment_id, run, ended=run in plan.stale)
        except (XpmError, OSError) as exc:
            failed += 1
            click.echo(f"kept {run}: {exc}", err=True)
    click.echo(f"removed {len(plan.remove) - failed} run(s)")
    try:
        blobs = remove_unreferenced_blobs(ws)
    except XpmError as exc:
        warn([f"stored sources kept: {exc}"])
    else:
        if blobs:
            click.echo(f"removed {len(blobs)} stored source(s) or patch(es) that no run names")
    if orphans:
        click.echo(f"{len(orphans)} job(s) are now referenced by no run: `experimaestro orphans {where}` lists them "
                   "(--clean deletes them)")
    if failed:
        raise SystemExit(1)


_STATUS = click.Choice([state.RUN_DONE, "completed", state.RUN_FAILED], case_sensitive=False)
F = TypeVar("F", bound=Callable[..., Any])


def _prune_options(fn: F) -> F:
    """The argument and options of both ``prune`` and ``history-prune`` (experimaestro's names)."""
    options = [
        click.argument("experiment_id", metavar="XP"),
        workspace_options,
        click.option("--keep", type=click.IntRange(min=0), metavar="N", help="Keep the N newest of the matching runs."),
        click.option("--before", metavar="DATE",
                     help="Only runs started before DATE (YYYYMMDD[_HHMMSS], YYYY-MM-DD...)."),
        click.option("--after", metavar="DATE", help="Only runs started after DATE."),
        click.option("--status", type=_STATUS, help="Only runs with this status (completed: done)."),
        click.option("--keep-tagged", is_flag=True, help="Keep tagged runs (always the case; for experimaestro)."),
        click.option("--dry-run", is_flag=True, help="Only list the runs."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@click.command("prune")
@_prune_options
@click.option("--perform", is_flag=True, help="Remove the runs (without it: only list them).")
def prune(experiment_id: str, workspace_id: str | None, workdir: str | None, xpm_config_dir: str | None,
          keep: int | None, before: str | None, after: str | None, status: str | None, keep_tagged: bool,
          perform: bool, dry_run: bool) -> None:
    """Remove old runs of an experiment (their records; never a job).

    Without --perform, lists what would go. The current run, running runs and
    tagged runs are never removed. The jobs that no run references any more are
    then listed by `experimaestro orphans`, and deleted by `orphans --clean`.

    \b
    Examples:
      experimaestro experiments --workdir W prune demo --keep 3
      experimaestro experiments --workdir W prune demo --status failed --perform
    """
    _prune(experiment_id, (workspace_id, workdir, xpm_config_dir), keep, before, after, status,
           perform and not dry_run, confirm=False)


@click.command("history-prune")
@_prune_options
@click.option("--force", is_flag=True, help="Do not ask for a confirmation.")
def history_prune(experiment_id: str, workspace_id: str | None, workdir: str | None, xpm_config_dir: str | None,
                  keep: int | None, before: str | None, after: str | None, status: str | None, keep_tagged: bool,
                  dry_run: bool, force: bool) -> None:
    """experimaestro's name of `prune`: removes after a confirmation (--force: without), unless --dry-run.

    \b
    Example:
      experimaestro experiments --workdir W history-prune demo --status failed --keep 2 --dry-run
    """
    _prune(experiment_id, (workspace_id, workdir, xpm_config_dir), keep, before, after, status, not dry_run,
           confirm=not force)
