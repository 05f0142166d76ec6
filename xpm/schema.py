"""Persisted records: msgspec Structs, each top-level record with a ``version``.

Schema evolution (see ``spec/``): a new field always has a default and a type
never changes; readers accept unknown fields (an older xpm reads what a newer one
wrote when the version did not change), and refuse a newer ``version``.

The annotations are real objects here (no ``from __future__ import annotations``):
a decoder made from strings compiles each of them, at every command's start.
"""

from typing import Any, NamedTuple

import msgspec

#: Version of the params.json / xpm.json format written by this xpm
PARAMS_VERSION = 1


class ObjectRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One configuration of a saved tree.

    ``fields`` hold encoded values (``spec/params.md``): JSON scalars and lists as
    themselves, other kinds as objects with a ``"$"`` kind key.
    """

    id: int
    #: where the class is imported from: ``module:qualname``
    type: str
    #: the xpm type id (lower-cased ``module.qualname`` or ``__xpmid__``)
    typeid: str
    #: the identifier of the configuration when it was written
    identifier: str
    fields: dict[str, Any] = {}
    #: id of the task whose output this configuration is
    task: int | None = None
    init_tasks: list[int] = []
    #: for a class of the main script (``type`` in ``__main__``): the script's absolute path
    file: str | None = None
    #: tags set on this configuration itself (not gathered from sub-configurations)
    tags: dict[str, Any] = {}
    stop_tags: bool = False


class ParamsFile(msgspec.Struct, kw_only=True):
    """A saved tree of configurations: ``params.json`` in a job folder, ``xpm.json`` from ``save``."""

    version: int
    #: the version of xpm that wrote the file
    xpm: str
    #: every configuration of the tree, each listed before the ones that hold it
    #: (except along a cycle)
    objects: list[ObjectRecord]
    #: the saved value: a configuration reference, or a list/dict of values
    root: Any


class VersionView(msgspec.Struct):
    """Reads only the version of a record, to refuse newer formats before decoding them."""

    version: int


# --- Workspace records (spec/workspace.md) -------------------------------------------

#: Version of each workspace record written by this xpm
RECORD_VERSION = 1

#: Job states, in lifecycle order
JOB_STATES = ("unscheduled", "waiting", "ready", "scheduled", "running", "done", "error")
#: Reasons of the error state
FAILURE_REASONS = ("failed", "dependency", "cancelled", "timeout", "memory")


class WorkspaceMarker(msgspec.Struct, kw_only=True):
    """``.xpm-workspace.json`` at the root: marks a workspace and gives its layout version."""

    version: int
    created_at: float
    xpm: str


class JobStateRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``jobs/<task-id>/<identifier>/.xpm/state.json``: the current state of a job."""

    version: int
    task_id: str
    identifier: str
    state: str
    failure_reason: str | None = None
    updated_at: float = 0.0
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    retry_count: int = 0
    #: how to reach the process: {"type": "local", "pid": N, "host": H} or {"type": "slurm", "jobid": "N"}
    process: dict[str, Any] | None = None


class Event(msgspec.Struct, kw_only=True, tag_field="kind", omit_defaults=True):
    """Base of the events of append-only logs; ``kind`` names the event."""

    ts: float


class JobStateChanged(Event, tag="state"):
    state: str
    failure_reason: str | None = None


class JobProgress(Event, tag="progress"):
    value: float
    level: int = 0
    desc: str | None = None


class JobSubmitted(Event, tag="job"):
    """A line of a run's ``jobs.jsonl``: a job the run submitted, with its tags."""

    task_id: str
    identifier: str
    tags: dict[str, Any] = {}


class IndexEntry(Event, tag="index"):
    """A line of the derived job index: the latest known state and tags of a job."""

    task_id: str
    identifier: str
    state: str
    failure_reason: str | None = None
    tags: dict[str, Any] = {}


class IndexRemoved(Event, tag="removed"):
    """A line of the derived job index: the job's folder was deleted (``jobs clean``, ``orphans --clean``)."""

    task_id: str
    identifier: str


#: Version of the records of a job's outputs log written by this xpm
OUTPUT_VERSION = 1


class TaskOutput(Event, tag="output"):
    """A line of a job's ``.xpm/outputs.jsonl``: an output its task registered while it ran.

    The experiment builds the output by calling the method ``method`` of its own
    configuration whose identifier is ``config``, with ``args`` and ``kwargs``.
    """

    version: int
    #: the identifier (hex) of the configuration whose method builds the output
    config: str
    #: the name of that method
    method: str
    args: list[Any] = []
    kwargs: dict[str, Any] = {}


AnyEvent = JobStateChanged | JobProgress | JobSubmitted | IndexEntry | IndexRemoved | TaskOutput


class IndexedJob(NamedTuple):
    """One folded job of the index: what listings show, and a row of an index snapshot.

    In a snapshot, an array of its six fields in this order (msgspec decodes the
    rows straight into these tuples).
    """

    task_id: str
    identifier: str
    state: str
    failure_reason: str | None
    tags: dict[str, Any]
    updated_at: float


class IndexSnapshotFile(msgspec.Struct, kw_only=True):
    """``index/jobs.snapshot`` (MessagePack): the job index folded up to ``offset``.

    A cache of the cache: it is used only when the ``last_line`` it ends with is
    found again, unchanged, just before ``offset`` in ``index/jobs.jsonl``;
    otherwise readers fold the whole log.
    """

    version: int
    #: bytes of index/jobs.jsonl folded into ``jobs``
    offset: int
    #: the last complete line folded (newline included): identifies the log
    last_line: bytes
    jobs: list[IndexedJob]


class RunRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``experiments/<id>/<run-id>/run.json``: one run of an experiment."""

    version: int
    experiment_id: str
    run_id: str
    hostname: str
    pid: int
    started_at: float
    ended_at: float | None = None
    #: running, done, failed
    status: str = "running"
    #: the command line of the experiment process (``sys.orig_argv``), and its working directory
    command: list[str] = []
    cwd: str | None = None


class RunSummary(msgspec.Struct, kw_only=True):
    """``experiments/<id>/<run-id>/summary.json``: the run's jobs counted by state, a cache.

    It holds while the job index and the run's ``jobs.jsonl`` are as it saw them: ``index_size``
    bytes of the index, ending with ``index_tail`` (hex of up to 64 bytes: a rebuilt index of the
    same size is told apart), and ``jobs_size`` bytes of ``jobs.jsonl``. ``check`` is the hex
    blake3 of the encoding of the record with ``check`` empty: a damaged file is detected.
    """

    version: int
    index_size: int
    index_tail: str
    jobs_size: int
    states: dict[str, int]
    check: str = ""


class GitInfo(msgspec.Struct, kw_only=True):
    commit: str
    dirty: bool
    path: str


class EnvironmentRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``experiments/<id>/<run-id>/environment.json``: what the run ran with."""

    version: int
    python: str
    packages: dict[str, str] = {}
    git: GitInfo | None = None


class SourceFile(msgspec.Struct, kw_only=True):
    """A source file of a run: its content is the blob ``blobs/<digest[:2]>/<digest[2:]>``."""

    #: the file's absolute path when the run started
    path: str
    #: the SHA-256 of its content (64 lowercase hex characters)
    digest: str
    size: int


class RepositoryRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The state of a git repository holding a run's code, when the run started."""

    #: the repository's top folder
    path: str
    commit: str
    #: whether tracked files had uncommitted changes (``git status``)
    dirty: bool = False
    #: the checked-out branch (None: a detached HEAD)
    branch: str | None = None
    #: the blob (digest) of ``git diff HEAD --binary``: the uncommitted changes of tracked files
    patch: str | None = None
    #: how many untracked files there were (their content is not recorded)
    untracked: int = 0


class RunSpec(msgspec.Struct, kw_only=True, omit_defaults=True):
    """``experiments/<id>/<run-id>/spec.json``: what a run was asked to do, and with which code."""

    version: int
    #: the merged YAML configuration, as ``run-experiment --show`` prints it (None: a Python experiment)
    configuration: Any = None
    #: the ``-c key=value`` overrides of the command line, in order
    overrides: list[str] = []
    #: the YAML files and Python modules of the experiment, content-addressed
    sources: list[SourceFile] = []
    #: the git repositories of the experiment's code and of its editable packages
    repositories: list[RepositoryRecord] = []
    #: what could not be recorded (git missing, a folder outside git...), one line each
    problems: list[str] = []


class RefRecord(msgspec.Struct, kw_only=True):
    """``refs/<name>.json``: a small named pointer (for instance the current run of an experiment)."""

    version: int
    value: str
    updated_at: float
    host: str
    pid: int


class TokenHolder(msgspec.Struct, kw_only=True):
    """``<token folder>/holders/<task-id>@<identifier>.json``: a job holding ``count`` of a counter token.

    ``pid`` is the job process once it started (the scheduler's before): a holder
    whose process is dead on this host no longer counts.
    """

    version: int
    task_id: str
    identifier: str
    count: int
    host: str
    pid: int
    acquired_at: float


class LockOwner(msgspec.Struct, kw_only=True):
    """Who holds a lock: written inside the lock so that waiters can say who they wait for."""

    host: str
    pid: int
    acquired_at: float
