"""Job states as objects (``JobState``), failure reasons, run and transient modes: what user code compares."""

from __future__ import annotations

import pickle

import pytest

from xpm import state
from xpm.errors import XpmError
from xpm.runmode import RunMode, TransientMode
from xpm.state import JobFailureStatus, JobState, JobStateError, job_state


def test_states_equal_their_words_both_ways() -> None:
    assert JobState.DONE == "done" and "done" == JobState.DONE
    assert JobState.DONE == state.DONE and state.ERROR == JobState.ERROR
    assert JobState.DONE != JobState.ERROR and JobState.TRANSIENT != JobState.UNSCHEDULED
    counts = {state.DONE: 2}
    assert counts[JobState.DONE] == 2, "a state and its word are the same key"
    assert {JobState.RUNNING: 1}["running"] == 1
    assert JobState("done") is JobState.DONE
    assert f"{JobState.RUNNING:<9}|" == "running  |" and str(JobState.DONE) == "done"
    assert JobState.DONE.name == "done" and repr(JobState.DONE) == "JobState.DONE"


def test_questions_of_each_state() -> None:
    table = {
        JobState.UNSCHEDULED: (True, True, False, False, False),
        JobState.TRANSIENT: (True, True, False, False, False),
        JobState.WAITING: (False, True, False, False, False),
        JobState.READY: (False, True, False, False, False),
        JobState.SCHEDULED: (False, False, True, False, False),
        JobState.RUNNING: (False, False, True, False, False),
        JobState.DONE: (False, False, False, True, False),
        JobState.ERROR: (False, False, False, True, True),
    }
    for member, answers in table.items():
        got = (member.is_unscheduled(), member.notstarted(), member.running(), member.finished(), member.is_error())
        assert got == answers, member


def test_error_states_carry_their_reason_and_equal_each_other() -> None:
    timeout = job_state(state.ERROR, state.TIMEOUT)
    assert isinstance(timeout, JobStateError) and isinstance(timeout, JobState)
    assert timeout == JobState.ERROR == "error" == JobStateError(JobFailureStatus.MEMORY)
    assert timeout.failure_reason is JobFailureStatus.TIMEOUT and timeout.failure_reason == "timeout"
    assert JobState.ERROR.failure_reason is None and JobState.DONE.failure_reason is None
    assert job_state(state.ERROR, state.TIMEOUT) is timeout, "one state object per reason"
    assert repr(timeout) == "JobStateError(TIMEOUT)"
    assert pickle.loads(pickle.dumps(timeout)).failure_reason is JobFailureStatus.TIMEOUT
    assert pickle.loads(pickle.dumps(JobState.DONE)) is JobState.DONE


def test_failure_reasons_equal_the_records_words() -> None:
    assert [JobFailureStatus(word) for word in ("failed", "dependency", "cancelled", "timeout", "memory")] == [
        JobFailureStatus.FAILED,
        JobFailureStatus.DEPENDENCY,
        JobFailureStatus.CANCELLED,
        JobFailureStatus.TIMEOUT,
        JobFailureStatus.MEMORY,
    ]
    assert JobFailureStatus.DEPENDENCY == state.DEPENDENCY and f"{JobFailureStatus.FAILED}" == "failed"


def test_unknown_words_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown job state 'finished'"):
        JobState("finished")
    with pytest.raises(ValueError):
        job_state(state.ERROR, "exploded")


def test_transient_modes() -> None:
    assert TransientMode.parse(None) is TransientMode.NONE
    assert TransientMode.parse("remove") is TransientMode.REMOVE and TransientMode.parse(1) is TransientMode.TRANSIENT
    assert TransientMode.REMOVE.is_transient and TransientMode.REMOVE.should_remove
    assert not TransientMode.NONE.is_transient and not TransientMode.TRANSIENT.should_remove
    assert min(TransientMode.REMOVE, TransientMode.NONE) is TransientMode.NONE, "the mode that keeps the most wins"
    for bad in ("forever", 7, True, 1.0):
        with pytest.raises(XpmError, match=r"Train.submit: unknown transient mode"):
            TransientMode.parse(bad, "Train.submit")


def test_run_modes_name_the_bad_value() -> None:
    assert RunMode.parse("dry_run") is RunMode.DRY_RUN and RunMode.parse("GENERATE-ONLY") is RunMode.GENERATE_ONLY
    with pytest.raises(XpmError, match=r"^Train.submit: unknown run mode 'sideways': expected one of NORMAL"):
        RunMode.parse("sideways", "Train.submit")
    with pytest.raises(XpmError, match="unknown run mode 3"):
        RunMode.parse(3)  # type: ignore[arg-type]
