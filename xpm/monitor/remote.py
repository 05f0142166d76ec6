"""The console monitor's model, asked of a monitor server (spec/monitor-server.md) instead of read from files.

:class:`RemoteModel` has the interface the views use of :class:`xpm.monitor.model.MonitorModel`;
behind it, :class:`ServerConnection` speaks to ``experimaestro experiments monitor-server``
started by a command (``ssh HOST ... monitor-server --workdir PATH``). The model keeps
what the server sent (experiments, problems, a window of job rows around the rows drawn)
so that the view's calls per row are no round trips: a refresh is one request, answered
with ``changed: false`` alone when nothing changed. A request the server does not answer
in time, or a server that ended, becomes a problem line of the monitor, not a crash.
"""

from __future__ import annotations

import collections
import subprocess
import threading
import time
from typing import IO, Any, Callable, Sequence

import msgspec

from xpm import control, layout, state
from xpm._version import __version__
from xpm.errors import XpmError
from xpm.filter import FilterError, parse
from xpm.monitor.rows import ExperimentRow, JobDetail, JobRow, RowOrder, RunRow
from xpm.schema import JobStateRecord
from xpm.store.index import JobKey

__all__ = ["PROTOCOL", "RemoteLog", "RemoteModel", "ServerConnection", "ServerError", "ServerUnavailable"]

#: The version of spec/monitor-server.md this client speaks
PROTOCOL = 1
#: Rows asked beyond those drawn, above and below (scrolling a page needs no request)
MARGIN = 50
#: Seconds a request may take by default (``--request-timeout``)
REQUEST_TIMEOUT = 30.0
#: Lines of the server's error output kept, to say why it ended
STDERR_LINES = 20
#: Seconds between two attempts to start a server that ended (a dropped connection)
RETRY_AFTER = 10.0


class ServerUnavailable(XpmError):
    """The monitor server did not start, ended, did not answer in time, or speaks another protocol.

    Attributes:
        reason: ``missing`` (no such command on the host), ``ended``, ``no-answer`` or ``protocol``.
        status: the exit status of the command that ran the server, once it ended (255: ssh's own error).
    """

    def __init__(self, message: str, reason: str, status: int | None = None):
        super().__init__(message)
        self.reason = reason
        self.status = status


class ServerError(XpmError):
    """A failure reply of the server: ``kind`` (spec/monitor-server.md, "Errors") and its fields."""

    def __init__(self, kind: str, message: str, fields: dict[str, Any]):
        super().__init__(message)
        self.kind = kind
        self.fields = fields


class ServerConnection:
    """A monitor server run by ``command``, and requests to it from any thread.

    A reader thread hands each reply to the request of its ``id``, so a ``kill``
    that waits for its grace period does not hold back the refreshes.

    Args:
        command: the command that runs the server (``ssh ... monitor-server --workdir PATH``).
        name: how messages name the server (``monitor server on cluster``).
        timeout: seconds a request may take (``hello`` and ``kill`` get more, see :meth:`request`).
    """

    def __init__(self, command: Sequence[str], name: str, timeout: float = REQUEST_TIMEOUT):
        self.name = name
        self.timeout = timeout
        self.requests = 0
        self._stderr: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        self._lock = threading.Lock()
        self._next = 0
        self._pending: dict[int, tuple[threading.Event, list[dict[str, Any]]]] = {}
        self._ended = False
        try:
            self.process = subprocess.Popen(list(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE)
        except OSError as exc:
            raise ServerUnavailable(f"{name}: cannot run {command[0]!r} ({exc})", "missing") from None
        threading.Thread(target=self._read_replies, name="xpm-monitor-replies", daemon=True).start()
        threading.Thread(target=self._read_errors, name="xpm-monitor-stderr", daemon=True).start()

    def _read_replies(self) -> None:
        assert self.process.stdout is not None
        for line in iter(self.process.stdout.readline, b""):
            try:
                reply = msgspec.json.decode(line)
            except msgspec.DecodeError:
                self._stderr.append(f"(not a reply) {line[:200]!r}")
                continue
            ident = reply.get("id") if isinstance(reply, dict) else None
            with self._lock:
                waiting = self._pending.pop(ident, None) if isinstance(ident, int) else None
            if waiting is not None:
                waiting[1].append(reply)
                waiting[0].set()
        with self._lock:
            self._ended = True
            pending, self._pending = list(self._pending.values()), {}
        for event, _ in pending:
            event.set()  # no reply: the requests see the end

    def _read_errors(self) -> None:
        stream: IO[bytes] | None = self.process.stderr
        assert stream is not None
        for line in iter(stream.readline, b""):
            self._stderr.append(line.decode(errors="replace").rstrip())

    @property
    def ended(self) -> bool:
        """Whether the server ended (its output closed): no request can be answered any more."""
        return self._ended

    def why_ended(self) -> str:
        """The server's last error line, or its exit status."""
        try:
            status = self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            status = None
        threading.Event().wait(0.05)  # its last error lines
        lines = [line for line in self._stderr if line.strip() and not line.startswith("Warning: Permanently")]
        if lines:
            return lines[-1]
        return f"exit status {status}" if status is not None else "no reply"

    def _ended_error(self) -> ServerUnavailable:
        why = self.why_ended()
        return ServerUnavailable(f"{self.name} ended: {why}", "ended", self.process.poll())

    def request(self, op: str, timeout: float | None = None, **fields: Any) -> dict[str, Any]:
        """Sends a request and waits for its reply (its fields, without ``id`` and ``ok``).

        Raises:
            ServerError: an error reply.
            ServerUnavailable: no reply within the timeout, or the server ended.
        """
        event = threading.Event()
        box: list[dict[str, Any]] = []
        with self._lock:
            if self._ended:
                raise self._ended_error()
            self._next += 1
            ident = self._next
            self._pending[ident] = (event, box)
            self.requests += 1
            line = msgspec.json.encode({"id": ident, "op": op, **fields}) + b"\n"
            try:
                assert self.process.stdin is not None
                self.process.stdin.write(line)
                self.process.stdin.flush()
            except (OSError, ValueError):
                self._pending.pop(ident, None)
                raise self._ended_error() from None
        limit = self.timeout if timeout is None else timeout
        if not event.wait(limit):
            with self._lock:
                self._pending.pop(ident, None)  # its reply, if it comes, is dropped
            raise ServerUnavailable(f"{self.name} did not answer {op!r} within {limit:g} s "
                                    "(--request-timeout)", "no-answer")
        if not box:
            raise self._ended_error()
        reply = box[0]
        if reply.get("ok") is not True:
            failure = reply.get("failure")
            if not isinstance(failure, dict):
                raise ServerUnavailable(f"{self.name} does not speak spec/monitor-server.md: {reply!r:.200}",
                                        "protocol")
            raise ServerError(str(failure.get("kind")), str(failure.get("message")), failure)
        return {k: v for k, v in reply.items() if k not in ("id", "ok")}

    def hello(self, timeout: float) -> dict[str, Any]:
        """Checks that the server speaks this protocol: its ``hello`` reply.

        Raises:
            ServerUnavailable: ``missing`` when the command was not found on the host (exit
                status 127), ``protocol`` when the server is another one or another version.
        """
        try:
            return self.request("hello", timeout=timeout, protocol=PROTOCOL, client=f"xpm {__version__}")
        except ServerError as exc:
            if exc.kind == "protocol":
                raise ServerUnavailable(f"{self.name}: {exc}", "protocol") from None
            raise ServerUnavailable(f"{self.name} does not speak spec/monitor-server.md ({exc})", "protocol") \
                from None
        except ServerUnavailable as exc:
            if exc.reason == "ended" and exc.status == 127:
                raise ServerUnavailable(str(exc), "missing", exc.status) from None
            raise

    def close(self) -> None:
        """Ends the server (the end of its input), then the command if it lingers."""
        try:
            if self.process.stdin is not None:
                self.process.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _row(data: dict[str, Any]) -> JobRow:
    return JobRow(
        (data["key"][0], data["key"][1]), data["state"], data.get("failure_reason"), data.get("tags") or {},
        data.get("updated_at") or 0.0, data.get("progress"), data.get("progress_desc"), data.get("started_at"),
        data.get("ended_at"),
    )


def _experiment(data: dict[str, Any]) -> ExperimentRow:
    return ExperimentRow(data["experiment_id"], data.get("run_id"), data.get("hostname"), data.get("status"),
                         data.get("started_at"), dict(data.get("states") or {}))


class _Location:
    """The ``workspace`` of a remote model: its URL, and what the header shows (the URL and the server)."""

    def __init__(self, url: str, server: str):
        self.url = url
        self.location = f"{url}  (server: {server})" if server else url

    def describe(self, rel: str) -> str:
        return f"{self.url.rstrip('/')}/{rel}" if rel else self.url


class RemoteLog:
    """A job's log followed through the server (the interface of :class:`xpm.monitor.files.LogFollower`)."""

    def __init__(self, model: RemoteModel, key: JobKey, stream: str):
        self.model = model
        self.key = key
        self.stream = stream
        self.offset: int | None = None
        self.problem: str | None = None
        self.skipped = False
        rel = layout.job_stderr(*key) if stream == "stderr" else layout.job_stdout(*key)
        self.path = model.workspace.describe(rel)

    def read(self) -> str:
        """The new text ('' when there is none, or when the server could not be asked)."""
        from xpm.monitor.files import TAIL_BYTES

        try:
            reply = self.model.connection.request("log", key=list(self.key), stream=self.stream,
                                                  offset=self.offset, tail=TAIL_BYTES)
        except (ServerError, ServerUnavailable) as exc:
            self.problem, self.skipped = str(exc), False
            return ""
        self.offset, self.skipped = reply.get("offset"), bool(reply.get("skipped"))
        problem = reply.get("problem")
        self.problem = problem.replace(reply.get("path") or "\0", self.path) if problem else None
        return str(reply.get("text") or "")


class RemoteModel(RowOrder):
    """The monitor's model, asked of a monitor server (the interface of :class:`MonitorModel`).

    Args:
        connection: a server that answered ``hello`` (see :meth:`ServerConnection.hello`).
        location: the workspace as the header shows it (``ssh://host/path``).
        hello: the server's ``hello`` reply (its orders, its version).
        experiment: show the jobs of this experiment's current run (None: all jobs).
        restart: starts the server again (and checks its ``hello``) after it ended: a dropped
            connection is retried at each refresh, at most every :data:`RETRY_AFTER` seconds.
    """

    def __init__(self, connection: ServerConnection, location: str, hello: dict[str, Any],
                 *, experiment: str | None = None, restart: Callable[[], ServerConnection] | None = None):
        self.connection = connection
        self._restart = restart
        self._retry_at = 0.0
        self.workspace = _Location(location, f"xpm {hello.get('xpm')}" if hello.get("xpm") else "")
        sorts = hello.get("sorts")
        if not isinstance(sorts, dict) or not sorts.get("all") or not sorts.get("experiment"):
            raise ServerUnavailable(f"{connection.name}: its hello reply has no orders ({hello!r:.200})", "protocol")
        self._sorts: dict[str, list[str]] = sorts
        self.experiment = experiment
        self.sort = self.sorts()[0]
        self.filter_text = ""
        self.followed: JobKey | None = None
        self.version: int | None = None
        self._experiments: list[ExperimentRow] = []
        self._indexed = 0
        self._server_problems: list[str] = []
        self._problem: str | None = None
        #: rows by position (a window of them), their positions by job, rows by job (also the detail's)
        self._count = 0
        self._window: dict[int, JobRow] = {}
        self._position: dict[JobKey, int] = {}
        self._rows: dict[JobKey, JobRow] = {}
        self._focus: JobKey | None = None
        self._stale = True
        #: the positions drawn since the last refresh (their events are followed by the server)
        self._drawn: list[int] | None = None
        self._details: dict[JobKey, tuple[JobDetail, str | None]] = {}

    # --- asking ---------------------------------------------------------------------

    def _view(self) -> dict[str, Any]:
        return {"experiment": self.experiment, "run": self.run, "sort": self.sort, "filter": self.filter_text}

    def run_rows(self, experiment_id: str) -> list[RunRow]:
        """The runs of an experiment, newest first (one request; none when the server cannot answer)."""
        reply = self._ask("runs", experiment=experiment_id)
        return [RunRow(**row) for row in reply["runs"]] if reply is not None else []

    def select_run(self, run_id: str | None) -> None:
        """Shows the jobs of a run of the selected experiment (None: its current run)."""
        if self.experiment is None:
            raise ValueError("select an experiment first")
        if run_id != self.run:
            self.run = run_id
            self._rows_changed()

    def _ask(self, op: str, **fields: Any) -> dict[str, Any] | None:
        """A request whose failure becomes the monitor's problem line (None then)."""
        try:
            reply = self.connection.request(op, **fields)
        except (ServerError, ServerUnavailable) as exc:
            self._problem = str(exc)
            return None
        self._problem = None
        return reply

    def _take_jobs(self, jobs: dict[str, Any]) -> None:
        self._count = int(jobs.get("count") or 0)
        self._window.clear()
        self._position.clear()
        offset = int(jobs.get("offset") or 0)
        for i, data in enumerate(jobs.get("rows") or ()):
            row = _row(data)
            self._window[offset + i] = row
            self._position[row.key] = offset + i
            self._rows[row.key] = row
        focus = jobs.get("focus")
        if self._focus is not None and isinstance(focus, int):
            self._position[self._focus] = focus
        self._stale = False

    def _window_request(self, first: int, last: int) -> tuple[int, int]:
        offset = max(0, first - MARGIN)
        return offset, min(last + MARGIN + 1 - offset, 1_000)

    def _fetch(self, around: int) -> None:
        offset, limit = self._window_request(around, around)
        reply = self._ask("jobs", view=self._view(), offset=offset, limit=limit * 2,
                          focus=list(self._focus) if self._focus else None)
        if reply is not None:
            self.version = reply.get("version")
            self._take_jobs(reply["jobs"])
        else:
            self._stale = False  # the last rows stay (and the problem says why)

    # --- refreshing -------------------------------------------------------------------

    def _reconnect(self) -> bool:
        """Starts the server again when it ended (at most every :data:`RETRY_AFTER` seconds); whether it runs."""
        if not self.connection.ended or self._restart is None:
            return True
        now = time.monotonic()
        if now < self._retry_at:
            return False
        self._retry_at = now + RETRY_AFTER
        try:
            connection = self._restart()
        except (ServerError, ServerUnavailable) as exc:
            self._problem = f"{exc} (trying again every {RETRY_AFTER:g} s)"
            return False
        self.connection.close()
        self.connection, self.version, self._stale = connection, None, True
        return True

    def refresh(self) -> bool:
        """Asks the server what changed (one request); whether anything the view shows changed.

        A server that ended is started again first, when the model was given a way to (``restart``).
        """
        had_problem = self._problem
        if not self._reconnect():
            return self._problem != had_problem
        drawn = self._drawn
        first, last = (drawn[0], drawn[1]) if drawn else (0, 0)
        offset, limit = self._window_request(first, last)
        reply = self._ask(
            "refresh", since=self.version, view=self._view(), offset=offset, limit=limit,
            focus=list(self._focus) if self._focus else None, shown=list(drawn) if drawn else None,
            followed=list(self.followed) if self.followed else None,
        )
        self._drawn = None
        if reply is None:
            return self._problem != had_problem
        self.version = reply.get("version")
        if not reply.get("changed"):
            return had_problem is not None
        self._experiments = [_experiment(e) for e in reply.get("experiments") or ()]
        self._indexed = int(reply.get("indexed") or 0)
        self._server_problems = [str(p) for p in reply.get("problems") or ()]
        self._rows.clear()
        self._details.clear()
        self._take_jobs(reply.get("jobs") or {})
        followed = reply.get("followed")
        if followed:
            row = _row(followed)
            self._rows[row.key] = row
        return True

    @property
    def problems(self) -> list[str]:
        """What the server could not read, and the request that failed (the last one)."""
        return self._server_problems + ([self._problem] if self._problem else [])

    # --- experiments ------------------------------------------------------------------

    def experiments(self) -> list[ExperimentRow]:
        return list(self._experiments)

    def indexed_count(self) -> int:
        return self._indexed

    # --- job rows -------------------------------------------------------------------

    def sorts(self) -> tuple[str, ...]:
        return tuple(self._sorts["experiment" if self.experiment is not None else "all"])

    def _rows_changed(self) -> None:
        self._stale = True

    def set_filter(self, text: str) -> None:
        """Keeps only the rows that match a filter (checked here, then by the server).

        Raises:
            FilterError: the expression is malformed (the rows do not change).
        """
        if text.strip():
            parse(text)  # a typo is explained at once, without a round trip
        else:
            text = ""
        previous, self.filter_text = self.filter_text, text
        try:
            reply = self.connection.request("jobs", view=self._view(), offset=0, limit=2 * MARGIN)
        except ServerError as exc:
            self.filter_text = previous
            if exc.kind == "filter":
                fields = exc.fields
                column = fields.get("column")
                raise FilterError(text, column if isinstance(column, int) else 1, str(fields.get("expected", "?")),
                                  str(fields.get("found", "?")), str(fields.get("detail") or "")) from None
            self._problem = str(exc)  # (the rows stay as they were)
            return
        except ServerUnavailable as exc:
            self._problem = str(exc)
            self._stale = True
            return
        self.version = reply.get("version")
        self._take_jobs(reply["jobs"])

    def _ensure(self, position: int = 0) -> None:
        if self._stale:
            self._fetch(position)

    def job_count(self) -> int:
        self._ensure()
        return self._count

    def job_key(self, position: int) -> JobKey:
        return self.job_row(position).key

    def job_row(self, position: int) -> JobRow:
        """The row at ``position`` (asked of the server with its neighbours when not at hand).

        Raises:
            IndexError: no row there.
        """
        self._ensure(position)
        if not 0 <= position < self._count:
            raise IndexError(position)
        if position not in self._window:
            self._fetch(position)
        row = self._window.get(position)
        if row is None:  # the server did not answer: a row that says so
            return JobRow(("?", "?"), state.UNSCHEDULED, "no answer", {}, 0.0)
        drawn = self._drawn
        self._drawn = [min(drawn[0], position), max(drawn[1], position)] if drawn else [position, position]
        return row

    def row(self, key: JobKey) -> JobRow | None:
        row = self._rows.get(key)
        if row is None:
            self._ask_detail(key)
            row = self._rows.get(key)
        return row

    def job_position(self, key: JobKey) -> int | None:
        self._ensure()
        self._focus = key  # asked with the next rows: the server says where it went
        return self._position.get(key)

    def job_state(self, key: JobKey) -> str | None:
        row = self._rows.get(key)
        if row is not None:
            return row.state
        cached = self._details.get(key) or self._ask_detail(key)
        return cached[1] if cached is not None else None

    # --- one job -------------------------------------------------------------------

    def follow(self, key: JobKey | None) -> None:
        self.followed = key

    def job_path(self, key: JobKey) -> str:
        return self.workspace.describe(layout.job_dir(*key))

    def _ask_detail(self, key: JobKey) -> tuple[JobDetail, str | None] | None:
        reply = self._ask("detail", key=list(key))
        if reply is None:
            return None
        data = reply["detail"]
        record = msgspec.convert(data["state"], JobStateRecord) if data.get("state") else None
        detail = JobDetail(key, self.job_path(key), record, list(data.get("params") or ()),
                           [(d[0], d[1]) for d in data.get("dependencies") or ()], list(data.get("problems") or ()))
        if reply.get("row"):
            self._rows[key] = _row(reply["row"])
        self._details[key] = cached = (detail, reply.get("state"))
        return cached

    def detail(self, key: JobKey) -> JobDetail:
        """The job's details (asked again only after a refresh that changed something)."""
        cached = self._details.get(key) or self._ask_detail(key)
        if cached is None:
            return JobDetail(key, self.job_path(key), None, [], [], [self._problem or "no answer"])
        return cached[0]

    def log(self, key: JobKey, stream: str = "stderr") -> RemoteLog:
        if stream not in ("stderr", "stdout"):
            raise ValueError(f"unknown stream {stream!r}")
        return RemoteLog(self, key, stream)

    def kill(self, key: JobKey, *, grace: float = control.KILL_GRACE) -> control.Outcome:
        """Kills a job on the server's host; waits for its grace period (and the usual timeout on top).

        Raises:
            ServerError, ServerUnavailable: the server refused or did not answer (the view says so).
        """
        reply = self.connection.request("kill", timeout=self.connection.timeout + grace, key=list(key), grace=grace)
        return control.Outcome(key, str(reply.get("result")), str(reply.get("detail") or ""))

    def close(self) -> None:
        self.connection.close()
