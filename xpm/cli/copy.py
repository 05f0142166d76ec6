"""``experimaestro experiments copy``: a run and its jobs, from one workspace to another."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import click

from xpm.cli.common import emit, open_workspace, warn
from xpm.cli.orphans import _size_text as size_text
from xpm.errors import XpmError

__all__ = ["copy"]

#: Seconds between two progress lines within one job
PROGRESS_EVERY = 2.0


class MissingArguments(XpmError):
    """``experiments copy`` without a terminal to ask the missing arguments on."""

    exit_code = 2


def _is_terminal() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def _choose(label: str, choices: list[str], default: str | None = None) -> str:
    """Asks for one of ``choices`` on the terminal."""
    if not choices:
        raise XpmError(f"no {label} to choose from")
    if default is None and len(choices) == 1:
        default = choices[0]
    return str(click.prompt(label, type=click.Choice(choices), default=default))


def _open(side: str, workspace_id: str | None, workdir: str | None, config: str | None) -> Any:
    """Opens one end of the copy; errors name the side."""
    try:
        return open_workspace(workspace_id, workdir, config)
    except XpmError as exc:
        raise XpmError(f"{side} workspace: {exc}") from None


@click.command("copy")
@click.argument("experiment_id", required=False, metavar="[EXPERIMENT_ID]")
@click.argument("run_id", required=False, metavar="[RUN_ID]")
@click.option("--from-workspace", "from_id", metavar="ID", help="Source workspace id (from settings.yaml).")
@click.option("--to-workspace", "to_id", metavar="ID", help="Destination workspace id (from settings.yaml).")
@click.option("--from-workdir", metavar="PATH", help="Source workspace folder (a path or ssh://user@host:port/path).")
@click.option("--to-workdir", metavar="PATH", help="Destination workspace folder (a path or ssh://...).")
@click.option("--xpm-config-dir", type=click.Path(), help="The configuration folder (settings.yaml).")
@click.option("-y", "--perform", is_flag=True, help="Actually copy (the default is a dry run).")
@click.option("--include-running", is_flag=True,
              help="Copy jobs that run at the source too (their copy is marked cancelled: not finished).")
@click.option("--no-rsync", is_flag=True, envvar="XPM_COPY_NO_RSYNC",
              help="Copy through SFTP/fsspec even where rsync could be used (also: XPM_COPY_NO_RSYNC=1).")
def copy(
    experiment_id: str | None,
    run_id: str | None,
    from_id: str | None,
    to_id: str | None,
    from_workdir: str | None,
    to_workdir: str | None,
    xpm_config_dir: str | None,
    perform: bool,
    include_running: bool,
    no_rsync: bool,
) -> None:
    """Copy a run of an experiment (by default its current run) and its jobs to another workspace.

    Jobs already at the destination are not copied again; nothing is deleted at
    the source. Without -y, shows what would be copied. Running the same copy
    again resumes an interrupted one. Files go by rsync (over ssh) between this
    machine and a local or SSH workspace when rsync is installed at both ends.

    \b
    Examples:
      experimaestro experiments copy --from-workspace hpc --to-workspace me my_xp
      experimaestro experiments copy --from-workdir ssh://me@hpc/xp \\
          --to-workdir ~/xp my_xp -y
    """
    from xpm.copying import plan_copy
    from xpm.store.runs import RunStore

    ask = _is_terminal()
    missing = []
    if from_id is None and from_workdir is None:
        missing.append("--from-workspace (or --from-workdir)")
    if to_id is None and to_workdir is None:
        missing.append("--to-workspace (or --to-workdir)")
    if experiment_id is None:
        missing.append("EXPERIMENT_ID")
    if missing and not ask:
        raise MissingArguments(f"missing {', '.join(missing)} (no terminal to ask them on)")
    if (from_id is None and from_workdir is None) or (to_id is None and to_workdir is None):
        from xpm.settings import load_settings

        ids = [ws.id for ws in load_settings(xpm_config_dir).workspaces]
        if from_id is None and from_workdir is None:
            from_id = _choose("Source workspace", ids)
        if to_id is None and to_workdir is None:
            to_id = _choose("Destination workspace", [i for i in ids if i != from_id])
    source = _open("source", from_id, from_workdir, xpm_config_dir)
    destination = _open("destination", to_id, to_workdir, xpm_config_dir)
    if experiment_id is None:
        runs = RunStore(source)
        experiment_id = _choose("Experiment", runs.experiment_ids())
        run_id = _choose("Run", runs.run_ids(experiment_id), runs.current(experiment_id))

    from concurrent.futures import ThreadPoolExecutor

    shared = None
    with ThreadPoolExecutor(max_workers=1) as pool:
        # Whether rsync can serve (a command on an SSH end's host) is asked while the copy is planned, and
        # the ssh connection of the rsyncs is made meanwhile (from this thread, which it must not outlive).
        found = None
        if perform and not no_rsync:
            from xpm.rsync import route as rsync_route
            from xpm.rsync import share_connection

            shared = share_connection(source, destination)
            found = pool.submit(rsync_route, source, destination, shared)
        try:
            plan = plan_copy(source, destination, experiment_id, run_id, include_running=include_running)
        except BaseException:
            if shared is not None:
                shared.close()
            raise
    try:
        _copy(source, destination, experiment_id, plan, found, perform, include_running)
    finally:
        if shared is not None:
            shared.close()


def _copy(source: Any, destination: Any, experiment_id: str, plan: Any, found: Any, perform: bool,
          include_running: bool) -> None:
    """Prints the plan, then (with -y) copies it with a progress line per job."""
    from xpm.copying import ACTIVE, PRESENT

    warn(plan.warnings)
    running = plan.with_action(ACTIVE)
    if running and not include_running:
        warn(f"{job.name} is {job.state} at the source: skipped (--include-running copies it)" for job in running)
    present = plan.with_action(PRESENT)
    jobs = plan.to_copy
    route, how = None, ""
    if found is not None and jobs:
        answer = found.result()
        route, how = (None, f" (rsync not used: {answer})") if isinstance(answer, str) else (answer, " with rsync")
    verb = "Copying" if perform else "Would copy"
    emit([
        f"{verb} {experiment_id}/{plan.run_id} from {source.location} to {destination.location}{how}: "
        f"{len(jobs)} job(s), {plan.files} file(s), {size_text(plan.bytes)}; "
        f"{len(present)} job(s) already there"
    ])
    if not perform:
        emit(f"  {job.name}: {len(job.files)} file(s), {size_text(job.size)}" for job in jobs)
        emit(["Dry run: nothing copied (-y copies)."])
        return

    from xpm.copying import perform_copy

    last = [0, time.monotonic()]

    def progress(p: Any) -> None:
        # A line per job copied, and every few seconds within a long one: logs stay readable.
        now = time.monotonic()
        if p.jobs != last[0] or now - last[1] >= PROGRESS_EVERY:
            last[:] = [p.jobs, now]
            emit([f"[{p.jobs}/{p.total_jobs} jobs] {p.files}/{p.total_files} files, "
                  f"{size_text(p.bytes)}/{size_text(p.total_bytes)}"])

    try:
        notes = perform_copy(plan, source, destination, progress, rsync=route)
    except KeyboardInterrupt:
        click.echo("Interrupted: no half-copied job is in place; the same command resumes the copy.", err=True)
        sys.stdout.flush()
        # Not a normal exit: it would wait for the files being copied by the other threads. A copy
        # stopped at any point is safe (staged files, jobs renamed into place when complete).
        os._exit(130)
    warn(notes)
    emit([f"Copied {experiment_id}/{plan.run_id}: {len(jobs)} job(s), {plan.files} file(s), "
          f"{size_text(plan.bytes)}"])
