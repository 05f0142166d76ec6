"""``experimaestro jobs list|kill|clean|log|path``: jobs from a shell, straight from the workspace files."""

from __future__ import annotations

import sys
from typing import Any, Callable

import click

from xpm import layout
from xpm.cli.common import (
    clean_jobs,
    emit,
    emit_json,
    group_workspace,
    remember_workspace,
    report_outcomes,
    warn,
    workspace_options,
)
from xpm.cli.completion import complete_experiment_ids, complete_job_ids
from xpm.errors import XpmError

__all__ = ["jobs"]

F = Callable[..., Any]


def selection_options(fn: F) -> F:
    """The options every command that works on several jobs takes."""
    fn = click.option("--fullpath", is_flag=True, help="Show job folders instead of task-id/identifier.")(fn)
    fn = click.option("--tags", "show_tags", is_flag=True, help="Show the tags of each job (k=v).")(fn)
    fn = click.option(
        "--filter", "filter_text", metavar="EXPR", help="Only jobs matching EXPR, e.g. '@state = \"DONE\"'."
    )(fn)
    fn = click.option("--experiment", metavar="ID", help="Only the jobs of this experiment's current run.",
                      shell_complete=complete_experiment_ids)(fn)
    return workspace_options(fn)


@click.group()
@workspace_options
@click.pass_context
def jobs(ctx: click.Context, workspace_id: str | None, workdir: str | None, xpm_config_dir: str | None) -> None:
    """Look at, kill and clean jobs.

    The workspace options can be given here or after the subcommand.

    \b
    Examples:
      experimaestro jobs --workdir ~/xp list --tags
      experimaestro jobs list --workdir ~/xp --filter '@state = "ERROR"'
    """
    remember_workspace(ctx, workspace_id, workdir, xpm_config_dir)


class Selection:
    """The jobs a command works on, and how to name them."""

    def __init__(self, workspace_id: str | None, workdir: str | None, xpm_config_dir: str | None,
                 experiment: str | None, filter_text: str | None, show_tags: bool, fullpath: bool):
        from xpm.filter import parse

        # The filter first: a typo in it is reported before the workspace is opened.
        self.where = parse(filter_text) if filter_text is not None else None
        self.ws = group_workspace(workspace_id, workdir, xpm_config_dir)
        self.experiment = experiment
        self.show_tags = show_tags
        self.fullpath = fullpath

    def jobs(self, count: int | None = None) -> list[Any]:
        from xpm.query import select_jobs

        notes: list[str] = []
        found = select_jobs(self.ws, experiment=self.experiment, where=self.where, count=count, notes=notes)
        warn(notes)
        return found

    def name(self, job: Any) -> str:
        from xpm.query import short_name, tags_text

        text = self.ws.describe(layout.job_dir(job[0], job[1])) if self.fullpath else short_name(job)
        if self.show_tags and job.tags:
            text = f"{text} {tags_text(job.tags)}"
        return text


@jobs.command("list")
@selection_options
@click.option("-c", "--count", type=click.IntRange(min=0, max=sys.maxsize), metavar="N",
              help="Show only the N most recent jobs.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array (full identifiers, states, tags).")
def list_jobs(count: int | None, as_json: bool, **options: Any) -> None:
    """List jobs, most recent first: state, task-id/identifier, tags.

    Identifiers are shortened to 12 characters; every command that takes a job
    id accepts them (or any unique prefix of 6 or more). Without --experiment,
    "recent" is the last change of state; with it, the order of submission.

    \b
    Examples:
      experimaestro jobs list -c 10
      experimaestro jobs list --filter '@state = "RUNNING"' -c 5
      experimaestro jobs list --filter 'model in ["bm25", "splade"]' --tags
      experimaestro jobs list --experiment my-xp --json
    """
    from xpm.query import state_text

    selection = Selection(**options)
    found = selection.jobs(count)
    if as_json:
        emit_json(
            [
                {
                    "job": f"{job.task_id}/{job.identifier}",
                    "task_id": job.task_id,
                    "identifier": job.identifier,
                    "state": state_text(job.state),
                    "failure_reason": job.failure_reason,
                    "tags": job.tags,
                    "updated_at": job.updated_at,
                    "path": selection.ws.describe(layout.job_dir(job.task_id, job.identifier)),
                }
                for job in found
            ]
        )
        return
    if not found:
        click.echo("No jobs found.")
        return
    emit(f"{state_text(job.state):<11} {selection.name(job)}" for job in found)


@jobs.command()
@selection_options
@click.option("--perform", is_flag=True, help="Kill the jobs (without it, only say which would be killed).")
def kill(perform: bool, **options: Any) -> None:
    """Kill running jobs (a dry run without --perform).

    Running jobs are stopped (the task gets TaskCancelled, then is killed after
    10 s); jobs waiting to start are cancelled. Both end as ERROR (cancelled).

    \b
    Examples:
      experimaestro jobs kill --filter '@state="RUNNING"'
      experimaestro jobs kill --filter '@state="RUNNING"' --perform
    """
    from xpm import state
    from xpm.control import kill as kill_jobs
    from xpm.store.jobs import JobStore

    selection = Selection(**options)
    targets = [job for job in selection.jobs() if job.state in state.KILLABLE]
    if not targets:
        emit(["No running jobs found."])
        return
    if not perform:
        emit([f"KILLING {selection.name(job)} (dry run)" for job in targets]
             + [f"{len(targets)} job(s) would be killed: add --perform to kill them."])
        return
    names = {(job.task_id, job.identifier): selection.name(job) for job in targets}
    failed = report_outcomes(lambda report: kill_jobs(JobStore(selection.ws), list(names), report), names, "KILL")
    if failed:
        raise SystemExit(1)


@jobs.command()
@selection_options
@click.option("--perform", is_flag=True, help="Delete the job folders (without it, only say which would go).")
def clean(perform: bool, **options: Any) -> None:
    """Delete the folders of finished jobs (a dry run without --perform).

    Only jobs that are DONE or ERROR are deleted, each after checking its
    state under its lock; other jobs are never touched (UNSCHEDULED ones may
    be being submitted), nor anything outside the workspace's job folders.

    \b
    Examples:
      experimaestro jobs clean --filter '@state="DONE"'
      experimaestro jobs clean --filter '@state="DONE"' --perform
    """
    from xpm import state

    selection = Selection(**options)
    found = selection.jobs()
    targets = [job for job in found if job.state in state.CLEANABLE]
    skipped = [job for job in found if job.state not in state.CLEANABLE]
    if not found:
        emit(["No jobs found."])
        return
    lines = [f"SKIPPED {selection.name(job)}: {state.not_cleanable(job.state)}" for job in skipped]
    if not perform:
        emit(lines + [f"CLEANING {selection.name(job)} (dry run)" for job in targets]
             + [f"{len(targets)} job(s) would be deleted: add --perform to delete them."])
        return
    emit(lines)
    if clean_jobs(selection.ws, {(job.task_id, job.identifier): selection.name(job) for job in targets}):
        raise SystemExit(1)


class NotSelected(XpmError):
    """``jobs log``/``path``: no job, or more than one, answers the JOBID and selection given."""


def _job_options(fn: F) -> F:
    fn = click.argument("jobid", metavar="[JOBID]", required=False, shell_complete=complete_job_ids)(fn)
    fn = click.option(
        "--filter", "filter_text", metavar="EXPR", help="The job matching EXPR (or check that JOBID matches it)."
    )(fn)
    fn = click.option("--experiment", metavar="ID", help="A job of this experiment's current run.",
                      shell_complete=complete_experiment_ids)(fn)
    return workspace_options(fn)


def _one_job(
    jobid: str | None, experiment: str | None, filter_text: str | None, **options: Any
) -> tuple[Any, tuple[str, str]]:
    """The workspace, and the one job (task id, identifier) that JOBID and the selection designate.

    Raises:
        NotSelected: JOBID does not match the selection; or, without JOBID, no job or
            several jobs match it.
    """
    from xpm.query import short_name
    from xpm.store.jobs import JobStore

    if jobid is None and experiment is None and filter_text is None:
        raise click.UsageError("give a JOBID, or --experiment/--filter that select one job")
    selection = Selection(**options, experiment=experiment, filter_text=filter_text, show_tags=False, fullpath=False)
    key = JobStore(selection.ws).resolve(jobid) if jobid is not None else None
    given = " and ".join(f"{o} {v!r}" for o, v in (("--experiment", experiment), ("--filter", filter_text)) if v)
    if experiment is None and filter_text is None:
        assert key is not None
        return selection.ws, key
    found = [(job.task_id, job.identifier) for job in selection.jobs()]
    if key is not None:
        if key not in found:
            raise NotSelected(f"job {key[0]}/{key[1]} does not match {given}")
        return selection.ws, key
    if len(found) != 1:
        names = ", ".join(short_name(job) for job in found[:5]) + (", …" if len(found) > 5 else "")
        raise NotSelected(
            f"no job matches {given}" if not found
            else f"{len(found)} jobs match {given} ({names}): give a JOBID, or narrow the selection"
        )
    # The index says so: the job's folder must be there too (an unknown job otherwise).
    return selection.ws, JobStore(selection.ws).resolve(f"{found[0][0]}/{found[0][1]}")


@jobs.command()
@_job_options
@click.option("--std", is_flag=True, help="Show the standard output instead of the standard error.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until the job ends (or Ctrl-C).")
def log(jobid: str | None, std: bool, follow: bool, **options: Any) -> None:
    """Print a job's standard error (or output) log.

    JOBID is task-id/identifier, as `jobs list` shows it (a unique prefix of
    the identifier is enough). Without it, --experiment and --filter must select
    exactly one job; with it, the job must match them.

    \b
    Examples:
      experimaestro jobs log mymodule.mytask/0721c3a9b8e4
      experimaestro jobs log --std mymodule.mytask/0721c3a9b8e4
      experimaestro jobs log -f mymodule.mytask/0721c3a9b8e4
      experimaestro jobs log --experiment my-xp --filter 'model = "bm25"'
    """
    from xpm.cli.follow import print_log

    ws, (task_id, identifier) = _one_job(jobid, **options)
    print_log(ws, f"{task_id}/{identifier}", "out" if std else "err", follow)


@jobs.command()
@_job_options
def path(jobid: str | None, **options: Any) -> None:
    """Print the folder of a job.

    Without JOBID, --experiment and --filter must select exactly one job.

    \b
    Examples:
      experimaestro jobs path mymodule.mytask/0721c3a9b8e4
      experimaestro jobs path --experiment my-xp --filter '@state = "ERROR"'
    """
    ws, key = _one_job(jobid, **options)
    click.echo(ws.describe(layout.job_dir(*key)))
