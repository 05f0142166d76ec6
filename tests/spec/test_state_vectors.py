"""The job-state vectors, ``spec/vectors/states.json``.

The expected answers of the vectors were written by hand from the section "Running a
job: who writes the state" of ``spec/workspace.md``; here ``xpm.state`` must give every
one of them, the vectors must exercise every decision the spec labels (``**[state.X]**``)
and every decision of ``xpm.state.DECISIONS``, and the named state sets of the spec must
be those of ``xpm.state``.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from xpm import state
from xpm.schema import FAILURE_REASONS, JOB_STATES, RECORD_VERSION, JobStateRecord

ROOT = Path(__file__).resolve().parents[2]
VECTORS_FILE = ROOT / "spec" / "vectors" / "states.json"
SPEC_FILE = ROOT / "spec" / "workspace.md"

DOCUMENT = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))
CASES: list[dict[str, Any]] = DOCUMENT["cases"]
BY_NAME = {case["name"]: case for case in CASES}

SPEC = SPEC_FILE.read_text(encoding="utf-8")
#: The section of the spec the vectors come from
SECTION = SPEC.split("## Running a job: who writes the state", 1)[1].split("\n## ", 1)[0]

#: A decision's label where the spec defines it: ``**[state.admit]**``
LABEL = re.compile(r"\*\*\[state\.([a-z-]+)\]\*\*")
#: A named set of states in the spec: ``- **FINAL** = {`done`, `error`}: ...``
NAMED_SET = re.compile(r"^- \*\*([A-Z_]+)\*\* = \{([^}]*)\}", re.MULTILINE)

#: The keys of a case, by what it asks (besides name, asks, description, record, alive, expect)
INPUTS = {
    "job-start": {"mine"},
    "job-end": {"mine"},
    "admit": {"resumable", "max_retries"},
    "launch": set(),
    "dependency": set(),
    "exit": {"process", "why"},
    "settle": {"resumable", "max_retries"},
    "kill": set(),
    "clean": set(),
}
LIVENESS = {"live": True, "dead": False, "unknown": None}
RECORD_KEYS = {"state", "failure_reason", "process", "retry_count"}


def record_of(case: dict[str, Any]) -> JobStateRecord | None:
    """The case's record as a JobStateRecord (None when the job has none)."""
    if case["record"] is None:
        return None
    fields = {"version": RECORD_VERSION, "task_id": "vec.task", "identifier": "a" * 64, "updated_at": 1.0}
    # Decoded as a state.json would be: the record's keys and types are checked.
    return msgspec.convert({**fields, **case["record"]}, JobStateRecord)


def oracle(case: dict[str, Any], asked: list[Any]) -> Callable[[dict[str, Any] | None], bool | None]:
    """The liveness oracle of a case: it answers for the record's process, and fails when
    the case says the decision must not ask."""

    def alive(process: dict[str, Any] | None) -> bool | None:
        asked.append(process)
        if case["alive"] == "unasked":
            raise AssertionError(f"{case['name']}: liveness asked, but the rule must not ask it")
        assert process == case["record"]["process"], "liveness asked of another process than the record's"
        return LIVENESS[case["alive"]]

    return alive


def answer(result: Any) -> Any:
    """A decision's answer as the vectors write it (a word, for an enumeration)."""
    return result.value if isinstance(result, enum.Enum) else result


def decide(case: dict[str, Any]) -> tuple[Any, list[Any]]:
    """Asks ``xpm.state`` the case's decision; returns its answer and the liveness questions."""
    asks = case["asks"]
    decision = state.DECISIONS[asks]
    record = record_of(case)
    asked: list[Any] = []
    alive = oracle(case, asked)
    if asks == "job-start":
        result = decision(record, mine=case["mine"], alive=alive)
    elif asks == "job-end":
        result = decision(record, mine=case["mine"])
    elif asks in ("admit", "settle"):
        result = decision(record, alive, resumable=case["resumable"], max_retries=case["max_retries"])
    elif asks in ("launch", "dependency", "kill", "clean"):
        result = decision(record, alive)
    elif asks == "exit":

        def why() -> str:
            if case["why"] is None:
                raise AssertionError(f"{case['name']}: the launcher was asked why the process ended")
            return case["why"]

        result = decision(record, case["process"], why)
    else:  # pragma: no cover - test_file_shape names every decision
        raise AssertionError(f"unknown decision {asks!r}")
    return answer(result), asked


@pytest.mark.parametrize("name", list(BY_NAME))
def test_state_vector(name: str) -> None:
    case = BY_NAME[name]
    result, asked = decide(case)
    assert result == case["expect"]
    assert type(result) is type(case["expect"])
    if case["alive"] != "unasked":
        assert len(asked) == 1, "the liveness of a record's process is asked once"


def test_file_shape() -> None:
    assert set(DOCUMENT) == {"description", "cases"}
    assert len(CASES) >= 60
    names = [case["name"] for case in CASES]
    assert len(set(names)) == len(names)
    base = {"name", "asks", "description", "record", "alive", "expect"}
    for case in CASES:
        assert re.fullmatch(r"[a-z0-9_]+", case["name"])
        assert case["description"]
        assert case["asks"] in INPUTS, case["name"]
        assert set(case) == base | INPUTS[case["asks"]], case["name"]
        assert case["alive"] in {*LIVENESS, "unasked"}
        if case["alive"] != "unasked":
            assert case["record"] is not None and case["record"].get("process") is not None, case["name"]
        record = case["record"]
        if record is not None:
            assert set(record) <= RECORD_KEYS and "state" in record, case["name"]
            assert record["state"] in JOB_STATES
            assert record.get("failure_reason") in (None, *FAILURE_REASONS)
            assert ("failure_reason" in record) == (record["state"] == "error"), case["name"]
        if case["asks"] in ("job-end", "exit"):
            assert case["alive"] == "unasked", "these decisions never ask the liveness"
        if case["asks"] == "exit":
            assert case["why"] in (None, *FAILURE_REASONS)


def test_every_decision_has_cases() -> None:
    assert set(state.DECISIONS) == set(INPUTS)
    asked = {case["asks"] for case in CASES}
    assert set(state.DECISIONS) - asked == set(), "decisions that no vector asks"


def test_vectors_cover_every_label_of_the_spec() -> None:
    labels = LABEL.findall(SECTION)
    assert len(labels) == len(set(labels)), "a decision is labelled twice"
    assert LABEL.findall(SPEC) == labels, "decision labels outside 'Running a job'"
    asked = {case["asks"] for case in CASES}
    assert set(labels) - asked == set(), "decisions of the spec that no vector exercises"
    assert asked - set(labels) == set(), "vectors ask decisions the spec does not label"
    assert set(labels) == set(state.DECISIONS)


def test_every_answer_of_a_decision_is_exercised() -> None:
    """Each word a decision may answer (as the spec lists them) appears in its vectors."""
    answers = {
        "job-start": {True, False},
        "job-end": {True, False},
        "admit": {"done", "follow", "exhausted", "wait"},
        "launch": {"follow", "end", "launch"},
        "dependency": {"done", "follow", "end", "fail"},
        "exit": {None, "failed", "timeout", "memory"},
        "settle": {"end", "retry", "follow", "ready"},
        "kill": {"skip", "unknown", "stop", "cancel"},
    }
    for asks, words in answers.items():
        assert {case["expect"] for case in CASES if case["asks"] == asks} == words, asks
    refusals = {case["expect"] for case in CASES if case["asks"] == "clean"}
    assert None in refusals and len(refusals) >= 4
    for asks in ("job-start", "admit", "launch", "dependency", "settle", "kill", "clean"):
        # Decisions that ask the liveness: every answer of the oracle, and cases where they must not ask.
        assert {case["alive"] for case in CASES if case["asks"] == asks} == {*LIVENESS, "unasked"}, asks


def test_spec_lists_the_words_of_each_decision() -> None:
    prose = " ".join(SECTION.split())  # lines are wrapped anywhere
    for case in CASES:
        expect = case["expect"]
        if isinstance(expect, str):
            # A refusal of clean is written with <STATE> and <host> in the spec.
            text = re.sub(r"^[A-Z]+ \(", "<STATE> (", expect)
            text = re.sub(r"run \([^)]*\)", "run (<host>)", text)
            assert f"`{text}`" in prose, (case["name"], text)


def test_named_sets_are_those_of_the_module() -> None:
    named = {name: members for name, members in NAMED_SET.findall(SECTION)}
    assert set(named) == {"FINAL", "STARTABLE", "LAUNCHED", "KILLABLE", "CLEANABLE", "LOG_ENDED"}
    for name, members in named.items():
        listed = re.findall(r"`([a-z]+)`", members)
        assert len(listed) == len(set(listed)), name
        assert set(listed) <= set(JOB_STATES), name
        assert set(listed) == set(getattr(state, name)), name


def test_spec_points_to_the_vectors() -> None:
    assert "vectors/states.json" in SECTION
