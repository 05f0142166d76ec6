"""A workspace with jobs in every state, written through the store (no job process runs)."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any, Callable

import pytest
from click.testing import CliRunner, Result

from xpm import codec, layout
from xpm.cli import cli
from xpm.schema import RECORD_VERSION, JobSubmitted, RunRecord
from xpm.store.jobs import JobStore
from xpm.store.log import EventLog
from xpm.store.refs import RefStore
from xpm.workspace import Workspace

from tests.run.conftest import own_settings  # noqa: F401 - autouse: each test has its own settings folder


class Maker:
    """Writes jobs, runs and states into a workspace as experiments would."""

    def __init__(self, root: Path):
        self.root = root
        self.ws = Workspace.open(root, create=True)
        self.store = JobStore(self.ws)
        self.clock = 1_700_000_000.0

    def run(self, experiment_id: str, run_id: str = "20250101_000000", host: str = "node1") -> str:
        self.ws.makedirs(layout.run_dir(experiment_id, run_id))
        record = RunRecord(version=RECORD_VERSION, experiment_id=experiment_id, run_id=run_id, hostname=host,
                           pid=1, started_at=self.clock, status="done")
        self.ws.write_atomic(layout.run_record(experiment_id, run_id), codec.encode(record))
        refs = RefStore(self.ws)
        refs.set_if_equals(layout.current_run_ref(experiment_id), refs.value(layout.current_run_ref(experiment_id)),
                           run_id)
        return run_id

    def job(self, task_id: str, n: int, state: str | None, *, tags: dict[str, Any] | None = None,
            reason: str | None = None, experiment: tuple[str, str] | None = None, **fields: Any) -> tuple[str, str]:
        identifier = f"{n:x}".rjust(64, "0") if n >= 0 else "f" * 64
        self.store.write_params(task_id, identifier, params_of(task_id, identifier))
        if state is not None:
            self.clock += 1
            self.store.record_state(task_id, identifier, state, reason, tags=tags or {}, **fields)
        if experiment is not None:
            EventLog(self.ws, layout.run_jobs(*experiment)).append(
                JobSubmitted(ts=self.clock, task_id=task_id, identifier=identifier, tags=tags or {})
            )
        return task_id, identifier

    def path(self, key: tuple[str, str]) -> Path:
        return self.root / layout.job_dir(*key)


def params_of(task_id: str, identifier: str) -> bytes:
    """A params.json that records the job's identifier (what kill and clean check before acting)."""
    task = {"id": 0, "type": "m:T", "typeid": task_id, "identifier": identifier}
    document = {"version": 1, "xpm": "test", "objects": [task], "root": {"$": "config", "id": 0}}
    return json.dumps(document, separators=(",", ":")).encode()


@pytest.fixture
def maker(tmp_path: Path) -> Maker:
    return Maker(tmp_path / "ws")


@pytest.fixture
def xpm_cli(maker: Maker) -> Callable[..., Result]:
    """Runs ``experimaestro ARGS`` in this process (``{ws}`` in an argument is the workspace folder)."""

    def run(*args: str) -> Result:
        args_ = [a.replace("{ws}", str(maker.root)) for a in args]
        return CliRunner().invoke(cli, args_, catch_exceptions=False, prog_name="experimaestro")

    return run


def dead_pid() -> int:
    """A pid that no process of this host has (a short-lived child, reaped)."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def local(pid: int) -> dict[str, Any]:
    return {"type": "local", "pid": pid, "host": socket.gethostname()}


__all__ = ["Maker", "dead_pid", "local", "time"]
