"""What a task needs from a host (requirements), what a host offers (specifications), and matching.

A requirement is written as text, as in experimaestro::

    duration=4h & cuda(mem=8G) * 2 & cpu(mem=16G, cores=4)
    cuda(mem=8G) | mps(mem=8G)

Alternatives are separated by ``|`` (the first one that a host satisfies is chosen),
terms by ``&``. The grammar, in EBNF (keywords and units are case-insensitive, and
whitespace may appear between any two tokens, including between a number and its unit)::

    requirement = alternative { "|" alternative } ;
    alternative = term { "&" term } ;
    term        = duration | cpu | accelerator ;
    duration    = "duration" "=" integer duration-unit ;
    cpu         = "cpu" "(" [ cpu-arg { "," cpu-arg } ] ")" ;
    cpu-arg     = "mem" "=" size | "cores" "=" integer ;        (* each key at most once *)
    accelerator = ( "cuda" | "mps" | "gpu" ) "(" [ "mem" "=" size ] ")" [ "*" integer ] ;
    size        = integer size-unit ;                            (* a bare number is rejected *)
    duration-unit = "s" | "sec" | "secs" | "second" | "seconds"
                  | "m" | "min" | "mins" | "minute" | "minutes"
                  | "h" | "hour" | "hours" | "d" | "day" | "days" ;
    size-unit   = "B" | "K" | "KB" | "KiB" | "M" | "MB" | "MiB"
                | "G" | "GB" | "GiB" | "T" | "TB" | "TiB" ;
    integer     = digit { digit } ;

``cores`` and the ``* N`` count must be at least 1. In one alternative, several
``duration`` or ``cpu`` terms combine by taking the largest value of each field; each
accelerator term adds devices.

**Size units.** ``K``, ``M``, ``G``, ``T`` (and ``KB``...) are decimal (10^3, 10^6, 10^9,
10^12 bytes) and ``KiB``, ``MiB``, ``GiB``, ``TiB`` are binary (2^10...2^40 bytes).
This is what experimaestro does: it reads sizes with ``humanfriendly.parse_size``,
whose default is decimal for ``G``, so that ``8G`` is 8,000,000,000 bytes and ``8GiB``
is 8,589,934,592 bytes in both tools, and a requirement matches the same hosts in both.
Specifications (:class:`HostSpecification`...) are given in bytes; ``8 * 1024**3`` is
the memory of a "8 GB" GPU, and :func:`parse_size` reads the text forms.

**Matching** (:meth:`HostRequirement.match`): an alternative matches a host when its
duration is at most the host's ``max_duration``; its cpu memory and cores are at most the
host's; each of its accelerator requests gets ``count`` distinct host devices of a
compatible kind (``cuda`` needs a :class:`CudaSpecification`, ``mps`` a
:class:`MPSSpecification`, ``gpu`` any device) with at least the requested memory (and
no more than the device's ``min_memory`` floor allows); and, when some requests are
placed on MPS devices, the requested cpu memory plus the memory requested on MPS
devices fits in the MPS device's memory, which the CPU shares (unified memory).

A host that says ``min_gpu=N`` only matches alternatives that ask for at least N devices.
What a host offers is described in :mod:`xpm.launchers.hosts` (re-exported here).

This module is pure: no I/O, and no import beyond the standard library,
:mod:`xpm.errors` and :mod:`xpm.launchers.hosts`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from xpm.errors import XpmError
from xpm.launchers.hosts import (
    AcceleratorSpecification,
    AcceleratorType,
    CPUSpecification,
    CudaSpecification,
    HostSpecification,
    MPSSpecification,
)

__all__ = [
    "AcceleratorKind",
    "AcceleratorRequirement",
    "AcceleratorSpecification",
    "AcceleratorType",
    "CPURequirement",
    "CPUSpecification",
    "CudaSpecification",
    "HostRequirement",
    "HostSimpleRequirement",
    "HostSpecification",
    "MPSSpecification",
    "Match",
    "RequirementError",
    "format_duration",
    "format_size",
    "parse_duration",
    "parse_requirement",
    "parse_size",
]

AcceleratorKind = Literal["cuda", "mps", "any"]

#: Bytes per size unit (lower case): decimal prefixes alone, binary ones with "i"
SIZE_UNITS: dict[str, int] = {
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gib": 1024**3,
    "t": 1000**4,
    "tb": 1000**4,
    "tib": 1024**4,
}
#: Seconds per duration unit (lower case)
DURATION_UNITS: dict[str, int] = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hour", "hours"), 3600),
    **dict.fromkeys(("d", "day", "days"), 86400),
}
# The spellings str() writes: one per factor (the shortest)
_SIZE_SYMBOLS = (("B", 1), ("K", 1000), ("KiB", 1024), ("M", 1000**2), ("MiB", 1024**2),
                 ("G", 1000**3), ("GiB", 1024**3), ("T", 1000**4), ("TiB", 1024**4))  # fmt: skip
_DURATION_SYMBOLS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
# The accelerator keywords and the kind they request
_ACCELERATOR_KINDS: dict[str, AcceleratorKind] = {"cuda": "cuda", "mps": "mps", "gpu": "any"}
_KIND_NAMES = {kind: name for name, kind in _ACCELERATOR_KINDS.items()}

_TERM = "a term (duration=..., cpu(...), cuda(...), mps(...) or gpu(...))"
_SIZE = "a size with its unit, such as 8G or 512MiB"
_SIZE_UNIT = "a size unit (B, K, KiB, M, MiB, G, GiB, T or TiB)"
_DURATION = "a duration with its unit, such as 4h"
_DURATION_UNIT = "a duration unit (s, m or min, h or hours, d or days)"
_END = "end of requirement"


class RequirementError(XpmError, ValueError):
    """A requirement text that cannot be read.

    ``str(error)`` is one line:
    ``bad requirement at column 9: expected a size with its unit, such as 8G or 512MiB, found '8'``.

    Attributes:
        text: the whole requirement text.
        column: 1-based column (in characters) of the problem; ``len(text) + 1`` when
            the problem is the end of the text.
        expected: what was expected there, in words.
        found: what was found: a token quoted (``'xyz'``) or ``end of requirement``.
    """

    exit_code = 2

    def __init__(self, text: str, column: int, expected: str, found: str):
        self.text = text
        self.column = column
        self.expected = expected
        self.found = found
        super().__init__(f"bad requirement at column {column}: expected {expected}, found {found}")


# --- What a job needs ----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CPURequirement:
    """Cores and memory (in bytes) a job needs; 0 means no need."""

    memory: int = 0
    cores: int = 0

    def __post_init__(self) -> None:
        if self.memory < 0 or self.cores < 0:
            raise ValueError(f"CPURequirement: memory and cores must be >= 0, got {self.memory}, {self.cores}")


@dataclass(frozen=True)
class AcceleratorRequirement:
    """``count`` devices of a kind (``cuda``, ``mps``, or ``any`` for ``gpu(...)``) with ``memory`` bytes each."""

    kind: AcceleratorKind = "any"
    memory: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.kind not in _KIND_NAMES:
            raise ValueError(f"AcceleratorRequirement: kind must be 'cuda', 'mps' or 'any', got {self.kind!r}")
        if self.count < 1 or self.memory < 0:
            raise ValueError(f"AcceleratorRequirement: count must be >= 1 and memory >= 0, got {self}")

    def __str__(self) -> str:
        mem = f"mem={format_size(self.memory)}" if self.memory else ""
        count = f" * {self.count}" if self.count > 1 else ""
        return f"{_KIND_NAMES[self.kind]}({mem}){count}"


@dataclass(frozen=True)
class Match:
    """A host that satisfies a requirement.

    Attributes:
        requirement: the alternative that matched (the first one that does).
        host: the host specification.
        accelerators: the host devices given to the requirement, one per requested
            device, in the order of the requirement's accelerator terms.
    """

    requirement: HostSimpleRequirement
    host: HostSpecification
    accelerators: tuple[AcceleratorSpecification, ...] = ()


@dataclass(frozen=True, kw_only=True)
class HostSimpleRequirement:
    """One alternative: everything in it is needed at once.

    Attributes:
        duration_seconds: how long the job may run (0: not said).
        cpu: cores and memory.
        accelerators: device requests (a list is accepted; stored as a tuple).
    """

    duration_seconds: int = 0
    cpu: CPURequirement = CPURequirement()
    accelerators: Sequence[AcceleratorRequirement] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "accelerators", tuple(self.accelerators))
        if self.duration_seconds < 0:
            raise ValueError(f"HostSimpleRequirement: duration_seconds must be >= 0, got {self.duration_seconds}")

    @property
    def duration(self) -> int:
        """The duration in seconds (experimaestro's name)."""
        return self.duration_seconds

    @property
    def accelerator_count(self) -> int:
        """How many devices in all (``cuda(mem=8G) * 2 & gpu()`` asks for 3)."""
        return sum(request.count for request in self.accelerators)

    def match(self, host: HostSpecification) -> Match | None:
        """A :class:`Match` if ``host`` satisfies this alternative, else None (rules: module docstring)."""
        if host.max_duration and self.duration_seconds > host.max_duration:
            return None
        if self.accelerator_count < host.min_gpu:
            return None
        if self.cpu.memory > host.cpu.memory or self.cpu.cores > host.cpu.cores:
            return None
        units = [request for request in self.accelerators for _ in range(request.count)]
        placed = _place(units, host.accelerators)
        if placed is None:
            return None
        if any(device.kind == "mps" for device in placed):
            unified = sum(unit.memory for unit, device in zip(units, placed) if device.kind == "mps")
            # A host has one unified pool; should it list several MPS devices, the largest is the pool.
            pool = max(device.memory for device in host.accelerators if device.kind == "mps")
            if self.cpu.memory + unified > pool:
                return None
        return Match(requirement=self, host=host, accelerators=tuple(placed))

    def multiply_duration(self, coefficient: float) -> HostSimpleRequirement:
        """A copy whose duration is multiplied by ``coefficient`` (rounded up to the second)."""
        if coefficient < 0:
            raise ValueError(f"multiply_duration: the coefficient must be >= 0, got {coefficient}")
        return replace(self, duration_seconds=math.ceil(self.duration_seconds * coefficient))

    def __str__(self) -> str:
        terms = []
        if self.duration_seconds:
            terms.append(f"duration={format_duration(self.duration_seconds)}")
        if self.cpu.memory or self.cpu.cores:
            args = [f"mem={format_size(self.cpu.memory)}"] if self.cpu.memory else []
            args += [f"cores={self.cpu.cores}"] if self.cpu.cores else []
            terms.append(f"cpu({', '.join(args)})")
        terms += [str(request) for request in self.accelerators]
        # "cpu()" reads back as an alternative that needs nothing, as this one.
        return " & ".join(terms) if terms else "cpu()"


@dataclass(frozen=True)
class HostRequirement:
    """Alternatives, in order of preference (a list is accepted; stored as a tuple)."""

    alternatives: Sequence[HostSimpleRequirement]

    def __post_init__(self) -> None:
        object.__setattr__(self, "alternatives", tuple(self.alternatives))
        if not self.alternatives:
            raise ValueError("HostRequirement needs at least one alternative")

    @property
    def requirements(self) -> Sequence[HostSimpleRequirement]:
        """The alternatives (experimaestro's name)."""
        return self.alternatives

    def match(self, host: HostSpecification) -> Match | None:
        """The match of the first alternative that ``host`` satisfies, or None."""
        for alternative in self.alternatives:
            found = alternative.match(host)
            if found is not None:
                return found
        return None

    def multiply_duration(self, coefficient: float) -> HostRequirement:
        """A copy whose durations are multiplied by ``coefficient`` (rounded up to the second)."""
        return HostRequirement(tuple(alt.multiply_duration(coefficient) for alt in self.alternatives))

    def __str__(self) -> str:
        return " | ".join(str(alternative) for alternative in self.alternatives)


def _place(
    units: Sequence[AcceleratorRequirement], devices: Sequence[AcceleratorSpecification]
) -> list[AcceleratorSpecification] | None:
    """Gives each requested device (``units``) its own host device, or None if impossible.

    Among the possible placements, the chosen one puts the least requested memory on
    MPS devices, since that memory is taken from the CPU's: if it does not fit, no
    placement fits. Identical host devices are grouped, so that the search is over
    how many of each group are left (a handful of states on real hosts).
    """
    if len(units) > len(devices):
        return None
    groups: list[AcceleratorSpecification] = []
    for device in devices:
        if device not in groups:
            groups.append(device)
    start = tuple(devices.count(group) for group in groups)
    costs: dict[tuple[int, tuple[int, ...]], tuple[int, int] | None] = {}

    def best(index: int, left: tuple[int, ...]) -> tuple[int, int] | None:
        """(least MPS memory for units[index:], group of units[index]) or None."""
        if index == len(units):
            return (0, -1)
        key = (index, left)
        if key not in costs:
            result: tuple[int, int] | None = None
            unit = units[index]
            for number, group in enumerate(groups):
                if not left[number] or not group.accepts(unit):
                    continue
                rest = best(index + 1, left[:number] + (left[number] - 1,) + left[number + 1 :])
                if rest is not None:
                    cost = rest[0] + (unit.memory if group.kind == "mps" else 0)
                    if result is None or cost < result[0]:
                        result = (cost, number)
            costs[key] = result
        return costs[key]

    placed: list[AcceleratorSpecification] = []
    left = start
    for index in range(len(units)):
        step = best(index, left)
        if step is None:
            return None
        number = step[1]
        placed.append(groups[number])
        left = left[:number] + (left[number] - 1,) + left[number + 1 :]
    return placed


# --- Text ------------------------------------------------------------------------------


def parse_requirement(text: str) -> HostRequirement:
    """Reads a requirement such as ``duration=4h & cuda(mem=8G) * 2 | mps(mem=8G)``.

    Raises:
        RequirementError: the text does not follow the grammar (see the module
            docstring), with the column of the problem.
    """
    return _Parser(text).requirement()


def parse_size(text: str) -> int:
    """Reads a size such as ``8G`` (8 * 10^9 bytes) or ``8GiB`` (8 * 2^30 bytes); returns bytes.

    Raises:
        RequirementError: not a size (a bare number has no unit and is rejected).
    """
    parser = _Parser(text)
    value = parser.size()
    parser.end()
    return value


def parse_duration(text: str) -> int:
    """Reads a duration such as ``4h``, ``90 min`` or ``2days``; returns seconds.

    Raises:
        RequirementError: not a duration.
    """
    parser = _Parser(text)
    value = parser.duration()
    parser.end()
    return value


def format_size(size: int) -> str:
    """The shortest exact text for ``size`` bytes that :func:`parse_size` reads back (``8G``, ``512MiB``)."""
    if size == 0:
        return "0G"
    number, symbol = min((size // factor, symbol) for symbol, factor in _SIZE_SYMBOLS if size % factor == 0)
    return f"{number}{symbol}"


def format_duration(seconds: int) -> str:
    """The exact text for ``seconds`` in the largest unit that divides it (``4h``, ``90m``)."""
    if seconds == 0:
        return "0h"
    symbol, factor = next((symbol, factor) for symbol, factor in _DURATION_SYMBOLS if seconds % factor == 0)
    return f"{seconds // factor}{symbol}"


_TOKEN = re.compile(r"[0-9]+|[A-Za-z_][A-Za-z0-9_]*|\S")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INTEGER = re.compile(r"[0-9]+")
_LETTERS = re.compile(r"[A-Za-z]+")


class _Parser:
    """Recursive descent over the text; ``pos`` is the index of the next character."""

    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    # --- low level

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def fail(self, expected: str, at: int | None = None, found: str | None = None) -> RequirementError:
        if at is None:
            self.skip()
            at = self.pos
        if found is None:
            token = _TOKEN.match(self.text, at)
            found = _quote(token.group()) if token else _END
        return RequirementError(self.text, at + 1, expected, found)

    def peek(self, char: str) -> bool:
        self.skip()
        return self.text.startswith(char, self.pos)

    def expect(self, char: str, expected: str | None = None) -> None:
        if not self.peek(char):
            raise self.fail(expected or f"'{char}'")
        self.pos += 1

    def word(self) -> tuple[str, int] | None:
        """The next word (lower case) and its index, or None if the next token is not a word."""
        self.skip()
        found = _WORD.match(self.text, self.pos)
        if found is None:
            return None
        self.pos = found.end()
        return found.group().lower(), found.start()

    def integer(self, expected: str) -> tuple[int, int]:
        """The next integer and its index."""
        self.skip()
        found = _INTEGER.match(self.text, self.pos)
        if found is None:
            raise self.fail(expected)
        self.pos = found.end()
        return int(found.group()), found.start()

    def end(self) -> None:
        self.skip()
        if self.pos < len(self.text):
            raise self.fail("'&', '|' or the end of the requirement")

    # --- grammar

    def requirement(self) -> HostRequirement:
        alternatives = [self.alternative()]
        while self.peek("|"):
            self.pos += 1
            alternatives.append(self.alternative())
        self.end()
        return HostRequirement(tuple(alternatives))

    def alternative(self) -> HostSimpleRequirement:
        duration, memory, cores = 0, 0, 0
        accelerators: list[AcceleratorRequirement] = []
        while True:
            term = self.word()
            if term is None or term[0] not in ("duration", "cpu", *_ACCELERATOR_KINDS):
                raise self.fail(_TERM, None if term is None else term[1])
            name = term[0]
            if name == "duration":
                self.expect("=")
                duration = max(duration, self.duration())
            elif name == "cpu":
                args = self.arguments(("mem", "cores"))
                memory = max(memory, args.get("mem", 0))
                cores = max(cores, args.get("cores", 0))
                if self.peek("*"):
                    raise self.fail("'&', '|' or the end of the requirement (only cuda, mps and gpu take '* N')")
            else:
                args = self.arguments(("mem",))
                count = 1
                if self.peek("*"):
                    self.pos += 1
                    count, at = self.integer("a count such as 2")
                    if count < 1:
                        raise self.fail("a count of at least 1", at)
                accelerators.append(AcceleratorRequirement(_ACCELERATOR_KINDS[name], args.get("mem", 0), count))
            if not self.peek("&"):
                return HostSimpleRequirement(
                    duration_seconds=duration,
                    cpu=CPURequirement(memory=memory, cores=cores),
                    accelerators=tuple(accelerators),
                )
            self.pos += 1

    def arguments(self, keys: tuple[str, ...]) -> dict[str, int]:
        """``( key=value, ... )`` with each of ``keys`` at most once."""
        self.expect("(")
        values: dict[str, int] = {}
        if self.peek(")"):
            self.pos += 1
            return values
        allowed = " or ".join(f"'{key}'" for key in keys)
        while True:
            key = self.word()
            if key is None or key[0] not in keys:
                raise self.fail(allowed, None if key is None else key[1])
            if key[0] in values:
                raise self.fail("a key not given yet", key[1], f"'{key[0]}' again")
            self.expect("=")
            if key[0] == "mem":
                values["mem"] = self.size()
            else:
                values[key[0]], at = self.integer("a number of cores such as 4")
                if values[key[0]] < 1:
                    raise self.fail("a number of cores of at least 1", at)
            if self.peek(")"):
                self.pos += 1
                return values
            self.expect(",", "',' or ')'")

    def size(self) -> int:
        number, at = self.integer(_SIZE)
        return number * self.unit(SIZE_UNITS, at, _SIZE, _SIZE_UNIT)

    def duration(self) -> int:
        number, at = self.integer(_DURATION)
        return number * self.unit(DURATION_UNITS, at, _DURATION, _DURATION_UNIT)

    def unit(self, units: dict[str, int], number_at: int, expected: str, expected_unit: str) -> int:
        """The factor of the unit after a number; a number without one is an error at the number."""
        self.skip()
        found = _LETTERS.match(self.text, self.pos)
        if found is None:
            raise self.fail(expected, number_at, _quote(self.text[number_at : self.pos].strip()))
        if found.group().lower() not in units:
            raise self.fail(expected_unit, found.start(), _quote(found.group()))
        self.pos = found.end()
        return units[found.group().lower()]


def _quote(text: str, limit: int = 40) -> str:
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    # Messages stay on one line whatever the text holds.
    return "'" + "".join(c if c.isprintable() else repr(c)[1:-1] for c in text) + "'"
