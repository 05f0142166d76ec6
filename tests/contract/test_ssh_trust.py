"""SSH workspaces trust as ssh does: host keys are checked, and ~/.ssh/config is honoured.

Against the real sshd on 127.0.0.1 (scripts/ci/start-sshd.sh), with a home folder of the
test's own (asyncssh reads ``~/.ssh/known_hosts`` and ``~/.ssh/config`` from ``$HOME``).
"""

from __future__ import annotations

import subprocess
import uuid
import warnings
from pathlib import Path
from typing import Any

import pytest

from xpm.settings import load_settings
from xpm.workspace import Workspace, WorkspaceNotFound


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home folder of the test's own: no known host, no ssh configuration."""
    folder = tmp_path / "home"
    (folder / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(folder))
    return folder


def location(server: dict[str, Any], host: str | None = None, port: bool = True) -> str:
    where = host or f"{server['username']}@{server['host']}" + (f":{server['port']}" if port else "")
    return f"ssh://{where}{server['root']}/trust-{uuid.uuid4().hex}"


def host_key_line(server: dict[str, Any]) -> str:
    """The server's host key as ``ssh-keyscan`` gives it (what the error message tells users to run)."""
    out = subprocess.run(
        ["ssh-keyscan", "-t", "ed25519", "-p", str(server["port"]), server["host"]],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout
    lines = [line for line in out.splitlines() if line and not line.startswith("#")]
    assert lines, "ssh-keyscan found no host key"
    return lines[0]


def test_an_unknown_host_is_refused_with_the_way_to_add_it(server, home: Path):
    with pytest.raises(WorkspaceNotFound) as caught:
        Workspace.open(location(server), create=True, client_keys=server["client_keys"])
    message = str(caught.value)
    assert "host key" in message and f"ssh-keyscan -p {server['port']} {server['host']}" in message
    assert "known_hosts: false" in message


def test_a_host_whose_key_changed_is_refused(server, home: Path, tmp_path: Path):
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    host = f"[{server['host']}]:{server['port']}"
    (home / ".ssh" / "known_hosts").write_text(f"{host} {other.with_suffix('.pub').read_text().split()[0]} "
                                              f"{other.with_suffix('.pub').read_text().split()[1]}\n")
    with pytest.raises(WorkspaceNotFound, match="host key"):
        Workspace.open(location(server), create=True, client_keys=server["client_keys"])


def test_a_known_host_is_accepted(server, home: Path):
    (home / ".ssh" / "known_hosts").write_text(host_key_line(server) + "\n")
    ws = Workspace.open(location(server), create=True, client_keys=server["client_keys"])
    ws.write_atomic("probe", b"ok")
    assert ws.read_bytes("probe") == b"ok"


def test_an_alias_of_the_ssh_configuration_gives_host_port_user_and_key(server, home: Path):
    """``ssh://alias/path``: HostName, Port (not 22), User, IdentityFile and UserKnownHostsFile
    come from ~/.ssh/config, as for the ssh command."""
    known = home / "cluster_known_hosts"
    known.write_text(host_key_line(server) + "\n")
    (home / ".ssh" / "config").write_text(
        "Host xpm-test-cluster\n"
        f"    HostName {server['host']}\n"
        f"    Port {server['port']}\n"
        f"    User {server['username']}\n"
        f"    IdentityFile {server['client_keys'][0]}\n"
        f"    UserKnownHostsFile {known}\n"
    )
    ws = Workspace.open(location(server, host="xpm-test-cluster"), create=True)
    ws.write_atomic("probe", b"through the alias")
    assert ws.read_bytes("probe") == b"through the alias"


def test_the_settings_may_turn_the_check_off_and_are_warned_each_time(server, home: Path, tmp_path: Path):
    (home / ".ssh" / "config").write_text(f"Host *\n    IdentityFile {server['client_keys'][0]}\n")
    config = tmp_path / "config"
    config.mkdir()
    (config / "settings.yaml").write_text(
        f"workspaces:\n  - id: cluster\n    path: {location(server)}\n    known_hosts: false\n"
    )
    settings = load_settings(config).workspace("cluster")
    assert settings is not None and settings.known_hosts is False
    for _ in range(2):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ws = Workspace.open(str(settings.location), create=True, **settings.storage_options())
        assert any("is not checked" in str(w.message) for w in caught)
    ws.write_atomic("probe", b"unchecked")
    assert ws.read_bytes("probe") == b"unchecked"


def test_the_known_hosts_setting_must_be_a_boolean(tmp_path: Path):
    from xpm.settings import SettingsError

    (tmp_path / "settings.yaml").write_text("workspaces:\n  - id: c\n    path: ssh://h/x\n    known_hosts: no-way\n")
    with pytest.raises(SettingsError, match="known_hosts: expected true or false"):
        load_settings(tmp_path)
