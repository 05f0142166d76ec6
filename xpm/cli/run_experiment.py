"""``experimaestro run-experiment``: run an experiment described by a YAML file."""

from __future__ import annotations

import json
import logging
from typing import Any

import click

from xpm.errors import XpmError
from xpm.runmode import RunMode

__all__ = ["run_experiment"]

logger = logging.getLogger("xpm.run_experiment")


def _run_mode(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """Reads ``--run-mode`` in any case (``dry_run``, ``DRY-RUN``...)."""
    if value is None:
        return RunMode.NORMAL
    try:
        return RunMode.parse(value)
    except XpmError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


@click.command("run-experiment")
@click.argument("yaml_file", metavar="YAML_FILE")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option(
    "--run-mode",
    metavar="[NORMAL|GENERATE_ONLY|DRY_RUN|PREPARE]",
    callback=_run_mode,
    help="NORMAL runs the jobs (default), GENERATE_ONLY writes them, DRY_RUN prints them, "
    "PREPARE runs their Prepare steps only.",
)
@click.option("--workspace", "workspace_id", metavar="ID", help="Use this workspace of settings.yaml.")
@click.option("--workdir", metavar="PATH", help="Use the workspace at this path (or ssh://user@host:port/path).")
@click.option(
    "--port", type=click.IntRange(0, 65535), metavar="INT",
    help="Serve the web monitor during the run on this port (0: any free one); its URL is printed.",
)
@click.option("--console", is_flag=True, help="Follow the experiment in the console monitor (q leaves it).")
@click.option(
    "--host", metavar="TEXT",
    help="Serve the web monitor during the run on this address (default 127.0.0.1; port: settings, else 12345).",
)
@click.option(
    "--pre-yaml", multiple=True, metavar="PATH", help="Merge this YAML file before the main one (repeatable)."
)
@click.option(
    "--post-yaml", multiple=True, metavar="PATH", help="Merge this YAML file after the main one (repeatable)."
)
@click.option(
    "-c",
    "--conf",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set a configuration value, e.g. -c model.layers=3 (repeatable).",
)
@click.option(
    "--file", "xp_file", metavar="PATH", help="The Python file defining run(helper, cfg), instead of the YAML's."
)
@click.option("--module-name", metavar="NAME", help="The module defining run(helper, cfg), instead of the YAML's.")
@click.option(
    "--env",
    type=(str, str),
    multiple=True,
    metavar="NAME VALUE",
    help="Set an environment variable for the jobs (repeatable).",
)
@click.option("--xpm-config-dir", type=click.Path(), metavar="DIR", help="The configuration folder (settings.yaml).")
@click.option("--show", is_flag=True, help="Print the merged configuration as JSON and exit, without running anything.")
@click.option("--debug", is_flag=True, help="Log debug messages.")
def run_experiment(
    yaml_file: str,
    args: tuple[str, ...],
    run_mode: Any,
    workspace_id: str | None,
    workdir: str | None,
    port: int | None,
    console: bool,
    host: str | None,
    pre_yaml: tuple[str, ...],
    post_yaml: tuple[str, ...],
    conf: tuple[str, ...],
    xp_file: str | None,
    module_name: str | None,
    env: tuple[tuple[str, str], ...],
    xpm_config_dir: str | None,
    show: bool,
    debug: bool,
) -> None:
    """Run the experiment a YAML file describes; ARGS go to helper.args.

    The YAML (".yaml" may be left out) names the Python file or module whose
    run(helper, cfg) function submits the jobs, and the values of cfg.

    \b
    Examples:
      experimaestro run-experiment --workdir ~/xp experiment.yaml
      experimaestro run-experiment -c epochs=20 --run-mode dry_run experiment
      experimaestro run-experiment --show --post-yaml small.yaml experiment.yaml
    """
    from xpm.experiments import ExperimentHelper
    from xpm.experiments.loader import apply_options, experiment_id, find_target, load_experiment, validate
    from xpm.experiments.yamlconfig import load_configuration

    if debug:
        logging.getLogger().setLevel(logging.DEBUG)
    merged = load_configuration(yaml_file, pre_yaml=pre_yaml, post_yaml=post_yaml, overrides=conf)
    apply_options(merged, file=xp_file, module=module_name)
    if show:
        # Before looking for the code: --show must work even when the code does not.
        click.echo(json.dumps(merged.data, indent=2, default=str))
        return

    if xpm_config_dir is not None:
        from xpm.launchers.finder import LauncherRegistry

        # find_launcher() in the experiment's code reads the launchers.py of this folder,
        # for the time of this command only.
        LauncherRegistry.set_config_dir(xpm_config_dir)
        click.get_current_context().call_on_close(lambda: LauncherRegistry.set_config_dir(None))
    target = find_target(merged, file=xp_file, module=module_name)
    loaded = load_experiment(merged, target)
    cfg = validate(merged, loaded.cls)
    xp_id = experiment_id(cfg)

    from xpm.settings import resolve_workspace

    ws_settings = resolve_workspace(
        workspace=workspace_id, workdir=workdir, experiment_id=cfg.id, config_dir=xpm_config_dir
    )
    logger.info("Running experiment %s (%s) in workspace %s", xp_id, loaded.where, ws_settings.location)

    # Imported late (the experiment machinery is only needed once the configuration is
    # valid), and through the public name, wherever the module that defines it lives.
    from xpm import experiment

    # The job processes import the experiment's tasks: experiment() hands them the
    # folders of sys.path, which load_experiment extended before this point.
    logger.debug("Folders added to sys.path: %s", ", ".join(map(str, loaded.folders)) or "none")

    from xpm.runspec import RunInputs

    def body() -> None:
        running = experiment(ws_settings, xp_id, run_mode=run_mode, host=host, port=port)
        # What the run records as its spec: the configuration as --show prints it, the files that gave it.
        running.spec_inputs = RunInputs.of_yaml(merged, target.file, loaded.folders, conf)
        with running as xp:
            for name, value in env:
                xp.setenv(name, value)
            helper = ExperimentHelper(xp=xp, args=list(args), cfg=cfg)
            loaded.run(helper, cfg)

    if console:
        from xpm.cli.console import run_with_monitor

        run_with_monitor(body, str(ws_settings.location), xp_id)
    else:
        body()
