"""Append-only event logs (job events, a run's submitted jobs, the job index)."""

from __future__ import annotations

from typing import Any, NamedTuple

from xpm import codec
from xpm.codec import LineProblem
from xpm.workspace import NotFound, Workspace


class LogRead(NamedTuple):
    """What a read of a log returned.

    Attributes:
        events: the events of the complete, valid lines.
        offset: where to resume reading (after the last complete line).
        problems: the damaged lines that were skipped.
        partial: whether the file ends with an incomplete line (torn, or being written).
        last_line: the last complete line read, newline included (b"" when none was).
    """

    events: list[Any]
    offset: int
    problems: list[LineProblem]
    partial: bool
    last_line: bytes = b""


class EventLog:
    """One append-only log file of self-checking lines (see :mod:`xpm.codec`)."""

    def __init__(self, workspace: Workspace, rel: str):
        self.workspace = workspace
        self.rel = rel

    def append(self, *events: Any) -> None:
        """Appends events in one write."""
        self.workspace.append(self.rel, b"".join(codec.encode_line(e) for e in events))

    def read(self, offset: int = 0) -> LogRead:
        """Reads the complete lines from ``offset``; a missing file reads as empty."""
        try:
            data = self.workspace.read_from(self.rel, offset)
        except NotFound:
            return LogRead([], offset, [], False)
        events: list[Any] = []
        problems: list[LineProblem] = []
        end = offset
        for end, item in codec.iter_lines(data, offset):
            if isinstance(item, LineProblem):
                problems.append(item)
            else:
                events.append(item)
        return LogRead(events, end, problems, codec.trailing_partial(data), codec.last_line(data, end - offset))
