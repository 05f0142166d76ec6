"""xpm: an experiment manager for parameterised jobs.

Describe work as typed configurations, identified by the content of their
parameters::

    from xpm import Config, Task, Param, field

    class Train(Task):
        lr: Param[float]
        epochs: Param[int] = field(default=10, ignore_default=True)

        def execute(self):
            ...

    xpm.identifier(Train.C(lr=0.1))  # 64 hex characters, stable across versions

``import xpm`` stays light: every name here loads its module on first use (the
configuration classes too, which the command line does not need), and the
command line and monitor never load here.
"""

from typing import TYPE_CHECKING, Any

from xpm._version import __version__
from xpm.errors import GracefulTimeout, TaskCancelled, XpmError

if TYPE_CHECKING:  # what type checkers see; at run time, __getattr__ loads each on first use
    from xpm.config import (
        Config,
        Constant,
        LightweightTask,
        Meta,
        Option,
        Param,
        PathGenerator,
        Prepare,
        ResumableTask,
        Task,
        copyconfig,
        field,
        stop_tags,
        tag,
        tagspath,
    )

__all__ = [
    "__version__",
    "Config",
    "Constant",
    "LightweightTask",
    "Meta",
    "Option",
    "Param",
    "PathGenerator",
    "Prepare",
    "ResumableTask",
    "Task",
    "XpmError",
    "GracefulTimeout",
    "TaskCancelled",
    "CounterToken",
    "DirectLauncher",
    "FailedExperiment",
    "LocalLauncher",
    "RunMode",
    "experiment",
    "progress",
    "copyconfig",
    "field",
    "from_task_dir",
    "identifier",
    "load",
    "save",
    "stop_tags",
    "tag",
    "tagspath",
    # the rest of the configuration API (issue 15; docs/compatibility.md)
    "Array",
    "Choices",
    "DirectoryContext",
    "Identifier",
    "InstanceConfig",
    "ParameterGroup",
    "Partial",
    "STDERR",
    "STDOUT",
    "TagDict",
    "cache",
    "config_only",
    "deprecate",
    "documentation",
    "help",
    "initializer",
    "param_group",
    "partial",
    "pathgenerator",
    "sealed_set",
    "setmeta",
    "tags",
    "tqdm",
    "DataPath",
    "OptionalDataPath",
    "ObjectStore",
    "PathSerializationLWTask",
    "SerializationContext",
    "SerializationLWTask",
    "SubmitHook",
    "deserialize",
    "load_configs",
    "serialize",
    "ExperimentInfo",
    "from_state_dict",
    "load_xp_info",
    "state_dict",
    "JobState",
    "TransientMode",
]

_LAZY = {
    "Config": "xpm.config",
    "Constant": "xpm.config",
    "LightweightTask": "xpm.config",
    "Meta": "xpm.config",
    "Option": "xpm.config",
    "Param": "xpm.config",
    "PathGenerator": "xpm.config",
    "Prepare": "xpm.config",
    "ResumableTask": "xpm.config",
    "Task": "xpm.config",
    "copyconfig": "xpm.config",
    "field": "xpm.config",
    "stop_tags": "xpm.config",
    "tag": "xpm.config",
    "tagspath": "xpm.config",
    "identifier": "xpm.ids",
    "save": "xpm.serialize",
    "load": "xpm.serialize",
    "from_task_dir": "xpm.serialize",
    "experiment": "xpm.runs",
    "FailedExperiment": "xpm.runs",
    "RunMode": "xpm.runmode",
    # progress through notifications: it stays quiet in helper processes (Env.slave)
    "progress": "xpm.notifications",
    "tqdm": "xpm.notifications",
    "Array": "xpm.config.annotations",
    "Identifier": "xpm.config.annotations",
    "STDERR": "xpm.config.annotations",
    "STDOUT": "xpm.config.annotations",
    "TagDict": "xpm.config.annotations",
    "cache": "xpm.config.annotations",
    "config_only": "xpm.config.annotations",
    "documentation": "xpm.config.annotations",
    "help": "xpm.config.annotations",
    "initializer": "xpm.config.annotations",
    "tags": "xpm.config.annotations",
    "Choices": "xpm.config.checkers",
    "DirectoryContext": "xpm.config.contexts",
    "InstanceConfig": "xpm.config.base",
    "sealed_set": "xpm.config.operations",
    "setmeta": "xpm.config.operations",
    "deprecate": "xpm.config.deprecate",
    "ParameterGroup": "xpm.config.partial",
    "Partial": "xpm.config.partial",
    "param_group": "xpm.config.partial",
    "partial": "xpm.config.partial",
    "pathgenerator": "xpm.config.types",
    "DataPath": "xpm.config.datapath",
    "OptionalDataPath": "xpm.config.datapath",
    "SerializationContext": "xpm.config.datapath",
    "PathSerializationLWTask": "xpm.config.serializers",
    "SerializationLWTask": "xpm.config.serializers",
    "SubmitHook": "xpm.config.hooks",
    "ObjectStore": "xpm.serialize",
    "deserialize": "xpm.serialize",
    "load_configs": "xpm.serialize",
    "serialize": "xpm.serialize",
    "state_dict": "xpm.statedict",
    "JobState": "xpm.state",
    "TransientMode": "xpm.runmode",
    "from_state_dict": "xpm.statedict",
    "load_xp_info": "xpm.runinfo",
    "ExperimentInfo": "xpm.runinfo",
    "CounterToken": "xpm.store.tokens",
    "LocalLauncher": "xpm.launchers.local",
    "DirectLauncher": "xpm.launchers.local",
}


def _submit_outside(task: Any, **kwargs: Any) -> Any:
    # task.submit(run_mode=DRY_RUN) outside any experiment goes to the experiment
    # layer, imported on that first call (not by `import xpm`).
    import importlib

    return importlib.import_module("xpm.runs").submit_outside(task, **kwargs)


from xpm import context as _context  # noqa: E402 - after the names it serves

_context.set_outside_submitter(_submit_outside)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'xpm' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
