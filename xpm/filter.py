"""The job filter language of ``jobs list --filter`` (normative text: ``spec/filter.md``).

A filter such as ``@state = done and model in ["bm25", "splade"]`` is parsed once
by :func:`parse` into a :class:`Filter`, whose ``matches(state, name, tags)`` then
runs over every job of a workspace. Parsing builds nested closures with every
literal already normalised (lower-cased names, state sets, compiled regular
expressions, numbers), so matching walks no tree and converts no literal.

The reader is a recursive descent over a lazy tokenizer: tokens are read one at a
time, so the error reported is always the leftmost one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple, NoReturn

from xpm.errors import XpmError
from xpm.schema import JOB_STATES

try:  # the parser of re (Python 3.11+), to look for exponential backtracking ([sem.regex-safe])
    from re import _constants as constants  # type: ignore[attr-defined]
    from re import _parser as parser  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as constants  # type: ignore[no-redef]
    import sre_parse as parser  # type: ignore[no-redef]

__all__ = ["Filter", "FilterError", "parse"]

#: ``matches(state, name, tags) -> bool``
Predicate = Callable[[str, str, Mapping[str, Any]], bool]

#: Deepest nesting of parentheses accepted (keeps the reader and the compiled
#: closures far below Python's recursion limit)
MAX_DEPTH = 64

# What the reader expected, in words (also listed in spec/filter.md, section "Errors")
EXPECT_CONDITION = "a condition (@state, @name or a tag name) or '('"
EXPECT_VARIABLE = "@state or @name"
EXPECT_OPERATOR = "an operator (=, !=, ~, in or not in)"
EXPECT_IN = "'in' (after 'not')"
EXPECT_VALUE = "a value (a quoted string, a number or a word)"
EXPECT_SAFE_REGEX = "a regular expression without a repetition inside a repetition (it may take exponential time)"
EXPECT_SHORT_NUMBER = "a number of at most 4300 digits"
EXPECT_LIST = "a list ('[')"
EXPECT_LIST_NEXT = "',' or ']'"
EXPECT_CONTINUE = "'and', 'or' or end of expression"
EXPECT_CONTINUE_PAREN = "'and', 'or' or ')'"
EXPECT_STATE = "a job state (" + ", ".join(s.upper() for s in JOB_STATES) + ")"
EXPECT_REGEX = "a valid regular expression"
EXPECT_DEPTH = f"at most {MAX_DEPTH} nested parentheses"
END = "end of expression"


class FilterError(XpmError, ValueError):
    """A filter expression that cannot be read.

    ``str(error)`` is one line:
    ``bad filter at column 12: expected a value (...), found end of expression``.

    Attributes:
        expression: the whole text of the filter.
        column: 1-based column (in characters) of the problem; ``len(expression) + 1``
            when the problem is the end of the expression.
        expected: what was expected there, in words.
        found: what was found: a token quoted (``'xyz'``) or ``end of expression``.
        detail: more about the problem (the regular expression error), or ``""``.
    """

    exit_code = 2

    def __init__(self, expression: str, column: int, expected: str, found: str, detail: str = ""):
        self.expression = expression
        self.column = column
        self.expected = expected
        self.found = found
        self.detail = detail
        text = f"bad filter at column {column}: expected {expected}, found {found}"
        if detail:
            text += f" ({detail})"
        super().__init__(_one_line(text))


class Filter:
    """A parsed filter, ready to test jobs.

    Attributes:
        text: the expression it was parsed from.
        tag_names: the tags the expression reads (empty: tags need not be loaded).
    """

    __slots__ = ("_predicate", "tag_names", "text")

    def __init__(self, text: str, tag_names: frozenset[str], predicate: Predicate):
        self.text = text
        self.tag_names = tag_names
        self._predicate = predicate

    def matches(self, state: str, name: str, tags: Mapping[str, Any]) -> bool:
        """Whether a job passes the filter.

        Args:
            state: the stored state, lower-case (one of ``xpm.schema.JOB_STATES``).
            name: the task id of the job (``mymodule.train``).
            tags: tag name -> value (str, int, float, bool or None).
        """
        return self._predicate(state, name, tags)

    def __repr__(self) -> str:
        return f"Filter({self.text!r})"


def parse(text: str) -> Filter:
    """Read a filter expression.

    Raises:
        FilterError: the text is not a valid expression (the leftmost problem).
    """
    reader = _Reader(text)
    predicate = reader.expression()
    return Filter(text, frozenset(reader.tag_names), predicate)


# --- Tokens --------------------------------------------------------------------------

# Token kinds
LPAREN, RPAREN, LBRACKET, RBRACKET, COMMA = "(", ")", "[", "]", ","
OP, KEYWORD, VAR, WORD, NUMBER, STRING, BAD, EOF = "op", "kw", "var", "word", "num", "str", "bad", "eof"

_WHITESPACE = " \t\r\n"
_PUNCTUATION = {"(": LPAREN, ")": RPAREN, "[": LBRACKET, "]": RBRACKET, ",": COMMA}
# Characters that end a run of word/number characters (besides whitespace)
_DELIMITERS = frozenset(_WHITESPACE + "()[],=!~\"'@")
_KEYWORDS = frozenset({"and", "or", "in", "not"})
_VARIABLES = frozenset({"@state", "@name"})
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
# A JSON number, leading zeros allowed: also decides which tag strings are numbers
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


class Token(NamedTuple):
    """One token of the expression."""

    kind: str
    #: the source text of the token
    text: str
    #: what it stands for: a string's content, a keyword or variable lower-cased, a number
    value: Any
    #: 1-based column of its first character
    column: int


def _tokens(text: str) -> Iterator[Token]:
    """Tokens of ``text`` one at a time, ending with an EOF token.

    Raises:
        FilterError: a string is not closed.
    """
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in _WHITESPACE:
            i += 1
        if i == n:
            yield Token(EOF, "", None, n + 1)
            return
        start, c = i, text[i]
        if c in _PUNCTUATION:
            i += 1
            yield Token(_PUNCTUATION[c], c, c, start + 1)
        elif c == "=" or c == "~":
            i += 1
            yield Token(OP, c, c, start + 1)
        elif c == "!":
            if text.startswith("!=", i):
                i += 2
                yield Token(OP, "!=", "!=", start + 1)
            else:
                i += 1
                yield Token(BAD, c, None, start + 1)
        elif c == '"' or c == "'":
            value, i = _read_string(text, i)
            yield Token(STRING, text[start:i], value, start + 1)
        else:
            # A run of other characters: a variable, a keyword, a word, a number or garbage.
            i += 1
            while i < n and text[i] not in _DELIMITERS:
                i += 1
            run = text[start:i]
            lower = run.lower()
            if c == "@":
                yield Token(VAR, run, lower, start + 1)
            elif lower in _KEYWORDS:
                yield Token(KEYWORD, run, lower, start + 1)
            elif _WORD.fullmatch(run):
                yield Token(WORD, run, run, start + 1)
            elif _NUMBER.fullmatch(run):
                try:
                    number = _to_number(run)
                except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
                    found = repr(run[:20] + "...")
                    raise FilterError(text, start + 1, EXPECT_SHORT_NUMBER, found) from None
                yield Token(NUMBER, run, number, start + 1)
            else:
                yield Token(BAD, run, None, start + 1)


def _read_string(text: str, start: int) -> tuple[str, int]:
    """The content of the string opening at ``start`` and the index after its closing quote."""
    quote = text[start]
    parts: list[str] = []
    i, n = start + 1, len(text)
    while i < n:
        c = text[i]
        if c == quote:
            return "".join(parts), i + 1
        if c == "\\" and i + 1 < n and text[i + 1] in "\"'\\":
            parts.append(text[i + 1])
            i += 2
        else:
            # Other backslashes stay, so that regular expressions such as "\d+" read as written.
            parts.append(c)
            i += 1
    raise FilterError(text, n + 1, f"a closing {quote} (for the string at column {start + 1})", END)


def _to_number(text: str) -> int | float:
    """The number a text matching ``_NUMBER`` denotes: an exact integer, or the nearest double."""
    if "." in text or "e" in text or "E" in text:
        return float(text)
    return int(text)


# --- Values --------------------------------------------------------------------------


class Literal(NamedTuple):
    """A value of the filter, read once by the parser."""

    #: the text compared with text values (a string's content, a word, a number as written)
    text: str
    #: the number it can be read as, or None
    number: int | float | None
    column: int
    #: the token as written, for error messages
    source: str


def _literal(token: Token) -> Literal:
    if token.kind == NUMBER:
        return Literal(token.text, token.value, token.column, token.text)
    return Literal(token.value, _tag_number(token.value), token.column, token.text)


def _tag_number(value: str) -> int | float | None:
    """The number a text denotes when it is a number of the language, else None."""
    return _to_number(value) if _NUMBER.fullmatch(value) else None


def tag_number(value: Any) -> int | float | None:
    """The number a tag value can be read as (bools are not numbers), or None."""
    if isinstance(value, str):
        return _tag_number(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return None


def tag_text(value: Any) -> str:
    """The text of a tag value, as compared with text literals and regular expressions."""
    if isinstance(value, str):
        return str.__str__(value)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        return float.__repr__(value)
    if isinstance(value, int):
        return int.__repr__(value)
    return str(value)


_MISSING = object()


# --- Reader --------------------------------------------------------------------------


class _Reader:
    """Recursive descent over the tokens; each rule returns the compiled predicate."""

    def __init__(self, text: str):
        self.text = text
        self._tokens = _tokens(text)
        self._token: Token | None = None
        self.tag_names: set[str] = set()
        # How many parentheses are open at the current token
        self.depth = 0

    @property
    def token(self) -> Token:
        """The next token, read only when asked for.

        Reading lazily lets a condition check its values (states, regular expressions)
        before the token after it is read, so that the leftmost error is the one reported.
        """
        if self._token is None:
            self._token = next(self._tokens)
        return self._token

    def advance(self) -> Token:
        token = self.token
        self._token = None
        return token

    def fail(self, expected: str, token: Token | None = None, detail: str = "") -> NoReturn:
        token = token or self.token
        found = END if token.kind == EOF else _quote(token.text)
        raise FilterError(self.text, token.column, expected, found, detail)

    def is_keyword(self, word: str) -> bool:
        return self.token.kind == KEYWORD and self.token.value == word

    def expression(self) -> Predicate:
        predicate = self.disjunction()
        if self.token.kind != EOF:
            self.fail(EXPECT_CONTINUE)
        return predicate

    def disjunction(self) -> Predicate:
        terms = [self.conjunction()]
        while self.is_keyword("or"):
            self.advance()
            terms.append(self.conjunction())
        return _any(terms)

    def conjunction(self) -> Predicate:
        terms = [self.primary()]
        while self.is_keyword("and"):
            self.advance()
            terms.append(self.primary())
        return _all(terms)

    def primary(self) -> Predicate:
        token = self.token
        if token.kind == LPAREN:
            if self.depth == MAX_DEPTH:
                self.fail(EXPECT_DEPTH)
            self.advance()
            self.depth += 1
            predicate = self.disjunction()
            if self.token.kind != RPAREN:
                self.fail(f"{EXPECT_CONTINUE_PAREN} (for the '(' at column {token.column})")
            self.advance()
            self.depth -= 1
            return predicate
        if token.kind == VAR:
            if token.value not in _VARIABLES:
                self.fail(EXPECT_VARIABLE)
        elif token.kind != WORD:
            self.fail(EXPECT_CONDITION)
        return self.condition()

    def condition(self) -> Predicate:
        var = self.advance()
        token = self.token
        if token.kind == OP:
            self.advance()
            literal = self.value()
            if token.value == "~":
                return self.compile_regex(var, literal)
            predicate = self.compile_in(var, [literal])
            return _negate(predicate) if token.value == "!=" else predicate
        if self.is_keyword("in"):
            self.advance()
            return self.compile_in(var, self.value_list())
        if self.is_keyword("not"):
            self.advance()
            if not self.is_keyword("in"):
                self.fail(EXPECT_IN)
            self.advance()
            return _negate(self.compile_in(var, self.value_list()))
        self.fail(EXPECT_OPERATOR)

    def value(self) -> Literal:
        if self.token.kind not in (STRING, NUMBER, WORD):
            self.fail(EXPECT_VALUE)
        return _literal(self.advance())

    def value_list(self) -> list[Literal]:
        opening = self.token
        if opening.kind != LBRACKET:
            self.fail(EXPECT_LIST)
        self.advance()
        values: list[Literal] = []
        if self.token.kind == RBRACKET:
            self.advance()
            return values
        while True:
            values.append(self.value())
            if self.token.kind == RBRACKET:
                self.advance()
                return values
            if self.token.kind != COMMA:
                self.fail(f"{EXPECT_LIST_NEXT} (for the '[' at column {opening.column})")
            self.advance()

    # --- Compilation -----------------------------------------------------------------

    def compile_in(self, var: Token, literals: list[Literal]) -> Predicate:
        """The predicate of ``var in [literals]`` (``var = x`` is ``var in [x]``)."""
        if var.value == "@state":
            states = set()
            for literal in literals:
                if literal.text.lower() not in JOB_STATES:
                    self.fail(EXPECT_STATE, _as_token(literal))
                states.add(literal.text.lower())
            return _state_in(frozenset(states))
        if var.value == "@name":
            return _name_in(frozenset(literal.text.lower() for literal in literals))
        self.tag_names.add(var.text)
        return _tag_in(var.text, literals)

    def compile_regex(self, var: Token, literal: Literal) -> Predicate:
        flags = re.IGNORECASE if var.kind == VAR else 0
        try:
            regex = re.compile(literal.text, flags)
        except (re.error, OverflowError, RecursionError) as error:
            self.fail(EXPECT_REGEX, _as_token(literal), str(error))
        if _nested_repetition(literal.text):
            self.fail(EXPECT_SAFE_REGEX, _as_token(literal))
        if var.value == "@state":
            # Seven states: decide now which ones the regular expression selects.
            return _state_in(frozenset(s for s in JOB_STATES if regex.match(s)))
        match = regex.match
        if var.value == "@name":
            return lambda state, name, tags: match(name) is not None
        self.tag_names.add(var.text)
        return _tag_regex(var.text, match)


def _nested_repetition(pattern: str) -> bool:
    """Whether matching ``pattern`` may take exponential time: a repetition of something that itself
    repeats without bound, as ``(a+)+``. Python's ``re`` backtracks: such a pattern
    against a long tag that almost matches runs for minutes. Read with the parser of ``re``."""
    repeats = (constants.MAX_REPEAT, constants.MIN_REPEAT, getattr(constants, "POSSESSIVE_REPEAT", None))

    def walk(items: Any, outer: bool) -> bool:
        for op, value in items:
            if op in repeats:
                _, high, inner = value
                if outer and high == constants.MAXREPEAT:
                    return True
                found = walk(inner, outer or high > 1)
            elif op is constants.SUBPATTERN:
                found = walk(value[-1], outer)
            elif op is constants.BRANCH:
                found = any(walk(branch, outer) for branch in value[1])
            elif op in (constants.ASSERT, constants.ASSERT_NOT):
                found = walk(value[1], outer)
            else:
                found = False
            if found:
                return True
        return False

    try:
        return walk(parser.parse(pattern), False)
    except Exception:  # noqa: BLE001 - re.compile accepted it: a parser detail we do not know, not a risk found
        return False


def _as_token(literal: Literal) -> Token:
    return Token(STRING, literal.source, literal.text, literal.column)


def _quote(text: str, limit: int = 40) -> str:
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"'{_one_line(text)}'"


def _one_line(text: str) -> str:
    # Tokens and regular expression messages may hold newlines or tabs; messages stay on one line.
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


# --- Compiled predicates -------------------------------------------------------------
# Each builds a closure over precomputed constants; the hot path tests the common
# case (a string tag) first.


def _state_in(states: frozenset[str]) -> Predicate:
    return lambda state, name, tags: state in states


def _name_in(names: frozenset[str]) -> Predicate:
    return lambda state, name, tags: name.lower() in names


def _tag_in(key: str, literals: list[Literal]) -> Predicate:
    texts = frozenset(literal.text for literal in literals)
    numbers = frozenset(literal.number for literal in literals if literal.number is not None)
    # A number tag is compared with number literals by value, and with the others by text.
    other_texts = frozenset(literal.text for literal in literals if literal.number is None)
    missing = _MISSING

    def predicate(state: str, name: str, tags: Mapping[str, Any]) -> bool:
        value = tags.get(key, missing)
        kind = value.__class__
        if kind is str:
            if value in texts:
                return True
            if numbers:
                number = _tag_number(value)
                return number is not None and number in numbers
            return False
        if kind is int or kind is float:
            return value in numbers or (bool(other_texts) and tag_text(value) in other_texts)
        if value is missing:
            return False
        return _value_in(value, texts, numbers, other_texts)

    return predicate


def _value_in(value: Any, texts: frozenset[str], numbers: frozenset[float], other_texts: frozenset[str]) -> bool:
    """The slow path of :func:`_tag_in`: bool, None, and subclasses of str, int or float."""
    number = tag_number(value)
    if number is not None and numbers:
        # Both sides are numbers when the literal is one: the comparison is by value.
        return number in numbers or tag_text(value) in other_texts
    return tag_text(value) in texts


def _tag_regex(key: str, match: Callable[[str], Any]) -> Predicate:
    missing = _MISSING

    def predicate(state: str, name: str, tags: Mapping[str, Any]) -> bool:
        value = tags.get(key, missing)
        if value.__class__ is str:
            return match(value) is not None
        if value is missing:
            return False
        return match(tag_text(value)) is not None

    return predicate


def _negate(predicate: Predicate) -> Predicate:
    return lambda state, name, tags: not predicate(state, name, tags)


def _all(predicates: list[Predicate]) -> Predicate:
    if len(predicates) == 1:
        return predicates[0]
    if len(predicates) == 2:
        a, b = predicates
        return lambda state, name, tags: a(state, name, tags) and b(state, name, tags)
    chain = tuple(predicates)

    def predicate(state: str, name: str, tags: Mapping[str, Any]) -> bool:
        for p in chain:
            if not p(state, name, tags):
                return False
        return True

    return predicate


def _any(predicates: list[Predicate]) -> Predicate:
    if len(predicates) == 1:
        return predicates[0]
    if len(predicates) == 2:
        a, b = predicates
        return lambda state, name, tags: a(state, name, tags) or b(state, name, tags)
    chain = tuple(predicates)

    def predicate(state: str, name: str, tags: Mapping[str, Any]) -> bool:
        for p in chain:
            if p(state, name, tags):
                return True
        return False

    return predicate
