"""An SSH/SFTP test server for the tests, and pytest fixtures over it.

Where the server comes from, in this order:

1. The environment variables ``XPM_TEST_SSH_HOST``, ``XPM_TEST_SSH_PORT`` (default 22),
   ``XPM_TEST_SSH_USER`` (default: the current user) and ``XPM_TEST_SSH_KEY`` (a private key
   file; without it asyncssh tries the user's default keys and agent). CI sets them from the
   output of ``scripts/ci/start-sshd.sh``. ``XPM_TEST_SSH_ROOT`` optionally sets the remote base
   folder (default ``/tmp/xpm-ssh-tests``).
2. Otherwise, when ``/usr/sbin/sshd`` exists and we are root, ``scripts/ci/start-sshd.sh`` is run
   (once per test session) to start a server on 127.0.0.1. A server that this test session
   started is stopped when the session ends; one that was already running (started by
   ``.ci/run`` or by hand) is reused and left running.
3. Otherwise there is no server: the fixtures skip, or fail when ``XPM_REQUIRE_SSH=1`` (CI).

Use from a test module or a conftest by importing the fixtures, e.g.
``from tests.sshd import ssh_fs  # noqa: F401`` (or ``pytest_plugins = ["tests.sshd"]`` in the
root conftest). ``ssh_fs`` is self-contained: it does not need other fixtures to be imported.
"""

from __future__ import annotations

import atexit
import getpass
import os
import re
import shlex
import signal
import subprocess
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

ENV_HOST = "XPM_TEST_SSH_HOST"
ENV_PORT = "XPM_TEST_SSH_PORT"
ENV_USER = "XPM_TEST_SSH_USER"
ENV_KEY = "XPM_TEST_SSH_KEY"
ENV_ROOT = "XPM_TEST_SSH_ROOT"
ENV_REQUIRE = "XPM_REQUIRE_SSH"

START_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "ci" / "start-sshd.sh"
SSHD_BIN = Path("/usr/sbin/sshd")
#: Where start-sshd.sh records the pid of the server it started (its default SSHD_DIR)
PID_FILE = Path(os.environ.get("SSHD_DIR", "/tmp/xpm-sshd")) / "sshd.pid"
DEFAULT_REMOTE_ROOT = "/tmp/xpm-ssh-tests"
#: Seconds allowed for the SSH connection to be set up (passed as ``timeout`` to SSHFileSystem).
CONNECT_TIMEOUT = 30
#: Seconds allowed for ``start-sshd.sh`` (it normally takes about 0.4 s).
START_TIMEOUT = 90

_lock = threading.Lock()
_connect_lock = threading.Lock()
_status: tuple[dict[str, Any] | None, str] | None = None


def require_ssh() -> bool:
    """True when a missing SSH test server must make tests fail rather than skip (CI sets it)."""
    return os.environ.get(ENV_REQUIRE, "").strip().lower() in ("1", "true", "yes")


def _params(host: str, port: int, user: str, key: str | None, root: str) -> dict[str, Any]:
    params: dict[str, Any] = {"host": host, "port": port, "username": user, "known_hosts": None}
    if key:
        params["client_keys"] = [key]
    params["root"] = root.rstrip("/") or "/"
    return params


def _from_environment() -> tuple[dict[str, Any] | None, str]:
    host = os.environ[ENV_HOST].strip()
    port_text = os.environ.get(ENV_PORT, "").strip() or "22"
    try:
        port = int(port_text)
    except ValueError:
        return None, f"{ENV_PORT}={port_text!r} is not a port number"
    user = os.environ.get(ENV_USER, "").strip() or getpass.getuser()
    key = os.environ.get(ENV_KEY, "").strip() or None
    if key is not None and not os.path.isfile(key):
        return None, f"{ENV_KEY}={key!r} is not a file"
    root = os.environ.get(ENV_ROOT, "").strip() or DEFAULT_REMOTE_ROOT
    return _params(host, port, user, key, root), f"from {ENV_HOST}={host}"


def _running_sshd() -> int | None:
    """The pid of the sshd that ``start-sshd.sh`` recorded, when that process is alive."""
    try:
        pid = int(PID_FILE.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def _stop_sshd(pid: int) -> None:
    """Stops the sshd this test session started (at the end of the session)."""
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError:
        pass


def _start_local_server() -> tuple[dict[str, Any] | None, str]:
    if not SSHD_BIN.exists():
        return None, f"{ENV_HOST} is not set and {SSHD_BIN} does not exist (apt-get install openssh-server)"
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None, f"{ENV_HOST} is not set and starting a local sshd needs root"
    if not START_SCRIPT.is_file():
        return None, f"{START_SCRIPT} is missing"
    already = _running_sshd()
    try:
        done = subprocess.run(
            ["bash", str(START_SCRIPT)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"{START_SCRIPT.name} failed: {exc}"
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        return None, f"{START_SCRIPT.name} exited with {done.returncode}:\n{tail}"
    # The script prints one line: XPM_TEST_SSH_HOST=... XPM_TEST_SSH_PORT=... ...
    lines = done.stdout.strip().splitlines()
    values = dict(item.split("=", 1) for item in shlex.split(lines[-1]) if "=" in item) if lines else {}
    try:
        host, port, user, key = values[ENV_HOST], int(values[ENV_PORT]), values[ENV_USER], values[ENV_KEY]
    except (KeyError, ValueError):
        return None, f"unexpected output from {START_SCRIPT.name}: {done.stdout!r}"
    started = _running_sshd()
    if already is None and started is not None:
        atexit.register(_stop_sshd, started)  # ours: stopped with the test session
    root = os.environ.get(ENV_ROOT, "").strip() or DEFAULT_REMOTE_ROOT
    return _params(host, port, user, key, root), f"started by {START_SCRIPT.name}"


def ssh_server_status() -> tuple[dict[str, Any] | None, str]:
    """``(params, reason)``: the parameters of ``ssh_workspace_params()`` (None when no server) and
    a human-readable reason (where the server comes from, or why there is none). Cached."""
    global _status
    with _lock:
        if _status is None:
            _status = _from_environment() if os.environ.get(ENV_HOST, "").strip() else _start_local_server()
        params, reason = _status
        return (dict(params) if params is not None else None), reason


def ssh_workspace_params() -> dict[str, Any] | None:
    """Keyword arguments for ``fsspec.filesystem("ssh", ...)`` plus ``root``, or None.

    The keys are ``host``, ``port``, ``username``, ``known_hosts`` (None: the host key is not
    checked), ``client_keys`` (a list with one private key file; absent when no key was given) and
    ``root``, a remote base folder that is **not** an fsspec argument: pop it before calling fsspec.
    Returns None when no SSH test server can be had; ``ssh_server_status()`` tells why.
    The first call may start a local sshd (see the module documentation); the result is cached.
    """
    return ssh_server_status()[0]


def skip_or_fail(reason: str) -> None:
    """``pytest.fail`` when an SSH server is required (``XPM_REQUIRE_SSH=1``), else ``pytest.skip``."""
    if require_ssh():
        pytest.fail(f"SSH test server required ({ENV_REQUIRE}=1) but unavailable: {reason}", pytrace=False)
    pytest.skip(f"no SSH test server: {reason}")


@pytest.fixture
def server() -> dict[str, Any]:
    """The SSH test server's parameters (``ssh_workspace_params``), with a client key; skips without
    one, or fails when ``XPM_REQUIRE_SSH=1``."""
    params, reason = ssh_server_status()
    if params is None or "client_keys" not in params:
        skip_or_fail(f"no SSH test server with a client key: {reason}")
    assert params is not None
    return params


def fresh_host_folder(server: dict[str, Any], prefix: str) -> Iterator[Path]:
    """A new folder path under the server's root, on its host (this machine: the sshd runs on
    127.0.0.1), removed afterwards; for ``yield from`` in a fixture."""
    path = Path(server["root"]) / f"{prefix}-{uuid.uuid4().hex[:10]}"
    try:
        yield path
    finally:
        subprocess.run(["rm", "-rf", str(path)], check=False)


@dataclass(frozen=True)
class SSHTestServer:
    """The session's connection: ``fs`` is an ``sshfs.SSHFileSystem``; ``root`` the remote base folder."""

    fs: Any
    params: dict[str, Any]
    root: str
    connect_seconds: float

    def fresh_dir(self, prefix: str = "t") -> str:
        """Creates and returns a new, empty remote folder under ``root``."""
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", prefix)[:48].strip("._") or "t"
        path = f"{self.root.rstrip('/')}/{name}-{uuid.uuid4().hex[:10]}"
        self.fs.makedirs(path, exist_ok=False)
        return path


@dataclass(frozen=True)
class SSHWorkspace:
    """What ``ssh_fs`` yields: the session's filesystem and a fresh remote folder for one test."""

    fs: Any
    path: str
    server: SSHTestServer

    def __iter__(self) -> Iterator[Any]:  # allows ``fs, path = ssh_fs``
        return iter((self.fs, self.path))


_SERVER_KEY = pytest.StashKey["SSHTestServer | str"]()


def close_fs(fs: Any) -> None:
    """Closes an SSHFileSystem's SFTP channels and connection on its event loop."""
    from fsspec.asyn import sync

    async def _close() -> None:
        await fs._pool.close()
        await fs._stack.aclose()

    try:
        sync(fs.loop, _close, timeout=10)
    except Exception:  # noqa: BLE001 - best effort at the end of the session
        pass


def _connect() -> SSHTestServer | str:
    import time

    import fsspec

    params, reason = ssh_server_status()
    if params is None:
        return reason
    kwargs = dict(params)
    root = kwargs.pop("root")
    started = time.perf_counter()
    try:
        fs = fsspec.filesystem("ssh", skip_instance_cache=True, timeout=CONNECT_TIMEOUT, **kwargs)
        fs.makedirs(root, exist_ok=True)
    except Exception as exc:  # noqa: BLE001 - any failure means "no usable server"
        where = f"{kwargs.get('username')}@{kwargs.get('host')}:{kwargs.get('port')}"
        return f"cannot connect to {where} ({reason}): {type(exc).__name__}: {exc}"
    return SSHTestServer(fs=fs, params=params, root=root, connect_seconds=time.perf_counter() - started)


def get_ssh_server(config: pytest.Config) -> SSHTestServer:
    """The session's connected server (connecting on first use); skips or fails when unavailable."""
    with _connect_lock:
        found = config.stash.get(_SERVER_KEY, None)
        if found is None:
            found = _connect()
            config.stash[_SERVER_KEY] = found
            if isinstance(found, SSHTestServer):
                config.add_cleanup(lambda fs=found.fs: close_fs(fs))
    if isinstance(found, str):
        skip_or_fail(found)
    assert isinstance(found, SSHTestServer)
    return found


@pytest.fixture(scope="session")
def ssh_server(request: pytest.FixtureRequest) -> SSHTestServer:
    """Session-scoped: one SFTP connection for the whole session (see ``SSHTestServer``)."""
    return get_ssh_server(request.config)


@pytest.fixture
def ssh_fs(request: pytest.FixtureRequest) -> Iterator[SSHWorkspace]:
    """The session's SFTP filesystem and a fresh remote folder, removed after the test.

    The connection is made once per session (``fs`` is the same object in every test); the folder
    is new for each test. Skips when there is no SSH test server, fails instead when
    ``XPM_REQUIRE_SSH=1``. Unpacks as ``fs, path = ssh_fs``.
    """
    server = get_ssh_server(request.config)
    path = server.fresh_dir(request.node.name)
    try:
        yield SSHWorkspace(fs=server.fs, path=path, server=server)
    finally:
        try:
            server.fs.rm(path, recursive=True)
        except FileNotFoundError:
            pass
