"""Scheduling jobs: the scheduler, submitted jobs and counter tokens."""

from xpm.scheduler.job import Job
from xpm.scheduler.tokens import CounterToken, TokenDependency

__all__ = ["CounterToken", "Job", "TokenDependency"]
