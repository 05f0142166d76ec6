"""Checkers in ``Annotated``: values a checker refuses are rejected at assignment, one line says why."""

from __future__ import annotations

from typing import Annotated

import pytest

from xpm import Config, Param, field
from xpm.config.checkers import Checker, Choices
from xpm.errors import ValidationError


class Search(Config):
    __xpmid__ = "test.checkers.search"
    mode: Param[Annotated[str, Choices(["fast", "exact"])]]
    depth: Param[int] = field(default=1)


class BareSearch(Config):
    """The same parameter with the checker as the only metadata (no ``Param``)."""

    __xpmid__ = "test.checkers.bare"
    mode: Annotated[str, Choices(["fast", "exact"])]


class Positive(Checker):
    def check(self, value: int) -> bool:
        return value > 0

    def __str__(self) -> str:
        return "a positive number"


class Stacked(Config):
    __xpmid__ = "test.checkers.stacked"
    n: Param[Annotated[int, Positive(), Choices([-1, 1, 2])]]


def test_accepted_values_are_set():
    assert Search.C(mode="fast").mode == "fast"
    cfg = Search.C(mode="fast")
    cfg.mode = "exact"
    assert cfg.mode == "exact"


def test_a_refused_value_names_class_parameter_value_and_choices():
    with pytest.raises(ValidationError) as info:
        Search.C(mode="slow")
    error = info.value
    assert (error.cls, error.param, error.given) == ("Search", "mode", "slow")
    assert str(error) == "Search.mode: expected value in fast, exact, got str ('slow')"


def test_assignment_is_checked_too():
    cfg = Search.C(mode="fast")
    with pytest.raises(ValidationError, match=r"Search\.mode: expected value in fast, exact"):
        cfg.mode = "slow"
    assert cfg.mode == "fast", "a refused value leaves the old one"


def test_a_checker_alone_in_annotated_makes_a_parameter():
    assert "mode" in BareSearch.__xpmtype__.arguments
    assert BareSearch.C(mode="exact").mode == "exact"
    with pytest.raises(ValidationError, match=r"BareSearch\.mode: expected value in fast, exact, got str"):
        BareSearch.C(mode="other")


def test_the_type_is_checked_before_the_checker():
    with pytest.raises(ValidationError, match=r"Search\.mode: expected str, got int"):
        Search.C(mode=3)


def test_stacked_checkers_must_all_accept():
    assert Stacked.C(n=2).n == 2
    with pytest.raises(ValidationError, match=r"Stacked\.n: expected a positive number, got int \(-1\)"):
        Stacked.C(n=-1)
    with pytest.raises(ValidationError, match=r"Stacked\.n: expected value in -1, 1, 2, got int \(3\)"):
        Stacked.C(n=3)


def test_choices_compare_with_equality():
    choices = Choices([1, "a", None])
    assert choices.check(1) and choices.check(1.0) and choices.check("a") and choices.check(None)
    assert not choices.check("b")
    assert str(choices) == "value in 1, a, None"
    assert repr(choices) == "Choices([1, 'a', None])"


def test_a_valid_default_is_used():
    class WithDefault(Config):
        __xpmid__ = "test.checkers.default_ok"
        mode: Param[Annotated[str, Choices(["a", "b"])]] = field(default="b")

    assert WithDefault.C().mode == "b"


def test_an_invalid_default_is_refused_when_the_class_is_defined():
    with pytest.raises(ValidationError, match=r"expected value in a, b, got str \('z'\)"):

        class BadDefault(Config):
            __xpmid__ = "test.checkers.default_bad"
            mode: Param[Annotated[str, Choices(["a", "b"])]] = field(default="z")


def test_checkers_leave_identifiers_unchanged():
    class Plain(Config):
        __xpmid__ = "test.checkers.search"
        mode: Param[str]
        depth: Param[int] = field(default=1)

    for mode in ("fast", "exact"):
        checked, plain = Search.C(mode=mode), Plain.C(mode=mode)
        assert checked.__identifier__() == plain.__identifier__()
    assert Search.C(mode="fast").__identifier__() != Search.C(mode="exact").__identifier__()


def test_a_checker_must_define_check():
    class Unfinished(Checker):
        pass

    with pytest.raises(NotImplementedError, match="Unfinished.check"):
        Unfinished().check(1)
    assert str(Unfinished()) == "a value accepted by Unfinished"
