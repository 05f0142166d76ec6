"""The names of experimaestro's modules and what each one is in xpm (data only).

:data:`MODULES` maps each module of experimaestro that code written for it imports
(``experimaestro``, ``experimaestro.core.objects``...) to the names that module
exports for users. Each name maps either to a target, ``"module:attribute"`` (an
xpm object, or a standard library one such as ``"typing:Annotated"``), or to a
:class:`NotProvided` saying in one sentence why xpm does not provide it.
:data:`MISSING_MODULES` lists whole modules xpm does not provide, with the reason.

The drop-in (:mod:`xpm.compat.finder`) serves these modules; ``docs/compatibility.md``
describes the names and their behaviour for users. Names are grouped by the
experimaestro module that defines them, and a module that re-exports names (the
package ``experimaestro`` itself, ``experimaestro.launcherfinder``...) picks them from
those groups, so that a name has one target wherever it is imported from.
"""

from __future__ import annotations

from typing import NamedTuple, Union

__all__ = ["API_VERSION", "NotProvided", "Target", "MODULES", "MISSING_MODULES", "ROOT"]

#: The experimaestro version whose API the drop-in implements (its ``__version__``)
API_VERSION = "2.7.0"

#: The top-level name the drop-in answers for
ROOT = "experimaestro"


class NotProvided(NamedTuple):
    """A name xpm deliberately does not provide; ``reason`` is one short sentence."""

    reason: str


#: What a name is: ``"module:attribute"``, or why it is not provided
Target = Union[str, NotProvided]

FILES = NotProvided("tokens and connectors are not configured by files: use CounterToken and launchers.py")
SCHEDULER = NotProvided("the scheduler is internal to an experiment: use experiment(...) and task.submit()")
WORKSPACE = NotProvided("xpm's Workspace is another object: an experiment gives its folder as xp.workdir")


def _only(group: dict[str, Target], *names: str) -> dict[str, Target]:
    """The entries of ``group`` for ``names`` (for modules that re-export some names of another)."""
    return {name: group[name] for name in names}


# --- experimaestro.annotations -------------------------------------------------------------------

_ANNOTATIONS: dict[str, Target] = {
    "cache": "xpm.config.annotations:cache",
    "Array": "xpm.config.annotations:Array",
    "TagDict": "xpm.config.annotations:TagDict",
    "tag": "xpm.config.fields:tag",
    "tags": "xpm.config.annotations:tags",
    "tagspath": "xpm.config.operations:tagspath",
    "stop_tags": "xpm.config.operations:stop_tags",
    "STDOUT": "xpm.config.annotations:STDOUT",
    "STDERR": "xpm.config.annotations:STDERR",
    "deprecate": "xpm.config.deprecate:deprecate",
    "initializer": "xpm.config.annotations:initializer",
    "config_only": "xpm.config.annotations:config_only",
}

# --- experimaestro.core.* -------------------------------------------------------------------------

_ARGUMENTS: dict[str, Target] = {
    "Param": "xpm.config.types:Param",
    "Option": "xpm.config.types:Option",
    "Meta": "xpm.config.types:Meta",
    "Constant": "xpm.config.types:Constant",
    "DataPath": "xpm.config.datapath:DataPath",
    "OptionalDataPath": "xpm.config.datapath:OptionalDataPath",
    "Annotated": "typing:Annotated",
    "field": "xpm.config.fields:field",
    "help": "xpm.config.annotations:help",
}

_TYPES: dict[str, Target] = {
    "Identifier": "xpm.config.annotations:Identifier",
    "SubmitHook": "xpm.config.hooks:SubmitHook",
    # experimaestro's Any is its own marker for Param[Any]; xpm reads typing.Any.
    "Any": "typing:Any",
    # For type hints and re-exports: xpm's descriptions of value types and of classes have other methods.
    "Type": "xpm.config.types:ValueType",
    "ObjectType": "xpm.config.classinfo:ClassInfo",
}

_OBJECTS: dict[str, Target] = {
    "ConfigMixin": "xpm.config.base:ConfigMixin",
    "Config": "xpm.config.base:Config",
    "InstanceConfig": "xpm.config.base:InstanceConfig",
    "Prepare": "xpm.config.base:Prepare",
    "Task": "xpm.config.base:Task",
    "ResumableTask": "xpm.config.base:ResumableTask",
    "LightweightTask": "xpm.config.base:LightweightTask",
    "copyconfig": "xpm.config.operations:copyconfig",
    "setmeta": "xpm.config.operations:setmeta",
    "sealed_set": "xpm.config.operations:sealed_set",
    # The type of the ``dep`` argument of task_outputs(self, dep): an annotation only.
    "DependentMarker": "typing:Callable",
    # ConfigInformation.deserialize(...) as libraries call it; config.__xpm__ is xpm's ConfigInfo.
    "ConfigInformation": "xpm.compat.shims:ConfigInformation",
    "ConfigWalkContext": "xpm.config.contexts:ConfigWalkContext",
    "ObjectStore": "xpm.serialize:ObjectStore",
    "SealedError": "xpm.errors:SealedError",
    "TaggedValue": "xpm.config.fields:TaggedValue",
}

_SERIALIZATION: dict[str, Target] = {
    "load": "xpm.serialize:load",
    "save": "xpm.serialize:save",
    "from_task_dir": "xpm.serialize:from_task_dir",
    "serialize": "xpm.serialize:serialize",
    "deserialize": "xpm.serialize:deserialize",
    "load_configs": "xpm.serialize:load_configs",
    "state_dict": "xpm.statedict:state_dict",
    "from_state_dict": "xpm.statedict:from_state_dict",
    "load_xp_info": "xpm.runinfo:load_xp_info",
    "ExperimentInfo": "xpm.runinfo:ExperimentInfo",
}

_CONTEXT: dict[str, Target] = {
    "SerializationContext": "xpm.serialize:SerializationContext",
    "SerializedPath": "xpm.config.datapath:SerializedPath",
}

_PARTIAL: dict[str, Target] = {
    "partial": "xpm.config.partial:partial",
    "param_group": "xpm.config.partial:param_group",
    "ParameterGroup": "xpm.config.partial:ParameterGroup",
    "Partial": "xpm.config.partial:Partial",
}

_SERIALIZERS: dict[str, Target] = {
    "SerializationLWTask": "xpm.config.serializers:SerializationLWTask",
    "PathSerializationLWTask": "xpm.config.serializers:PathSerializationLWTask",
}

_GENERATORS: dict[str, Target] = {
    "PathGenerator": "xpm.config.fields:PathGenerator",
    "pathgenerator": "xpm.config.types:pathgenerator",
}

# --- scheduler, launchers, launcher finder --------------------------------------------------------

_JOBS: dict[str, Target] = {
    "Job": "xpm.scheduler.job:Job",
    "JobState": "xpm.state:JobState",
    "JobStateError": "xpm.state:JobStateError",
    "JobFailureStatus": "xpm.state:JobFailureStatus",
}

_EXPERIMENT: dict[str, Target] = {
    "experiment": "xpm.runs:experiment",
    "FailedExperiment": "xpm.runs:FailedExperiment",
    "DirtyGitError": "xpm.runs:DirtyGitError",
    "GracefulExperimentExit": "xpm.runs:GracefulExperimentExit",
}

_SCHEDULER: dict[str, Target] = {
    "Scheduler": SCHEDULER,
    "Listener": "xpm.launchers.listeners:Listener",
    "Workspace": WORKSPACE,
    "RunMode": "xpm.runmode:RunMode",
    **_EXPERIMENT,
    **_only(_JOBS, "Job", "JobState", "JobFailureStatus"),
}

_TRANSIENT: dict[str, Target] = {"TransientMode": "xpm.runmode:TransientMode"}

_LAUNCHERS: dict[str, Target] = {
    "Launcher": "xpm.launchers:Launcher",
    "DynamicLauncher": NotProvided("launchers are chosen with find_launcher() and the user's launchers.py"),
}

_SPECS: dict[str, Target] = {
    "HostRequirement": "xpm.launchers.requirements:HostRequirement",
    "HostSimpleRequirement": "xpm.launchers.specs:SimpleRequirement",
    "HostSpecification": "xpm.launchers.requirements:HostSpecification",
    "CPUSpecification": "xpm.launchers.specs:CPUSpecification",
    "AcceleratorSpecification": "xpm.launchers.requirements:AcceleratorSpecification",
    "CudaSpecification": "xpm.launchers.requirements:CudaSpecification",
    "MPSSpecification": "xpm.launchers.requirements:MPSSpecification",
    "cpu": "xpm.launchers.specs:cpu",
    "cuda_gpu": "xpm.launchers.specs:cuda_gpu",
    "mps_gpu": "xpm.launchers.specs:mps_gpu",
    "gpu": "xpm.launchers.specs:gpu",
    "duration": "xpm.launchers.specs:duration",
    "RequirementUnion": "xpm.launchers.specs:RequirementUnion",
    "MatchRequirement": "xpm.launchers.specs:MatchRequirement",
    "AcceleratorType": "xpm.launchers.hosts:AcceleratorType",
}

_REGISTRY: dict[str, Target] = {
    "find_launcher": "xpm.launchers.finder:find_launcher",
    "LauncherNotFoundError": "xpm.launchers.finder:LauncherNotFoundError",
    "LauncherRegistry": "xpm.launchers.finder:LauncherRegistry",
}

_PARSER: dict[str, Target] = {"parse": "xpm.launchers.specs:parse"}

# --- the rest --------------------------------------------------------------------------------------

_EXCEPTIONS: dict[str, Target] = {
    "GracefulTimeout": "xpm.errors:GracefulTimeout",
    "TaskCancelled": "xpm.errors:TaskCancelled",
    # experimaestro's "already reported" error; xpm's command line shows any XpmError as one line.
    "HandledException": "xpm.errors:XpmError",
}

_NOTIFICATIONS: dict[str, Target] = {
    "progress": "xpm.notifications:progress",
    "tqdm": "xpm.notifications:tqdm",
}

_CHECKERS: dict[str, Target] = {
    "Checker": "xpm.config.checkers:Checker",
    "Choices": "xpm.config.checkers:Choices",
}

_XPMUTILS: dict[str, Target] = {
    "DirectoryContext": "xpm.config.contexts:DirectoryContext",
    "EmptyContext": "xpm.config.contexts:EmptyContext",
}

_DOCUMENTATION: dict[str, Target] = {"documentation": "xpm.config.annotations:documentation"}

_EXPERIMENTS_CONFIGURATION: dict[str, Target] = {
    "configuration": "xpm.experiments:configuration",
    "ConfigurationBase": "xpm.experiments:ConfigurationBase",
    "DirtyGitAction": "xpm.runs:DirtyGitAction",
}

_MOCKMODULE: dict[str, Target] = {
    "mock_modules": "xpm.experiments.mockmodules:mock_modules",
    "FakeModuleFinder": "xpm.experiments.mockmodules:FakeModuleFinder",
    "noop_decorator": "xpm.experiments.mockmodules:noop_decorator",
}

_GRID: dict[str, Target] = {
    "GridSearch": "xpm.experiments.grid:GridSearch",
    "GenericParams": "xpm.experiments.grid:GenericParams",
    "generate_grid": "xpm.experiments.grid:generate_grid",
}

# Libraries define actions; xpm's monitors do not offer to run them (docs/compatibility.md).
_ACTIONS: dict[str, Target] = {
    "Action": "xpm.compat.shims:Action",
    "Interaction": "xpm.compat.shims:Interaction",
    "CLIInteraction": "xpm.compat.shims:CLIInteraction",
}

#: Every module the drop-in serves: module name -> exported name -> target
MODULES: dict[str, dict[str, Target]] = {
    ROOT: {
        **_ANNOTATIONS,
        **_only(_TYPES, "Identifier", "Any", "SubmitHook"),
        **_SERIALIZATION,
        **_only(_CONTEXT, "SerializationContext"),
        **_ARGUMENTS,
        **_GENERATORS,
        **_PARTIAL,
        **_only(
            _OBJECTS, "Config", "InstanceConfig", "copyconfig", "setmeta", "sealed_set", "DependentMarker",
            "Prepare", "Task", "ResumableTask", "LightweightTask", "ObjectStore",
        ),
        **_SERIALIZERS,
        **_only(_LAUNCHERS, "Launcher"),
        **_only(_SCHEDULER, "Scheduler", "Workspace", "RunMode", "Job", *_EXPERIMENT),
        **_only(_EXCEPTIONS, "GracefulTimeout", "TaskCancelled"),
        **_TRANSIENT,
        **_NOTIFICATIONS,
        **_only(_CHECKERS, "Choices"),
        **_only(_XPMUTILS, "DirectoryContext"),
        **_DOCUMENTATION,
        **_only(_REGISTRY, "LauncherRegistry"),
        **_only(_EXPERIMENTS_CONFIGURATION, "DirtyGitAction"),
        **_ACTIONS,
        "set_launcher": "xpm.runs:set_launcher",
        "Path": "pathlib:Path",
    },
    "experimaestro.annotations": _ANNOTATIONS,
    "experimaestro.checkers": _CHECKERS,
    "experimaestro.core": {},
    "experimaestro.core.arguments": _ARGUMENTS,
    "experimaestro.core.context": _CONTEXT,
    "experimaestro.core.objects": _OBJECTS,
    "experimaestro.core.objects.config": {
        **_only(
            _OBJECTS, "ConfigMixin", "Config", "InstanceConfig", "ConfigInformation", "Prepare", "Task",
            "ResumableTask", "LightweightTask", "DependentMarker", "copyconfig", "setmeta", "sealed_set",
        ),
        "clone": NotProvided("an internal helper of experimaestro: use copyconfig()"),
    },
    "experimaestro.core.partial": _PARTIAL,
    "experimaestro.core.serialization": _SERIALIZATION,
    "experimaestro.core.serializers": _SERIALIZERS,
    "experimaestro.core.types": _TYPES,
    "experimaestro.exceptions": _EXCEPTIONS,
    "experimaestro.experiments": {
        **_EXPERIMENTS_CONFIGURATION,
        "ExperimentHelper": "xpm.experiments:ExperimentHelper",
        **_MOCKMODULE,
        **_GRID,
    },
    "experimaestro.experiments.cli": {
        "ExperimentHelper": "xpm.experiments:ExperimentHelper",
        "ExperimentCallable": "xpm.experiments:ExperimentCallable",
        "validate_attrs": "xpm.experiments.loader:validate_attrs",
        "experiments_cli": NotProvided("the command line runs experiments: experimaestro run-experiment"),
    },
    "experimaestro.experiments.configuration": _EXPERIMENTS_CONFIGURATION,
    "experimaestro.experiments.grid": _GRID,
    "experimaestro.experiments.mockmodule": _MOCKMODULE,
    "experimaestro.generators": _GENERATORS,
    "experimaestro.launcherfinder": {
        **_only(
            _SPECS, "cpu", "cuda_gpu", "mps_gpu", "gpu", "HostSpecification", "CPUSpecification",
            "AcceleratorType", "AcceleratorSpecification", "CudaSpecification", "MPSSpecification",
            "HostRequirement", "MatchRequirement",
        ),
        **_only(_REGISTRY, "find_launcher", "LauncherRegistry"),
        **_PARSER,
        "ConnectorConfiguration": FILES,
        "TokenConfiguration": FILES,
    },
    "experimaestro.launcherfinder.parser": _PARSER,
    "experimaestro.launcherfinder.registry": _REGISTRY,
    "experimaestro.launcherfinder.specs": _SPECS,
    "experimaestro.launchers": _LAUNCHERS,
    "experimaestro.launchers.direct": {"DirectLauncher": "xpm.launchers.local:DirectLauncher"},
    # Only "this host": launchers refuse any other connector.
    "experimaestro.connectors": {"LocalConnector": "xpm.launchers:LocalConnector"},
    "experimaestro.connectors.local": {"LocalConnector": "xpm.launchers:LocalConnector"},
    "experimaestro.launchers.slurm": {
        "SlurmLauncher": "xpm.launchers.slurm:SlurmLauncher",
        "SlurmOptions": "xpm.launchers.slurm_options:SlurmOptions",
    },
    "experimaestro.mkdocs": {
        "Documentation": NotProvided("there is no plugin for documentation generators"),
    },
    "experimaestro.mkdocs.annotations": _DOCUMENTATION,
    "experimaestro.mkdocs.metaloader": {
        "Module": "xpm.docsloader:Module",
        "DependencyInjectorFinder": "xpm.docsloader:DependencyInjectorFinder",
        "DependencyInjectorLoader": "xpm.docsloader:DependencyInjectorLoader",
    },
    "experimaestro.notifications": _NOTIFICATIONS,
    "experimaestro.scheduler": _SCHEDULER,
    "experimaestro.scheduler.base": {**_only(_SCHEDULER, "Scheduler", "Listener"), **_JOBS},
    "experimaestro.scheduler.experiment": {
        **_EXPERIMENT,
        "cleanup_experiment_history": "xpm.history:cleanup_experiment_history",
    },
    "experimaestro.scheduler.interfaces": {
        **_only(_JOBS, "JobState", "JobStateError", "JobFailureStatus"),
        "ExperimentStatus": NotProvided("a run's record says running, done or failed (run.json)"),
    },
    "experimaestro.scheduler.jobs": _JOBS,
    "experimaestro.scheduler.transient": _TRANSIENT,
    "experimaestro.scheduler.workspace": _only(_SCHEDULER, "Workspace", "RunMode"),
    "experimaestro.settings": {
        "Settings": "xpm.settings:Settings",
        "WorkspaceSettings": "xpm.settings:WorkspaceSettings",
        "HistorySettings": "xpm.settings:HistorySettings",
        "find_workspace": "xpm.settings:resolve_workspace",
        "get_settings": NotProvided("xpm.settings.load_settings(config_dir) reads the settings, from a folder"),
        "get_workspace": NotProvided("xpm.settings.load_settings().workspace(id) gives a declared workspace"),
    },
    "experimaestro.taskglobals": {
        "Env": "xpm.taskglobals:Env",
        "LauncherInformation": "xpm.taskglobals:LauncherInformation",
    },
    "experimaestro.tokens": {
        "CounterToken": "xpm.store.tokens:CounterToken",
        "Token": NotProvided("there is one kind of token: CounterToken"),
        "ProcessCounterToken": NotProvided("tokens are shared between processes: use CounterToken"),
        "CounterConfiguration": FILES,
    },
    "experimaestro.utils": {
        "cleanupdir": "xpm.compat.shims:cleanupdir",
    },
    "experimaestro.utils.settings": {"JsonSettings": "xpm.compat.shims:JsonSettings"},
    "experimaestro.utils.config": {"validate_attrs": "xpm.experiments.loader:validate_attrs"},
    "experimaestro.huggingface": {"ExperimaestroHFHub": "xpm.compat.huggingface:ExperimaestroHFHub"},
    "experimaestro.xpmutils": _XPMUTILS,
}

#: Modules (and their submodules) that xpm does not provide at all, with the reason
MISSING_MODULES: dict[str, str] = {
    "experimaestro.carbon": "carbon emissions are not measured",
    "experimaestro.cli": "the command line is xpm's own (experimaestro --help)",
    "experimaestro.click": "the command line is xpm's own (experimaestro --help)",
    "experimaestro.connectors.ssh": "jobs run on this host or through Slurm's commands, without connectors",
    "experimaestro.launchers.oar": "the launchers are local and Slurm only",
    "experimaestro.mkdocs.base": "there is no plugin for documentation generators",
    "experimaestro.rpyc": "the monitor reads the workspace files, without a server",
    "experimaestro.scheduler.services": "experiments keep no services (servers)",
    "experimaestro.sphinx": "there is no plugin for documentation generators",
    "experimaestro.tools": "the maintenance tools are commands (experimaestro --help)",
    "experimaestro.tui": "the monitor is xpm's own (experimaestro experiments monitor --console)",
    "experimaestro.webui": "the monitor is xpm's own (experimaestro experiments monitor --console)",
}
