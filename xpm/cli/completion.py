"""Shell completion: ``experimaestro completion bash|zsh|fish`` prints the script to source.

Click completes commands and options by itself (the script calls the command back with
``_EXPERIMAESTRO_COMPLETE`` or ``_XPM_COMPLETE`` set). The functions here complete values:
workspace ids (from ``settings.yaml``), experiment ids and job ids (from the workspace the
command line designates so far). Completion runs at every Tab: it reads only local
workspaces (never opens an SSH connection), prints nothing, and an error completes nothing.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Callable

import click

from xpm.cli.app import cli

if TYPE_CHECKING:  # imported when a Tab asks, not at every start-up
    from click.shell_completion import CompletionItem

__all__ = ["complete_experiment_ids", "complete_folders", "complete_job_ids", "complete_workspace_ids", "completion"]

#: Job ids offered at most (a shell shows no more usefully)
MAX_JOBS = 500


def _options(ctx: click.Context) -> dict[str, Any]:
    """The options given so far, the subcommand's over its groups' (``jobs --workdir W log``)."""
    found: dict[str, Any] = {}
    chain = []
    while ctx is not None:
        chain.append(ctx)
        ctx = ctx.parent  # type: ignore[assignment]
    for each in reversed(chain):
        found.update({k: v for k, v in each.params.items() if v is not None})
    return found


def _local_workspace(ctx: click.Context) -> Any | None:
    """The local workspace the command line designates so far (as the command would choose it)."""
    from xpm.settings import resolve_workspace_here
    from xpm.workspace import Workspace

    given = _options(ctx)
    chosen, _ = resolve_workspace_here(workspace=given.get("workspace_id"), workdir=given.get("workdir"),
                                       config_dir=given.get("xpm_config_dir"), here=os.getcwd())
    if not chosen.location.is_local:
        return None
    return Workspace.open(str(chosen.location))


def _quiet(complete: Callable[[click.Context, str], list[CompletionItem]]) -> Any:
    """A completion callback that completes nothing on any error (a Tab never prints a traceback)."""

    def callback(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        try:
            return complete(ctx, incomplete)
        except Exception:  # noqa: BLE001 - completion must never fail
            return []

    return callback


def complete_folders(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Folders, completed by the shell itself."""
    from click.shell_completion import CompletionItem

    return [CompletionItem(incomplete, type="dir")]


@_quiet
def complete_workspace_ids(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    """The ids of the workspaces of ``settings.yaml``."""
    from click.shell_completion import CompletionItem

    from xpm.settings import load_settings

    settings = load_settings(_options(ctx).get("xpm_config_dir"))
    return [CompletionItem(ws.id, help=str(ws.location)) for ws in settings.workspaces if ws.id.startswith(incomplete)]


@_quiet
def complete_experiment_ids(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    """The experiments of the workspace."""
    from click.shell_completion import CompletionItem

    from xpm import layout

    ws = _local_workspace(ctx)
    if ws is None:
        return []
    return [CompletionItem(xp) for xp in sorted(ws.listdir(layout.EXPERIMENTS)) if xp.startswith(incomplete)]


@_quiet
def complete_job_ids(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    """Job ids (``task-id/identifier``, 12 characters of identifier) from the job index."""
    from click.shell_completion import CompletionItem

    from xpm.query import short_name
    from xpm.store.index import JobIndex

    ws = _local_workspace(ctx)
    if ws is None:
        return []
    found = []
    for key, job in JobIndex(ws).load().jobs.items():
        name = short_name(key)
        if name.startswith(incomplete) or f"{key[0]}/{key[1]}".startswith(incomplete):
            found.append(CompletionItem(name, help=job.state.upper()))
            if len(found) >= MAX_JOBS:
                break
    return sorted(found, key=lambda item: item.value)


@click.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
@click.option("--prog-name", type=click.Choice(["experimaestro", "xpm"]), default="experimaestro",
              show_default=True, help="The command to complete (both are the same program).")
def completion(shell: str, prog_name: str) -> None:
    """Print the shell completion script: commands, options, workspace, experiment and job ids.

    \b
    Examples:
      eval "$(experimaestro completion bash)"        # in ~/.bashrc
      eval "$(experimaestro completion zsh)"         # in ~/.zshrc
      experimaestro completion fish > ~/.config/fish/completions/experimaestro.fish
    """
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None  # the choices are the shells click knows
    variable = f"_{prog_name.upper()}_COMPLETE"
    click.echo(cls(cli, {}, prog_name, variable).source())
