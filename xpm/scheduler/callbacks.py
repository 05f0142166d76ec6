"""The ``on_completed`` callbacks of the jobs of an experiment, run in a thread of the experiment process.

Callbacks run one at a time, in the order their jobs ended, in one thread: a slow
callback delays the next callbacks but not the jobs. A callback may submit tasks.
The experiment waits for the callbacks as it waits for the jobs; one that raises is
reported (with its traceback) and fails the experiment at its end.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from collections import deque
from typing import Any, Callable, NamedTuple

logger = logging.getLogger("xpm.callbacks")

__all__ = ["Callbacks", "CallbackFailure"]


class CallbackFailure(NamedTuple):
    """A callback that raised: the job it was given for, its name, and the exception."""

    job: str
    callback: str
    error: BaseException

    def describe(self) -> str:
        return f"{self.job}: on_completed callback {self.callback} raised {type(self.error).__name__}: {self.error}"


def _callable_name(callback: Callable[..., Any]) -> str:
    return getattr(callback, "__qualname__", None) or repr(callback)


class Callbacks:
    """The callbacks to run, and the thread that runs them (started on the first one).

    Args:
        cond: the scheduler's condition: whoever waits on it for the experiment's end
            is woken when the callbacks are all done.
    """

    def __init__(self, cond: threading.Condition):
        self._cond = cond
        self._queue: deque[tuple[str, Callable[[], Any]]] = deque()
        self._running = 0
        self._thread: threading.Thread | None = None
        #: the callbacks that raised, in order
        self.failures: list[CallbackFailure] = []

    def put(self, job: str, callbacks: list[Callable[[], Any]]) -> None:
        """Queues the callbacks of ``job`` (its name); call it holding the condition."""
        self._queue.extend((job, callback) for callback in callbacks)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="xpm-callbacks", daemon=True)
            self._thread.start()
        self._cond.notify_all()

    @property
    def idle(self) -> bool:
        """No callback waits or runs (ask it holding the condition)."""
        return not self._queue and not self._running

    @property
    def in_callback(self) -> bool:
        """Whether the calling thread is the callbacks' thread."""
        return threading.current_thread() is self._thread

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                job, callback = self._queue.popleft()
                self._running += 1
            try:
                callback()
            except BaseException as exc:  # noqa: BLE001 - reported, and the experiment fails at its end
                failure = CallbackFailure(job, _callable_name(callback), exc)
                sys.stderr.write(f"xpm: {failure.describe()}\n{''.join(traceback.format_exception(exc))}")
                sys.stderr.flush()
                with self._cond:
                    self.failures.append(failure)
            finally:
                with self._cond:
                    self._running -= 1
                    self._cond.notify_all()
