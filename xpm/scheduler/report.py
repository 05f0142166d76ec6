"""Why an experiment failed: its jobs that ended in error, its callbacks that raised."""

from __future__ import annotations

from xpm import state
from xpm.errors import XpmError
from xpm.scheduler.callbacks import CallbackFailure
from xpm.scheduler.job import Job
from xpm.scheduler.prepare import PrepareStep

__all__ = ["FailedExperiment", "failed_dependency"]


class FailedExperiment(XpmError):
    """Some jobs of the experiment failed (``failed`` lists them), or some ``on_completed``
    callbacks raised (``callbacks``)."""

    def __init__(self, experiment_id: str, failed: list[Job], callbacks: list[CallbackFailure] | None = None):
        self.experiment_id = experiment_id
        self.failed = failed
        self.callbacks = list(callbacks or [])
        parts = [f"{len(failed)} job(s) ended in error"] if failed else []
        if self.callbacks:
            parts.append(f"{len(self.callbacks)} on_completed callback(s) raised")
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
