"""Scheduling jobs: the scheduler and submitted jobs (counter tokens are records: :mod:`xpm.store.tokens`)."""

from xpm.scheduler.job import Job
from xpm.store.tokens import CounterToken, TokenDependency

__all__ = ["CounterToken", "Job", "TokenDependency"]
