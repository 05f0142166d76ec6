"""A submitted job, as the experiment process sees it."""

from __future__ import annotations

import threading
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, Callable

from xpm import state
from xpm.launchers import Launched, Launcher
from xpm.runmode import RunMode, TransientMode
from xpm.scheduler.prepare import prepare_once
from xpm.state import JobFailureStatus, JobState
from xpm.store.tokens import TokenDependency

if TYPE_CHECKING:
    from xpm.scheduler.core import Scheduler


class Job:
    """One job of the workspace, submitted by this experiment process.

    Attributes:
        config: the task configuration.
        task_id: the task id (first part of the job's folder name).
        identifier: the job identifier (hex).
        jobpath: the job folder (also ``path``).
        tags: the tags of the task.
        state: the state as this process knows it, a :class:`~xpm.state.JobState`
            (equal to its word: ``unscheduled``, ``waiting``, ``ready``,
            ``scheduled``, ``running``, ``done``, ``error``); an error state
            carries its reason.
        scheduler_state: the same, except for a transient job that no task
            needed: ``JobState.TRANSIENT`` (``state`` is then ``UNSCHEDULED``).
        failure_reason: why the job is in error, a :class:`~xpm.state.JobFailureStatus`
            (equal to its word: ``failed``, ``dependency``, ``cancelled``,
            ``timeout``, ``memory``).
        dependencies: what the job waits for: the jobs whose outputs its parameters
            hold, and the preparation of its ``Prepare`` configurations.
        tokens: the token units the job holds while it runs.
        prepares: the ``Prepare`` configurations the task holds.
        retry_count: how many times the job was run again after a timeout.
        environ: environment variables of this job's process, over the experiment's
            (set by submit hooks, :mod:`xpm.config.hooks`).
        transient: how the job was submitted (:class:`~xpm.runmode.TransientMode`).
        run_mode: what the experiment does with it (a job submitted with
            ``run_mode=DRY_RUN`` in a running experiment is only shown).
    """

    # Slots: an experiment may hold a hundred thousand jobs, and an instance dictionary
    # of this many attributes is several times the size.
    __slots__ = (
        "config",
        "task_id",
        "identifier",
        "jobpath",
        "stdout",
        "stderr",
        "tags",
        "launcher",
        "max_retries",
        "resumable",
        "dependencies",
        "tokens",
        "prepares",
        "_state",
        "_failure_reason",
        "_shown",
        "retry_count",
        "environ",
        "transient",
        "run_mode",
        "dormant",
        "needed",
        "create",
        "on_completed",
        "scheduler",
        "waiting_on",
        "dependents",
        "launched",
        "attached",
        "_finished",
    )

    def __init__(
        self,
        config: Any,
        task_id: str,
        identifier: str,
        jobpath: PurePath,
        *,
        tags: dict[str, Any],
        launcher: Launcher,
        max_retries: int,
        resumable: bool,
        dependencies: list[Any],
        tokens: list[TokenDependency],
        prepares: list[Any],
        stdout: PurePath,
        stderr: PurePath,
    ):
        self.config = config
        self.task_id = task_id
        self.identifier = identifier
        self.jobpath = jobpath
        self.stdout = stdout
        self.stderr = stderr
        self.tags = tags
        self.launcher = launcher
        self.max_retries = max_retries
        self.resumable = resumable
        self.dependencies = dependencies
        self.tokens = tokens
        self.prepares = prepares
        self._state: str = state.UNSCHEDULED
        self._failure_reason: str | None = None
        #: the state object of the two above (asked far more often than they change)
        self._shown: state.JobState = state.JobState.UNSCHEDULED
        self.retry_count = 0
        self.environ: dict[str, str] = {}
        self.transient = TransientMode.NONE
        self.run_mode = RunMode.NORMAL
        #: a transient job that no task needed yet: not run, and not waited for
        self.dormant = False
        #: a transient job that a task needs (or submitted again as not transient)
        self.needed = False
        #: writes the job's folder, for a transient job whose folder waits until it is needed
        self.create: Callable[[], bool | None] | None = None
        #: called in the experiment process once the job is done (``on_completed``; a tuple:
        #: most jobs have none, and a shared empty tuple costs nothing per job)
        self.on_completed: tuple[Callable[[], Any], ...] = ()
        #: the scheduler that runs the job (None for a job that is only shown)
        self.scheduler: Scheduler | None = None
        #: the dependencies not finished yet (kept by the scheduler)
        self.waiting_on: set[Any] = set()
        #: the jobs that wait for this one
        self.dependents: list[Job] = []
        #: the process this experiment launched for the job
        self.launched: Launched | None = None
        #: the process record of a job run by another process, that this one follows
        self.attached: dict[str, Any] | None = None
        self._finished = threading.Event()

    # The state is kept as the records' words; user code gets state objects
    # (xpm.state.JobState), which are equal to those words.

    @property
    def state(self) -> state.JobState:
        shown = self._shown
        return state.JobState.UNSCHEDULED if shown is state.JobState.TRANSIENT else shown

    @state.setter
    def state(self, word: str) -> None:
        self._state = str(word)
        self._shown = state.job_state(self._state, self._failure_reason)

    @property
    def scheduler_state(self) -> JobState:
        """The state in this experiment (``TRANSIENT`` for a transient job no task needed)."""
        return self._shown

    def set_state(self, word: str, failure_reason: str | None = None) -> None:
        """Sets the state and its failure reason together (the records' words)."""
        self._state = str(word)
        self._failure_reason = None if failure_reason is None else str(failure_reason)
        self._shown = state.job_state(self._state, self._failure_reason)

    @property
    def failure_reason(self) -> JobFailureStatus | None:
        return state.failure_status(self._failure_reason)

    @failure_reason.setter
    def failure_reason(self, reason: str | None) -> None:
        self._failure_reason = None if reason is None else str(reason)
        self._shown = state.job_state(self._state, self._failure_reason)

    @property
    def path(self) -> PurePath:
        """The job folder (``jobpath``)."""
        return self.jobpath

    @property
    def name(self) -> str:
        """``task-id/identifier``."""
        return f"{self.task_id}/{self.identifier}"

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Waits until the job ends (in this experiment); returns whether it is done.

        A transient job that no task needs does not run: False at once.
        """
        if self.dormant:
            return False
        self._finished.wait(timeout)
        return self._state == state.DONE

    def add_on_completed(self, callback: Callable[[], Any]) -> None:
        """Calls ``callback()`` in the experiment process once the job is done (at once if it is).

        Only jobs that the experiment runs (the ``NORMAL`` run mode) call it.
        """
        if self.scheduler is not None:
            self.scheduler.add_on_completed(self, callback)
        else:
            self.on_completed = (*self.on_completed, callback)

    def describe_tags(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.tags.items())

    def __repr__(self) -> str:
        return f"Job({self.name}, {self._state})"


def run_prepares(job: Job, done: set[str], announce: Callable[[str], None] | None = None) -> None:
    """Runs the job's ``Prepare`` configurations not run yet (``done`` holds their identifiers).

    ``announce`` receives ``<type-id>/<identifier>`` before each one runs.
    """
    for prep in job.prepares:
        key = str(prep.__identifier__())
        if key in done:
            continue
        if announce is not None:
            announce(f"{prep.__xpm__.xpmtype.identifier}/{key}")
        prepare_once(prep)
        done.add(key)
