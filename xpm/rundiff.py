"""What changed between two runs of an experiment, like ``git diff`` between two commits.

Compares what each run recorded (``spec.md`` of ``spec/workspace.md``): the
configuration key by key, the source files by content, the code's commits (and
their dirtiness), the packages' versions, and the jobs: those only one run
submitted, and, for a job of one run that matches a job of the other (same
task, same tags, or the only one of its task on each side), the parameters that
differ between the two, as ``parameters-difference`` says them.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from xpm import layout
from xpm.errors import XpmError
from xpm.paramdiff import Difference, difference
from xpm.query import short_name
from xpm.schema import EnvironmentRecord, RunSpec
from xpm.store.index import JobKey
from xpm.store.runs import RunJobs, RunStore
from xpm.workspace import Workspace

__all__ = ["RunDiff", "diff_runs", "flatten"]

#: A value one side does not have
MISSING: Any = object()


class Change(NamedTuple):
    """A key (a configuration key, a file, a repository, a package) whose value differs."""

    key: str
    #: the value in run A, MISSING when A does not have the key
    left: Any
    right: Any


class PairedJobs(NamedTuple):
    """A job of run A and its match in run B, with their differing parameters."""

    left: JobKey
    right: JobKey
    differences: list[Difference]
    #: why the parameters could not be compared (a job folder cleaned since), or None
    problem: str | None


class RunDiff(NamedTuple):
    """The differences between the runs ``left`` (A) and ``right`` (B) of an experiment."""

    experiment_id: str
    left: str
    right: str
    configuration: list[Change]
    overrides: Change | None
    sources: list[Change]
    repositories: list[Change]
    python: Change | None
    packages: list[Change]
    only_left: list[JobKey]
    only_right: list[JobKey]
    shared: int
    paired: list[PairedJobs]
    #: records that are missing (a run of an xpm that recorded less), one line each
    notes: list[str]

    @property
    def same(self) -> bool:
        """Whether nothing differs that the two runs recorded."""
        return not (self.configuration or self.overrides or self.sources or self.repositories or self.python
                    or self.packages or self.only_left or self.only_right)


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """A configuration as ``{key path: value}``: ``model.layers``, ``lrs[1]`` (empty mappings and lists kept)."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value:
        out = {}
        for index, item in enumerate(value):
            out.update(flatten(item, f"{prefix}[{index}]"))
        return out
    return {prefix: value}


def _changes(left: dict[str, Any], right: dict[str, Any]) -> list[Change]:
    keys = [*left, *(key for key in right if key not in left)]
    return [
        Change(key, left.get(key, MISSING), right.get(key, MISSING))
        for key in keys
        if left.get(key, MISSING) != right.get(key, MISSING)
    ]


def _repositories(spec: RunSpec | None) -> dict[str, Any]:
    if spec is None:
        return {}
    return {repo.path: (repo.commit, repo.dirty, repo.patch) for repo in spec.repositories}


def _pair(store: RunStore, workspace: Workspace, left: RunJobs, right: RunJobs, only_left: list[JobKey],
          only_right: list[JobKey]) -> list[PairedJobs]:
    """Matches the jobs only one run has: of the same task, the job of B sharing the most tags
    (a unique best, with at least one tag in common), else the only job of that task on each side."""
    pairs: list[tuple[JobKey, JobKey]] = []
    rest_right = list(only_right)
    unmatched = []
    for key in only_left:
        mine = left.tags.get(key) or {}
        scores = [
            (sum(1 for name, value in (right.tags.get(other) or {}).items() if mine.get(name, MISSING) == value), other)
            for other in rest_right if other[0] == key[0]
        ]
        best = max((score for score, _ in scores), default=0)
        tops = [other for score, other in scores if score == best]
        if best > 0 and len(tops) == 1:
            pairs.append((key, tops[0]))
            rest_right.remove(tops[0])
        else:
            unmatched.append(key)
    for task_id in dict.fromkeys(key[0] for key in unmatched):
        mine_left = [key for key in unmatched if key[0] == task_id]
        theirs = [key for key in rest_right if key[0] == task_id]
        if len(mine_left) == 1 and len(theirs) == 1:
            pairs.append((mine_left[0], theirs[0]))
    found = []
    for a, b in pairs:
        rel_a, rel_b = layout.job_params(*a), layout.job_params(*b)
        data_a, data_b = workspace.read_optional(rel_a), workspace.read_optional(rel_b)
        if data_a is None or data_b is None:
            gone = a if data_a is None else b
            found.append(PairedJobs(a, b, [], f"{short_name(gone)} has no params.json (cleaned?)"))
            continue
        try:
            found.append(PairedJobs(a, b, difference(data_a, data_b, workspace.describe(rel_a),
                                                     workspace.describe(rel_b)), None))
        except XpmError as exc:
            found.append(PairedJobs(a, b, [], str(exc)))
    return found


def diff_runs(workspace: Workspace, experiment_id: str, left: str, right: str) -> RunDiff:
    """The differences between two runs (given as run ids) of an experiment.

    Raises:
        SerializationError: a record of either run cannot be read.
    """
    store = RunStore(workspace)
    notes = []
    specs: list[RunSpec | None] = []
    envs: list[EnvironmentRecord | None] = []
    for run_id in (left, right):
        spec = store.spec(experiment_id, run_id)
        env = store.environment(experiment_id, run_id)
        if spec is None:
            notes.append(f"{run_id} recorded no spec (configuration, sources, commits)")
        if env is None:
            notes.append(f"{run_id} recorded no environment (packages)")
        specs.append(spec)
        envs.append(env)
    spec_a, spec_b = specs
    config_a = flatten(spec_a.configuration) if spec_a is not None and spec_a.configuration is not None else {}
    config_b = flatten(spec_b.configuration) if spec_b is not None and spec_b.configuration is not None else {}
    overrides_a = spec_a.overrides if spec_a is not None else []
    overrides_b = spec_b.overrides if spec_b is not None else []
    sources_a = {f.path: f.digest for f in spec_a.sources} if spec_a is not None else {}
    sources_b = {f.path: f.digest for f in spec_b.sources} if spec_b is not None else {}
    env_a, env_b = envs
    jobs_a, jobs_b = store.read_jobs(experiment_id, left), store.read_jobs(experiment_id, right)
    for run_id, jobs in ((left, jobs_a), (right, jobs_b)):
        if jobs.damaged:
            notes.append(f"{run_id}: damaged lines of jobs.jsonl skipped")
    set_b = set(jobs_b.order)
    set_a = set(jobs_a.order)
    only_a = [key for key in jobs_a.order if key not in set_b]
    only_b = [key for key in jobs_b.order if key not in set_a]
    python = None
    if env_a is not None and env_b is not None and env_a.python != env_b.python:
        python = Change("python", env_a.python, env_b.python)
    return RunDiff(
        experiment_id,
        left,
        right,
        _changes(config_a, config_b),
        Change("-c", overrides_a, overrides_b) if overrides_a != overrides_b else None,
        _changes(sources_a, sources_b),
        _changes(_repositories(spec_a), _repositories(spec_b)) if spec_a is not None and spec_b is not None else [],
        python,
        _changes(env_a.packages, env_b.packages) if env_a is not None and env_b is not None else [],
        only_a,
        only_b,
        len(set_a & set_b),
        _pair(store, workspace, jobs_a, jobs_b, only_a, only_b),
        notes,
    )
