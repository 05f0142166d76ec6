"""One workload of the side-by-side benchmark, run under xpm's or experimaestro's interpreter.

``python compare_workload.py --tool xpm|experimaestro --result OUT.json WORKLOAD ...``
runs one measurement in this (fresh) process and writes what it measured as
JSON to OUT.json: ``seconds`` (the workload alone, after the imports) and
what it counted. The workloads use the same tasks (compare_tasks.py) and the
same calls on both tools; the few places where they differ are the functions
of :class:`Tool`, and each says why.

Workloads (see compare.py): ``plan`` (W1), ``run`` (W2), ``chain`` (W3),
``mark-done`` and ``resubmit`` (W5), ``identifiers`` (W6).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


class Tool:
    """What differs between the two tools: the package, the concurrency limit, a job's end marker."""

    def __init__(self, name: str):
        self.name = name
        if name == "experimaestro":
            from experimaestro import RunMode, experiment
        else:
            from xpm import RunMode, experiment
        self.RunMode = RunMode
        self._experiment = experiment
        #: (count, experiment) while an experiment limits its jobs with a token (experimaestro)
        self._limit: tuple[int, Any] | None = None
        self._token: Any = None

    def experiment(self, root: str, name: str, run_mode: Any = None, max_jobs: int | None = None) -> Any:
        """The experiment context, limited to ``max_jobs`` jobs at a time if given.

        xpm's local launcher takes the limit (``LocalLauncher(max_jobs=...)``);
        experimaestro's has none (every ready job starts at once), so there the
        limit is a token every task takes (see :meth:`limit`).
        """
        kwargs: dict[str, Any] = {"run_mode": run_mode}
        if self.name == "experimaestro":
            # Only silences the banner saying that codecarbon is not installed.
            kwargs["no_environmental_impact"] = True
        elif max_jobs is not None:
            from xpm.launchers.local import LocalLauncher

            kwargs["launcher"] = LocalLauncher(max_jobs=max_jobs)
        xp = self._experiment(root, name, **kwargs)
        # The workspace's counter token (files under the workspace), as documented;
        # the in-process ProcessCounterToken of 2.7.0 fails ("no attribute
        # 'aio_acquire'") and leaves its jobs waiting forever.
        self._limit = (max_jobs, xp) if self.name == "experimaestro" and max_jobs is not None else None
        self._token = None
        return xp

    def limit(self, task: Any) -> Any:
        """The task, holding one unit of the experiment's token if it has one."""
        if self._limit is None:
            return task
        if self._token is None:
            # Only inside the experiment's block: the token lives in its workspace.
            count, xp = self._limit
            self._token = xp.token("bench", count)
        return self._token(1, task)

    def mark_done(self, root: Path) -> int:
        """Marks every job folder of the workspace as done, as each tool's job process does at its end.

        experimaestro: an empty ``<script>.done`` file next to ``params.json``;
        xpm: the job's state record (``.xpm/state.json``), which the scheduler reads.
        """
        folders = [p.parent for p in (root / "jobs").glob("*/*/params.json")]
        if self.name == "experimaestro":
            for folder in folders:
                (folder / f"{folder.parent.name.rsplit('.', 1)[-1]}.done").touch()
            return len(folders)
        from xpm import codec, layout
        from xpm.schema import RECORD_VERSION, JobStateRecord
        from xpm.workspace import Workspace

        ws = Workspace.open(str(root))
        now = time.time()
        for folder in folders:
            task_id, identifier = folder.parent.name, folder.name
            record = JobStateRecord(version=RECORD_VERSION, task_id=task_id, identifier=identifier, state="done",
                                    updated_at=now, started_at=now, ended_at=now, exit_code=0)
            ws.write_atomic(layout.job_state(task_id, identifier), codec.encode(record))
        return len(folders)


def timed(action: Callable[[], int]) -> dict[str, Any]:
    """Runs the action; its result is what it counted (jobs, identifiers)."""
    start = time.perf_counter()
    count = action()
    return {"seconds": time.perf_counter() - start, "count": count}


def plan(tool: Tool, root: str, n: int, experiment_id: str = "plan") -> int:
    """W1: n distinct jobs submitted in GENERATE_ONLY mode (identifier, job folder, parameters)."""
    from compare_tasks import trivial

    with tool.experiment(root, experiment_id, run_mode=tool.RunMode.GENERATE_ONLY):
        for i in range(n):
            trivial(i, n).submit()
    return n


def resubmit(tool: Tool, root: str, n: int) -> int:
    """W5: the n jobs of :func:`plan`, all done, submitted again in NORMAL mode (none may run)."""
    from compare_tasks import trivial

    with tool.experiment(root, "plan"):
        for i in range(n):
            trivial(i, n).submit()
    return n


def run(tool: Tool, root: str, m: int) -> int:
    """W2: m trivial jobs run by the local launcher, two at a time."""
    from compare_tasks import Inner, Trivial

    with tool.experiment(root, "run", max_jobs=2):
        for i in range(m):
            tool.limit(Trivial.C(index=i, lr=0.1, label="run", inner=Inner.C(size=1, name="y"))).submit()
    return m


def chain(tool: Tool, root: str, k: int) -> int:
    """W3: k jobs, each depending on the one before (a parameter holding it), run to the end."""
    from compare_tasks import Step

    with tool.experiment(root, "chain"):
        previous = None
        for i in range(k):
            previous = Step.C(index=i, previous=previous).submit()
    return k


def identifiers(n: int) -> dict[str, Any]:
    """W6: identifiers of n fresh depth-3 configurations (never hashed before), on one core."""
    from compare_tasks import top

    configs = [top(i) for i in range(n)]
    start = time.perf_counter()
    for config in configs:
        config.__identifier__()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "count": n, "per_second": n / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tool", choices=("xpm", "experimaestro"), required=True)
    parser.add_argument("--result", required=True, help="where the measurement goes (JSON)")
    parser.add_argument("--workdir", help="the workspace (the workloads that have one)")
    parser.add_argument("workload", choices=("plan", "run", "chain", "mark-done", "resubmit", "identifiers"))
    parser.add_argument("n", type=int, nargs="?", default=0, help="how many jobs (identifiers)")
    args = parser.parse_args()

    # Before compare_tasks is imported: it reads the variable, and so do the job
    # processes, which inherit it.
    os.environ["XPM_BENCH_TOOL"] = args.tool
    tool = Tool(args.tool)
    root = args.workdir
    actions: dict[str, Callable[[], dict[str, Any]]] = {
        "plan": lambda: timed(lambda: plan(tool, root, args.n)),
        "run": lambda: timed(lambda: run(tool, root, args.n)),
        "chain": lambda: timed(lambda: chain(tool, root, args.n)),
        "mark-done": lambda: timed(lambda: tool.mark_done(Path(root))),
        "resubmit": lambda: timed(lambda: resubmit(tool, root, args.n)),
        "identifiers": lambda: identifiers(args.n),
    }
    result = actions[args.workload]()
    Path(args.result).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
