"""The monitor server: the console monitor's questions answered next to the workspace (spec/monitor-server.md).

``experimaestro experiments monitor-server`` runs this on the workspace's host,
at the end of an ssh connection: one JSON object a line on stdin (a request),
one JSON object a line on stdout (its reply). It wraps a :class:`MonitorModel`
on the host's own files, so that a monitor elsewhere
(:class:`xpm.monitor.remote.RemoteModel`) asks for the few rows it draws instead
of reading the workspace over SFTP: a refresh with no change is one round trip,
whatever the number of jobs.

A bad request (not JSON, an unknown job, a malformed filter, an unknown
request) gets a failure reply; the server goes on. It ends at the end of its
input.
"""

from __future__ import annotations

import logging
import threading
from typing import IO, Any, Callable

import msgspec

from xpm import layout, state
from xpm._version import __version__
from xpm.errors import XpmError
from xpm.filter import FilterError
from xpm.monitor.files import LogFollower, one_line
from xpm.monitor.model import MonitorModel
from xpm.monitor.rows import ExperimentRow, JobDetail, JobRow
from xpm.store.index import JobKey
from xpm.workspace import Workspace

__all__ = [
    "MAX_LIMIT", "PROTOCOL", "MonitorServer", "RequestError", "detail_object", "experiment_object", "job_object",
]

logger = logging.getLogger("xpm.monitor.server")

#: The protocol's version: a client speaking another one gets a ``protocol`` error at ``hello``
PROTOCOL = 1
#: Most rows one reply carries (``jobs``, ``refresh``), and most rows marked as drawn
MAX_LIMIT = 1_000
#: Logs followed at once (one per detail screen; the oldest is forgotten first)
MAX_LOGS = 8


class RequestError(XpmError):
    """A request the server cannot answer: its reply is ``{"ok": false, "failure": {...}}``.

    Attributes:
        kind: ``bad-request``, ``unknown-request``, ``unknown-job``, ``filter``, ``protocol``, ``internal``.
        extra: more fields of the error object (``column`` for a filter).
    """

    def __init__(self, kind: str, message: str, **extra: Any):
        super().__init__(message)
        self.kind = kind
        self.extra = extra


# --- what travels: rows as JSON objects ---------------------------------------------------------


def job_object(row: JobRow) -> dict[str, Any]:
    """A job row as a JSON object (its key as ``[task_id, identifier]``)."""
    data = row._asdict()
    data["key"] = list(row.key)
    return data


def experiment_object(row: ExperimentRow) -> dict[str, Any]:
    return row._asdict()


def detail_object(detail: JobDetail) -> dict[str, Any]:
    return {
        "folder": detail.folder,
        "state": msgspec.to_builtins(detail.state) if detail.state is not None else None,
        "params": detail.params,
        "dependencies": [list(dep) for dep in detail.dependencies],
        "problems": detail.problems,
    }


def _key(value: Any, field: str = "key") -> JobKey:
    if (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) and v for v in value)):
        return (value[0], value[1])
    raise RequestError("bad-request", f"{field}: expected [task_id, identifier], got {value!r}")


def _optional_key(value: Any, field: str) -> JobKey | None:
    return None if value is None else _key(value, field)


def _int(request: dict[str, Any], field: str, default: int, low: int = 0, high: int | None = None) -> int:
    value = request.get(field, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bounds = f"{low}..{high}" if high is not None else f">= {low}"
        raise RequestError("bad-request", f"{field}: expected an integer {bounds}, got {value!r}")
    return value


# --- the server ------------------------------------------------------------------------------


class MonitorServer:
    """Answers the requests of spec/monitor-server.md on a workspace.

    :meth:`answer` answers one decoded request (tests call it directly);
    :meth:`serve` reads requests from a stream until its end and writes the
    replies to another. A ``kill`` is answered from a thread of its own (it
    may wait for its grace period), so refreshes go on meanwhile: replies
    carry the ``id`` of their request and may come out of order.
    """

    def __init__(self, workspace: Workspace):
        self.workspace = workspace
        self.model = MonitorModel(workspace)
        self._logs: dict[tuple[JobKey, str], LogFollower] = {}
        self._write_lock = threading.Lock()
        self._read = False
        self._handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "hello": self._hello,
            "refresh": self._refresh,
            "jobs": self._jobs,
            "detail": self._detail,
            "log": self._log,
            "kill": self._kill,
            "runs": self._runs,
        }

    # --- the stream -------------------------------------------------------------------

    def serve(self, requests: IO[bytes], replies: IO[bytes]) -> None:
        """Answers every line of ``requests`` until its end (the client went away)."""
        workers: list[threading.Thread] = []
        for line in iter(requests.readline, b""):
            if not line.strip():
                continue
            request, reply = self._decode(line)
            if request is not None and request.get("op") == "kill":
                worker = threading.Thread(target=lambda r=request: self._write(replies, self.answer(r)),
                                          name="xpm-monitor-kill", daemon=True)
                workers.append(worker)
                worker.start()
                continue
            self._write(replies, reply if request is None else self.answer(request))
        for worker in workers:
            worker.join()  # a kill under way finishes (its SIGKILL after the grace period)

    def _decode(self, line: bytes) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """The request of a line, or (None, the error reply) when it is not a JSON object."""
        try:
            request = msgspec.json.decode(line)
        except msgspec.DecodeError as exc:
            return None, _error(None, RequestError("bad-request", f"not a JSON object: {one_line(exc)}"))
        if not isinstance(request, dict):
            return None, _error(None, RequestError("bad-request", "not a JSON object"))
        return request, {}

    def _write(self, replies: IO[bytes], reply: dict[str, Any]) -> None:
        data = msgspec.json.encode(reply) + b"\n"
        with self._write_lock:
            replies.write(data)
            replies.flush()

    # --- one request ----------------------------------------------------------------------

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        """The reply to a request (never raises: a bad request has an error reply)."""
        ident = request.get("id")
        try:
            op = request.get("op")
            handler = self._handlers.get(op) if isinstance(op, str) else None
            if handler is None:
                raise RequestError("unknown-request", f"unknown request {op!r}: expected one of "
                                   f"{', '.join(self._handlers)}")
            if not self._read and op != "hello":
                self._read = True
                self.model.refresh()  # a model reads nothing before its first refresh
            reply = handler(request)
        except RequestError as exc:
            return _error(ident, exc)
        except FilterError as exc:
            return _error(ident, RequestError("filter", str(exc), column=exc.column, expected=exc.expected,
                                              found=exc.found, detail=exc.detail))
        except Exception as exc:  # noqa: BLE001 - the server says what failed and goes on
            logger.exception("request %r failed", request.get("op"))
            return _error(ident, RequestError("internal", f"{type(exc).__name__}: {one_line(exc)}"))
        return {"id": ident, "ok": True, **reply}

    def _hello(self, request: dict[str, Any]) -> dict[str, Any]:
        wanted = request.get("protocol")
        if wanted != PROTOCOL:
            raise RequestError("protocol", f"this server speaks protocol {PROTOCOL}, not {wanted!r} "
                               f"(xpm {__version__})", protocol=PROTOCOL, xpm=__version__)
        # (A model reads nothing before its first refresh: asking it its orders costs nothing.)
        return {
            "protocol": PROTOCOL,
            "xpm": __version__,
            "workspace": self.workspace.location,
            "sorts": {"all": list(MonitorModel(self.workspace).sorts()),
                      "experiment": list(MonitorModel(self.workspace, experiment="").sorts())},
        }

    def _view(self, request: dict[str, Any]) -> bool:
        """Puts the model on the request's experiment, order and filter; whether its rows changed."""
        view = request.get("view") or {}
        if not isinstance(view, dict):
            raise RequestError("bad-request", f"view: expected an object, got {view!r}")
        model = self.model
        before = (model.experiment, model.run, model.sort, model.filter_text)
        experiment = view.get("experiment")
        if experiment is not None and not isinstance(experiment, str):
            raise RequestError("bad-request", f"view.experiment: expected a string or null, got {experiment!r}")
        model.select(experiment)
        run = view.get("run")
        if run is not None and (not isinstance(run, str) or experiment is None):
            raise RequestError("bad-request", f"view.run: expected a run id of view.experiment, got {run!r}")
        if run != model.run:
            try:
                model.select_run(run)
            except (XpmError, ValueError) as exc:
                raise RequestError("unknown-run", f"no run {run!r} of {experiment}: {one_line(exc)}") from None
        sort = view.get("sort")
        if sort is not None:
            if sort not in model.sorts():
                raise RequestError("bad-request", f"view.sort: unknown order {sort!r}: expected one of "
                                   f"{', '.join(model.sorts())}")
            model.set_sort(sort)
        text = view.get("filter") or ""
        if not isinstance(text, str):
            raise RequestError("bad-request", f"view.filter: expected a string, got {text!r}")
        if text != model.filter_text:
            model.set_filter(text)  # a FilterError leaves the rows as they were
        return (model.experiment, model.run, model.sort, model.filter_text) != before

    def _window(self, offset: int, limit: int, focus: JobKey | None) -> dict[str, Any]:
        model = self.model
        count = model.job_count()
        rows = []
        for position in range(offset, min(count, offset + limit)):
            # Not job_row(): the rows sent are not all drawn (the client says which were: ``shown``).
            key = model.job_key(position)
            row = model.row(key)
            rows.append(job_object(row if row is not None else JobRow(key, state.UNSCHEDULED, None, {}, 0.0)))
        return {"count": count, "offset": offset, "rows": rows,
                "focus": model.job_position(focus) if focus is not None else None}

    def _refresh(self, request: dict[str, Any]) -> dict[str, Any]:
        model = self.model
        view_changed = self._view(request)
        shown = request.get("shown")
        if shown is not None:
            if not (isinstance(shown, list) and len(shown) == 2 and all(isinstance(p, int) for p in shown)):
                raise RequestError("bad-request", f"shown: expected [first, last] or null, got {shown!r}")
            if not view_changed:  # positions in the rows the client drew
                count = model.job_count()
                for position in range(max(0, shown[0]), min(count, shown[1] + 1, shown[0] + MAX_LIMIT)):
                    model.job_row(position)
        followed = _optional_key(request.get("followed"), "followed")
        model.follow(followed)
        since = request.get("since")
        model.refresh()
        if not view_changed and since == model.version:
            return {"changed": False, "version": model.version}
        offset = _int(request, "offset", 0)
        limit = _int(request, "limit", 100, 0, MAX_LIMIT)
        focus = _optional_key(request.get("focus"), "focus")
        follow_row = model.row(followed) if followed is not None else None
        return {
            "changed": True,
            "version": model.version,
            "experiments": [experiment_object(row) for row in model.experiments()],
            "indexed": model.indexed_count(),
            "problems": model.problems,
            "jobs": self._window(offset, limit, focus),
            "followed": job_object(follow_row) if follow_row is not None else None,
        }

    def _runs(self, request: dict[str, Any]) -> dict[str, Any]:
        experiment = request.get("experiment")
        if not isinstance(experiment, str):
            raise RequestError("bad-request", f"experiment: expected a string, got {experiment!r}")
        return {"runs": [row._asdict() for row in self.model.run_rows(experiment)]}

    def _jobs(self, request: dict[str, Any]) -> dict[str, Any]:
        self._view(request)
        offset = _int(request, "offset", 0)
        limit = _int(request, "limit", 100, 0, MAX_LIMIT)
        focus = _optional_key(request.get("focus"), "focus")
        return {"version": self.model.version, "jobs": self._window(offset, limit, focus)}

    def _known(self, key: JobKey) -> None:
        """Refuses a job the workspace does not know (neither indexed nor with a folder)."""
        if self.model.job_state(key) is None and not self.workspace.isdir(layout.job_dir(*key)):
            raise RequestError("unknown-job", f"no job {key[0]}/{key[1]} in the workspace")

    def _detail(self, request: dict[str, Any]) -> dict[str, Any]:
        key = _key(request.get("key"))
        self._known(key)
        row = self.model.row(key)
        return {"detail": detail_object(self.model.detail(key)),
                "row": job_object(row) if row is not None else None,
                "state": self.model.job_state(key)}

    def _log(self, request: dict[str, Any]) -> dict[str, Any]:
        key = _key(request.get("key"))
        stream = request.get("stream", "stderr")
        if stream not in ("stderr", "stdout"):
            raise RequestError("bad-request", f"stream: expected stderr or stdout, got {stream!r}")
        offset = request.get("offset")
        if offset is not None:
            offset = _int(request, "offset", 0)
        tail = _int(request, "tail", 64 * 1024, 1, 16 * 1024 * 1024)
        self._known(key)
        follower = self._logs.pop((key, stream), None)
        # A follower goes on from where the client is; otherwise (a new follow, a reply the client
        # did not get) it starts anew from the client's offset.
        if follower is None or offset is None or follower.offset != offset or follower.tail != tail:
            follower = self.model.log(key, stream)
            follower.tail = tail
            follower.offset = offset
        self._logs[(key, stream)] = follower
        while len(self._logs) > MAX_LOGS:
            del self._logs[next(iter(self._logs))]
        text = follower.read()
        return {"text": text, "offset": follower.offset, "skipped": follower.skipped,
                "problem": follower.problem, "path": follower.path}

    def _kill(self, request: dict[str, Any]) -> dict[str, Any]:
        key = _key(request.get("key"))
        grace = request.get("grace", 10.0)
        if isinstance(grace, bool) or not isinstance(grace, (int, float)) or not 0 <= grace <= 600:
            raise RequestError("bad-request", f"grace: expected seconds from 0 to 600, got {grace!r}")
        self._known(key)
        outcome = self.model.kill(key, grace=float(grace))
        return {"result": outcome.result, "detail": outcome.detail}


def _error(ident: Any, exc: RequestError) -> dict[str, Any]:
    return {"id": ident, "ok": False, "failure": {"kind": exc.kind, "message": str(exc), **exc.extra}}
