"""Dynamic outputs, the experiment side: callbacks on the outputs that running tasks register.

A running task registers outputs as it makes them (``self.register_task_output(self.checkpoint,
epoch=3)``, :mod:`xpm.taskoutputs`): lines of its job's outputs log. The experiment watches
some of them (``learn.watch_output(validation.checkpoint, callback)``). Its
:class:`DynamicOutputs` follows the outputs logs of the watched jobs in one thread, reading
only what was appended since the last look; for each output of a watched method it builds the
output in the experiment process, ``validation.checkpoint(dep, epoch=3)``, and calls the
callbacks with it, in that same thread, one at a time. A callback may submit tasks.

``dep`` marks what it is given as an output of the task, as ``task_outputs`` does: the task
enters its identifier (the checkpoints of two learning rates differ). The output exists
already, so a task that uses it does not wait for the end of the task that registered it.

Each run reads each log from its start: the outputs of a job that ran in an earlier run, or
that is done, are given again to this run's callbacks (a replay); nothing runs again because of
it, and within a run each callback gets each output once, even when the task registered it
twice (a job run again after a timeout, that redoes its last epoch).
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, cast

from xpm import codec, taskoutputs
from xpm.config.base import Config, ConfigMixin, Task
from xpm.config.operations import copyconfig
from xpm.errors import ConfigError, XpmError
from xpm.schema import TaskOutput
from xpm.store.outputs import OutputsLog
from xpm.workspace import Workspace

logger = logging.getLogger("xpm.dynamic")

__all__ = ["DynamicOutputs", "OutputFailure", "POLL_INTERVAL"]

#: Seconds between two looks at the outputs logs of the jobs that run
POLL_INTERVAL = 0.5


def _print(text: str) -> None:
    sys.stderr.write(f"xpm: {text}\n")
    sys.stderr.flush()


def _name(config: Any) -> str:
    return config.__xpm__.xpmtype.name  # type: ignore[no-any-return]


class OutputFailure(NamedTuple):
    """User code that raised on an output: the job that registered it, what raised, and the exception.

    ``what`` is the watched method building the output (``Validation.checkpoint(step=3)``)
    or a callback (``watch_output(Validation.checkpoint) callback evaluate``).
    """

    job: str
    what: str
    error: BaseException

    def describe(self) -> str:
        return f"{self.job}: {self.what} raised {type(self.error).__name__}: {self.error}"


@dataclass(eq=False)
class _Callback:
    function: Callable[[Any], Any]
    #: how many of its watch's outputs it was given
    given: int = 0


class _Watch:
    """One watched method of one task, and the outputs built so far."""

    def __init__(self, task: Any, method: Callable[..., Any]):
        self.task = task
        self.owner: Any = method.__self__  # type: ignore[attr-defined]
        self.method = method
        self.name: str = method.__name__
        self.callbacks: list[_Callback] = []
        self.outputs: list[Any] = []
        #: the arguments of the outputs seen (encoded): an output registered twice is built once
        self.seen: set[bytes] = set()
        #: (identifier of the owner, method name), known once the task is submitted
        self.key: tuple[str, str] | None = None
        self.followed: _Followed | None = None

    def describe(self) -> str:
        return f"{_name(self.task)}.watch_output({_name(self.owner)}.{self.name})"


class _Followed:
    """The outputs log of one watched job, read up to ``offset``."""

    def __init__(self, job: Any, log: OutputsLog):
        self.job = job
        self.log = log
        self.offset = 0
        self.partial = False
        #: read after the job ended: nothing more can come
        self.complete = False
        #: every output record read (a watch attached later gets them too)
        self.records: list[TaskOutput] = []
        self.watches: list[_Watch] = []


class DynamicOutputs:
    """The watched outputs of an experiment, and the thread that gives them to the callbacks.

    The experiment creates one, starts it with its workspace once its run starts,
    calls :meth:`settle` when every job ended (callbacks may submit more: it waits
    for those, then settles again), and :meth:`stop` at its end.

    Args:
        report: where problems go, one text each (default: standard error, ``xpm: `` first).
        interval: seconds between two looks at the logs of running jobs.

    Attributes:
        problems: every problem reported, in order, each once.
        failures: the watched methods and callbacks that raised (also among the problems).
    """

    def __init__(self, *, report: Callable[[str], None] | None = None, interval: float = POLL_INTERVAL):
        self._report = report if report is not None else _print
        self.interval = interval
        self._cond = threading.Condition()
        #: by (task, owner, method name): the task and the owner are held, so their ids stay theirs
        self._watches: dict[tuple[int, int, str], _Watch] = {}
        #: by job name; only the outputs thread reads and changes it
        self._followed: dict[str, _Followed] = {}
        self._workspace: Workspace | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        #: passes asked for (settle, new watches) and passes done
        self._requested = 0
        self._completed = 0
        #: callback calls so far, and at the last settle
        self._calls = 0
        self._settled_calls = 0
        self.problems: list[str] = []
        self.failures: list[OutputFailure] = []

    # --- the experiment's thread -----------------------------------------------------------

    def watch(self, task: Any, method: Callable[..., Any], callback: Callable[[Any], Any]) -> None:
        """Calls ``callback(output)`` for each output of ``method`` that ``task``'s job registers.

        ``method`` is a method of a configuration of the task (``validation.checkpoint``);
        it is called as ``method(dep, *args, **kwargs)`` with the arguments the task
        registered. The task may be submitted before or after. A callback given twice
        for the same method of the same task is called once per output.

        Raises:
            ConfigError: ``task`` is not a task, ``method`` not a method of a
                configuration, or ``callback`` not callable.
        """
        if not isinstance(task, Task) or not isinstance(task, ConfigMixin):
            what = _name(task) if isinstance(task, ConfigMixin) else type(task).__qualname__
            raise ConfigError(f"watch_output is a method of tasks: {what} is not a task")
        owner = getattr(method, "__self__", None)
        if not isinstance(owner, ConfigMixin):
            raise ConfigError(f"{_name(task)}.watch_output: {method!r} is not a method of a configuration")
        if not callable(callback):
            raise ConfigError(f"{_name(task)}.watch_output: the callback {callback!r} is not callable")
        key = (id(task), id(owner), method.__name__)
        with self._cond:
            watch = self._watches.get(key)
            if watch is None:
                watch = self._watches[key] = _Watch(task, method)
            if not any(known.function == callback for known in watch.callbacks):
                watch.callbacks.append(_Callback(callback))
            # A new callback may have outputs to get already (a replay): look soon.
            self._requested += 1
            self._cond.notify_all()
            self._start_thread()

    def start(self, workspace: Workspace) -> None:
        """Follows the logs of the watched jobs of ``workspace`` from now on (a thread, once
        something is watched: an experiment that watches nothing pays nothing)."""
        with self._cond:
            self._workspace = workspace
            if self._watches:
                self._start_thread()

    def _start_thread(self) -> None:
        """Starts the outputs thread once started and watching (call it holding the condition)."""
        if self._thread is None and self._workspace is not None and not self._stopping:
            self._thread = threading.Thread(target=self._run, name="xpm-outputs", daemon=True)
            self._thread.start()

    def settle(self) -> bool:
        """Reads the logs of the watched jobs as they are now and calls the callbacks on what they hold.

        Called once the jobs ended, it reads each log to its end. Returns whether a
        callback ran since the previous call: it may have submitted tasks, so the
        caller waits for the jobs again, then settles again, until this is False.
        From a callback (the outputs thread), it returns False at once.
        """
        thread = self._thread
        if thread is None or threading.current_thread() is thread:
            return False
        with self._cond:
            self._requested += 1
            ticket = self._requested
            self._cond.notify_all()
            while self._completed < ticket and thread.is_alive():
                self._cond.wait(1.0)
            ran = self._calls != self._settled_calls
            self._settled_calls = self._calls
        return ran

    def stop(self, *, report: bool = True) -> None:
        """Stops the thread. With ``report`` (the experiment ended well), waits for it, then
        reports the watched outputs that never came and the logs that end with a torn line.

        Without ``report`` (the experiment stopped on an error), a callback still
        running is left to finish on its own.
        """
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is None:
            return
        if report:
            thread.join()
            self._final_report()

    # --- the outputs thread ------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._stopping and self._completed >= self._requested:
                    self._cond.wait(self.interval)
                if self._stopping:
                    return
                ticket = self._requested
            try:
                self._pass()
            except Exception:  # noqa: BLE001 - a fault of ours: say it, and keep following
                logger.exception("following the outputs logs failed")
            with self._cond:
                self._completed = max(self._completed, ticket)
                self._cond.notify_all()

    def _pass(self) -> None:
        """One look: attach the watches of newly submitted tasks, read what the logs gained, call back."""
        with self._cond:
            watches = list(self._watches.values())
        for watch in watches:
            if watch.followed is None:
                self._attach(watch)
        for followed in list(self._followed.values()):
            if not followed.complete:
                self._read(followed)
        for watch in watches:
            self._deliver(watch)

    def _attach(self, watch: _Watch) -> None:
        job = watch.task.__xpm__.job
        if job is None:
            return  # not submitted (yet)
        if watch.key is None:
            try:
                watch.key = (str(watch.owner.__identifier__()), watch.name)
            except XpmError as exc:
                self._problem(f"{watch.describe()}: {exc}; its outputs cannot be told apart, they are not given")
                return
        followed = self._followed.get(job.name)
        if followed is None:
            assert self._workspace is not None
            log = OutputsLog(self._workspace, job.task_id, job.identifier)
            followed = self._followed[job.name] = _Followed(job, log)
        followed.watches.append(watch)
        watch.followed = followed
        for record in followed.records:
            self._build(watch, record)

    def _read(self, followed: _Followed) -> None:
        # Seen before the read: a read that starts after the job's end gets all its log.
        ended = followed.job.finished
        try:
            got = followed.log.read(followed.offset)
        except (OSError, XpmError) as exc:
            self._problem(f"{followed.log.describe()}: not read ({exc}); trying again")
            return
        for problem in got.problems:
            self._problem(f"{followed.log.describe()}: {problem}")
        followed.offset, followed.partial = got.offset, got.partial
        for record in got.outputs:
            followed.records.append(record)
            for watch in followed.watches:
                self._build(watch, record)
        followed.complete = ended

    def _build(self, watch: _Watch, record: TaskOutput) -> None:
        """Builds the output of ``record`` if it is one of ``watch``'s, once per set of arguments."""
        if (record.config, record.method) != watch.key:
            return
        seen = codec.encode([record.args, record.kwargs])
        if seen in watch.seen:
            return
        watch.seen.add(seen)
        try:
            output = watch.method(_marker(watch.task), *record.args, **record.kwargs)
        except Exception as exc:  # noqa: BLE001 - the user's method: say which output, and go on
            self._failed(watch, f"{_name(watch.owner)}.{watch.name}({_arguments(record)})", exc)
            self._problem(
                f"{watch.describe()}: building the output ({_arguments(record)}) failed: {type(exc).__name__}: "
                f"{exc}\n{traceback.format_exc().rstrip()}"
            )
            return
        watch.outputs.append(output)

    def _deliver(self, watch: _Watch) -> None:
        for callback in list(watch.callbacks):
            while callback.given < len(watch.outputs):
                output = watch.outputs[callback.given]
                callback.given += 1
                self._calls += 1
                try:
                    callback.function(output)
                except Exception as exc:  # noqa: BLE001 - the user's callback: say it, and go on
                    name = getattr(callback.function, "__qualname__", repr(callback.function))
                    self._failed(watch, f"watch_output({_name(watch.owner)}.{watch.name}) callback {name}", exc)
                    self._problem(
                        f"{watch.describe()}: the callback {name} raised {type(exc).__name__}: {exc}\n"
                        f"{traceback.format_exc().rstrip()}"
                    )

    # --- reports ---------------------------------------------------------------------------

    def _failed(self, watch: _Watch, what: str, error: BaseException) -> None:
        job = watch.task.__xpm__.job
        with self._cond:
            self.failures.append(OutputFailure(job.name if job is not None else _name(watch.task), what, error))

    def _problem(self, text: str) -> None:
        """Reports ``text`` once."""
        if text in self.problems:
            return
        self.problems.append(text)
        self._report(text)

    def _final_report(self) -> None:
        with self._cond:
            watches = list(self._watches.values())
        for watch in watches:
            if watch.outputs or watch.seen:
                continue
            job = watch.task.__xpm__.job
            if job is None:
                self._problem(f"{watch.describe()}: the task was never submitted; its callbacks never ran")
            elif job.finished and watch.key is not None:
                self._problem(
                    f"{watch.describe()}: the job {job.name} registered no output of "
                    f"{_name(watch.owner)}.{watch.name}; its callbacks never ran"
                )
        for followed in self._followed.values():
            if followed.partial:
                self._problem(f"{followed.log.describe()}: byte {followed.offset}: incomplete last line, skipped")


def _marker(task: Any) -> Callable[[Any], Any]:
    """The ``dep`` given to a watched method: marks a configuration as an output of ``task``."""

    def dep(value: Any) -> Any:
        if not isinstance(value, ConfigMixin):
            raise ConfigError(f"dep() takes a configuration, got {type(value).__name__}")
        if value.__xpm__.sealed:
            # Part of a sealed tree (one of the task's own parameters): mark a copy.
            value = copyconfig(cast(Config, value))  # a configuration object is a Config too
        value.__xpm__.task = task
        taskoutputs.mark_dynamic(value)
        return value

    return dep


def _arguments(record: TaskOutput) -> str:
    parts = [repr(a) for a in record.args] + [f"{k}={v!r}" for k, v in record.kwargs.items()]
    return ", ".join(parts)
