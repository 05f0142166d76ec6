"""One job of the console monitor's model: its detail (state, parameters, dependencies), logs, folder, kill.

The half of :class:`xpm.monitor.model.MonitorModel` that the detail view (and the
web monitor's job page) calls for the job it shows. A job's detail is read again
only when the job changed (a refresh of the model forgets the details of the jobs
that changed); its parameters are read once.
"""

from __future__ import annotations

from xpm import control, layout, query, state
from xpm.errors import XpmError
from xpm.monitor.files import LogFollower, one_line, read_params
from xpm.monitor.rows import JobDetail
from xpm.store.index import IndexSnapshot, JobKey
from xpm.store.jobs import JobStore
from xpm.workspace import Workspace

__all__ = ["OneJob"]


class OneJob:
    """The methods of a monitor model about one job; :class:`xpm.monitor.model.MonitorModel` holds the state."""

    workspace: Workspace
    store: JobStore
    #: the job whose events are followed whatever its state (the detail view's)
    followed: JobKey | None
    _index: IndexSnapshot | None
    _details: dict[JobKey, JobDetail]
    _params: dict[JobKey, tuple[list[str], list[JobKey]]]

    def _problem(self, source: str, text: str | None) -> None:
        """Records (or clears, with None) what could not be read from ``source``."""
        raise NotImplementedError

    def follow(self, key: JobKey | None) -> None:
        """Follows the events of a job whatever its state (the job the detail view shows)."""
        self.followed = key

    def job_path(self, key: JobKey) -> str:
        """The job folder, as a local path (or the workspace URL joined with it)."""
        return self.workspace.describe(layout.job_dir(*key))

    def detail(self, key: JobKey) -> JobDetail:
        """The state, parameters and dependencies of a job (read again only when the job changed)."""
        cached = self._details.get(key)
        if cached is not None:
            return cached
        problems: list[str] = []
        rel = layout.job_state(*key)
        record = None
        try:
            record = self.store.state(*key)
        except (OSError, XpmError) as exc:
            problems.append(f"{self.workspace.describe(rel)}: {one_line(exc)}")
        self._problem(rel, problems[0] if problems else None)
        params, dependencies = self._read_params(key, problems)
        jobs = self._index.jobs if self._index is not None else {}
        deps = [(query.short_name(dep), jobs[dep].state if dep in jobs else state.UNSCHEDULED) for dep in dependencies]
        detail = JobDetail(key, self.job_path(key), record, params, deps, problems)
        self._details[key] = detail
        return detail

    def _read_params(self, key: JobKey, problems: list[str]) -> tuple[list[str], list[JobKey]]:
        cached = self._params.get(key)
        if cached is not None:
            return cached
        jobs = self._index.jobs if self._index is not None else {}
        lines, dependencies, problem, missing = read_params(self.workspace, key, jobs)
        if problem is not None:
            problems.append(problem)
            if not missing:
                self._problem(layout.job_params(*key), problem)
            return [], []
        self._problem(layout.job_params(*key), None)
        self._params[key] = (lines, dependencies)
        return lines, dependencies

    def log(self, key: JobKey, stream: str = "stderr") -> LogFollower:
        """Follows a job's ``stderr`` or ``stdout`` (the current attempt's)."""
        if stream not in ("stderr", "stdout"):
            raise ValueError(f"unknown stream {stream!r}")
        rel = layout.job_stderr(*key) if stream == "stderr" else layout.job_stdout(*key)
        return LogFollower(self.workspace, rel)

    def kill(self, key: JobKey, *, grace: float = control.KILL_GRACE) -> control.Outcome:
        """Kills (or cancels, when it did not start) a job, as ``jobs kill`` does; waits up to ``grace`` seconds."""
        outcomes: list[control.Outcome] = []
        control.kill(self.store, [key], outcomes.append, grace=grace)
        return outcomes[0]
