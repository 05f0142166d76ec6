"""Slurm options as data: the ``#SBATCH`` options of a job and the workspace's ``launcher`` setting.

Data only (it imports no launcher), so that the settings can check a workspace's
``launcher`` setting without importing the Slurm launcher (:mod:`xpm.launchers.slurm`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["SlurmOptions", "format_time", "SETTINGS_KEYS", "settings_problems"]


@dataclass(frozen=True)
class SlurmOptions:
    """``#SBATCH`` options; each one set becomes ``#SBATCH --<name with - for _>=<value>``."""

    nodes: int | None = 1
    #: the time limit: ``H:M:S`` (see :func:`format_time`), ``D-H:M:S``, or minutes
    time: str | None = None
    account: str | None = None
    qos: str | None = None
    partition: str | None = None
    constraint: str | None = None
    mem: str | None = None
    exclude: str | None = None
    mem_per_gpu: str | None = None
    cpus_per_task: int | None = None
    nodelist: str | None = None
    ntasks_per_node: int | None = None
    gpus: int | str | None = None
    gpus_per_node: int | str | None = None

    def merge(self, **values: Any) -> SlurmOptions:
        """These options with ``values`` on top (values that are None change nothing)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise TypeError(f"unknown Slurm option(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        return dataclasses.replace(self, **{k: v for k, v in values.items() if v is not None})

    def values(self) -> dict[str, Any]:
        """The options that are set, in declaration order."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    def sbatch_lines(self) -> list[str]:
        return [f"#SBATCH --{name.replace('_', '-')}={value}" for name, value in self.values().items()]


def format_time(seconds: float) -> str:
    """A duration as Slurm's ``H:M:S``."""
    total = int(seconds)
    return f"{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"


#: Keys of a workspace's ``launcher`` setting (``slurm``: the #SBATCH options)
SETTINGS_KEYS = ("array_size", "binpath", "interval", "max_jobs", "slurm")


def settings_problems(value: dict[str, Any]) -> list[tuple[str, str]]:
    """What is wrong in a workspace's ``launcher`` setting: ``(key path, problem)`` pairs."""
    problems = [(str(name), f"unknown key (known: {', '.join(SETTINGS_KEYS)})") for name in value
                if name not in SETTINGS_KEYS]
    known = [f.name for f in fields(SlurmOptions)]
    for name, item in (value.get("slurm") or {}).items():
        if name not in known:
            problems.append((f"slurm.{name}", f"unknown option (known: {', '.join(known)})"))
        elif not isinstance(item, (str, int)) or isinstance(item, bool):
            problems.append((f"slurm.{name}", f"expected a string or an integer, got {item!r}"))
    size = value.get("array_size", 100)
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        problems.append(("array_size", f"expected a positive integer, got {size!r}"))
    interval = value.get("interval", 60)
    if not isinstance(interval, (int, float)) or isinstance(interval, bool) or interval <= 0:
        problems.append(("interval", f"expected a positive number of seconds, got {interval!r}"))
    return problems
