"""The preparation of ``Prepare`` configurations, as a dependency of the jobs that hold them.

A job whose task holds a ``Prepare`` configuration waits for its preparation as it
waits for the jobs whose outputs it holds: the :class:`PrepareStep` is among
``job.dependencies``. A step runs ``prepare()`` once per identifier and experiment
process, in a thread of its own (several run at once, and the scheduler goes on), and
only when a job that holds it is to run: an experiment whose jobs are all done
prepares nothing.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from xpm import state

logger = logging.getLogger("xpm.prepare")

__all__ = ["PrepareStep", "prepare_once"]


def prepare_once(config: Any) -> None:
    """Runs ``config.prepare()``, unless the class overrides ``is_prepared()`` and it answers True."""
    if config.is_prepared():
        logger.info("%s is prepared already", config.__xpm__.xpmtype.name)
        return
    config.prepare()


class PrepareStep:
    """The preparation of a ``Prepare`` configuration, shared by the jobs of an experiment
    that hold one with its identifier.

    It answers what the scheduler asks of a dependency: ``name``, ``state`` and
    ``failure_reason`` (the records' words), ``finished``, and ``dependents``.

    Attributes:
        config: the configuration (the first one submitted with this identifier).
        error: what ``prepare()`` raised, once it failed.
    """

    def __init__(self, config: Any):
        self.config = config
        info = config.__xpm__
        #: ``prepare <type id>/<identifier>``: how listings and messages name it
        self.name = f"prepare {info.xpmtype.identifier}/{config.__identifier__()}"
        self.state: str = state.UNSCHEDULED
        self.failure_reason: str | None = None
        self.error: BaseException | None = None
        self.dependents: list[Any] = []
        self.started = False
        self._finished = threading.Event()

    def set_state(self, word: str, failure_reason: str | None = None) -> None:
        self.state, self.failure_reason = word, failure_reason

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def start(self, ended: Callable[[PrepareStep], None]) -> None:
        """Runs the preparation in a thread of its own; ``ended(step)`` is called from it at the end
        (with ``error`` set when it failed)."""
        self.started = True
        self.state = state.RUNNING
        threading.Thread(target=self._run, args=(ended,), name=f"xpm-{self.name}", daemon=True).start()

    def _run(self, ended: Callable[[PrepareStep], None]) -> None:
        try:
            prepare_once(self.config)
        except Exception as exc:  # noqa: BLE001 - a failed preparation fails the jobs that need it
            logger.exception("%s failed", self.name)
            self.error = exc
        ended(self)

    def __repr__(self) -> str:
        return f"PrepareStep({self.name}, {self.state})"
