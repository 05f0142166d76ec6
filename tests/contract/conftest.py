"""The workspace backends every contract test runs on: local disk, memory, SSH."""

from __future__ import annotations

import uuid

import pytest

from xpm.workspace import Workspace

BACKENDS = ["local", "memory", "ssh"]


def ssh_location() -> tuple[str, dict]:
    """The ssh:// location of a folder on the SSH test server, and its storage options.

    Skips when there is no server, unless XPM_REQUIRE_SSH=1 (CI), where it fails.
    """
    from tests.sshd import require_ssh, ssh_workspace_params

    params = ssh_workspace_params()
    if params is None:
        if require_ssh():
            pytest.fail("XPM_REQUIRE_SSH=1 but no SSH test server is available")
        pytest.skip("no SSH test server (install openssh-server, or run as root)")
    location = f"ssh://{params['username']}@{params['host']}:{params['port']}{params['root']}"
    return location, {"client_keys": params["client_keys"], "known_hosts": None}


def open_backend(kind: str, tmp_path, request) -> Workspace:
    if kind == "local":
        return Workspace.open(tmp_path / "ws", create=True)
    if kind == "memory":
        return Workspace.open(f"memory://ws-{uuid.uuid4().hex}", create=True)
    location, options = ssh_location()
    return Workspace.open(f"{location}/ws-{uuid.uuid4().hex}", create=True, **options)


@pytest.fixture(params=BACKENDS)
def workspace(request, tmp_path) -> Workspace:
    return open_backend(request.param, tmp_path, request)


@pytest.fixture(params=["local", "ssh"])
def shared_workspace(request, tmp_path) -> tuple[str, dict]:
    """A workspace that other processes can open too: (location, storage options)."""
    if request.param == "local":
        location, options = str(tmp_path / "ws"), {}
    else:
        base, options = ssh_location()
        location = f"{base}/ws-{uuid.uuid4().hex}"
    Workspace.open(location, create=True, **options)
    return location, options
