"""``experimaestro install-skill [TARGETS...] [--list]``: the agent skill for coding assistants."""

from __future__ import annotations

import click

from xpm.cli.common import emit

__all__ = ["install_skill"]


@click.command("install-skill")
@click.argument("targets", nargs=-1, metavar="[TARGETS]...")
@click.option("--list", "show", is_flag=True, help="Show each target: detected, installed, current.")
def install_skill(targets: tuple[str, ...], show: bool) -> None:
    """Install the xpm skill for coding assistants.

    The skill (a SKILL.md folder) teaches assistants how to write xpm
    tasks, experiments and launchers, and how to use these commands.
    TARGETS: agents (~/.agents/skills/, the default), claude
    (~/.claude/skills/), cursor (~/.cursor/skills/). Run it again after
    upgrading xpm to update the installed copies.

    \b
    Examples:
      experimaestro install-skill
      experimaestro install-skill claude cursor
      experimaestro install-skill --list
    """
    from xpm.skill import TARGETS, install, status

    if show:
        states = [status(target) for target in targets or TARGETS]
        width = max(len(s.target) for s in states)
        emit(
            f"{s.target:<{width}}  {'detected' if s.detected else 'not detected':<12}  "
            f"{('current' if s.current else 'outdated') if s.installed else 'not installed':<13}  {s.folder}"
            for s in states
        )
        return
    # Every name is checked (status raises on an unknown one) before anything is written.
    before = [status(target) for target in dict.fromkeys(targets or ("agents",))]
    for state in before:
        install(state.target)
        verb = "Up to date:" if state.current else "Updated" if state.installed else "Installed"
        click.echo(f"{verb} {state.folder}")
