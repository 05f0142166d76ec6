"""Starting and stopping the web monitor: in the foreground (``experiments monitor``) or beside an experiment.

The port is ``--port``, else ``server.port`` of ``settings.yaml``, else 12345 (the
reference's); ``0`` asks the system for a free one. A port in use is a
:class:`PortInUse` error that names it. The server binds 127.0.0.1 unless told
otherwise, and the URL it prints holds the secret token.
"""

from __future__ import annotations

import asyncio
import errno
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any, Callable, NamedTuple

from xpm.errors import XpmError
from xpm.workspace import Workspace

#: The port of the web monitor when neither the command line nor the settings give one
DEFAULT_PORT = 12345
DEFAULT_HOST = "127.0.0.1"


class PortInUse(XpmError):
    """The web monitor's port is taken by another program."""

    exit_code = 2

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        super().__init__(
            f"port {port} of {host} is in use: give another one with --port (or --port 0 for any free port)"
        )


def settings_port(config_dir: str | Path | None = None) -> int | None:
    """``server.port`` of ``settings.yaml`` (None when the file or the key is missing).

    experimaestro's settings have a ``server`` section (port, host, token) that xpm's
    settings accept and ignore; the web monitor reads its port here.
    """
    import yaml

    from xpm.settings import settings_path
    from xpm.yamlfile import load_yaml, yaml_problem

    path = settings_path(config_dir)
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        raise XpmError(f"{path}: {yaml_problem(exc, text)}") from None
    server = data.get("server") if isinstance(data, dict) else None
    port = server.get("port") if isinstance(server, dict) else None
    if port is None:
        return None
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port < 65536:
        raise XpmError(f"{path}: server.port: expected a port number, got {port!r}")
    return port


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket (the port checked here, before any thread starts)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(host, port) from None
        raise XpmError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


class WebMonitor:
    """The web monitor of a workspace, served from its own thread until :meth:`stop`.

    Args:
        workspace: the workspace to show.
        host: the address to bind (127.0.0.1 by default: this machine only).
        port: the port (0: any free one).
        experiment: the experiment the page opens on (None: the list of experiments).
        token: the secret token (None: a fresh one).
        interval: seconds between two refreshes of the model.

    Raises:
        PortInUse: the port is taken.
    """

    def __init__(
        self,
        workspace: Workspace,
        *,
        host: str | None = None,
        port: int = DEFAULT_PORT,
        experiment: str | None = None,
        token: str | None = None,
        interval: float = 1.0,
    ):
        from xpm.web.auth import new_token

        self.workspace = workspace
        self.host = host or DEFAULT_HOST
        self.experiment = experiment
        self.token = token or new_token()
        self.interval = interval
        self._socket = _bind(self.host, port)
        self.port: int = self._socket.getsockname()[1]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """The URL to open, with the token (the page then keeps it in a cookie)."""
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = socket.gethostname()
        shown = f"[{host}]" if ":" in host else host
        fragment = f"#/experiments/{self.experiment}" if self.experiment else ""
        return f"http://{shown}:{self.port}/?token={self.token}{fragment}"

    async def serve(self, until: Callable[[], Any] | None = None) -> None:
        """Serves in the running event loop until :meth:`stop` (or until the awaitable ``until()`` ends)."""
        from aiohttp import web

        from xpm.monitor.model import MonitorModel
        from xpm.web.app import make_app
        from xpm.web.push import Hub

        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        if threading.current_thread() is threading.main_thread():
            # `kill PID` stops the foreground server as Ctrl-C does (its pages are told so).
            self._loop.add_signal_handler(signal.SIGTERM, self._stopped.set)
        hub = Hub(MonitorModel(self.workspace), interval=self.interval)
        runner = web.AppRunner(make_app(hub, self.token, lambda: self.port), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.SockSite(runner, self._socket).start()
            self._ready.set()
            waiters = [asyncio.ensure_future(self._stopped.wait())]
            if until is not None:
                waiters.append(asyncio.ensure_future(until()))
            _, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for waiter in pending:
                waiter.cancel()
        finally:
            await runner.cleanup()
            self._socket.close()

    def run(self) -> None:
        """Serves in this thread until Ctrl-C (or SIGTERM)."""
        try:
            asyncio.run(self.serve())
        except KeyboardInterrupt:
            pass

    def start(self) -> WebMonitor:
        """Serves from a thread of its own (a daemon: it never keeps the process alive); returns self."""

        def main() -> None:
            try:
                asyncio.run(self.serve())
            except BaseException as exc:  # noqa: BLE001 - given to start()'s caller
                self._error = exc
                self._ready.set()

        self._thread = threading.Thread(target=main, name="xpm-web-monitor", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        """Stops serving (the open pages lose their connection); waits for the thread to end."""
        loop, stopped = self._loop, self._stopped
        if loop is not None and stopped is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stopped.set)
            except RuntimeError:
                pass  # the loop ended meanwhile
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


class WebOptions(NamedTuple):
    """What ``experiment(host=..., port=..., token=..., wait_for_quit=...)`` asks of the web monitor."""

    host: str | None
    port: int | None
    token: str | None
    wait_for_quit: bool

    @property
    def wanted(self) -> bool:
        """Whether a server is asked for: a port (a negative one asks for none) or a host."""
        return (self.port is not None and self.port >= 0) or (self.port is None and self.host is not None)


def serve_run(workspace: Workspace, experiment_id: str, options: WebOptions) -> WebMonitor:
    """Serves the web monitor of a running experiment from a thread; prints its URL on stderr.

    The port is ``options.port``, else ``server.port`` of the settings, else 12345.

    Raises:
        PortInUse: the port is taken (before the run starts).
    """
    port = options.port if options.port is not None else settings_port()
    monitor = WebMonitor(
        workspace, host=options.host, port=DEFAULT_PORT if port is None else port, experiment=experiment_id,
        token=options.token,
    ).start()
    print(f"xpm: web monitor of {experiment_id}: open {monitor.url}", file=sys.stderr, flush=True)
    return monitor


def end_run(monitor: WebMonitor, options: WebOptions) -> None:
    """Stops the web monitor of a run that ended; with ``wait_for_quit``, once the user pressed Ctrl-C."""
    try:
        if options.wait_for_quit:
            print(f"xpm: the run ended; the web monitor still serves {monitor.url} until Ctrl-C",
                  file=sys.stderr, flush=True)
            threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        monitor.stop()
