"""A job's outputs log (``.xpm/outputs.jsonl``): the outputs its task registered while it ran.

The job process appends the lines (:func:`xpm.taskoutputs.register_task_output`);
the experiment reads them as they come (:mod:`xpm.dynamic`), from an offset, so
that each read costs only what was appended since the last one.
"""

from __future__ import annotations

from typing import NamedTuple

from xpm import layout
from xpm.schema import OUTPUT_VERSION, TaskOutput
from xpm.store.log import EventLog
from xpm.workspace import Workspace

__all__ = ["OutputsLog", "OutputsRead"]


class OutputsRead(NamedTuple):
    """What a read of an outputs log returned.

    Attributes:
        outputs: the output records of the complete, valid lines, in order.
        offset: where to resume reading (after the last complete line).
        problems: the lines skipped, one text each (``byte N: reason`` for damaged lines).
        partial: whether the file ends with an incomplete line (torn, or being written).
    """

    outputs: list[TaskOutput]
    offset: int
    problems: list[str]
    partial: bool


class OutputsLog:
    """The outputs log of one job."""

    def __init__(self, workspace: Workspace, task_id: str, identifier: str):
        self.workspace = workspace
        self.rel = layout.job_outputs(task_id, identifier)
        self._log = EventLog(workspace, self.rel)

    def describe(self) -> str:
        """The log's name, for messages."""
        return self.workspace.describe(self.rel)

    def read(self, offset: int = 0) -> OutputsRead:
        """Reads the complete lines from ``offset``; a missing log reads as empty.

        A damaged line, a record of another kind, and a record written by a newer
        xpm are skipped and listed in ``problems``; they never stop the read.
        """
        got = self._log.read(offset)
        problems = [f"byte {p.offset}: {p.reason}" for p in got.problems]
        outputs: list[TaskOutput] = []
        for event in got.events:
            if not isinstance(event, TaskOutput):
                problems.append(f"a {event.__struct_config__.tag!r} record, not an output: skipped")
            elif event.version > OUTPUT_VERSION:
                problems.append(
                    f"an output of {event.method} written by a newer xpm (record version {event.version}, this "
                    f"xpm reads {OUTPUT_VERSION}): skipped"
                )
            else:
                outputs.append(event)
        return OutputsRead(outputs, got.offset, problems, got.partial)
