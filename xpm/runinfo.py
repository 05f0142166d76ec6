"""``load_xp_info``: what a run of an experiment submitted, read back from the workspace.

A run's folder (``experiments/<id>/<run-id>/``, ``xp.workdir``) lists the jobs it
submitted in ``jobs.jsonl``; each job's folder holds its configuration in
``params.json`` (``spec/workspace.md``). Together they are the record of the
submitted configurations: no other copy is written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from xpm.serialize import load_configs

__all__ = ["ExperimentInfo", "load_xp_info"]


@dataclass
class ExperimentInfo:
    """The configurations of a run: ``jobs`` by job identifier; ``actions`` (xpm records none)."""

    jobs: dict[str, Any] = field(default_factory=dict)
    actions: dict[str, Any] = field(default_factory=dict)


def load_xp_info(path: str | os.PathLike[str]) -> ExperimentInfo:
    """The task configurations a run submitted (``path``: the run's folder).

    Raises:
        SerializationError: ``path`` is not a run folder (no ``jobs.jsonl``), or a job's
            ``params.json`` cannot be read.
    """
    return ExperimentInfo(jobs=load_configs(path))
