"""Requirements as Python values: ``cpu()``, ``cuda_gpu()``... combined with ``&``, ``*`` and ``|``.

A task's requirement is usually text (``"duration=4h & cuda(mem=8G) * 2"``, read by
:func:`xpm.launchers.requirements.parse_requirement`). This module builds the same
requirements in Python, with the names of experimaestro's ``launcherfinder``, and
gives matches the shape a ``launchers.py`` written for experimaestro reads::

    from xpm.launchers.specs import CPUSpecification, CudaSpecification, HostSpecification, cpu, cuda_gpu, duration

    need = duration("4h") & cpu(mem="16G", cores=4) & cuda_gpu(mem="8G") * 2
    node = HostSpecification(cpu=CPUSpecification(256 * 1024**3, 32),
                             accelerators=[CudaSpecification(24 * 1024**3)] * 4, priority=2)
    if match := need.match(node):
        match.score                          # 2: the host's priority
        len(match.requirement.accelerators)  # 2: one entry per requested device

- :class:`SimpleRequirement` (experimaestro's ``HostSimpleRequirement``): one
  alternative. ``&`` needs both (the larger duration, memory and cores, the devices of
  both), ``* n`` multiplies its devices, ``|`` makes a union. Its ``accelerators``
  list one specification per requested device (``cuda_gpu(mem="8G") * 2`` gives two
  :class:`CudaSpecification` of 8G, largest memory first), ``cuda_gpus`` the CUDA
  ones, ``cpu`` a :class:`CPUSpecification`, ``duration`` the seconds.
- :class:`RequirementUnion`: alternatives in order of preference. It is a
  :class:`~xpm.launchers.requirements.HostRequirement` (its ``alternatives`` are the
  parsed values), so the two forms mix; ``requirements`` lists its alternatives as
  :class:`SimpleRequirement`. The function of ``launchers.py`` receives one.
- ``match(host)`` returns a :class:`MatchRequirement` (``score``: the host's
  ``priority``; ``requirement``: the alternative that fits, the first one) or None.

Matching itself is that of :mod:`xpm.launchers.requirements`; these values wrap it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from xpm.errors import XpmError
from xpm.launchers import hosts
from xpm.launchers.hosts import (
    AcceleratorSpecification,
    AcceleratorType,
    CudaSpecification,
    HostSpecification,
    MPSSpecification,
)
from xpm.launchers.requirements import (
    AcceleratorKind,
    AcceleratorRequirement,
    CPURequirement,
    HostRequirement,
    HostSimpleRequirement,
    RequirementError,
    parse_duration,
    parse_requirement,
    parse_size,
)

__all__ = [
    "AcceleratorSpecification",
    "AcceleratorType",
    "CPUSpecification",
    "CudaSpecification",
    "HostRequirement",
    "HostSpecification",
    "MPSSpecification",
    "MatchRequirement",
    "RequirementUnion",
    "SimpleRequirement",
    "SpecificationError",
    "cpu",
    "cuda_gpu",
    "duration",
    "gpu",
    "mps_gpu",
    "parse",
]


class SpecificationError(XpmError, ValueError):
    """A requirement built in Python with a bad value: ``cuda_gpu(mem='8'): expected a size with its unit...``.

    Attributes:
        call: the call or value concerned, as written (``cuda_gpu(mem='8')``).
        problem: what is wrong with it.
    """

    def __init__(self, call: str, problem: str):
        self.call = call
        self.problem = problem
        super().__init__(f"{call}: {problem}")


class CPUSpecification(hosts.CPUSpecification):
    """The CPU side of a host, ``CPUSpecification(memory, cores)``: experimaestro's argument order.

    The same value as :class:`xpm.launchers.hosts.CPUSpecification` (equal to it when
    memory and cores are), whose arguments are keywords only.
    """

    def __init__(self, memory: int = 0, cores: int = 0):
        super().__init__(cores=cores, memory=memory)


#: The specification that stands for one requested device of each kind
_DEVICE: dict[AcceleratorKind, type[AcceleratorSpecification]] = {
    "cuda": CudaSpecification,
    "mps": MPSSpecification,
    "any": AcceleratorSpecification,
}


@dataclass(frozen=True)
class MatchRequirement:
    """A host that satisfies a requirement (what ``requirement.match(host)`` returns).

    Attributes:
        score: the host's ``priority``.
        requirement: the alternative that fits (the first one that does).
        host: the host.
        accelerators: the host devices given to the requirement, one per requested device.
    """

    score: float
    requirement: SimpleRequirement
    host: HostSpecification | None = None
    accelerators: tuple[AcceleratorSpecification, ...] = ()


class SimpleRequirement:
    """One alternative of a requirement: everything in it is needed at once (see the module docstring).

    ``SimpleRequirement(a, b, ...)`` needs all of its arguments (as ``a & b``); with
    none, it needs nothing. Values are immutable: operators return new ones.

    Attributes:
        alternative: the same alternative as parsed from text
            (:class:`~xpm.launchers.requirements.HostSimpleRequirement`).
    """

    __slots__ = ("alternative",)
    alternative: HostSimpleRequirement

    def __init__(self, *parts: SimpleRequirement | HostSimpleRequirement):
        combined = HostSimpleRequirement()
        for part in parts:
            combined = _both(combined, _alternative(part, "SimpleRequirement()"))
        object.__setattr__(self, "alternative", combined)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: combine requirements with &, * and |")

    # --- what it needs

    @property
    def duration(self) -> int:
        """How long the job may run, in seconds (0: not said)."""
        return self.alternative.duration_seconds

    @property
    def duration_seconds(self) -> int:
        return self.alternative.duration_seconds

    @property
    def cpu(self) -> CPUSpecification:
        """The memory (bytes) and cores it needs."""
        return CPUSpecification(self.alternative.cpu.memory, self.alternative.cpu.cores)

    @property
    def accelerators(self) -> list[AcceleratorSpecification]:
        """One specification per requested device, largest memory first (``gpu()`` gives an
        :class:`AcceleratorSpecification`, ``cuda(...)`` a :class:`CudaSpecification`...)."""
        devices = [
            _DEVICE[request.kind](request.memory)
            for request in self.alternative.accelerators
            for _ in range(request.count)
        ]
        return sorted(devices, key=lambda device: -device.memory)

    @property
    def cuda_gpus(self) -> list[AcceleratorSpecification]:
        """The requested CUDA devices, one entry each."""
        return [device for device in self.accelerators if isinstance(device, CudaSpecification)]

    @property
    def accelerator_count(self) -> int:
        """How many devices in all."""
        return self.alternative.accelerator_count

    # --- matching and combining

    def match(self, host: HostSpecification) -> MatchRequirement | None:
        """A :class:`MatchRequirement` (score: the host's priority) if ``host`` satisfies it, else None."""
        found = self.alternative.match(host)
        if found is None:
            return None
        return MatchRequirement(host.priority, self, host, found.accelerators)

    def multiply_duration(self, coefficient: float) -> SimpleRequirement:
        """A copy whose duration is multiplied by ``coefficient`` (rounded up to the second)."""
        return SimpleRequirement(self.alternative.multiply_duration(coefficient))

    def __and__(self, other: SimpleRequirement | HostSimpleRequirement) -> SimpleRequirement:
        return SimpleRequirement(self, _alternative(other, f"{self} & ..."))

    def __rand__(self, other: HostSimpleRequirement) -> SimpleRequirement:
        return SimpleRequirement(_alternative(other, f"... & {self}"), self)

    def __mul__(self, count: int) -> SimpleRequirement:
        """Its devices ``count`` times (its duration, memory and cores stay)."""
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise SpecificationError(f"({self}) * {count!r}", "a requirement is multiplied by an integer >= 1")
        devices = [replace(request, count=request.count * count) for request in self.alternative.accelerators]
        return SimpleRequirement(replace(self.alternative, accelerators=devices))

    def __or__(self, other: Any) -> RequirementUnion:
        return RequirementUnion(self, other)

    def __ror__(self, other: Any) -> RequirementUnion:
        return RequirementUnion(other, self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SimpleRequirement):
            return NotImplemented
        return self.alternative == other.alternative

    def __hash__(self) -> int:
        return hash(self.alternative)

    def __str__(self) -> str:
        return str(self.alternative)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class RequirementUnion(HostRequirement):
    """Alternatives in order of preference: ``RequirementUnion(a, b)`` is ``a | b``.

    Arguments may be :class:`SimpleRequirement`, parsed alternatives, or requirements
    with alternatives of their own (added in their order). At least one is needed.
    """

    def __init__(self, *requirements: Any):
        alternatives: list[HostSimpleRequirement] = []
        for requirement in requirements:
            if isinstance(requirement, HostRequirement):
                alternatives.extend(requirement.alternatives)
            else:
                alternatives.append(_alternative(requirement, "RequirementUnion(...)"))
        if not alternatives:
            raise SpecificationError("RequirementUnion()", "a union needs at least one requirement")
        super().__init__(tuple(alternatives))

    @property
    def requirements(self) -> list[SimpleRequirement]:  # type: ignore[override]
        """The alternatives, as :class:`SimpleRequirement`, in order of preference."""
        return [SimpleRequirement(alternative) for alternative in self.alternatives]

    def match(self, host: HostSpecification) -> MatchRequirement | None:  # type: ignore[override]
        """The match of the first alternative that ``host`` satisfies, or None.

        Every alternative matching one host scores the host's priority: the first wins.
        """
        for requirement in self.requirements:
            found = requirement.match(host)
            if found is not None:
                return found
        return None

    def multiply_duration(self, coefficient: float) -> RequirementUnion:
        return RequirementUnion(super().multiply_duration(coefficient))

    def __or__(self, other: Any) -> RequirementUnion:
        return RequirementUnion(self, other)

    def __ror__(self, other: Any) -> RequirementUnion:
        return RequirementUnion(other, self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


def _alternative(value: Any, where: str) -> HostSimpleRequirement:
    """The parsed alternative a value stands for."""
    if isinstance(value, SimpleRequirement):
        return value.alternative
    if isinstance(value, HostSimpleRequirement):
        return value
    if isinstance(value, HostRequirement) and len(value.alternatives) == 1:
        return value.alternatives[0]
    raise SpecificationError(
        where, f"expected a requirement such as cpu(), cuda_gpu() or duration(), got {type(value).__name__}"
    )


def _both(first: HostSimpleRequirement, second: HostSimpleRequirement) -> HostSimpleRequirement:
    """An alternative that needs both: the larger duration, memory and cores, the devices of both."""
    return HostSimpleRequirement(
        duration_seconds=max(first.duration_seconds, second.duration_seconds),
        cpu=CPURequirement(
            memory=max(first.cpu.memory, second.cpu.memory), cores=max(first.cpu.cores, second.cpu.cores)
        ),
        accelerators=(*first.accelerators, *second.accelerators),
    )


# --- Building requirements ----------------------------------------------------------------------


def _memory(function: str, mem: str | None) -> int:
    """The bytes of a ``mem=`` argument (a size with its unit: ``8G`` decimal, ``8GiB`` binary)."""
    if mem is None:
        return 0
    call = f"{function}(mem={mem!r})"
    if not isinstance(mem, str):
        raise SpecificationError(call, "expected a size with its unit, such as '8G' or '512MiB'")
    try:
        return parse_size(mem)
    except RequirementError as exc:
        raise SpecificationError(call, f"expected {exc.expected}, found {exc.found}") from None


def _device(function: str, kind: AcceleratorKind, mem: str | None) -> SimpleRequirement:
    request = AcceleratorRequirement(kind, _memory(function, mem))
    return SimpleRequirement(HostSimpleRequirement(accelerators=(request,)))


def cpu(*, mem: str | None = None, cores: int = 1) -> SimpleRequirement:
    """Memory (``mem="16G"``) and cores the job needs on its host."""
    if not isinstance(cores, int) or isinstance(cores, bool) or cores < 0:
        raise SpecificationError(f"cpu(cores={cores!r})", "expected a number of cores >= 0")
    return SimpleRequirement(HostSimpleRequirement(cpu=CPURequirement(memory=_memory("cpu", mem), cores=cores)))


def cuda_gpu(*, mem: str | None = None) -> SimpleRequirement:
    """One NVIDIA CUDA GPU with at least ``mem`` of memory (``cuda_gpu(mem="8G") * 2`` for two)."""
    return _device("cuda_gpu", "cuda", mem)


def mps_gpu(*, mem: str | None = None) -> SimpleRequirement:
    """One Apple Silicon GPU (MPS) with at least ``mem`` of (unified) memory."""
    return _device("mps_gpu", "mps", mem)


def gpu(*, mem: str | None = None) -> SimpleRequirement:
    """One accelerator of any kind (CUDA or MPS) with at least ``mem`` of memory."""
    return _device("gpu", "any", mem)


def duration(timespec: str | int | float) -> SimpleRequirement:
    """How long the job may run: a text such as ``"4h"``, ``"90 min"``, ``"2 days"``, or seconds."""
    call = f"duration({timespec!r})"
    if isinstance(timespec, bool) or not isinstance(timespec, (str, int, float)):
        raise SpecificationError(call, "expected a duration such as '4h', or a number of seconds")
    if isinstance(timespec, str):
        try:
            seconds = parse_duration(timespec)
        except RequirementError as exc:
            raise SpecificationError(call, f"expected {exc.expected}, found {exc.found}") from None
    elif timespec < 0:
        raise SpecificationError(call, "expected a duration >= 0")
    else:
        seconds = int(timespec)
    return SimpleRequirement(HostSimpleRequirement(duration_seconds=seconds))


def parse(expr: str) -> RequirementUnion:
    """Reads a requirement text (``"duration=4h & cuda(mem=8G) * 2 | mps(mem=8G)"``).

    Its ``requirements`` list the alternatives in order.

    Raises:
        RequirementError: the text is invalid (one line, with the column).
    """
    return RequirementUnion(parse_requirement(expr))
