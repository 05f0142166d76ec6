"""The job program: ``python -m xpm run <job folder>`` runs one task.

The job process records its own state in the workspace (``running``, then
``done`` or ``error``), so a job's state never depends on the experiment process
that launched it staying alive. Every state change is a compare-and-swap under the
job lock (:meth:`xpm.store.jobs.JobStore.transition`), decided by the rules of
:mod:`xpm.state`: a job process only starts a job that nobody else runs, and only
ends a job it runs itself.

This module is imported by every job, so it imports little: no click, no fsspec.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from xpm import context, layout, process, state, taskglobals
from xpm.config.operations import _instance
from xpm.errors import GracefulTimeout, TaskCancelled, XpmError
from xpm.schema import JobStateRecord
from xpm.serialize import loads
from xpm.store.jobs import JobStore
from xpm.workspace import LocalWorkspace

__all__ = ["EXIT_DONE", "EXIT_FAILED", "EXIT_NOT_RUN", "instances", "run", "main"]

#: Exit statuses of the job process
EXIT_DONE, EXIT_FAILED, EXIT_NOT_RUN = 0, 1, 3


def _on_sigterm(signum: int, frame: Any) -> None:
    raise TaskCancelled(f"the job received signal {signum}")


def instances(task: Any) -> tuple[Any, list[Any]]:
    """The task object and its init task objects, sharing the objects of their parameters.

    Init tasks typically prepare an object the task also holds (load weights into
    a model): both must see the same Python object.
    """
    memo: dict[int, Any] = {}
    inits = [_instance(init, memo) for init in task.__xpm__.init_tasks]
    return _instance(task, memo), inits


def _time_left() -> Callable[[], float | None] | None:
    """How this job asks for its time limit: Slurm jobs ask Slurm; other jobs have none."""
    jobid = os.environ.get(process.SLURM_JOB_VARIABLE)
    if not jobid:
        return None
    # Imported only by Slurm jobs: local jobs do not pay for it.
    from xpm.launchers.slurm_status import time_left

    return functools.partial(time_left, jobid)


class NotLoaded(Exception):
    """The task's parameters could not be loaded (the message says why, in one line)."""


def _load(jobdir: Path) -> Any:
    """The task of a job folder, from its params.json.

    Raises:
        NotLoaded: an xpm error (a class that cannot be imported, a damaged file, a
            script that runs its experiment when imported...): one line says it all.
    """
    source = jobdir / layout.PARAMS_FILE
    try:
        # An experiment that starts while the task's code is imported is refused: the
        # script lacks its main guard, and the job would wait for its own experiment.
        with context.loading_task(str(jobdir)):
            return loads(source.read_bytes(), jobpath=jobdir, source=str(source))
    except XpmError as exc:
        raise NotLoaded(str(exc)) from None


def run(jobdir: Path) -> int:
    """Runs the job of ``jobdir`` in this process; returns the exit status."""
    jobdir = jobdir.resolve()
    root, task_id, identifier = layout.split_job_dir(str(jobdir))
    store = JobStore(LocalWorkspace(root))
    pid = os.getpid()

    def mine(record: JobStateRecord | None) -> bool:
        """Whether the record names this process (or its Slurm job) as the one that runs the job."""
        return record is not None and process.is_this_process(record.process, pid)

    started = store.transition(
        task_id,
        identifier,
        lambda record: state.may_start(record, mine=mine(record), alive=process.alive_here),
        state.RUNNING,
        process=process.this_process(),
        started_at=time.time(),
        ended_at=None,
        exit_code=None,
    )
    if started is None:
        print(f"xpm: {task_id}/{identifier} is done or run by another process; not running it", file=sys.stderr)
        return EXIT_NOT_RUN

    context.enter_job(
        context.JobContext(
            lambda value, level, desc: store.progress(task_id, identifier, value, level=level, desc=desc),
            _time_left(),
        )
    )
    # What the task reads with taskglobals.Env.instance() (the task itself once it is built).
    env = taskglobals.Env.instance()
    env.wspath, env.taskpath, env.launcher_info = Path(root), jobdir, taskglobals.LauncherInformation()
    signal.signal(signal.SIGTERM, _on_sigterm)
    ended, reason, code = state.DONE, None, EXIT_DONE
    try:
        task = _load(jobdir)
        obj, inits = instances(task)
        env.current_task = obj
        for init in inits:
            init.execute()
        obj.execute()
    except NotLoaded as exc:
        ended, reason, code = state.ERROR, state.FAILED, EXIT_FAILED
        print(f"xpm: cannot load the task: {exc}", file=sys.stderr)
    except GracefulTimeout:
        ended, reason, code = state.ERROR, state.TIMEOUT, EXIT_FAILED
        print("xpm: the task stopped before its time limit (GracefulTimeout)", file=sys.stderr)
    except (TaskCancelled, KeyboardInterrupt):
        ended, reason, code = state.ERROR, state.CANCELLED, EXIT_FAILED
        print("xpm: the job was cancelled", file=sys.stderr)
    except BaseException:  # noqa: BLE001 - whatever the task raised, the job failed
        traceback.print_exc()
        ended, reason, code = state.ERROR, state.FAILED, EXIT_FAILED
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        sys.stdout.flush()
        sys.stderr.flush()
    # Only the process that runs the job ends it: a `jobs kill` that already
    # recorded "cancelled" keeps its reason.
    store.transition(
        task_id,
        identifier,
        lambda record: state.runs_it(record, mine=mine(record)),
        ended,
        reason,
        ended_at=time.time(),
        exit_code=code,
    )
    return code


def main(argv: list[str]) -> int:
    """``python -m xpm run JOBDIR``."""
    if len(argv) != 1:
        print("usage: python -m xpm run JOB_FOLDER", file=sys.stderr)
        return 2
    return run(Path(argv[0]))
