"""What a host offers to one job: its CPU, its accelerators, its time limit (host specifications).

A ``launchers.py`` describes the user's machines and Slurm partitions with these
values and asks whether a task's requirement fits them
(:meth:`xpm.launchers.requirements.HostRequirement.match`). Memory is in bytes,
durations in seconds. The names and arguments are those of experimaestro's
``launcherfinder``, so that its ``launchers.py`` files describe hosts unchanged.

This module is pure: no I/O, and no import beyond the standard library.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import InitVar, dataclass
from typing import Any, ClassVar

__all__ = [
    "AcceleratorSpecification",
    "AcceleratorType",
    "CPUSpecification",
    "CudaSpecification",
    "HostSpecification",
    "MPSSpecification",
]


class AcceleratorType(enum.Enum):
    """The kinds of accelerators (``spec.accelerator_type``); a generic device has none."""

    CUDA = "cuda"  # NVIDIA GPUs, with their own memory
    MPS = "mps"  # Apple Silicon GPUs, whose memory is the CPU's (unified)
    ROCM = "rocm"  # AMD GPUs: a name only, no requirement asks for them yet


@dataclass(frozen=True)
class AcceleratorSpecification:
    """An accelerator of a host, of no particular kind: only ``gpu(...)`` requests match it.

    Attributes:
        memory: its memory, in bytes.
        model: a free description (``"A100"``), for the reader.
        min_memory: the device is only given to requests of at least this memory
            (in bytes), to keep big devices for big jobs.
    """

    kind: ClassVar[str | None] = None

    memory: int = 0
    model: str = ""
    min_memory: int = 0

    @property
    def accelerator_type(self) -> AcceleratorType | None:
        """The device's kind, None for a device of no particular kind."""
        return None if self.kind is None else AcceleratorType(self.kind)

    @property
    def unified_memory(self) -> bool:
        """Whether the device's memory is the CPU's (MPS)."""
        return self.kind == "mps"

    def match(self, request: Any) -> bool:
        """Whether this device can serve one device of ``request``.

        ``request`` is a requested device: an
        :class:`~xpm.launchers.requirements.AcceleratorRequirement` (kind ``cuda``,
        ``mps`` or ``any``), or a specification standing for one (a
        :class:`CudaSpecification` asks for a CUDA device, a plain
        :class:`AcceleratorSpecification` for any device), with the memory it needs.
        """
        kind = request.kind
        if kind not in (None, "any") and kind != self.kind:
            return False
        return bool(self.min_memory <= request.memory <= self.memory)

    #: xpm's earlier name of :meth:`match`
    accepts = match


@dataclass(frozen=True)
class CudaSpecification(AcceleratorSpecification):
    """An NVIDIA CUDA GPU (dedicated memory): serves ``cuda(...)`` and ``gpu(...)``."""

    kind: ClassVar[str | None] = "cuda"


@dataclass(frozen=True)
class MPSSpecification(AcceleratorSpecification):
    """An Apple Silicon GPU (MPS): serves ``mps(...)`` and ``gpu(...)``.

    Its ``memory`` is the unified memory it shares with the CPU: the cpu memory of a
    requirement and the memory it requests on this device must fit in it together.
    """

    kind: ClassVar[str | None] = "mps"


@dataclass(frozen=True, kw_only=True)
class CPUSpecification:
    """The CPU side of a host (keyword arguments only, so that the two ints cannot be swapped).

    :class:`xpm.launchers.specs.CPUSpecification` is the same value with experimaestro's
    positional order, ``CPUSpecification(memory, cores)``.

    Attributes:
        cores: how many cores a job may use.
        memory: how much memory a job may use, in bytes.
    """

    cores: int = 0
    memory: int = 0

    def match(self, other: Any) -> bool:
        """Whether this CPU offers at least the memory and cores of ``other`` (a CPU requirement or specification)."""
        return bool(self.memory >= other.memory and self.cores >= other.cores)

    def __eq__(self, other: object) -> bool:
        # Compared by value whatever the subclass (the positional one of xpm.launchers.specs included).
        if not isinstance(other, CPUSpecification):
            return NotImplemented
        return (self.cores, self.memory) == (other.cores, other.memory)

    def __hash__(self) -> int:
        return hash((self.cores, self.memory))


@dataclass(frozen=True, kw_only=True)
class HostSpecification:
    """What a host (or a class of Slurm nodes) offers to one job.

    Attributes:
        max_duration: the longest job it accepts, in seconds; None or 0 for no limit
            (0 is experimaestro's spelling).
        cpu: its cores and memory. Left out, the host offers none: a requirement that
            asks for cpu memory or cores does not match it.
        accelerators: its devices (a list is accepted; stored as a tuple).
        priority: the score of a match on this host (``match.score``), for a
            ``launchers.py`` that compares hosts.
        min_gpu: the fewest devices a job must ask for to run here (a GPU partition
            that refuses CPU-only jobs says ``min_gpu=1``).
        cuda: experimaestro's earlier spelling of CUDA devices: added to
            ``accelerators`` (and not kept under this name).
    """

    max_duration: int | None = None
    cpu: CPUSpecification = CPUSpecification()
    accelerators: Sequence[AcceleratorSpecification] = ()
    priority: float = 0
    min_gpu: int = 0
    cuda: InitVar[Sequence[AcceleratorSpecification]] = ()

    def __post_init__(self, cuda: Sequence[AcceleratorSpecification]) -> None:
        # Stored as a tuple (whatever sequence was given), so that the value is immutable and hashable.
        object.__setattr__(self, "accelerators", (*self.accelerators, *cuda))
        if self.min_gpu < 0:
            raise ValueError(f"HostSpecification: min_gpu must be >= 0, got {self.min_gpu}")
