"""Every file and folder name xpm reads or writes (mirrored in ``spec/workspace.md``).

No other module spells an on-disk name: they ask this one. Paths are relative to
the workspace root and always ``/``-separated (they are fsspec paths, local or
over SSH alike); :func:`split_job_dir` is the way back from a job folder's local
path, the one place where the two meet.
"""

from __future__ import annotations

import os
import re
from typing import Any

#: Version of the on-disk layout described in spec/workspace.md
LAYOUT_VERSION = 1

#: A task's parameters, in a job folder (see ``spec/params.md``)
PARAMS_FILE = "params.json"
#: What :func:`xpm.save` writes in the folder it is given (same format as params.json)
SAVED_FILE = "xpm.json"

#: The marker at the root of a workspace: its layout version
MARKER = ".xpm-workspace.json"
JOBS = "jobs"
EXPERIMENTS = "experiments"
REFS = "refs"
LOCKS = "locks"
INDEX = "index"
#: Counter tokens made by ``xp.token(name, count)``
TOKENS = "tokens"
#: Files launchers keep for several jobs at once (Slurm job arrays)
LAUNCHERS = "launchers"
#: folders shared by the jobs with the same partial identifier
PARTIALS = "partials"
#: files cached by configuration methods (``@cache``)
CONFIG_CACHE = "config"
#: where ``experiments copy`` assembles each job before renaming it into ``jobs/``
STAGING = ".xpm-staging"
#: Folder of xpm's own files inside a job folder
JOB_META = ".xpm"

_TASK_ID = re.compile(r"^[a-z0-9_][a-z0-9_.\-]*$")
_IDENTIFIER = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


def is_task_id(text: str) -> bool:
    """Whether ``text`` can be a task id folder name (lower-case, no separators, no '..')."""
    return bool(_TASK_ID.match(text)) and ".." not in text


def is_identifier(text: str) -> bool:
    """Whether ``text`` is a job identifier (64 lowercase hex characters)."""
    return bool(_IDENTIFIER.match(text))


def is_name(text: str) -> bool:
    """Whether ``text`` is a valid experiment id or run id (one path component)."""
    return bool(_NAME.match(text)) and ".." not in text


def task_dir(task_id: str) -> str:
    """The folder of the job folders of a task."""
    return f"{JOBS}/{task_id}"


def job_dir(task_id: str, identifier: str) -> str:
    """A job folder: its task's folder, then the identifier (one path component)."""
    return f"{task_dir(task_id)}/{identifier}"


def partial_dir(task_id: str, name: str, partial_id: str) -> str:
    """The folder of a partial identifier, relative to the workspace."""
    return f"{PARTIALS}/{task_id}/{name}/{partial_id}"


def staged_job_dir(task_id: str, identifier: str) -> str:
    """Where ``experiments copy`` assembles a job before renaming it to :func:`job_dir`."""
    return f"{STAGING}/{task_id}/{identifier}"


def config_cache_dir(task_id: str, identifier: str) -> str:
    """The folder of the files ``@cache`` methods keep for a configuration, relative to the workspace."""
    return f"{CONFIG_CACHE}/{task_id}/{identifier}"


def workspace_of_job(jobpath: Any) -> Any:
    """The workspace folder of a job folder ``<workspace>/jobs/<task id>/<identifier>`` (a Path)."""
    return jobpath.parent.parent.parent


def job_params(task_id: str, identifier: str) -> str:
    return f"{job_dir(task_id, identifier)}/{PARAMS_FILE}"


def job_basename(task_id: str) -> str:
    """The base name of a job's log files: the last dot-separated part of its task id."""
    return task_id.rsplit(".", 1)[-1]


def job_log_name(task_id: str, suffix: str) -> str:
    """The file name of a job's log, relative to its folder: ``<name>.out`` or ``<name>.err``."""
    return f"{job_basename(task_id)}.{suffix}"


def job_stdout(task_id: str, identifier: str) -> str:
    return f"{job_dir(task_id, identifier)}/{job_log_name(task_id, 'out')}"


def job_stderr(task_id: str, identifier: str) -> str:
    return f"{job_dir(task_id, identifier)}/{job_log_name(task_id, 'err')}"


def job_script_name(task_id: str) -> str:
    """The file name of a job's launcher script (Slurm), relative to its folder: ``<name>.sh``."""
    return f"{job_basename(task_id)}.sh"


def split_job_dir(path: str) -> tuple[str, str, str]:
    """The way back from the local path of a job folder: (workspace root, task id, identifier).

    The one place where the two names of a job folder meet: the local path that a
    launcher and the job process use (``<root>/jobs/<task-id>/<identifier>``) and
    the workspace name of :func:`job_dir`.
    """
    folder, identifier = os.path.split(path.rstrip(os.sep))
    jobs, task_id = os.path.split(folder)
    return os.path.dirname(jobs), task_id, identifier


def job_rotated_log(task_id: str, identifier: str, suffix: str, n: int) -> str:
    """The log of an earlier attempt of a job: ``<name>.<suffix>.<n>`` (suffix ``out`` or ``err``)."""
    return f"{job_dir(task_id, identifier)}/{job_log_name(task_id, suffix)}.{n}"


def job_meta(task_id: str, identifier: str) -> str:
    """The folder of xpm's own files in a job folder."""
    return f"{job_dir(task_id, identifier)}/{JOB_META}"


#: A job's state record, relative to its folder
JOB_STATE_FILE = f"{JOB_META}/state.json"


def job_state(task_id: str, identifier: str) -> str:
    return f"{job_dir(task_id, identifier)}/{JOB_STATE_FILE}"


def job_events(task_id: str, identifier: str) -> str:
    return f"{job_meta(task_id, identifier)}/events.jsonl"


def job_lock(task_id: str, identifier: str) -> str:
    return f"{job_meta(task_id, identifier)}/lock"


#: The outputs a job's task registered while it ran (dynamic outputs), relative to its folder
JOB_OUTPUTS_FILE = f"{JOB_META}/outputs.jsonl"


def job_outputs(task_id: str, identifier: str) -> str:
    """The append-only log of the outputs a job's task registered while it ran."""
    return f"{job_dir(task_id, identifier)}/{JOB_OUTPUTS_FILE}"


def experiment_dir(experiment_id: str) -> str:
    return f"{EXPERIMENTS}/{experiment_id}"


def run_dir(experiment_id: str, run_id: str) -> str:
    return f"{EXPERIMENTS}/{experiment_id}/{run_id}"


def run_record(experiment_id: str, run_id: str) -> str:
    return f"{run_dir(experiment_id, run_id)}/run.json"


def run_jobs(experiment_id: str, run_id: str) -> str:
    return f"{run_dir(experiment_id, run_id)}/jobs.jsonl"


def run_summary(experiment_id: str, run_id: str) -> str:
    """The run's job counts by state, a cache checked against the index (``RunSummary``)."""
    return f"{run_dir(experiment_id, run_id)}/summary.json"


def run_environment(experiment_id: str, run_id: str) -> str:
    return f"{run_dir(experiment_id, run_id)}/environment.json"


def run_spec(experiment_id: str, run_id: str) -> str:
    """What a run was asked to do and with which code (configuration, sources, git state)."""
    return f"{run_dir(experiment_id, run_id)}/spec.json"


#: Content-addressed files (a run's sources, git patches), stored once whatever the number of runs
BLOBS = "blobs"


def blob(digest: str) -> str:
    """The file holding the content whose SHA-256 is ``digest`` (64 lowercase hex characters)."""
    return f"{BLOBS}/{digest[:2]}/{digest[2:]}"


def blobs_lock() -> str:
    """The lock held while a run records its spec, and while unreferenced blobs are removed."""
    return lock(BLOBS)


#: The refs that name runs (tags), under ``refs/``: apart from ``experiments/``, where each ref is a current run
RUN_TAGS = "tags"


def run_tag_ref(experiment_id: str, name: str) -> str:
    """The name of the ref of a tag of an experiment's runs (its value: a run id)."""
    return f"{RUN_TAGS}/{experiment_id}/{name}"


def ref(name: str) -> str:
    """A ref is named by a path of name components, for instance ``experiments/<id>/current``."""
    return f"{REFS}/{name}.json"


def current_run_ref(experiment_id: str) -> str:
    """The name of the ref that holds the current run of an experiment."""
    return f"experiments/{experiment_id}/current"


def lock(name: str) -> str:
    return f"{LOCKS}/{name}.lock"


def experiment_lock(experiment_id: str) -> str:
    return lock(f"experiments/{experiment_id}")


#: Held by ``experiments copy`` in its destination workspace while it writes there (one copy at a time)
COPY_LOCK = lock("copy")


#: The derived job index (an append-only log; rebuilt by `experiments sync`)
JOB_INDEX = f"{INDEX}/jobs.jsonl"
#: The job index folded up to some offset (MessagePack; a cache of the cache)
JOB_INDEX_SNAPSHOT = f"{INDEX}/jobs.snapshot"


# --- Counter tokens: a folder of their own (``CounterToken(name, path, count)``) ---------

#: The lock that serialises the acquisitions of a token, inside the token folder
TOKEN_LOCK = "lock"
#: Inside the token folder: one record per job that holds a part of the token
TOKEN_HOLDERS = "holders"


def token_holder(task_id: str, identifier: str) -> str:
    """The record of a job holding a token, relative to the token folder."""
    return f"{TOKEN_HOLDERS}/{task_id}@{identifier}.json"


def slurm_array_dir(name: str) -> str:
    """The folder of a Slurm job array: its script and, per element, links to the job's logs."""
    return f"{LAUNCHERS}/slurm/{name}"


def workspace_token(name: str) -> str:
    """The folder of a counter token made with ``xp.token(name, count)``."""
    return f"{TOKENS}/{name}"
