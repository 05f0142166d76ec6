"""``experimaestro experiments monitor-server``: the monitor's questions answered on stdin/stdout.

Run by ``experiments ssh-monitor`` at the end of an ssh connection, on the
workspace's host (spec/monitor-server.md). Stdout carries the protocol's lines
only: whatever else would be printed goes to stderr.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys

import click

from xpm.cli.common import group_workspace, workspace_options


@click.command("monitor-server")
@workspace_options
def monitor_server(workspace_id: str | None, workdir: str | None, xpm_config_dir: str | None) -> None:
    """Answer the console monitor's requests on stdin/stdout (for ssh-monitor).

    One JSON object a line each way (spec/monitor-server.md); it ends at the
    end of its input. Run by `experiments ssh-monitor` on the workspace's host.

    \b
    Example:
      ssh cluster experimaestro experiments monitor-server --workdir /scratch/xp
    """
    from xpm.monitor.server import MonitorServer

    # The replies get a descriptor of their own; descriptor 1 becomes stderr, so that nothing else
    # reaches the protocol's stream: neither a print nor the output of a command run meanwhile (scancel).
    sys.stdout.flush()
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="monitor-server: %(message)s")
    with contextlib.redirect_stdout(sys.stderr):
        ws = group_workspace(workspace_id, workdir, xpm_config_dir)
        try:
            MonitorServer(ws).serve(sys.stdin.buffer, replies)
        except (BrokenPipeError, KeyboardInterrupt):
            pass  # the client went away
