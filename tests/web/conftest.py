"""Fixtures of the web monitor tests: a workspace made by a real experiment, and the server over it.

The experiment runs in its own process for the whole module: ``quick`` ends at once,
``bad`` fails, ``sum2`` depends on ``sum1``, ``slow`` runs until the test writes its
``go`` file, ``doomed`` runs until it is killed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple

import pytest

from tests.monitor.runs import TwoRuns, run_twice
from tests.run.conftest import script_env, wait_until
from xpm.web.serve import WebMonitor
from xpm.workspace import LocalWorkspace

SCRIPT = """
    from xpm import experiment, tag
    from tests.run.tasks import Record, Sum

    with experiment({ws!r}, "watched") as xp:
        Record.C(key=tag("quick"), log={log!r}).submit()
        Record.C(key=tag("bad"), fail=True, log={log!r}).submit()
        first = Sum.C(value=1).submit()
        Sum.C(value=2, previous=first).submit()
        Record.C(key=tag("slow"), log={log!r}, wait_for={go!r}).submit()
        Record.C(key=tag("doomed"), log={log!r}, wait_for={never!r}).submit()
"""


class Experiment(NamedTuple):
    ws: Path
    go: Path
    process: subprocess.Popen[str]


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Experiment]:
    """The experiment, once its ``slow`` and ``doomed`` jobs run (and ``quick`` and ``bad`` ended)."""
    root = tmp_path_factory.mktemp("web")
    config = root / "config"
    config.mkdir()
    ws, go, never, log = root / "workspace", root / "go", root / "never", root / "log"
    script = root / "script.py"
    script.write_text(textwrap.dedent(SCRIPT.format(ws=str(ws), go=str(go), never=str(never), log=str(log))))
    process = subprocess.Popen(
        [sys.executable, str(script)], cwd=root, env=script_env(XPM_CONFIG_DIR=str(config)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        def started() -> bool:
            text = log.read_text() if log.exists() else ""
            return all(f"{key} start" in text for key in ("slow", "doomed", "quick", "bad"))

        wait_until(started, what="the jobs of the experiment to start")
        yield Experiment(ws, go, process)
    finally:
        go.write_text("go")
        never.write_text("never")
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def serve(ws: Path) -> Iterator[WebMonitor]:
    """The web monitor of a workspace, on a free port, refreshed every 0.2 s (stopped after the test)."""
    monitor = WebMonitor(LocalWorkspace(str(ws)), port=0, interval=0.2).start()
    try:
        yield monitor
    finally:
        monitor.stop()


@pytest.fixture
def server(running: Experiment) -> Iterator[WebMonitor]:
    """The web monitor of the experiment's workspace."""
    yield from serve(running.ws)


@pytest.fixture(scope="module")
def twice(tmp_path_factory: pytest.TempPathFactory) -> TwoRuns:
    """A workspace where the experiment ``twice`` ran twice with different jobs (tests.monitor.runs)."""
    return run_twice(tmp_path_factory.mktemp("twice"))


@pytest.fixture
def twice_server(twice: TwoRuns) -> Iterator[WebMonitor]:
    """The web monitor of that workspace."""
    yield from serve(twice.ws)


class Answer(NamedTuple):
    status: int
    headers: Any
    body: Any


def request(
    server: WebMonitor,
    path: str,
    *,
    token: str | None = "",
    method: str = "GET",
    headers: dict[str, str] | None = None,
) -> Answer:
    """A request to the server; ``token=""`` puts the server's token in the query, None sends none."""
    url = f"http://127.0.0.1:{server.port}{path}"
    if token is not None:
        url += ("&" if "?" in url else "?") + f"token={token or server.token}"
    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with _opener.open(req, timeout=30) as response:
            status, got, data = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, got, data = error.code, error.headers, error.read()
    kind = got.get("Content-Type", "")
    return Answer(status, got, json.loads(data) if kind.startswith("application/json") else data.decode())


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def eventually(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Calls ``check`` until it returns a true value (which is returned)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def require_chromium() -> str:
    """The system chromium's path; skips without it, unless XPM_REQUIRE_BROWSER=1 (then the test fails)."""
    path = "/usr/bin/chromium"
    if not os.path.exists(path):
        if os.environ.get("XPM_REQUIRE_BROWSER") == "1":
            pytest.fail("XPM_REQUIRE_BROWSER=1 but /usr/bin/chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed")
    return path
