"""``xpm.filter`` beyond the vectors: the API, error messages, the compiled predicates."""

from __future__ import annotations

import enum
import math
import re
import subprocess
import sys
import types
from typing import Any

import pytest

import xpm.filter as xf
from xpm.errors import XpmError
from xpm.filter import Filter, FilterError, parse
from xpm.schema import JOB_STATES

TAGS = {"model": "bm25", "epochs": 10, "lr": 0.001, "debug": False, "note": None}


def error_of(text: str) -> FilterError:
    with pytest.raises(FilterError) as info:
        parse(text)
    return info.value


# --- API ---------------------------------------------------------------------------


def test_filter_error_is_an_xpm_error_and_a_value_error() -> None:
    error = error_of("model =")
    assert isinstance(error, XpmError) and isinstance(error, ValueError)
    assert FilterError.exit_code == 2
    assert XpmError.exit_code == 1
    assert (error.expression, error.column, error.found) == ("model =", 8, "end of expression")
    assert error.expected == "a value (a quoted string, a number or a word)"
    assert error.detail == ""
    assert str(error) == (
        "bad filter at column 8: expected a value (a quoted string, a number or a word), found end of expression"
    )


def test_parse_returns_a_filter() -> None:
    compiled = parse('@state = "done" and model in ["bm25", "splade"]')
    assert isinstance(compiled, Filter)
    assert compiled.text == '@state = "done" and model in ["bm25", "splade"]'
    assert compiled.tag_names == frozenset({"model"})
    assert isinstance(compiled.tag_names, frozenset)
    assert repr(compiled) == """Filter('@state = "done" and model in ["bm25", "splade"]')"""


def test_tag_names_empty_without_tags() -> None:
    assert parse("@state in [done, error] or @name ~ mymodule").tag_names == frozenset()


def test_tag_names_of_every_operator() -> None:
    compiled = parse('a = 1 or b != 1 or c ~ "x" or d in [] or e not in [1] or (f = 1 and a = 2)')
    assert compiled.tag_names == frozenset("abcdef")


def test_matches_accepts_keywords_and_any_mapping() -> None:
    compiled = parse("model = bm25 and epochs = 10")
    assert compiled.matches(state="done", name="a.b", tags=types.MappingProxyType(dict(TAGS))) is True
    assert compiled.matches("done", "a.b", {}) is False


@pytest.mark.parametrize(
    "text",
    [
        "@state = done",
        "@state != done",
        "@state ~ d",
        "@name = a.b",
        "@name ~ a",
        "model = bm25",
        "model != bm25",
        "model ~ bm",
        "epochs = 10",
        "epochs in [1, x]",
        "debug = false",
        "note ~ n",
        "absent not in []",
        "model = bm25 and epochs = 10",
        "model = x or epochs = 10",
        "model = x or epochs = 1 or lr = 2",
        "model = bm25 and epochs = 10 and lr = 0.001",
    ],
)
def test_matches_returns_a_bool(text: str) -> None:
    compiled = parse(text)
    for state in ("done", "error"):
        for tags in (TAGS, {}, {"model": 3, "epochs": "x", "debug": None, "note": True}):
            assert type(compiled.matches(state, "a.b", tags)) is bool


# --- Compiled once ------------------------------------------------------------------


def test_matching_reads_no_text_and_compiles_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    filters = [
        parse(text)
        for text in (
            '@state ~ "^d" and @name ~ "A\\." and model ~ "bm" and epochs in [10, "x"]',
            "@state not in [error] and @name = A.B and lr = 1e-3 and note = null",
        )
    ]

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("called while matching")

    # Everything literal is normalised by parse(): matching reads no token, builds
    # no literal and compiles no regular expression.
    for name in ("_tokens", "_Reader", "_literal", "_read_string"):
        monkeypatch.setattr(xf, name, forbidden)
    monkeypatch.setattr(re, "compile", forbidden)
    for compiled in filters:
        assert compiled.matches("done", "a.b", TAGS) is True
        assert compiled.matches("error", "a.b", TAGS) is False


def test_state_regex_is_decided_at_parse_time() -> None:
    # Seven states: the regular expression is applied to each of them once.
    compiled = parse('@state ~ "^(r|s)"')
    selected = [state for state in JOB_STATES if compiled.matches(state, "a.b", {})]
    assert selected == ["ready", "scheduled", "running"]


def test_long_chains_do_not_nest() -> None:
    # 3,000 conditions joined by and / or: no recursion in the reader or the predicate.
    conjunction = " and ".join(f"t{i} = {i}" for i in range(3000))
    tags = {f"t{i}": i for i in range(3000)}
    assert parse(conjunction).matches("done", "a.b", tags) is True
    disjunction = " or ".join(f"t{i} = x" for i in range(3000))
    assert parse(disjunction).matches("done", "a.b", tags) is False
    assert len(parse(disjunction).tag_names) == 3000


def test_deepest_parentheses_match() -> None:
    text = "(" * xf.MAX_DEPTH + "model = bm25" + ")" * xf.MAX_DEPTH
    assert parse(text).matches("done", "a.b", TAGS) is True
    assert error_of("(" + text + ")").column == 1 + xf.MAX_DEPTH


def test_large_list() -> None:
    values = ", ".join(f'"v{i}"' for i in range(10_000))
    compiled = parse(f"model in [{values}, bm25]")
    assert compiled.matches("done", "a.b", TAGS) is True
    assert compiled.matches("done", "a.b", {"model": "v9999"}) is True
    assert compiled.matches("done", "a.b", {"model": "v10000"}) is False


def test_a_filter_keeps_no_state_between_calls() -> None:
    compiled = parse("seed = 42 or model ~ bm")
    jobs = [{"seed": "42"}, {"seed": "x"}, {"model": "bm25"}, {}] * 3
    first = [compiled.matches("done", "a.b", tags) for tags in jobs]
    assert first == [True, False, True, False] * 3
    assert [compiled.matches("done", "a.b", tags) for tags in reversed(jobs)] == first[::-1]


# --- Tag values outside the vectors (not representable in JSON) -----------------------


class Color(str, enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


@pytest.mark.parametrize(
    "text, value, expected",
    [
        ("x = nan", math.nan, True),  # text "nan"
        ("x = 1", math.nan, False),
        ("x != nan", math.nan, False),
        ("x = inf", math.inf, True),
        ("x = 1e400", math.inf, True),  # numbers: the literal is infinity
        ('x = "1e400"', "1e999", True),
        ('x = "-inf"', -math.inf, True),  # a quoted text: -inf alone is no word
        ("x = red", Color.RED, True),  # a str subclass is its string
        ('x ~ "red$"', Color.RED, True),
        ("x = 3", Level.HIGH, True),  # an int subclass is its number
        ("x = 3.0", Level.HIGH, True),
        ('x ~ "3$"', Level.HIGH, True),
        ("x = 1", True, False),  # bool stays apart from numbers
        ("x = true", True, True),
        ("x in [1, true]", True, True),
        ("x = 12345678901234567890", 12345678901234567890, True),
        ('x = "12345678901234567890"', 12345678901234567890, True),
    ],
)
def test_unusual_tag_values(text: str, value: Any, expected: bool) -> None:
    assert parse(text).matches("done", "a.b", {"x": value}) is expected


def test_tag_text_and_number() -> None:
    assert [xf.tag_text(v) for v in ("a", True, False, None, 3, 0.5, 1e-05, 1e16, Color.RED)] == [
        "a", "true", "false", "null", "3", "0.5", "1e-05", "1e+16", "red",
    ]  # fmt: skip
    assert [xf.tag_number(v) for v in ("10", "0.5", "1e-3", " 1", "+1", "x", True, None, 2)] == [
        10, 0.5, 0.001, None, None, None, None, None, 2,
    ]  # fmt: skip


def test_name_is_compared_ignoring_case_on_both_sides() -> None:
    compiled = parse("@name = mymodule.MyTask")
    assert compiled.matches("done", "mymodule.mytask", {}) is True
    assert compiled.matches("done", "MyModule.MyTask", {}) is True
    assert parse('@name ~ "mymodule\\.my"').matches("done", "MyModule.MyTask", {}) is True


# --- Error messages ------------------------------------------------------------------


def test_regex_error_carries_the_engine_message() -> None:
    error = error_of('model ~ "(bm25"')
    assert error.column == 9
    assert error.expected == "a valid regular expression"
    assert error.found == "'\"(bm25\"'"
    assert "missing )" in error.detail
    assert (
        str(error) == f"bad filter at column 9: expected a valid regular expression, found '\"(bm25\"' ({error.detail})"
    )


@pytest.mark.parametrize(
    "text",
    [
        'model = bm25 "a\nb"',
        'model = bm25 "a\u2028b\x00"',
        'model ~ "(\n"',
        "model\n=\n",
        "model = '\n",
    ],
)
def test_messages_are_one_line(text: str) -> None:
    message = str(error_of(text))
    assert message.isprintable(), message
    assert len(message.splitlines()) == 1


def test_found_escapes_and_shortens() -> None:
    assert error_of('model = bm25 "a\u2028b\x00"').found == "'\"a\\u2028b\\x00\"'"
    long = "x" * 100
    assert error_of(f"model = bm25 {long}").found == "'" + "x" * 37 + "...'"


def test_state_error_lists_the_states_in_upper_case() -> None:
    error = error_of("@state = finished")
    assert error.expected == "a job state (UNSCHEDULED, WAITING, READY, SCHEDULED, RUNNING, DONE, ERROR)"
    assert all(state.upper() in error.expected for state in JOB_STATES)


@pytest.mark.parametrize(
    "text, column, found",
    [
        ("", 1, "end of expression"),
        ("model = bm25 extra", 14, "'extra'"),
        ("(model = bm25", 14, "end of expression"),
        ('model = "bm25', 14, "end of expression"),
        ("model in [a", 12, "end of expression"),
        ("model bm25", 7, "'bm25'"),
        ("model =", 8, "end of expression"),
        ("@status = done", 1, "'@status'"),
    ],
)
def test_columns_point_at_the_problem(text: str, column: int, found: str) -> None:
    error = error_of(text)
    assert (error.column, error.found) == (column, found)
    assert str(error).startswith(f"bad filter at column {column}: expected ")
    assert str(error).endswith(f", found {found}")


def test_column_counts_code_points() -> None:
    # "é" written as e + combining accent is two characters; "😀" is one.
    assert error_of('a = "e\u0301" x').column == 10
    assert error_of('a = "😀" x').column == 9


# --- Imports --------------------------------------------------------------------------


def test_import_is_light() -> None:
    code = "import sys, xpm.filter\nprint('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(out.stdout.split())
    heavy = {"click", "urwid", "fsspec", "sshfs", "asyncssh", "yaml", "portalocker", "blake3"}
    assert loaded & heavy == set()
    assert not any(name.startswith(("xpm.cli", "xpm.store", "xpm.launchers")) for name in loaded)
