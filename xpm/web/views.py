"""What the web monitor's JSON API answers, read from the model (these run in the model's thread).

Each function takes the :class:`~xpm.web.push.Hub` and the request's parameters and
returns a JSON-ready dict, or raises :class:`ApiError` with the HTTP status and a
message. A job is designated by ``task-id/identifier`` (the identifier may be a unique
prefix) and resolved by the job store: the URL never names a file, so nothing outside
the workspace can be read.
"""

from __future__ import annotations

from typing import Any, Mapping

from xpm import query, state
from xpm.errors import XpmError
from xpm.filter import FilterError
from xpm.monitor.rows import JobRow
from xpm.store.index import JobKey
from xpm.store.jobs import AmbiguousJob, InvalidJobId, UnknownJob
from xpm.store.runs import AmbiguousRun, UnknownExperiment, UnknownRun
from xpm.web.push import Hub

#: Most rows one page of jobs may ask for
MAX_LIMIT = 500
#: Most jobs the comparison reads the parameters of
MAX_COMPARED = 100


class ApiError(Exception):
    """An answer other than 200: ``status`` and a JSON body (``{"message": ..., ...}``)."""

    def __init__(self, status: int, message: str, **extra: Any):
        super().__init__(message)
        self.status = status
        self.body = {"message": message, **extra}


def _integer(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = params.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer, not {text!r}") from None
    if not low <= value <= high:
        raise ApiError(400, f"{name} must be between {low} and {high}, not {value}")
    return value


def experiments(hub: Hub) -> dict[str, Any]:
    """Every experiment with its current run, host, start and jobs by state; the problems."""
    model = hub.model
    rows = [
        {
            "id": row.experiment_id,
            "run_id": row.run_id,
            "host": row.hostname,
            "status": row.status,
            "started_at": row.started_at,
            "states": row.states,
            "total": row.total,
        }
        for row in model.experiments()
    ]
    return {"experiments": rows, "all_jobs": model.indexed_count(), "problems": model.problems,
            "version": hub.version}


def _scope(hub: Hub, params: Mapping[str, str]) -> None:
    """Points the model at the rows a request asks for (experiment, run, filter, sort); errors before changing any.

    ``run`` names a run of the experiment as ``experiments show`` does (a run id or a unique prefix,
    a tag, latest, ``~N``...); without it, the rows are the jobs of the experiment's current run.
    """
    model = hub.model
    experiment = params.get("experiment") or None
    # (checked when the page moves to another experiment: counting the jobs by state is not free)
    if experiment is not None and experiment != model.experiment and experiment not in model.runs.experiment_ids():
        raise ApiError(404, f"no experiment {experiment!r} in the workspace")
    reference = params.get("run") or None
    run_id = None
    if reference is not None:
        if experiment is None:
            raise ApiError(400, "run= needs experiment=")
        try:
            # (the run shown already needs no look-up: the page asks again at every change)
            same = experiment == model.experiment and reference == model.run
            run_id = reference if same else model.runs.resolve(experiment, reference)
        except (UnknownExperiment, UnknownRun, AmbiguousRun) as exc:
            raise ApiError(404, str(exc)) from None
    text = params.get("filter", "")
    if text.strip() != model.filter_text.strip():
        try:
            model.set_filter(text)  # (only when it changed: setting it sorts the rows again)
        except FilterError as exc:
            raise ApiError(400, str(exc), column=exc.column, expected=exc.expected, found=exc.found) from None
    model.select(experiment)
    if experiment is not None:
        model.select_run(run_id)
    sort = params.get("sort") or model.sorts()[0]
    if sort not in model.sorts():
        raise ApiError(400, f"unknown sort {sort!r}: expected one of {', '.join(model.sorts())}")
    model.set_sort(sort)


def _page(hub: Hub, params: Mapping[str, str]) -> tuple[int, int, list[JobRow]]:
    """The rows of the page asked for: (count, offset, rows); ``reverse=1`` reads the order backwards."""
    _scope(hub, params)
    model = hub.model
    count = model.job_count()
    offset = _integer(params, "offset", 0, 0, 1 << 40)
    limit = _integer(params, "limit", 50, 1, MAX_LIMIT)
    reverse = params.get("reverse") in ("1", "true")
    positions = range(offset, min(count, offset + limit))
    rows = [model.job_row(count - 1 - p if reverse else p) for p in positions]
    hub.shown([row.key for row in rows])
    return count, offset, rows


def _row(row: JobRow) -> dict[str, Any]:
    return {
        "task_id": row.key[0],
        "identifier": row.key[1],
        "name": row.name,
        "state": row.state,
        "reason": row.failure_reason,
        "tags": row.tags,
        "progress": row.progress,
        "progress_desc": row.progress_desc,
        "started_at": row.started_at,
        "ended_at": row.ended_at,
        "updated_at": row.updated_at,
    }


def jobs(hub: Hub, params: Mapping[str, str]) -> dict[str, Any]:
    """A page of the jobs of an experiment (or of all jobs), filtered and sorted."""
    count, offset, rows = _page(hub, params)
    model = hub.model
    return {
        "count": count,
        "offset": offset,
        "rows": [_row(row) for row in rows],
        "sort": model.sort,
        "sorts": list(model.sorts()),
        "filter": model.filter_text,
        # the run whose jobs these are, and whether it is the experiment's current run
        "run": model.shown_run(),
        "current_run": model.run is None,
        "problems": model.problems,
        "version": hub.version,
    }


def compare(hub: Hub, params: Mapping[str, str]) -> dict[str, Any]:
    """The tags and parameters of the jobs of a page side by side (``all=1``: also those all jobs share)."""
    params = {**params, "limit": str(min(_integer(params, "limit", 50, 1, MAX_LIMIT), MAX_COMPARED))}
    count, offset, rows = _page(hub, params)
    model = hub.model
    columns: dict[tuple[str, str], list[Any]] = {}
    for position, row in enumerate(rows):
        values: dict[tuple[str, str], Any] = {("tag", name): value for name, value in row.tags.items()}
        for line in model.detail(row.key).params:
            name, _, value = line.partition(" = ")
            values[("param", name)] = value
        for column, value in values.items():
            columns.setdefault(column, [None] * len(rows))[position] = value
    everything = params.get("all") in ("1", "true")
    shown = [
        {"kind": kind, "name": name, "values": values}
        for (kind, name), values in columns.items()
        if everything or len({repr(v) for v in values}) > 1
    ]
    shown.sort(key=lambda c: (c["kind"] != "tag", c["name"]))
    return {"count": count, "offset": offset, "jobs": [_row(row) for row in rows], "columns": shown,
            "hidden": len(columns) - len(shown), "problems": model.problems}


def resolve(hub: Hub, task_id: str, identifier: str) -> JobKey:
    """The job a URL names (the identifier may be a unique prefix)."""
    text = f"{task_id}/{identifier}"
    try:
        return hub.model.store.resolve(text)
    except InvalidJobId as exc:
        raise ApiError(400, str(exc)) from None
    except AmbiguousJob as exc:
        raise ApiError(404, str(exc)) from None
    except UnknownJob as exc:
        raise ApiError(404, str(exc)) from None


def job(hub: Hub, task_id: str, identifier: str) -> dict[str, Any]:
    """A job's state, parameters, dependencies (with their ids, for links) and folder."""
    key = resolve(hub, task_id, identifier)
    model = hub.model
    hub.opened(key)
    detail = model.detail(key)
    record = detail.state
    dependencies = []
    for name, known in detail.dependencies:
        try:
            dep: JobKey | None = model.store.resolve(name)
        except XpmError:
            dep = None  # (several jobs start like it: shown without a link)
        dependencies.append({"name": name, "state": known, "task_id": dep and dep[0], "identifier": dep and dep[1]})
    row = model.row(key)
    params = [dict(zip(("name", "value"), line.split(" = ", 1))) for line in detail.params]
    return {
        "task_id": key[0],
        "identifier": key[1],
        "name": query.short_name(key),
        "state": record.state if record is not None else (row.state if row else state.UNSCHEDULED),
        "reason": record.failure_reason if record is not None else None,
        "started_at": record.started_at if record is not None else None,
        "ended_at": record.ended_at if record is not None else None,
        "exit_code": record.exit_code if record is not None else None,
        "tags": row.tags if row is not None else {},
        "progress": row.progress if row is not None else None,
        "folder": detail.folder,
        "params": params,
        "dependencies": dependencies,
        "problems": detail.problems,
        "killable": (record.state if record is not None else None) in state.KILLABLE,
    }


def log(hub: Hub, task_id: str, identifier: str, params: Mapping[str, str]) -> dict[str, Any]:
    """What a job's stderr or stdout holds from ``offset`` on (first read: its end); the next offset."""
    key = resolve(hub, task_id, identifier)
    stream = params.get("stream", "stderr")
    if stream not in ("stderr", "stdout"):
        raise ApiError(400, f"unknown stream {stream!r}: expected stderr or stdout")
    follower = hub.model.log(key, stream)
    if params.get("offset"):
        follower.offset = _integer(params, "offset", 0, 0, 1 << 62)
    text = follower.read()
    return {"text": text, "offset": follower.offset, "skipped": follower.skipped, "problem": follower.problem,
            "path": follower.path}


def runs(hub: Hub, experiment_id: str) -> dict[str, Any]:
    """The runs of an experiment, newest first: records, jobs done, in error and in all (``jobs``), tags."""
    model = hub.model
    if experiment_id not in model.runs.experiment_ids():
        raise ApiError(404, f"no experiment {experiment_id!r} in the workspace")
    # (named as `experiments history --json` names them; ``host`` and ``jobs`` as the other answers do)
    answer = [{**row._asdict(), "host": row.hostname, "jobs": row.total} for row in model.run_rows(experiment_id)]
    return {"experiment": experiment_id, "runs": answer, "problems": model.problems}
