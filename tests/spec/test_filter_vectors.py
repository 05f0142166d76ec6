"""The filter test vectors, ``spec/vectors/filter.json``.

The expected results of the vectors were written by hand from ``spec/filter.md``;
here ``xpm.filter`` must reproduce every one of them, and the vectors must cover
every rule label of the spec.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from xpm.filter import FilterError, parse

ROOT = Path(__file__).resolve().parents[2]
VECTORS_FILE = ROOT / "spec" / "vectors" / "filter.json"
SPEC_FILE = ROOT / "spec" / "filter.md"

DOCUMENT = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))
SPEC = SPEC_FILE.read_text(encoding="utf-8")
MATCH: list[dict[str, Any]] = DOCUMENT["match"]
ERRORS: list[dict[str, Any]] = DOCUMENT["errors"]
MATCH_BY_NAME = {case["name"]: case for case in MATCH}
ERROR_BY_NAME = {case["name"]: case for case in ERRORS}

#: A rule label where the spec defines it: ``**[lex.word]**``
RULE_DEFINITION = re.compile(r"\*\*\[([a-z]+\.[a-z-]+)\]\*\*")


@pytest.mark.parametrize("name", list(MATCH_BY_NAME))
def test_match_vector(name: str) -> None:
    case = MATCH_BY_NAME[name]
    job = case["job"]
    compiled = parse(case["filter"])
    assert compiled.matches(job["state"], job["name"], job["tags"]) is case["match"]
    assert compiled.tag_names == frozenset(case["tags_read"])
    assert compiled.text == case["filter"]


@pytest.mark.parametrize("name", list(ERROR_BY_NAME))
def test_error_vector(name: str) -> None:
    case = ERROR_BY_NAME[name]
    with pytest.raises(FilterError) as info:
        parse(case["filter"])
    error = info.value
    assert (error.column, error.expected, error.found) == (case["column"], case["expected"], case["found"])
    assert error.expression == case["filter"]
    message = f"bad filter at column {case['column']}: expected {case['expected']}, found {case['found']}"
    if case["expected"] == "a valid regular expression":
        # The engine's description of the problem follows; its text is not specified.
        assert str(error).startswith(message + " (")
    else:
        assert str(error) == message


def test_file_shape() -> None:
    assert DOCUMENT["version"] == 1
    assert len(MATCH) >= 60
    assert len(ERRORS) >= 20
    names = [case["name"] for case in MATCH + ERRORS]
    assert len(set(names)) == len(names)
    for case in MATCH:
        assert set(case) == {"name", "description", "rules", "filter", "job", "match", "tags_read"}
        assert set(case["job"]) == {"state", "name", "tags"}
        assert isinstance(case["match"], bool)
        assert case["tags_read"] == sorted(set(case["tags_read"]))
    for case in ERRORS:
        assert set(case) == {"name", "description", "rules", "filter", "column", "expected", "found"}
        assert 1 <= case["column"] <= len(case["filter"]) + 1
    for case in MATCH + ERRORS:
        assert re.fullmatch(r"[a-z0-9_]+", case["name"])
        assert case["description"] and case["rules"]


def test_vectors_cover_every_rule_of_the_spec() -> None:
    defined = RULE_DEFINITION.findall(SPEC)
    assert len(defined) == len(set(defined)), "a rule label is defined twice"
    used = {rule for case in MATCH + ERRORS for rule in case["rules"]}
    assert used - set(defined) == set(), "vectors name rules the spec does not define"
    assert set(defined) - used == set(), "rules of the spec that no vector exercises"


def test_both_outcomes_are_exercised() -> None:
    assert sum(case["match"] for case in MATCH) >= 20
    assert sum(not case["match"] for case in MATCH) >= 20


def test_every_expected_text_is_in_the_spec() -> None:
    # The table of section 5 lists each text; "column N" stands for a column.
    for case in ERRORS:
        expected = re.sub(r"column \d+", "column N", case["expected"])
        # The spec writes the closing quote case once, with a double quote.
        expected = expected.replace("a closing '", 'a closing "')
        assert f"`{expected}`" in SPEC, expected


def test_spec_points_to_the_vectors() -> None:
    assert "vectors/filter.json" in SPEC
    assert "```ebnf" in SPEC
