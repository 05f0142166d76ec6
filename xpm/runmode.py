"""How an experiment treats the jobs it submits (``--run-mode``)."""

from __future__ import annotations

import enum

from xpm.errors import XpmError


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
    def parse(cls, text: str | RunMode) -> RunMode:
        """Reads a run mode as the command line gives it (``dry_run``, ``DRY-RUN``, ``generate_only``...)."""
        if isinstance(text, RunMode):
            return text
        key = text.strip().lower().replace("-", "_")
        aliases = {
            "normal": cls.NORMAL,
            "generate_only": cls.GENERATE_ONLY,
            "generate": cls.GENERATE_ONLY,
            "dry_run": cls.DRY_RUN,
            "prepare": cls.PREPARE,
        }
        try:
            return aliases[key]
        except KeyError:
            raise XpmError(
                f"unknown run mode {text!r}: expected one of NORMAL, GENERATE_ONLY, DRY_RUN, PREPARE"
            ) from None
