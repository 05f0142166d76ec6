"""Listeners: objects told of an experiment's jobs as they are submitted and as their state changes.

A listener implements the methods it needs::

    class Watch(Listener):
        def on_job_submitted(self, job):
            print("submitted", job.name)

        def on_job_state_changed(self, job):
            print(job.name, job.state)

    xp.scheduler.addlistener(Watch())

:class:`Listeners` is the set a scheduler keeps. It calls each listener in the thread
where the change happened (the experiment's for submissions, the scheduler's for
states), so a listener returns quickly; what a listener raises is logged, never passed
on, so that a faulty listener cannot stop the scheduler. It sits below the scheduler,
which calls it, and needs nothing of a job but the job itself.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

__all__ = ["Listener", "Listeners"]

logger = logging.getLogger("xpm.listeners")


class Listener:
    """Told of jobs; every method does nothing unless overridden.

    The ``job`` given is the experiment's job (``job.name``, ``job.state``,
    ``job.config``, ``job.jobpath``...). ``job_submitted``, ``job_state`` and
    ``service_add`` are the former names of the ``on_...`` methods and call them.
    """

    def on_job_submitted(self, job: Any) -> None:
        """A job was submitted to the experiment."""

    def on_job_state_changed(self, job: Any) -> None:
        """A job's state changed (``job.state``)."""

    def on_service_added(self, service: Any) -> None:
        """A service was added (xpm experiments keep no services: never called)."""

    def job_submitted(self, job: Any) -> None:
        self.on_job_submitted(job)

    def job_state(self, job: Any) -> None:
        self.on_job_state_changed(job)

    def service_add(self, service: Any) -> None:
        self.on_service_added(service)


class Listeners:
    """The listeners of one scheduler, with the callback the scheduler had before them.

    Args:
        on_change: called first with every job whose state changed (the experiment's
            own progress report), then each listener.
    """

    def __init__(self, on_change: Callable[[Any], None] | None = None):
        self.on_change = on_change
        self._listeners: list[Any] = []
        self._lock = threading.Lock()

    def add(self, listener: Any) -> None:
        """Adds a listener (once: adding it again changes nothing)."""
        with self._lock:
            if not any(known is listener for known in self._listeners):
                self._listeners.append(listener)

    def discard(self, listener: Any) -> None:
        """Removes a listener, if it is there."""
        with self._lock:
            self._listeners = [known for known in self._listeners if known is not listener]

    def __len__(self) -> int:
        return len(self._listeners)

    def submitted(self, job: Any) -> None:
        """Tells every listener that ``job`` was submitted."""
        self._tell("on_job_submitted", job)

    def state_changed(self, job: Any) -> None:
        """Tells the callback, then every listener, that the state of ``job`` changed."""
        if self.on_change is not None:
            self.on_change(job)
        self._tell("on_job_state_changed", job)

    def _tell(self, method: str, job: Any) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            callback = getattr(listener, method, None)
            if callback is None:  # a listener need not derive from Listener
                continue
            try:
                callback(job)
            except Exception:
                logger.exception("listener %r failed in %s(%s)", listener, method, getattr(job, "name", job))
