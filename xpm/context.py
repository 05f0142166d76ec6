"""What the running code may ask of its surroundings: the current experiment, the current job.

The configuration layer sits below the experiment and the job program, but user
code calls ``task.submit()`` (which needs the running experiment), ``progress()``
and ``remaining_time()`` (which need the running job). Both are kept here, below
the configurations: the experiment pushes itself on entering its ``with`` block,
and the job program installs a :class:`JobContext` when it starts, so that the
lower layers ask this module and import nothing above them.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any, Callable, Iterable, Iterator, Protocol

from xpm.errors import XpmError

__all__ = [
    "Submitter",
    "SubmittedJob",
    "push_experiment",
    "pop_experiment",
    "current_experiment",
    "running_experiment",
    "set_outside_submitter",
    "submit_outside",
    "loading_task",
    "check_not_loading_task",
    "ExperimentInJobLoad",
    "JobContext",
    "enter_job",
    "progress",
    "remaining_time",
]


# --- the current experiment ------------------------------------------------------------------


class Submitter(Protocol):
    """What ``task.submit()`` needs of the running experiment (:class:`xpm.runs.Experiment`)."""

    def submit(
        self,
        task: Any,
        *,
        launcher: Any = None,
        init_tasks: Iterable[Any] | None = None,
        max_retries: int | None = None,
        run_mode: Any = None,
        workspace: Any = None,
        transient: Any = None,
    ) -> Any: ...


class SubmittedJob(Protocol):
    """What a configuration knows of the job it was submitted as (:class:`xpm.scheduler.job.Job`)."""

    name: str
    state: str
    stdout: Any
    stderr: Any

    def wait(self) -> bool: ...

    def add_on_completed(self, callback: Callable[[], Any]) -> None: ...


_experiments: list[Submitter] = []
_experiments_lock = threading.Lock()


def push_experiment(experiment: Submitter) -> None:
    """Makes ``experiment`` the current one (on entering its ``with`` block)."""
    with _experiments_lock:
        _experiments.append(experiment)


def pop_experiment(experiment: Submitter) -> None:
    """Forgets ``experiment`` (on leaving its ``with`` block); nothing if it is not there."""
    with _experiments_lock:
        if experiment in _experiments:
            _experiments.remove(experiment)


class ExperimentInJobLoad(XpmError):
    """An experiment started while a job process imported the task's code: the script has no
    ``if __name__ == "__main__":`` guard, and the job would wait for its own experiment."""

    def __init__(self, jobdir: str):
        self.jobdir = jobdir
        super().__init__(
            "the script started its experiment again when the job imported it to load its task: put the "
            "experiment under `if __name__ == \"__main__\":` (the job would wait forever for the experiment "
            "that launched it)"
        )


#: The job folder whose task this process is loading (the job program sets it), or None
_loading: str | None = None


@contextlib.contextmanager
def loading_task(jobdir: str) -> Iterator[None]:
    """While the job program imports a task's code: an experiment that starts then is refused."""
    global _loading
    _loading = jobdir
    try:
        yield
    finally:
        _loading = None


def check_not_loading_task() -> None:
    """Raises :class:`ExperimentInJobLoad` when called while a job process loads its task."""
    if _loading is not None:
        raise ExperimentInJobLoad(_loading)


def current_experiment() -> Submitter:
    """The innermost running experiment (``submit()`` uses it)."""
    found = running_experiment()
    if found is None:
        raise XpmError("submit() needs a running experiment: call it inside `with experiment(...) as xp:`")
    return found


def running_experiment() -> Submitter | None:
    """The innermost running experiment, or None outside any."""
    with _experiments_lock:
        return _experiments[-1] if _experiments else None


#: What submits a task outside any experiment (a dry run...): set by the package face, ``xpm``,
#: to a function that imports the experiment layer (:mod:`xpm.runs`) on its first call
_outside: Callable[..., Any] | None = None


def set_outside_submitter(submit: Callable[..., Any]) -> None:
    """Installs what ``task.submit(run_mode=...)`` calls outside any experiment: a function taking
    the task and the keywords of ``submit``."""
    global _outside
    _outside = submit


def submit_outside(task: Any, **kwargs: Any) -> Any:
    """Submits ``task`` outside any experiment (``run_mode=DRY_RUN``...), through the experiment layer.

    Raises:
        XpmError: nothing was installed (``import xpm`` installs it: the package face always runs first).
    """
    if _outside is None:
        raise XpmError("submit() outside an experiment: the experiment layer is not installed")
    return _outside(task, **kwargs)


# --- the current job -------------------------------------------------------------------------


class JobContext:
    """The job this process runs, installed by the job program (:mod:`xpm.runner.job`).

    Args:
        report_progress: records a progress event ``(value, level, desc)`` in the job's log.
        time_left: asks how many seconds are left before the job's time limit
            (None: no limit); None when the job has no time limit to ask about.
    """

    def __init__(
        self,
        report_progress: Callable[[float, int, str | None], None],
        time_left: Callable[[], float | None] | None = None,
    ):
        self.report_progress = report_progress
        self.time_left = time_left
        #: per progress level: (value, desc, time) of the last recorded event
        self.last: dict[int, tuple[float, str | None, float]] = {}
        #: the time limit, asked once: (monotonic time asked, seconds left then)
        self.known: tuple[float, float | None] | None = None


_job: JobContext | None = None


def enter_job(context: JobContext | None) -> None:
    """Installs the context of the job this process runs (None: no job)."""
    global _job
    _job = context


def progress(value: float, level: int = 0, desc: str | None = None) -> None:
    """Reports the progress of the running task (``value`` from 0 to 1).

    The progress goes to the job's event log, where the monitors read it. Calls
    that change nothing visible (less than 1% since the last recorded value at
    this level, same description, less than 10 s later) are not recorded, so a
    tight loop may call this freely. Outside a job (in the experiment process),
    it does nothing.
    """
    job = _job
    if job is None:
        return
    value = min(1.0, max(0.0, float(value)))
    now = time.time()
    last = job.last.get(level)
    if last is not None:
        last_value, last_desc, last_time = last
        if abs(value - last_value) < 0.01 and desc == last_desc and now - last_time < 10 and value < 1.0:
            return
    job.last[level] = (value, desc, now)
    job.report_progress(value, level, desc)


def remaining_time() -> float | None:
    """Seconds before this job's time limit; None without one (local jobs, Slurm without limit).

    The limit is asked once per job process (on Slurm, one ``squeue``); later
    calls count down from that answer, so a task may call this in its training loop.
    """
    job = _job
    if job is None or job.time_left is None:
        return None
    if job.known is None:
        job.known = (time.monotonic(), job.time_left())
    asked, left = job.known
    return None if left is None else max(0.0, left - (time.monotonic() - asked))
