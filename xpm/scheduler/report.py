"""Why an experiment failed: its jobs that ended in error, its callbacks that raised."""

from __future__ import annotations

import sys
import time
from typing import Any

from xpm import state
from xpm.errors import XpmError
from xpm.scheduler.job import Job
from xpm.scheduler.prepare import PrepareStep

__all__ = ["FailedExperiment", "Progress", "failed_dependency"]


class FailedExperiment(XpmError):
    """Some jobs of the experiment failed (``failed`` lists them), or some callbacks
    (``on_completed``, watched outputs) raised (``callbacks``: each has ``describe()``)."""

    def __init__(self, experiment_id: str, failed: list[Job], callbacks: list[Any] | None = None):
        self.experiment_id = experiment_id
        self.failed = failed
        self.callbacks = list(callbacks or [])
        parts = [f"{len(failed)} job(s) ended in error"] if failed else []
        if self.callbacks:
            parts.append(f"{len(self.callbacks)} callback(s) raised")
        lines = [f"experiment {experiment_id} failed: {' and '.join(parts)}"]
        for job in failed:
            reason = job.failure_reason or state.FAILED
            if reason == state.DEPENDENCY:
                lines.append(f"  {job.name}: not run, {failed_dependency(job)}")
            else:
                lines.append(f"  {job.name}: {reason}, see {job.stderr}")
        lines.extend(f"  {failure.describe()}" for failure in self.callbacks)
        super().__init__("\n".join(lines))


def failed_dependency(job: Job) -> str:
    """What a job that did not run waited for: a job, or a preparation (with what it raised)."""
    for dep in job.dependencies:
        if isinstance(dep, PrepareStep) and dep.error is not None:
            return f"its {dep.name} failed ({type(dep.error).__name__}: {dep.error})"
    return "a job it depends on failed"


class Progress:
    """Shows how many jobs are done out of how many, while the experiment waits."""

    def __init__(self, xp: Any):
        self.xp = xp
        self.tty = sys.stderr.isatty()
        self.last_line = ""
        self.last_time = 0.0

    def changed(self, job: Job) -> None:
        if job.finished and job.state == state.ERROR:
            reason = job.failure_reason or state.FAILED
            detail = failed_dependency(job) if reason == state.DEPENDENCY else f"see {job.stderr}"
            self._print(f"xpm: job {job.name} ended in error ({reason}): {detail}", newline=True)

    def report(self, final: bool = False) -> None:
        # The jobs this experiment runs; transient jobs that no task needed are not run.
        jobs = [job for job in self.xp.scheduler.jobs.values() if not job.dormant]
        counts: dict[str, int] = {}
        for job in jobs:
            counts[job.state] = counts.get(job.state, 0) + 1
        parts = [f"{counts.get(state.DONE, 0)}/{len(jobs)} jobs done"]
        for shown in (state.RUNNING, state.SCHEDULED, state.WAITING, state.READY, state.ERROR):
            if counts.get(shown):
                parts.append(f"{counts[shown]} {'failed' if shown == state.ERROR else shown}")
        dormant = len(self.xp.scheduler.jobs) - len(jobs)
        if dormant:
            parts.append(f"{dormant} transient not needed")
        line = f"xpm: {self.xp.id}: " + ", ".join(parts)
        now = time.monotonic()
        if line == self.last_line and not final:
            return
        if not self.tty and not final and now - self.last_time < 2.0:
            return
        self.last_line, self.last_time = line, now
        self._print(line, newline=final or not self.tty)

    def _print(self, text: str, newline: bool) -> None:
        if self.tty:
            sys.stderr.write("\r\033[K" + text + ("\n" if newline else ""))
        else:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()
