"""How an experiment treats the jobs it submits (``--run-mode``), and transient tasks (``transient=``)."""

from __future__ import annotations

import enum
from typing import Any

from xpm.errors import XpmError

__all__ = ["RunMode", "TransientMode"]


class RunMode(str, enum.Enum):
    """What an experiment does with the jobs it submits.

    * ``NORMAL``: writes the job folders and runs the jobs.
    * ``GENERATE_ONLY``: writes the job folders, runs nothing.
    * ``DRY_RUN``: prints each job (state, ``task-id/identifier``, tags,
      dependencies) and writes nothing.
    * ``PREPARE``: runs only the ``Prepare`` configurations the tasks use.
    """

    NORMAL = "normal"
    GENERATE_ONLY = "generate"
    DRY_RUN = "dry-run"
    PREPARE = "prepare"

    @classmethod
    def parse(cls, text: str | RunMode, where: str = "") -> RunMode:
        """Reads a run mode as the command line gives it (``dry_run``, ``DRY-RUN``, ``generate_only``...).

        Args:
            text: the mode, or its name.
            where: who was given the value, for the error (``"Train.submit"``).

        Raises:
            XpmError: not a run mode; the message names the value (and ``where``).
        """
        if isinstance(text, RunMode):
            return text
        aliases = {
            "normal": cls.NORMAL,
            "generate_only": cls.GENERATE_ONLY,
            "generate": cls.GENERATE_ONLY,
            "dry_run": cls.DRY_RUN,
            "prepare": cls.PREPARE,
        }
        found = aliases.get(text.strip().lower().replace("-", "_")) if isinstance(text, str) else None
        if found is None:
            prefix = f"{where}: " if where else ""
            raise XpmError(
                f"{prefix}unknown run mode {text!r}: expected one of NORMAL, GENERATE_ONLY, DRY_RUN, PREPARE"
            )
        return found


class TransientMode(enum.IntEnum):
    """What happens to the job of a task submitted as transient (``submit(transient=...)``).

    * ``NONE``: the job runs, and is kept (the default).
    * ``TRANSIENT``: the job runs only if a task that runs needs it (holds its
      output); otherwise the experiment leaves it alone, and writes nothing for it.
    * ``REMOVE``: as ``TRANSIENT``, and once the experiment ends well (every job
      done), the job's folder is deleted.

    When a job is submitted with several modes, the one that keeps the most wins
    (``NONE``, then ``TRANSIENT``, then ``REMOVE``): the smallest value.
    """

    NONE = 0
    TRANSIENT = 1
    REMOVE = 2

    @property
    def is_transient(self) -> bool:
        """Whether the job runs only when a task needs it."""
        return self is not TransientMode.NONE

    @property
    def should_remove(self) -> bool:
        """Whether the job's folder is deleted when the experiment ends well."""
        return self is TransientMode.REMOVE

    @classmethod
    def parse(cls, value: Any, where: str = "") -> TransientMode:
        """A mode given as a member, its name (any case) or its value; None is ``NONE``.

        Raises:
            XpmError: not a transient mode; the message names the value (and ``where``).
        """
        if value is None:
            return cls.NONE
        if isinstance(value, cls):
            return value
        if isinstance(value, str) and value.strip().upper() in cls.__members__:
            return cls[value.strip().upper()]
        if isinstance(value, int) and not isinstance(value, bool) and value in cls._value2member_map_:
            return cls(value)
        prefix = f"{where}: " if where else ""
        raise XpmError(f"{prefix}unknown transient mode {value!r}: expected TransientMode.NONE, TRANSIENT or REMOVE")
