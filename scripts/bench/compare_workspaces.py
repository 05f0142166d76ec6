"""Workspaces of the side-by-side benchmark: many finished jobs, for xpm and for experimaestro 2.7.0.

Both tools get the same jobs: job i has the task ``bench.task{i % 7}``, the
identifier ``f"{i:064x}"``, the state ``STATES[i % 10]`` and the tags
``model``, ``epochs`` and ``lr`` of scripts/bench/jobs_cli.py, in one
experiment ``bench`` with one run. xpm's are written by jobs_cli's builders
(its index and run records); experimaestro's are written here, as files it
reads (checked by compare.py, which lists them with experimaestro's command):

* ``.__experimaestro__`` (the workspace marker the commands check);
* per job ``jobs/<task>/<id>/.experimaestro/status.json`` (the state) and,
  when finished, the marker ``<script>.done`` or ``<script>.failed`` that
  experimaestro trusts over status.json;
* ``experiments/bench/<run>/status.json`` (run status, state of each job),
  ``experiments/bench/<run>/jobs.jsonl`` (tags and submission time of each job)
  and the symbolic link ``experiments/bench/current``.

Building goes into a temporary folder renamed at the end, so an interrupted
build leaves no half workspace in the cache.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime
from pathlib import Path
from typing import Callable

from jobs_cli import MODELS, STATES, make_finished, make_index

EXPERIMENT = "bench"
RUN_ID = "20250101_000000"
#: submission time of job i: BASE_TS + i (as jobs_cli)
BASE_TS = 1e9


def tags(i: int) -> dict[str, object]:
    """The tags of job i (those jobs_cli.make_index gives)."""
    return {"model": MODELS[i % 4], "epochs": 10 * (i % 5), "lr": (i % 7) / 1000}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts).isoformat()


def _experimaestro_job(root: Path, task_id: str, identifier: str, state: str, ts: float) -> Path:
    """One job folder as experimaestro 2.7.0's job process leaves it (state and end marker)."""
    folder = root / "jobs" / task_id / identifier
    (folder / ".experimaestro").mkdir(parents=True)
    finished = state in ("done", "error")
    status = {
        "job_id": identifier, "task_id": task_id, "path": str(folder), "state": state, "failure_reason": None,
        "scheduler_state": state, "scheduler_failure_reason": None,
        "started_time": _iso(ts) if state in ("running", "done", "error") else None,
        "ended_time": _iso(ts + 1) if finished else None, "exit_code": None, "retry_count": 0,
        "resumable": False, "progress": [], "process": None, "events_count": 0,
    }
    (folder / ".experimaestro" / "status.json").write_text(json.dumps(status))
    script = task_id.rsplit(".", 1)[-1]
    if state == "done":
        (folder / f"{script}.done").write_text("")
    elif state == "error":
        (folder / f"{script}.failed").write_text(json.dumps({"code": 1, "reason": "failed"}))
    return folder


def _experimaestro_run(root: Path, jobs: list[tuple[str, str, str, dict[str, object], float]]) -> None:
    """The experiment ``bench`` with one run holding the jobs (task id, identifier, state, tags, time)."""
    run_dir = root / "experiments" / EXPERIMENT / RUN_ID
    run_dir.mkdir(parents=True)
    (root / "experiments" / EXPERIMENT / "current").symlink_to(RUN_ID)
    (root / "experiments" / EXPERIMENT / "lock").write_text("")
    with open(run_dir / "jobs.jsonl", "w") as out:
        for task_id, identifier, _, job_tags, ts in jobs:
            out.write(json.dumps({"job_id": identifier, "task_id": task_id, "tags": job_tags, "timestamp": ts}) + "\n")
    last = max((ts for *_, ts in jobs), default=BASE_TS)
    status = {
        "version": 1, "experiment_id": EXPERIMENT, "run_id": RUN_ID, "status": "done", "hostname": "bench",
        "started_at": _iso(BASE_TS), "ended_at": _iso(last + 1),
        "job_states": {identifier: state for _, identifier, state, _, _ in jobs},
        "services": {}, "actions": {}, "run_tags": [], "last_updated": _iso(last + 1),
    }
    (run_dir / "status.json").write_text(json.dumps(status, indent=2))


def experimaestro_index(root: str, n: int) -> None:
    """The n jobs of jobs_cli.make_index, as experimaestro stores them (for W4)."""
    base = Path(root)
    base.mkdir(parents=True, exist_ok=True)
    (base / ".__experimaestro__").write_text("")
    jobs = []
    for i in range(n):
        task_id, identifier, state = f"bench.task{i % 7}", f"{i:064x}", STATES[i % len(STATES)]
        _experimaestro_job(base, task_id, identifier, state, BASE_TS + i)
        jobs.append((task_id, identifier, state, tags(i), BASE_TS + i))
    _experimaestro_run(base, jobs)


def experimaestro_finished(root: str, m: int) -> None:
    """The m finished jobs of jobs_cli.make_finished (parameters, state, log of 100 lines), for W7."""
    base = Path(root)
    base.mkdir(parents=True, exist_ok=True)
    (base / ".__experimaestro__").write_text("")
    jobs = []
    for i in range(m):
        task_id, identifier = "bench.done", f"{i:064x}"
        folder = _experimaestro_job(base, task_id, identifier, "done", BASE_TS + i)
        (folder / "params.json").write_text("{}")
        (folder / "done.err").write_text("log line\n" * 100)
        jobs.append((task_id, identifier, "done", {}, BASE_TS + i))
    _experimaestro_run(base, jobs)


#: (what, tool) -> builder(root, n)
BUILDERS: dict[tuple[str, str], Callable[[str, int], None]] = {
    ("index", "xpm"): make_index,
    ("index", "experimaestro"): experimaestro_index,
    ("finished", "xpm"): make_finished,
    ("finished", "experimaestro"): experimaestro_finished,
}


def build(what: str, tool: str, root: str, n: int) -> None:
    """Builds the workspace ``what`` (index: W4, finished: W7) of n jobs for ``tool`` in ``root`` (new)."""
    BUILDERS[what, tool](root, n)


def cached(cache: Path, what: str, tool: str, version: str, n: int) -> Path:
    """The workspace ``what`` of n jobs for ``tool`` at ``version``, built once under ``cache``."""
    path = cache / "workspaces" / f"{what}-{tool}-{version}-{n}"
    if not path.is_dir():
        partial = path.with_name(path.name + ".partial")
        if partial.exists():
            shutil.rmtree(partial)
        build(what, tool, str(partial), n)
        os.replace(partial, path)
    return path
