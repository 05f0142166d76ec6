"""``experimaestro experiments ssh-monitor``: the console monitor on a workspace of an SSH host.

Two modes. With an xpm on the host (``--remote-xpm``, ``--remote-python``, or an
``experimaestro`` found there), ``ssh`` runs ``experiments monitor-server`` on the host and
the monitor asks it (:class:`xpm.monitor.remote.RemoteModel`, spec/monitor-server.md): one
round trip a refresh, whatever the size of the workspace. Otherwise, agentless: the monitor
reads the remote files over SFTP through the same model as the local monitor
(:class:`xpm.monitor.model.MonitorModel`), which reads only what changed.
The host is named as for the ``ssh`` command (``[user@]host``, ``-o "-p 2222"``,
``-o "-i KEY"``); those options become the storage options of an ``ssh://`` workspace,
and the options of the ``ssh`` command of the server mode.
"""

from __future__ import annotations

import os
import posixpath
import shlex
from dataclasses import dataclass, field
from typing import Any, Sequence

import click

from xpm.errors import XpmError

__all__ = [
    "SSHMonitorError", "SSHTarget", "parse_ssh_options", "remote_command", "resolve_target", "ssh_command",
    "ssh_monitor", "start_server",
]

#: Seconds allowed to set up the SSH connection when ``ConnectTimeout`` is not given
CONNECT_TIMEOUT = 30.0
#: What the server mode runs on the host when neither --remote-xpm nor --remote-python is given
DEFAULT_REMOTE_XPM = "experimaestro"
#: Exit status of a shell for a command it did not find (the server mode then falls back to SFTP)
NOT_FOUND = 127
#: Exit status of ssh for its own errors (connection, authentication)
SSH_FAILED = 255


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
            raise SSHMonitorError(f"REMOTE_WORKDIR {remote_workdir!r}: give an absolute path on {name}, or '~/path'")
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


def ssh_command(target: SSHTarget) -> list[str]:
    """The ``ssh`` command (without its remote command) that reaches the target's host as the
    SFTP connection would: its user, port, keys, host-key setting, timeout, jump host and config."""
    import math

    from xpm.location import parse_location

    location = parse_location(target.url)
    options = target.storage_options
    # BatchMode: a password or passphrase prompt would fight the monitor for the terminal.
    command = ["ssh", "-T", "-o", "BatchMode=yes"]
    for config in options.get("config", ())[-1:]:  # ssh reads one -F (the last one given wins here)
        command += ["-F", config]
    if location.port is not None:
        command += ["-p", str(location.port)]
    if location.user:
        command += ["-l", location.user]
    for key in options.get("client_keys", ()):
        command += ["-i", key]
    if "known_hosts" in options:
        known = options["known_hosts"]
        if known is None:
            command += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]
        else:
            command += ["-o", f"UserKnownHostsFile={known}"]
    if options.get("connect_timeout") is not None:
        command += ["-o", f"ConnectTimeout={max(1, math.ceil(float(options['connect_timeout'])))}"]
    if options.get("tunnel"):
        command += ["-J", str(options["tunnel"])]
    assert location.host is not None
    return [*command, location.host]


def remote_command(
    workdir: str,
    remote_xpm: str | None = None,
    remote_python: str | None = None,
    shell_init: str | None = None,
    uv_offline: bool = False,
) -> str:
    """The command line the host's shell runs for the server mode.

    ``--remote-xpm`` is shell words for the command that runs xpm (it may hold arguments:
    ``"uv run --project ~/x experimaestro"``), ``--remote-python PY`` runs ``PY -m xpm``; both
    are written as given, so that the host's shell expands ``~`` and variables there. Without
    either, ``experimaestro`` is looked up with ``command -v`` after the shell setup (exit status
    127 when there is none).
    """
    if remote_xpm is not None and remote_python is not None:
        raise SSHMonitorError("give --remote-xpm or --remote-python, not both")
    given = remote_xpm if remote_python is None else remote_python
    option = "--remote-xpm" if remote_python is None else "--remote-python"
    if given is not None:
        try:
            words = shlex.split(given)
        except ValueError as exc:
            raise SSHMonitorError(f"{option} {given!r}: {exc}") from None
        if not words:
            raise SSHMonitorError(f"{option}: give the command that runs it on the host")
    program = given.strip() if given is not None else DEFAULT_REMOTE_XPM
    if remote_python is not None:
        program += " -m xpm"
    parts = [shell_init.strip().rstrip(";")] if shell_init and shell_init.strip() else []
    if given is None:
        parts.append(f"command -v {DEFAULT_REMOTE_XPM} >/dev/null 2>&1 || exit {NOT_FOUND}")
    env = " UV_OFFLINE=1" if uv_offline else ""
    # exec env: the server replaces the shell (its end is the session's) in sh, bash, zsh or csh alike.
    parts.append(f"exec env{env} {program} {shlex.join(['experiments', 'monitor-server', '--workdir', workdir])}")
    return "; ".join(parts)


def remote_home(target: SSHTarget) -> str:
    """The home folder of the login on the target's host (one ssh command), for a REMOTE_WORKDIR given as
    ``~`` or ``~/path``.

    Raises:
        SSHMonitorError: ssh failed, or the host gave no absolute path.
    """
    import subprocess

    timeout = float(target.storage_options.get("connect_timeout", CONNECT_TIMEOUT)) + 30
    try:
        done = subprocess.run([*ssh_command(target), 'printf "%s" "$HOME"'], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SSHMonitorError(f"cannot read the home folder on the host to expand ~: {exc}") from None
    home = done.stdout.strip()
    if done.returncode != 0 or not home.startswith("/"):
        why = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise SSHMonitorError(f"cannot read the home folder on the host to expand ~: {why}")
    return home


def start_server(target: SSHTarget, command: str, request_timeout: float, experiment: str | None) -> Any:
    """Runs the monitor server on the host and checks that it speaks spec/monitor-server.md.

    Returns:
        A :class:`xpm.monitor.remote.RemoteModel` on it.

    Raises:
        xpm.monitor.remote.ServerUnavailable: it did not start (``missing``: no such command on
            the host), ended, did not answer in time, or speaks another protocol.
    """
    from xpm.monitor.remote import RemoteModel, ServerConnection

    def connect() -> tuple[ServerConnection, dict[str, Any]]:
        connection = ServerConnection([*ssh_command(target), command], f"{target.url}: the monitor server",
                                      request_timeout)
        try:
            # Starting takes an ssh connection and the host's Python start: the connection timeout on top.
            return connection, connection.hello(
                request_timeout + float(target.storage_options.get("connect_timeout") or 0))
        except BaseException:
            connection.close()
            raise

    connection, hello = connect()
    try:
        return RemoteModel(connection, target.url, hello, experiment=experiment, restart=lambda: connect()[0])
    except BaseException:
        connection.close()
        raise


@click.command("ssh-monitor")
@click.argument("host", required=False, metavar="[HOST]")
@click.argument("remote_workdir", required=False, metavar="[REMOTE_WORKDIR]")
@click.option("--web", is_flag=True, help="The web monitor, served on this machine, instead of the console one.")
@click.option("--port", type=click.IntRange(0, 65535), metavar="INT",
              help="Port of the local web server, with --web (default: server.port of settings.yaml, else 12345).")
@click.option("-o", "--ssh-option", "ssh_options", multiple=True, metavar="OPTION",
              help='An ssh option, as for ssh: "-p 2222", "-i KEY", "-o StrictHostKeyChecking=no" (repeatable).')
@click.option("--workspace", "workspace_id", metavar="ID",
              help="Take the host and path of this ssh:// workspace of settings.yaml.")
@click.option("--xpm-config-dir", type=click.Path(), help="The configuration folder (settings.yaml).")
@click.option("--experiment", metavar="ID", help="Open on the jobs of this experiment.")
@click.option("--remote-xpm", metavar="PATH", help="Server mode: the command that runs xpm on the host.")
@click.option("--remote-shell-init", metavar="CMDS", help="Shell commands run on the host before xpm.")
@click.option("--remote-python", metavar="PY", help="Server mode: run `PY -m xpm` on the host.")
@click.option("--uv-offline", is_flag=True, help="Server mode: UV_OFFLINE=1 for the command on the host.")
@click.option("--request-timeout", type=float, metavar="S",
              help="Server mode: seconds a request may take (default: 30).")
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

    With xpm on the host (--remote-xpm, --remote-python, or an `experimaestro`
    found there), the monitor asks `experiments monitor-server` run there over
    ssh; otherwise it reads the workspace's files over SFTP (nothing to install).
    HOST is [user@]host; ~/.ssh/config and ~/.ssh/known_hosts are used as by ssh.

    \b
    Examples:
      experimaestro experiments ssh-monitor me@cluster /scratch/me/xp
      experimaestro experiments ssh-monitor hpc /scratch/xp -o "-p 2222 -i ~/k"
      experimaestro experiments ssh-monitor --workspace my-cluster
      experimaestro experiments ssh-monitor hpc /scratch/xp \\
          --remote-xpm '~/venv/bin/experimaestro'
    """
    from xpm.monitor.remote import REQUEST_TIMEOUT, ServerUnavailable

    if port is not None and not web:
        click.echo("note: --port not used: it is for the web monitor (--web)", err=True)
    if request_timeout is not None and not request_timeout > 0:
        raise SSHMonitorError(f"--request-timeout {request_timeout:g}: give a number of seconds above 0")
    if remote_workdir is not None and (remote_workdir == "~" or remote_workdir.startswith("~/")):
        # Quoted on the command line ('~/xp'): the home folder of the login on the host, asked once.
        home = remote_home(resolve_target(host, "/", ssh_options, workspace_id, xpm_config_dir))
        remote_workdir = posixpath.join(home, remote_workdir[2:])
    target = resolve_target(host, remote_workdir, ssh_options, workspace_id, xpm_config_dir)
    if web:
        from xpm.cli.commands import serve_web

        # Served here, on the remote files read over SFTP (the same model as the console's agentless mode).
        serve_web(open_target(target), port=port, host=None, experiment=experiment, config_dir=xpm_config_dir)
        return
    from xpm.location import parse_location

    command = remote_command(parse_location(target.url).path, remote_xpm, remote_python, remote_shell_init,
                             uv_offline)
    explicit = remote_xpm is not None or remote_python is not None
    model = None
    try:
        model = start_server(target, command, request_timeout or REQUEST_TIMEOUT, experiment)
    except ServerUnavailable as exc:
        if explicit:
            raise
        # No xpm found on the host, or ssh itself failed (status 255: the SFTP connection says why).
        if exc.reason != "missing" and exc.status != SSH_FAILED:
            click.echo(f"note: {exc}; reading the workspace over SFTP instead", err=True)
    if model is not None:
        from xpm.monitor.app import run

        try:
            run(None, model=model)
        finally:
            model.close()
        return
    from xpm.cli.console import monitor as run_monitor

    # Connected before the monitor takes the terminal: a bad host or path is one line on a normal screen.
    workspace = open_target(target)
    run_monitor(workspace, experiment)
