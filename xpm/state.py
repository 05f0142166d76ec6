"""What may happen to a job in each state: every job-state set and decision, in one place.

The states and failure reasons are strings on the wire (``xpm.schema``); this
module names them, gives user code state objects equal to those strings
(:class:`JobState`, :class:`JobFailureStatus`), and holds the rules of "Running a
job" in ``spec/workspace.md``.
Every writer of a job's state (the scheduler, the job process, ``jobs kill`` and
``jobs clean``, the monitors) decides with the functions below, under the job
lock, right after reading the job's record, so that "what may happen to a job in
this state" has one answer.

The decisions are pure: a record (or None when the job has none), who asks, and
whether the process the record names is alive. Liveness is asked of an *oracle*
given as an argument (``alive(process) -> True | False | None``, None when this
host cannot tell), called only when a rule needs it: asking a cluster is not
free. ``spec/vectors/states.json`` lists cases that every implementation must
decide alike.
"""

from __future__ import annotations

import enum
from typing import Any, Callable, ClassVar, Literal, Optional

from xpm.schema import FAILURE_REASONS, JOB_STATES, JobStateRecord

__all__ = [
    "JobState",
    "JobStateError",
    "JobFailureStatus",
    "FailureReason",
    "job_state",
    "failure_status",
    "UNSCHEDULED",
    "WAITING",
    "READY",
    "SCHEDULED",
    "RUNNING",
    "DONE",
    "ERROR",
    "TRANSIENT",
    "FAILED",
    "DEPENDENCY",
    "CANCELLED",
    "TIMEOUT",
    "MEMORY",
    "RUN_RUNNING",
    "RUN_DONE",
    "RUN_FAILED",
    "FINAL",
    "STARTABLE",
    "LAUNCHED",
    "KILLABLE",
    "CLEANABLE",
    "LOG_ENDED",
    "STATE_RANK",
    "Alive",
    "Decision",
    "may_start",
    "runs_it",
    "run_elsewhere",
    "admit",
    "at_launch",
    "dependency_failed",
    "unrecorded_end",
    "settle",
    "kill",
    "clean_refusal",
    "not_cleanable",
    "kept_retries",
    "DECISIONS",
]

#: Why a job is in error (``JobStateRecord.failure_reason``)
FailureReason = Literal["failed", "dependency", "cancelled", "timeout", "memory"]

UNSCHEDULED, WAITING, READY, SCHEDULED, RUNNING, DONE, ERROR = JOB_STATES
FAILED, DEPENDENCY, CANCELLED, TIMEOUT, MEMORY = FAILURE_REASONS
#: The state of a transient job that no task needed (yet): it is the experiment's word only,
#: never recorded (the job's folder may not even exist)
TRANSIENT = "transient"

#: The status of an experiment run (``RunRecord.status``): running, then done (every job done) or failed
RUN_RUNNING, RUN_DONE, RUN_FAILED = "running", "done", "failed"

#: States after which a job never changes in the experiment that follows it
FINAL = frozenset({DONE, ERROR})
#: States from which the job process may start a job that no one else runs: never run,
#: waiting, or ended in error (run again when submitted again)
STARTABLE = frozenset({UNSCHEDULED, WAITING, READY, ERROR})
#: States in which a process was launched for the job and may run it (so its logs may grow)
LAUNCHED = (SCHEDULED, RUNNING)
#: States in which a job may be killed: an experiment will start it, or a process runs it
KILLABLE = (WAITING, READY, SCHEDULED, RUNNING)
#: States in which a job folder may be deleted: it ended, or it never started (``unscheduled``:
#: planned in GENERATE_ONLY mode; an experiment that is submitting such a job writes its folder
#: again, under the job's lock, if it was deleted meanwhile: :meth:`JobStore.restore`).
CLEANABLE = (DONE, ERROR, UNSCHEDULED)
#: States (as listed: ``unscheduled`` for no record) in which no process writes the job's logs any more
LOG_ENDED = (DONE, ERROR, UNSCHEDULED)
#: The order in which the monitors list jobs: what needs a look first
STATE_RANK = {RUNNING: 0, ERROR: 1, SCHEDULED: 2, READY: 3, WAITING: 4, UNSCHEDULED: 5, DONE: 6}


# --- states as objects: what user code compares a job's state with ---------------------------


class JobFailureStatus(str, enum.Enum):
    """Why a job is in error: ``job.state.failure_reason`` and ``job.failure_reason``.

    Each member equals the word of the records (``JobFailureStatus.TIMEOUT ==
    "timeout"``). xpm records the first five; the others exist so that code testing
    for them runs, and never match a job of xpm.
    """

    DEPENDENCY = DEPENDENCY
    FAILED = FAILED
    MEMORY = MEMORY
    TIMEOUT = TIMEOUT
    CANCELLED = CANCELLED
    REJECTED_TIMELIMIT = "rejected_timelimit"
    REJECTED_OTHER = "rejected_other"
    MISSING_OUTPUTS = "missing_outputs"
    DELETED = "deleted"

    def __str__(self) -> str:
        return self.value  # type: ignore[no-any-return]

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


class JobState(str):
    """A job's state, as ``job.state`` gives it: a string equal to the word of the records.

    ``JobState.DONE == "done"``, so code comparing with words (``state.DONE``, the
    records' ``"done"``) and code comparing with ``JobState`` members agree, and
    either may be a key of the same ``dict``. ``JobState("done") is JobState.DONE``;
    ``name`` is the word. Every error state equals ``JobState.ERROR`` whatever its
    reason; ``JobStateError(reason)`` makes one that carries it.

    The members: ``UNSCHEDULED``, ``WAITING``, ``READY``, ``SCHEDULED``,
    ``RUNNING``, ``DONE``, ``ERROR``, and ``TRANSIENT`` (a transient job that no
    task needed: the experiment's word only, never recorded).
    """

    __slots__ = ()

    UNSCHEDULED: ClassVar[JobState]
    WAITING: ClassVar[JobState]
    READY: ClassVar[JobState]
    SCHEDULED: ClassVar[JobState]
    RUNNING: ClassVar[JobState]
    DONE: ClassVar[JobState]
    ERROR: ClassVar[JobStateError]
    TRANSIENT: ClassVar[JobState]

    #: the reason of an error state (None for the others)
    failure_reason: JobFailureStatus | None = None

    def __new__(cls, word: str) -> JobState:
        known = _STATES.get(word) if isinstance(word, str) else None
        if known is None:
            raise ValueError(f"unknown job state {word!r}: expected one of {', '.join(_STATES)}")
        return known

    @property
    def name(self) -> str:
        """The word of the state (``"done"``)."""
        return str.__str__(self)

    def is_unscheduled(self) -> bool:
        """Not submitted to run: never scheduled, or transient and not needed."""
        return self in _UNSCHEDULED_WORDS

    def notstarted(self) -> bool:
        """No process was started for the job yet."""
        return self in _NOT_STARTED

    def running(self) -> bool:
        """A process was started for the job (``scheduled`` or ``running``)."""
        return self in LAUNCHED

    def finished(self) -> bool:
        """The job ended: ``done`` or ``error``."""
        return self in FINAL

    def is_error(self) -> bool:
        return str.__eq__(self, ERROR)

    def __repr__(self) -> str:
        return f"JobState.{str.upper(self)}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (JobState, (str(self),))


class JobStateError(JobState):
    """The state of a job in error, with its reason (``failure_reason``, None when unknown).

    Two error states are equal whatever their reasons, as any state equals its word:
    ``JobStateError(JobFailureStatus.TIMEOUT) == JobState.ERROR == "error"``.
    """

    failure_reason: JobFailureStatus | None

    def __new__(cls, failure_reason: JobFailureStatus | str | None = None) -> JobStateError:
        obj = str.__new__(cls, ERROR)
        obj.failure_reason = None if failure_reason is None else JobFailureStatus(failure_reason)
        return obj

    def __repr__(self) -> str:
        return f"JobStateError({self.failure_reason.name})" if self.failure_reason else "JobState.ERROR"

    def __reduce__(self) -> tuple[Any, ...]:
        return (JobStateError, (self.failure_reason,))


def _member(word: str) -> JobState:
    return str.__new__(JobState, word)


_UNSCHEDULED_WORDS = frozenset({UNSCHEDULED, TRANSIENT})
_NOT_STARTED = frozenset({UNSCHEDULED, TRANSIENT, WAITING, READY})
#: each state by its word (the error state without a reason)
_STATES: dict[str, JobState] = {word: _member(word) for word in (*JOB_STATES[:-1], TRANSIENT)}
_STATES[ERROR] = JobStateError()
for _word, _member_state in _STATES.items():
    setattr(JobState, _word.upper(), _member_state)
del _word, _member_state
#: the error states with a reason, one per reason
_ERRORS: dict[str, JobStateError] = {}


def job_state(word: str, failure_reason: str | None = None) -> JobState:
    """The state object of a record's words (an error with ``failure_reason`` carries it).

    Raises:
        ValueError: an unknown state or failure reason.
    """
    if failure_reason is None or word != ERROR:
        found_state = _STATES.get(word)
        return found_state if found_state is not None else JobState(word)  # JobState() raises
    found = _ERRORS.get(failure_reason)
    if found is None:
        found = _ERRORS[failure_reason] = JobStateError(failure_reason)
    return found


def failure_status(reason: str | None) -> JobFailureStatus | None:
    """The :class:`JobFailureStatus` of a record's failure reason (None stays None)."""
    return None if reason is None else JobFailureStatus(reason)


#: The liveness oracle: whether a record's process is alive (None: this host cannot tell)
Alive = Callable[[Optional[dict[str, Any]]], Optional[bool]]

Record = Optional[JobStateRecord]


class Decision(str, enum.Enum):
    """What a decision says to do (its value is the word of ``spec/vectors/states.json``)."""

    #: admit: the job is done, nothing to write
    DONE = "done"
    #: a live process (or one this host cannot check) runs the job: follow it
    FOLLOW = "follow"
    #: admit: a resumable job out of retries ends in error as recorded
    EXHAUSTED = "exhausted"
    #: admit: record ``waiting``
    WAIT = "wait"
    #: launch, settle: the job ends in the experiment (:func:`end_of`)
    END = "end"
    #: launch: start it now
    LAUNCH = "launch"
    #: settle: run a resumable job again after a timeout
    RETRY = "retry"
    #: settle: start it again
    READY = "ready"
    #: kill: nothing to kill
    SKIP = "skip"
    #: kill: a process runs it that this host cannot check
    UNKNOWN = "unknown"
    #: kill: record ``cancelled``, then stop its live process
    STOP = "stop"
    #: kill: record ``cancelled`` (no live process runs it)
    CANCEL = "cancel"
    #: dependency: record ``error`` with the reason ``dependency``
    FAIL = "fail"


def _is(record: Record, state: str, reason: str | None = None) -> bool:
    return record is not None and record.state == state and (reason is None or record.failure_reason == reason)


# --- the job process -------------------------------------------------------------------------


def may_start(record: Record, *, mine: bool, alive: Alive) -> bool:
    """Whether a job process may start the job whose state is ``record`` (spec: rule 3).

    Args:
        record: the job's state record.
        mine: whether the record's process is the asking job process (the
            scheduler launched it and recorded it).
        alive: the liveness oracle.

    It may when the record names it, when the job never ran or ended in error,
    or when the process recorded as running it is dead. A job that is done, or
    that a live process runs, is not started again; nor a job killed (``jobs
    kill``) between its launch and its start.
    """
    if record is None:
        return True
    if record.state == DONE:
        return False
    if mine:
        return not _is(record, ERROR, CANCELLED)
    if record.state in STARTABLE:
        return True
    return alive(record.process) is False


def runs_it(record: Record, *, mine: bool) -> bool:
    """Whether the asking job process may record the end of its job: the record still says
    that it runs it (a ``cancelled`` written by ``jobs kill`` stays)."""
    return mine and _is(record, RUNNING)


# --- the scheduler ---------------------------------------------------------------------------


def run_elsewhere(record: Record, alive: Alive) -> bool:
    """Whether a live process (or one this host cannot check) runs the job: it is followed."""
    if record is None or record.state not in LAUNCHED:
        return False
    return alive(record.process) is not False


def exhausted(record: JobStateRecord, *, resumable: bool, max_retries: int) -> bool:
    """A resumable job whose timeouts used up its retries stays in error (until max_retries grows)."""
    return _is(record, ERROR, TIMEOUT) and resumable and record.retry_count >= max_retries


def kept_retries(record: Record) -> int:
    """The retry count a new attempt starts from: retries count only along timeouts, another
    error starts the count again."""
    return record.retry_count if record is not None and _is(record, ERROR, TIMEOUT) else 0


def admit(record: Record, alive: Alive, *, resumable: bool = False, max_retries: int = 0) -> Decision:
    """What an experiment that submits a job does with it (spec: rule 1).

    Returns:
        ``"done"`` (the job is done: nothing to write), ``"follow"`` (a live
        process runs it), ``"exhausted"`` (a resumable job out of retries: it
        ends in error as recorded), or ``"wait"`` (record ``waiting``).
    """
    if _is(record, DONE):
        return Decision.DONE
    if run_elsewhere(record, alive):
        return Decision.FOLLOW
    if record is not None and exhausted(record, resumable=resumable, max_retries=max_retries):
        return Decision.EXHAUSTED
    return Decision.WAIT


def at_launch(record: Record, alive: Alive) -> Decision:
    """What the experiment does with a ready job, under its lock, just before launching it (rule 2).

    Returns:
        ``"follow"`` (run elsewhere meanwhile), ``"end"`` (done meanwhile, killed
        while it waited, or cleaned since it was admitted: no record), or ``"launch"``.
    """
    if run_elsewhere(record, alive):
        return Decision.FOLLOW
    if record is None or record.state == DONE or _is(record, ERROR, CANCELLED):
        return Decision.END
    return Decision.LAUNCH


def dependency_failed(record: Record, alive: Alive) -> Decision:
    """What the experiment does with a job whose dependency failed (rule 2).

    Returns:
        ``"done"`` (done meanwhile), ``"follow"`` (a live process runs it),
        ``"end"`` (killed since it was admitted: it ends as recorded, ``cancelled``;
        cleaned: no record), or ``"fail"`` (record ``error`` with the reason ``dependency``).
    """
    if _is(record, DONE):
        return Decision.DONE
    if run_elsewhere(record, alive):
        return Decision.FOLLOW
    if record is None or _is(record, ERROR, CANCELLED):
        return Decision.END
    return Decision.FAIL


def end_of(record: Record) -> tuple[str, str | None]:
    """The state and reason a job ends with in its experiment, given an ended or cancelled
    record (no record: killed and cleaned)."""
    if record is None:
        return ERROR, CANCELLED
    return record.state, record.failure_reason


def unrecorded_end(record: Record, process: Any, why: Callable[[], str]) -> str | None:
    """The failure reason to record for a launched ``process`` that ended (rule 4), or None
    to keep the record.

    Args:
        record: the job's record, read under the lock.
        process: the process that ended, as launched.
        why: asks the process's handler why it ended (``failed``, ``timeout``...);
            called only when the record says the process did not record its end.

    A job still ``scheduled`` or ``running`` with that process ended without
    recording it. A Slurm job stopped at its time limit got SIGTERM like any
    kill and recorded ``cancelled``: when Slurm says ``timeout``, that wins.
    """
    if record is None or record.process != process:
        return None
    if record.state in LAUNCHED:
        return why()
    if _is(record, ERROR, CANCELLED) and why() == TIMEOUT:
        return TIMEOUT
    return None


def settle(record: Record, alive: Alive, *, resumable: bool, max_retries: int) -> Decision:
    """What follows an attempt of a job, in the experiment that launched or followed it.

    Returns:
        ``"end"`` (the job ended: :func:`end_of`), ``"retry"`` (a resumable job
        stopped on a timeout and has retries left), ``"follow"`` (another process
        runs it now), or ``"ready"`` (it is to be started again).
    """
    if record is None:
        return Decision.END  # admission recorded a state: a job without one was killed and cleaned
    if record.state not in FINAL:
        return Decision.FOLLOW if run_elsewhere(record, alive) else Decision.READY
    if _is(record, ERROR, TIMEOUT) and resumable and record.retry_count < max_retries:
        return Decision.RETRY
    return Decision.END


# --- from outside the experiment: jobs kill, jobs clean, the monitors ------------------------


def kill(record: Record, alive: Alive) -> Decision:
    """What ``jobs kill`` does to a job.

    Returns:
        ``"skip"`` (not killable: it ended, or never was submitted), ``"unknown"``
        (a process runs it that this host cannot check), ``"stop"`` (record
        ``cancelled``, then stop its live process), or ``"cancel"`` (record
        ``cancelled``: no process runs it yet, or it is dead).
    """
    if record is None or record.state not in KILLABLE:
        return Decision.SKIP
    if record.state not in LAUNCHED or record.process is None:
        return Decision.CANCEL
    live = alive(record.process)
    if live is None:
        return Decision.UNKNOWN
    return Decision.STOP if live else Decision.CANCEL


def not_cleanable(state: str) -> str:
    """Why a job in ``state`` is not cleaned (the same words wherever it is said)."""
    return f"{state.upper()} (only jobs that ended or never started are cleaned)"


def clean_refusal(record: Record, alive: Alive) -> str | None:
    """Why a job's folder may not be deleted now (``jobs clean``), or None when it may."""
    if record is None:
        return None  # never started (see CLEANABLE)
    if record.state not in CLEANABLE:
        return not_cleanable(record.state)
    if record.failure_reason == CANCELLED and record.process:
        # Killed: recorded before its process stopped, which may still be writing in the folder.
        live = alive(record.process)
        if live:
            return "killed, but its process has not stopped yet"
        if live is None:
            return f"killed, and its process may still run ({record.process.get('host')}): clean it from there"
    return None


#: Every decision, by the name of who asks (the ``asks`` of ``spec/vectors/states.json``)
DECISIONS: dict[str, Callable[..., Any]] = {
    "job-start": may_start,
    "job-end": runs_it,
    "admit": admit,
    "launch": at_launch,
    "dependency": dependency_failed,
    "exit": unrecorded_end,
    "settle": settle,
    "kill": kill,
    "clean": clean_refusal,
}
