"""The ``experiments`` and ``workspace`` groups, and the commands defined here with them.

Loaded when one of them is named (``COMMANDS`` of :mod:`xpm.cli.app`); the other
subcommands of ``experiments`` live in modules of their own (:data:`EXPERIMENT_COMMANDS`).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import click

from xpm import layout
from xpm.cli.app import LazyGroup
from xpm.cli.common import (
    emit,
    emit_json,
    group_workspace,
    open_workspace,
    remember_workspace,
    warn,
    workspace_options,
)

#: The subcommands of ``experiments`` defined in modules of their own (loaded when named).
EXPERIMENT_COMMANDS = {
    "copy": "xpm.cli.copy:copy",
    "diff": "xpm.cli.history:diff",
    "history": "xpm.cli.history:history",
    "history-prune": "xpm.cli.history:history_prune",
    "monitor-server": "xpm.cli.monitorserver:monitor_server",
    "prune": "xpm.cli.history:prune",
    "show": "xpm.cli.history:show",
    "ssh-monitor": "xpm.cli.sshmonitor:ssh_monitor",
    "tag": "xpm.cli.history:tag",
    "tags": "xpm.cli.history:tags",
    "untag": "xpm.cli.history:untag",
}


@click.group(cls=LazyGroup, lazy=EXPERIMENT_COMMANDS)
@workspace_options
@click.pass_context
def experiments(ctx: click.Context, workspace_id: str | None, workdir: str | None, xpm_config_dir: str | None) -> None:
    """Experiments of a workspace.

    The workspace options can be given here or after the subcommand.

    \b
    Example:
      experimaestro experiments list --workdir /path/to/workspace
    """
    remember_workspace(ctx, workspace_id, workdir, xpm_config_dir)


@experiments.command("list")
@workspace_options
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array (run, status, jobs by state).")
def list_experiments(workspace_id: str | None, workdir: str | None, xpm_config_dir: str | None, as_json: bool) -> None:
    """List experiments: id [host] (done/total jobs) of the current run.

    \b
    Examples:
      experimaestro experiments list --workdir /path/to/workspace
      experimaestro experiments --workdir /path/to/workspace list --json
    """
    from xpm.query import experiments as summaries

    notes: list[str] = []
    found = summaries(group_workspace(workspace_id, workdir, xpm_config_dir), notes)
    warn(notes)
    if as_json:
        emit_json([summary._asdict() for summary in found])
    elif not found:
        click.echo("No experiments found.")
    else:
        emit(
            f"{xp.experiment_id}{f' [{xp.hostname}]' if xp.hostname else ''} ({xp.finished}/{xp.total} jobs)"
            for xp in found
        )


@experiments.command()
@workspace_options
@click.option("--console", is_flag=True, help="The console monitor, in this terminal, instead of the web one.")
@click.option("--sync", "sync_first", is_flag=True, help="Run `experiments sync` first.")
@click.option("--experiment", metavar="ID", help="Open on the jobs of this experiment.")
@click.option(
    "--port", type=click.IntRange(0, 65535), metavar="INT",
    help="Port of the web monitor (default: server.port of settings.yaml, else 12345; 0: any free port).",
)
@click.option("--host", metavar="TEXT", help="Address the web monitor listens on (default: 127.0.0.1, this machine).")
def monitor(
    workspace_id: str | None,
    workdir: str | None,
    xpm_config_dir: str | None,
    console: bool,
    sync_first: bool,
    experiment: str | None,
    port: int | None,
    host: str | None,
) -> None:
    """Watch experiments and their jobs live in a browser (or the terminal); kill jobs, read their logs.

    Prints the URL to open: it holds a secret token, and the server listens on this
    machine only unless --host says otherwise (through ssh: ssh -L 12345:localhost:12345).
    With --console, keys are shown at the bottom; ? lists them all, q quits.

    \b
    Examples:
      experimaestro experiments monitor --workdir /path/to/workspace
      experimaestro experiments monitor --workdir /path/to/workspace --port 0
      experimaestro experiments monitor --workspace main --console --sync
    """
    ws = group_workspace(workspace_id, workdir, xpm_config_dir)
    if sync_first:
        from xpm.maintenance import sync as run_sync

        report = run_sync(ws)
        click.echo(f"{report.jobs} jobs, {len(report.fixed)} fixes")
    if console:
        from xpm.cli.console import monitor as run_monitor

        run_monitor(ws, experiment)
        return
    serve_web(ws, port=port, host=host, experiment=experiment, config_dir=xpm_config_dir)


def serve_web(ws: Any, *, port: int | None, host: str | None, experiment: str | None, config_dir: str | None) -> None:
    """Serves the web monitor of ``ws`` until Ctrl-C, after printing the URL to open (with its token).

    The port: ``port``, else ``server.port`` of the settings, else 12345.
    """
    from xpm.web.serve import DEFAULT_PORT, WebMonitor, settings_port

    if port is None:
        port = settings_port(config_dir)
    server = WebMonitor(ws, host=host, port=DEFAULT_PORT if port is None else port, experiment=experiment)
    click.echo(f"Web monitor of {ws.location}: open {server.url}")
    click.echo("(Ctrl-C stops it)")
    server.run()


@experiments.command()
@workspace_options
@click.option("--json", "as_json", is_flag=True, help='Print {"jobs": N, "fixed": [...]} as JSON.')
def sync(workspace_id: str | None, workdir: str | None, xpm_config_dir: str | None, as_json: bool) -> None:
    """Rebuild the derived indexes from the files, and say what was fixed.

    Never deletes a job folder.

    \b
    Example:
      experimaestro experiments sync --workdir /path/to/workspace
    """
    from xpm.maintenance import sync as run_sync

    ws = group_workspace(workspace_id, workdir, xpm_config_dir)
    report = run_sync(ws)
    if as_json:
        emit_json({"jobs": report.jobs, "fixed": report.fixed})
        return
    for line in report.fixed:
        click.echo(f"fixed: {line}")
    click.echo(f"{report.jobs} jobs, {len(report.fixed)} fixes")


@click.group()
def workspace() -> None:
    """Workspace maintenance."""


@workspace.command()
@workspace_options
@click.option("--no-recompute", is_flag=True, help="Do not import task classes to recompute identifiers.")
@click.option("--json", "as_json", is_flag=True, help='Print [{"path": ..., "message": ...}] as JSON.')
def check(
    workspace_id: str | None, workdir: str | None, xpm_config_dir: str | None, no_recompute: bool, as_json: bool
) -> None:
    """Check every job folder, record, log and lock; exit 1 if anything is wrong.

    Recomputes each job's identifier from its params.json and compares it with
    its folder name.

    \b
    Example:
      experimaestro workspace check --workdir /path/to/workspace
    """
    from xpm.maintenance import check as run_check

    ws = open_workspace(workspace_id, workdir, xpm_config_dir)
    problems = run_check(ws, recompute=not no_recompute)
    if as_json:
        emit_json([{"path": p.path, "message": p.message} for p in problems])
        raise SystemExit(1 if problems else 0)
    for problem in problems:
        click.echo(str(problem))
    if problems:
        click.echo(f"{len(problems)} problem(s) found", err=True)
        raise SystemExit(1)
    click.echo("no problem found")
@click.command("parameters-difference")
@click.argument("job1", metavar="JOB1")
@click.argument("job2", metavar="JOB2")
@workspace_options
@click.option("--json", "as_json", is_flag=True, help='Print [{"path": ..., "left": ..., "right": ...}] as JSON.')
def parameters_difference(
    job1: str, job2: str, workspace_id: str | None, workdir: str | None, xpm_config_dir: str | None, as_json: bool
) -> None:
    """Show why two jobs have different identifiers: each parameter that differs.

    JOB1 and JOB2 are job folders (or their params.json files), or job ids
    (task-id/identifier, a unique prefix is enough) of the workspace. Task
    classes are not imported: this works on any copy of a workspace.

    \b
    Examples:
      experimaestro parameters-difference --workdir W my.train/0721c3 my.train/9a1
      experimaestro parameters-difference JOB_FOLDER old/params.json
    """
    from xpm.paramdiff import difference, format_difference

    @functools.cache
    def workspace() -> Any:
        """Opened once, and only when a job id is given."""
        return open_workspace(workspace_id, workdir, xpm_config_dir)

    def params(text: str) -> tuple[bytes, str]:
        path = Path(text)
        if path.is_dir():
            path = path / layout.PARAMS_FILE
        if path.is_file():
            return path.read_bytes(), str(path)
        if path.exists() or text.startswith((".", "/", "~")) or text.count("/") != 1:
            raise click.BadParameter(f"{text}: give a job folder, its {layout.PARAMS_FILE}, or a job id")
        from xpm.store.jobs import JobStore

        ws = workspace()
        rel = layout.job_params(*JobStore(ws).resolve(text))
        return ws.read_bytes(rel), ws.describe(rel)

    (left, left_source), (right, right_source) = params(job1), params(job2)
    found = difference(left, right, left_source, right_source)
    if as_json:
        emit_json([d._asdict() for d in found])
        return
    if not found:
        click.echo("No difference: the two jobs have the same identifier.")
        return
    emit(format_difference(d) for d in found)


@click.command("find-launchers")
@click.option("--config", "config_dir", type=click.Path(), metavar="DIR",
              help="The configuration folder holding launchers.py (default: XPM_CONFIG_DIR, else "
                   "$XDG_CONFIG_HOME/experimaestro).")
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="A tag passed to find_launcher (repeatable).")
@click.argument("spec", metavar="SPEC")
def find_launchers(config_dir: str | None, tags: tuple[str, ...], spec: str) -> None:
    """Show the launcher that launchers.py chooses for a requirement.

    \b
    Example:
      experimaestro find-launchers 'duration=4h & cuda(mem=8G)*2 & cpu(cores=4) | cpu(mem=16G)'
    """
    from xpm.launchers.finder import find_launcher

    click.echo(repr(find_launcher(spec, tags, config_dir=config_dir)))
