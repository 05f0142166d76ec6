"""Dynamic outputs, what the configurations call: register an output in a job, watch outputs in an experiment.

A running task announces outputs as it makes them (a checkpoint after each epoch)::

    self.register_task_output(self.checkpoint, epoch=3)

which appends a :class:`~xpm.schema.TaskOutput` line to its job's outputs log
(``.xpm/outputs.jsonl``). The experiment that watches this method
(``task.watch_output(cfg.checkpoint, callback)``) builds the output in its own
process, ``cfg.checkpoint(dep, epoch=3)``, and calls the callback with it
(:mod:`xpm.dynamic`). An output is named by the identifier of the configuration
the method belongs to and the method's name: both processes compute the same one.

This module sits below the configurations, so that ``Config`` and ``Task`` can call
it. It also keeps the mark of *dynamic* outputs: a configuration that ``dep``
marked as the output of a task that is still running does not make the tasks that
use it wait for that task's end (:func:`is_dynamic`).
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from typing import Any, Callable

from xpm import context
from xpm.errors import ConfigError, XpmError

__all__ = ["register_task_output", "watch_output", "mark_dynamic", "is_dynamic"]


def _class_name(obj: Any) -> str:
    """The class name of a configuration (not of its generated ``XPMConfig`` class), or of any object."""
    info = getattr(obj, "__dict__", {}).get("__xpm__")
    return info.xpmtype.name if info is not None else type(obj).__qualname__  # type: ignore[no-any-return]


def _method_name(method: Any) -> str:
    owner = getattr(method, "__self__", None)
    name = getattr(method, "__name__", repr(method))
    return f"{_class_name(owner)}.{name}" if owner is not None else name


def _json_problem(value: Any, where: str) -> str | None:
    """Why ``value`` does not go through JSON unchanged (None: it does)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return None
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            problem = _json_problem(item, f"{where}[{i}]")
            if problem is not None:
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{where} has the key {key!r}, which is not a string"
            problem = _json_problem(item, f"{where}[{key!r}]")
            if problem is not None:
                return problem
        return None
    return f"{where} is a {type(value).__name__}"


def register_task_output(method: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Records, in the running job, that ``method(dep, *args, **kwargs)`` builds an output.

    ``method`` is a method of a configuration of the task (or of an object the job
    built from one); the arguments are JSON values (numbers, strings, lists, dicts),
    as the experiment receives them back. The line goes to the job's outputs log in
    one append, so that the experiment, which reads the log as it grows, sees whole lines.

    Raises:
        XpmError: outside a job process.
        ConfigError: ``method`` is not a method of a configuration, or an argument is
            not a JSON value.
    """
    # Only job processes record outputs: `import xpm` (which imports this module) loads none of this.
    from xpm import codec, layout, taskglobals
    from xpm.fsutil import append_local
    from xpm.schema import OUTPUT_VERSION, TaskOutput

    name = _method_name(method)
    taskpath = taskglobals.Env.instance().taskpath
    if taskpath is None:
        raise XpmError(
            f"register_task_output({name}) records an output of the running job: call it while a task runs in "
            "its job process"
        )
    # A configuration in the experiment, an object built from one in the job: xpmconfig gives the configuration.
    config = getattr(getattr(method, "__self__", None), "xpmconfig", None)
    if config is None or not hasattr(config, "__identifier__"):
        raise ConfigError(f"register_task_output({name}): {method!r} is not a method of a configuration")
    problem = _json_problem(list(args), "args") or _json_problem(kwargs, "kwargs")
    if problem is not None:
        raise ConfigError(f"register_task_output({name}): the arguments must be JSON values, but {problem}")
    record = TaskOutput(
        ts=time.time(),
        version=OUTPUT_VERSION,
        config=str(config.__identifier__()),
        method=method.__name__,
        args=list(args),
        kwargs=dict(kwargs),
    )
    append_local(os.path.join(taskpath, layout.JOB_OUTPUTS_FILE), codec.encode_line(record))




def watch_output(task: Any, method: Callable[..., Any], callback: Callable[[Any], Any]) -> None:
    """What ``task.watch_output(method, callback)`` does: hands the watch to the running experiment.

    Raises:
        XpmError: no experiment is running.
    """
    try:
        experiment = context.current_experiment()
    except XpmError:
        raise XpmError(
            f"{_class_name(task)}.watch_output({_method_name(method)}) needs a running experiment: call it "
            "inside `with experiment(...) as xp:`"
        ) from None
    # The experiment's DynamicOutputs (xpm.dynamic), reached through the experiment as submit() is.
    experiment.outputs.watch(task, method, callback)  # type: ignore[attr-defined]


# --- dynamic outputs, for the dependencies --------------------------------------------------------

#: The configurations marked as outputs of a running task, by id (weak: they go when the configuration goes)
_dynamic: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()
_dynamic_lock = threading.Lock()


def mark_dynamic(config: Any) -> None:
    """Marks ``config`` as an output a task registered while it ran (see :func:`is_dynamic`)."""
    with _dynamic_lock:
        _dynamic[id(config)] = config


def is_dynamic(config: Any) -> bool:
    """Whether ``config`` is an output a task registered while it ran.

    Such an output exists once registered: a task that uses it depends on the
    producing task for its identifier, but need not wait for that task's end.
    """
    return _dynamic.get(id(config)) is config
