"""``experimaestro experiments ssh-monitor``: the console monitor on a workspace of an SSH host.

Agentless: the monitor reads the remote files over SFTP through the same model as the
local monitor (:class:`xpm.monitor.model.MonitorModel`), which reads only what changed.
The host is named as for the ``ssh`` command (``[user@]host``, ``-o "-p 2222"``,
``-o "-i KEY"``); those options become the storage options of an ``ssh://`` workspace.
"""

from __future__ import annotations

import os
import posixpath
import shlex
from dataclasses import dataclass, field
from typing import Any, Sequence

import click

from xpm.cli.commands import experiments
from xpm.errors import XpmError

__all__ = ["SSHMonitorError", "SSHTarget", "parse_ssh_options", "resolve_target", "ssh_monitor"]

#: Seconds allowed to set up the SSH connection when ``ConnectTimeout`` is not given
CONNECT_TIMEOUT = 30.0
#: Options that only the server mode (an xpm run on the host) uses
SERVER_OPTIONS = ("--remote-xpm", "--remote-shell-init", "--remote-python", "--uv-offline", "--request-timeout")


class SSHMonitorError(XpmError):
    """Bad arguments of ``experiments ssh-monitor`` (an ssh option, a host, a workspace id)."""

    exit_code = 2


@dataclass
class SSHOptions:
    """What the ``-o`` options of ``ssh-monitor`` say, in the terms of an SSH workspace.

    Attributes:
        user: the login (``-l USER`` or ``-o User=USER``), None when not given.
        port: the port (``-p PORT`` or ``-o Port=PORT``), None when not given.
        storage: keyword arguments for the SSH filesystem (asyncssh connection options).
    """

    user: str | None = None
    port: int | None = None
    storage: dict[str, Any] = field(default_factory=dict)


def _port(text: str, given: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise SSHMonitorError(f"ssh option {given!r}: {text!r} is not a port number")
    return port


def _config_option(options: SSHOptions, text: str, given: str) -> None:
    """One ``-o Key=Value`` (or ``Key Value``) of ssh's configuration syntax."""
    key, sep, value = text.partition("=")
    if not sep:
        key, _, value = text.strip().partition(" ")
    key, value = key.strip().lower(), value.strip()
    if not key or not value:
        raise SSHMonitorError(f"ssh option {given!r}: expected -o Key=Value")
    if key == "port":
        options.port = _port(value, given)
    elif key == "user":
        options.user = value
    elif key == "identityfile":
        options.storage.setdefault("client_keys", []).append(value)
    elif key == "stricthostkeychecking":
        if value.lower() in ("no", "off", "accept-new"):
            options.storage["known_hosts"] = None  # not checked: as ssh does for "no"
        elif value.lower() not in ("yes", "ask"):
            raise SSHMonitorError(f"ssh option {given!r}: expected yes, no, accept-new or ask")
    elif key == "userknownhostsfile":
        options.storage["known_hosts"] = None if value == "/dev/null" else value
    elif key == "connecttimeout":
        try:
            options.storage["connect_timeout"] = float(value)
        except ValueError:
            raise SSHMonitorError(f"ssh option {given!r}: {value!r} is not a number of seconds") from None
    elif key == "proxyjump":
        options.storage["tunnel"] = value
    else:
        raise SSHMonitorError(
            f"ssh option {given!r}: -o {key} is not supported here (supported: Port, User, IdentityFile, "
            "StrictHostKeyChecking, UserKnownHostsFile, ConnectTimeout, ProxyJump; ~/.ssh/config is read too)"
        )


def parse_ssh_options(values: Sequence[str]) -> SSHOptions:
    """Reads ``-o/--ssh-option`` values written as ssh's own options.

    Each value is one or more ssh arguments (``"-p 2222"``, ``"-i ~/.ssh/key"``,
    ``"-o StrictHostKeyChecking=no"``, ``"-l me"``, ``"-F FILE"``, ``"-J jump"``); a value
    that does not start with ``-`` is read as ``-o VALUE`` (``Port=2222``).

    Raises:
        SSHMonitorError: an option that is unknown, misses its value or has a bad one.
    """
    options = SSHOptions()
    for given in values:
        try:
            words = shlex.split(given)
        except ValueError as exc:
            raise SSHMonitorError(f"ssh option {given!r}: {exc}") from None
        if words and not words[0].startswith("-"):
            words = ["-o", " ".join(words)]
        i = 0
        while i < len(words):
            word = words[i]
            flag, attached = word[:2], word[2:]
            if not word.startswith("-") or len(word) < 2 or flag not in ("-p", "-i", "-o", "-l", "-F", "-J"):
                raise SSHMonitorError(
                    f"ssh option {given!r}: {word!r} is not supported here (supported: -p PORT, -i KEY, "
                    "-l USER, -o Key=Value, -F CONFIG, -J JUMP)"
                )
            if attached:
                value = attached
            elif i + 1 < len(words):
                i += 1
                value = words[i]
            else:
                raise SSHMonitorError(f"ssh option {given!r}: {flag} needs a value")
            if flag == "-p":
                options.port = _port(value, given)
            elif flag == "-i":
                options.storage.setdefault("client_keys", []).append(value)
            elif flag == "-l":
                options.user = value
            elif flag == "-F":
                options.storage.setdefault("config", []).append(value)
            elif flag == "-J":
                options.storage["tunnel"] = value
            else:
                _config_option(options, value, given)
            i += 1
    if "client_keys" in options.storage:
        options.storage["client_keys"] = [os.path.expanduser(k) for k in options.storage["client_keys"]]
    return options


@dataclass(frozen=True)
class SSHTarget:
    """The workspace to monitor: its ``ssh://`` URL and what opening it takes."""

    url: str
    storage_options: dict[str, Any]


def _split_host(host: str) -> tuple[str | None, str]:
    """``[user@]host`` as (user or None, host)."""
    user, at, name = host.rpartition("@")
    if not name or (at and not user) or any(c in name for c in "/ \t") or name.startswith("-"):
        raise SSHMonitorError(f"HOST {host!r}: expected [user@]host")
    return (user or None), name


def resolve_target(
    host: str | None,
    remote_workdir: str | None,
    ssh_options: Sequence[str] = (),
    workspace_id: str | None = None,
    config_dir: str | None = None,
) -> SSHTarget:
    """The workspace that ``ssh-monitor``'s arguments designate.

    Either HOST and REMOTE_WORKDIR, or ``--workspace ID`` (an ``ssh://`` workspace of
    settings.yaml: its host, path and host-key setting). The ``-o`` options come on top
    in both cases.

    Raises:
        SSHMonitorError: missing or contradictory arguments, a bad host, path or option.
        xpm.settings.SettingsError: the settings file is invalid or does not know the id.
    """
    from xpm.location import WorkspaceLocation

    parsed = parse_ssh_options(ssh_options)
    storage: dict[str, Any] = {}
    if workspace_id is not None:
        if host is not None or remote_workdir is not None:
            raise SSHMonitorError("give HOST and REMOTE_WORKDIR, or --workspace ID, not both")
        from xpm.settings import resolve_workspace

        chosen = resolve_workspace(workspace=workspace_id, config_dir=config_dir)
        if chosen.location.is_local:
            raise SSHMonitorError(
                f"workspace {workspace_id} is local ({chosen.location}): "
                f"use `experimaestro experiments monitor --workspace {workspace_id} --console`"
            )
        location = chosen.location
        storage.update(chosen.storage_options())
    else:
        if host is None or remote_workdir is None:
            raise SSHMonitorError("missing HOST and REMOTE_WORKDIR (or --workspace ID)")
        user, name = _split_host(host)
        if not remote_workdir.startswith("/"):
            raise SSHMonitorError(f"REMOTE_WORKDIR {remote_workdir!r}: give an absolute path on {name}")
        # An IPv6 address may come in brackets, as in a URL; the location keeps the bare address.
        hostname = name.strip("[]")
        location = WorkspaceLocation(kind="ssh", path=posixpath.normpath(remote_workdir), host=hostname, user=user)
    # The command line wins over the settings, as ssh's own options win over its config.
    location = WorkspaceLocation(
        kind="ssh",
        path=location.path,
        host=location.host,
        user=location.user if host and "@" in host else parsed.user or location.user,
        port=parsed.port if parsed.port is not None else location.port,
    )
    storage.update(parsed.storage)
    storage.setdefault("connect_timeout", CONNECT_TIMEOUT)
    return SSHTarget(str(location), storage)


def open_target(target: SSHTarget) -> Any:
    """Opens the remote workspace (one line for whatever goes wrong: host, key, path)."""
    from xpm.workspace import Workspace, WorkspaceNotFound

    try:
        return Workspace.open(target.url, **target.storage_options)
    except XpmError:
        raise
    except Exception as exc:  # noqa: BLE001 - a bad option value surfaces from asyncssh as anything
        raise WorkspaceNotFound(target.url, f"cannot connect ({type(exc).__name__}: {exc})") from None


@experiments.command("ssh-monitor")
@click.argument("host", required=False, metavar="[HOST]")
@click.argument("remote_workdir", required=False, metavar="[REMOTE_WORKDIR]")
@click.option("--web", is_flag=True, help="The web monitor (not available yet).")
@click.option("--port", type=int, metavar="INT", help="Port of the local web server, with --web (default: 12345).")
@click.option("-o", "--ssh-option", "ssh_options", multiple=True, metavar="OPTION",
              help='An ssh option, as for ssh: "-p 2222", "-i KEY", "-o StrictHostKeyChecking=no" (repeatable).')
@click.option("--workspace", "workspace_id", metavar="ID",
              help="Take the host and path of this ssh:// workspace of settings.yaml.")
@click.option("--xpm-config-dir", type=click.Path(), help="The configuration folder (settings.yaml).")
@click.option("--experiment", metavar="ID", help="Open on the jobs of this experiment.")
@click.option("--remote-xpm", metavar="PATH", help="Server mode (not available yet): xpm on the host.")
@click.option("--remote-shell-init", metavar="CMDS", help="Server mode (not available yet): shell setup on the host.")
@click.option("--remote-python", metavar="PY", help="Server mode (not available yet): the host's Python.")
@click.option("--uv-offline", is_flag=True, help="Server mode (not available yet): install xpm without network.")
@click.option("--request-timeout", type=float, metavar="S", help="Server mode (not available yet): request timeout.")
def ssh_monitor(
    host: str | None,
    remote_workdir: str | None,
    web: bool,
    port: int | None,
    ssh_options: tuple[str, ...],
    workspace_id: str | None,
    xpm_config_dir: str | None,
    experiment: str | None,
    remote_xpm: str | None,
    remote_shell_init: str | None,
    remote_python: str | None,
    uv_offline: bool,
    request_timeout: float | None,
) -> None:
    """Watch the experiments of a workspace on an SSH host, in the console monitor.

    The workspace's files are read over SFTP: nothing needs to be installed on the
    host. HOST is [user@]host; ~/.ssh/config and ~/.ssh/known_hosts are used as by ssh.
    The --remote-* options, --uv-offline and --request-timeout belong to the server
    mode (an xpm run on the host for large workspaces), which is not available yet.

    \b
    Examples:
      experimaestro experiments ssh-monitor me@cluster /scratch/me/xp
      experimaestro experiments ssh-monitor hpc /scratch/xp -o "-p 2222 -i ~/k"
      experimaestro experiments ssh-monitor --workspace my-cluster
    """
    from xpm.cli.commands import NoWebMonitor

    if web:
        raise NoWebMonitor("the web monitor is not available yet: leave out --web for the console monitor")
    given = [name for name, value in zip(
        SERVER_OPTIONS, (remote_xpm, remote_shell_init, remote_python, uv_offline or None, request_timeout)
    ) if value is not None]
    if port is not None:
        given.append("--port")
    if given:
        click.echo(f"note: {', '.join(given)} not used: they are for the server mode and the web monitor, "
                   "not available yet; the workspace is read over SFTP", err=True)
    target = resolve_target(host, remote_workdir, ssh_options, workspace_id, xpm_config_dir)
    # Connected before the monitor takes the terminal: a bad host or path is one line on a normal screen.
    workspace = open_target(target)
    from xpm.cli.console import monitor as run_monitor

    run_monitor(workspace, experiment)
