"""Requirements built in Python (cpu(), cuda_gpu()... with &, * and |), matches as launchers.py reads them,
host specifications with experimaestro's arguments, and the Listener set."""

from __future__ import annotations

import logging

import pytest

from xpm.errors import XpmError
from xpm.launchers.hosts import CPUSpecification as KeywordCPUSpecification
from xpm.launchers.listeners import Listener, Listeners
from xpm.launchers.requirements import AcceleratorRequirement, HostRequirement, RequirementError, parse_requirement
from xpm.launchers.specs import (
    AcceleratorSpecification,
    AcceleratorType,
    CPUSpecification,
    CudaSpecification,
    HostSpecification,
    MatchRequirement,
    MPSSpecification,
    RequirementUnion,
    SimpleRequirement,
    SpecificationError,
    cpu,
    cuda_gpu,
    duration,
    gpu,
    mps_gpu,
    parse,
)

G = 1000**3
GiB = 1024**3
H = 3600

NO_GPU = HostSpecification(cuda=[])
CPU8 = HostSpecification(cpu=CPUSpecification(32 * GiB, 8))
GPU2 = HostSpecification(
    cpu=CPUSpecification(64 * GiB, 16),
    accelerators=[CudaSpecification(24 * GiB), CudaSpecification(24 * GiB)],
    max_duration=24 * H,
    priority=3,
)
BIG_ONLY = HostSpecification(
    cpu=CPUSpecification(512 * GiB, 64), cuda=[CudaSpecification(80 * GiB, "A100", 40 * GiB)] * 4, min_gpu=1
)
MAC = HostSpecification(cpu=CPUSpecification(32 * GiB, 8), accelerators=[MPSSpecification(32 * GiB)])
HOSTS = {"no-gpu": NO_GPU, "cpu8": CPU8, "gpu2": GPU2, "big-only": BIG_ONLY, "mac": MAC}


# --- Building -----------------------------------------------------------------------------------


def test_built_requirements_equal_the_parsed_ones() -> None:
    built = duration("4h") & cpu(mem="16G", cores=4) & cuda_gpu(mem="8G") * 2
    assert isinstance(built, SimpleRequirement)
    (parsed,) = parse_requirement("duration=4h & cpu(mem=16G, cores=4) & cuda(mem=8G) * 2").alternatives
    assert built.alternative == parsed
    assert str(built) == "duration=4h & cpu(mem=16G, cores=4) & cuda(mem=8G) * 2"
    assert (built.duration, built.cpu) == (4 * H, CPUSpecification(16 * G, 4))
    # the example of docs/launchers.md
    need = duration("4h") & cpu(mem="16G", cores=4) & cuda_gpu(mem="8G") * 2 | duration("4h") & mps_gpu(mem="16G")
    assert need == parse("duration=4h & cpu(mem=16G, cores=4) & cuda(mem=8G) * 2 | duration=4h & mps(mem=16G)")


def test_devices_are_listed_one_per_requested_device_largest_first() -> None:
    need = gpu(mem="4G") & cuda_gpu(mem="8G") * 2 & mps_gpu()
    assert need.accelerators == [
        CudaSpecification(8 * G),
        CudaSpecification(8 * G),
        AcceleratorSpecification(4 * G),
        MPSSpecification(0),
    ]
    assert [type(device) for device in need.accelerators][2:] == [AcceleratorSpecification, MPSSpecification]
    assert need.cuda_gpus == [CudaSpecification(8 * G)] * 2
    assert need.accelerator_count == 4
    # the parsed form keeps one entry per request, with its count
    assert need.alternative.accelerators == (
        AcceleratorRequirement("any", 4 * G),
        AcceleratorRequirement("cuda", 8 * G, 2),
        AcceleratorRequirement("mps", 0),
    )


def test_operators() -> None:
    # & keeps the larger duration, memory and cores; * multiplies the devices only
    both = (duration("2h") & cpu(mem="8G", cores=2)) & (duration(3 * H) & cpu(cores=4) & gpu())
    assert str(both) == "duration=3h & cpu(mem=8G, cores=4) & gpu()"
    assert str((cpu(cores=2) & gpu()) * 3) == "cpu(cores=2) & gpu() * 3"
    assert (cpu() * 5) == cpu()
    # | makes a union, flattened, in order
    union = cuda_gpu(mem="40G") | cuda_gpu(mem="24G") * 2 | (mps_gpu() | gpu())
    assert isinstance(union, RequirementUnion) and isinstance(union, HostRequirement)
    assert str(union) == "cuda(mem=40G) | cuda(mem=24G) * 2 | mps() | gpu()"
    assert union.requirements == [cuda_gpu(mem="40G"), cuda_gpu(mem="24G") * 2, mps_gpu(), gpu()]
    # SimpleRequirement(a, b) needs both; with nothing, it needs nothing
    assert SimpleRequirement(cpu(cores=2), gpu()) == cpu(cores=2) & gpu()
    assert str(SimpleRequirement()) == "cpu()"
    # durations: text, or seconds
    assert duration("90 min").duration == duration(5400).duration == 5400
    assert union.multiply_duration(2) == union
    assert (duration("1h") | gpu()).multiply_duration(1.5).requirements[0].duration == 5400


def test_parse_gives_a_union_whose_requirements_are_the_alternatives() -> None:
    parsed = parse("duration=4h & cuda(mem=8GiB) | duration=4h & mps(mem=8GiB)")
    assert isinstance(parsed, RequirementUnion)
    assert [str(alternative) for alternative in parsed.requirements] == [
        "duration=4h & cuda(mem=8GiB)",
        "duration=4h & mps(mem=8GiB)",
    ]
    assert parsed.alternatives == parse_requirement(str(parsed)).alternatives
    assert repr(parsed) == "RequirementUnion('duration=4h & cuda(mem=8GiB) | duration=4h & mps(mem=8GiB)')"


def test_requirements_are_immutable_and_hashable() -> None:
    need = cuda_gpu(mem="8G")
    with pytest.raises(AttributeError):
        need.alternative = gpu().alternative  # type: ignore[misc]
    assert len({need, cuda_gpu(mem="8G"), gpu()}) == 2


# --- Matching: what launchers.py reads ------------------------------------------------------------

#: (requirement, host) -> (score, devices, CUDA devices, cpu memory, cores) or None; experimaestro 2.7.0
#: gives the same for each, but for the cores of a parsed "cpu(mem=...)" (1 there, 0 here: the mark *)
AGREED = {
    ("cpu(mem=4G)", "cpu8"): (0, 0, 0, 4 * G, 0),  # *
    ("cpu(mem=4G)", "gpu2"): (3, 0, 0, 4 * G, 0),  # *
    ("cpu(mem=4G)", "no-gpu"): None,
    ("cpu(mem=4G)", "big-only"): None,  # min_gpu=1
    ("cpu(cores=2)", "no-gpu"): None,
    ("cuda(mem=8G)*2", "gpu2"): (3, 2, 2, 0, 0),
    ("cuda(mem=8G)*3", "gpu2"): None,
    ("cuda(mem=8G)*2", "big-only"): None,  # the devices are kept for requests of 40 GiB or more
    ("cuda(mem=50G)", "big-only"): (0, 1, 1, 0, 0),
    ("gpu(mem=8G)", "mac"): (0, 1, 0, 0, 0),
    ("gpu(mem=8G)", "gpu2"): (3, 1, 0, 0, 0),
    ("mps(mem=8G)", "gpu2"): None,
    ("mps(mem=8G)", "mac"): (0, 1, 0, 0, 0),
    ("cpu(mem=20G) & mps(mem=16G)", "mac"): None,  # unified memory: 20G + 16G > 32 GiB
    ("duration=2d & cuda(mem=8G)", "gpu2"): None,
    ("duration=2d & cuda(mem=8G)", "big-only"): None,  # no time limit, but 8G < the 40 GiB floor
    ("cuda(mem=20G) | cpu(cores=4)", "cpu8"): (0, 0, 0, 0, 4),
    ("cuda(mem=20G) | cpu(cores=4)", "gpu2"): (3, 1, 1, 0, 0),
    ("duration=4h", "no-gpu"): (0, 0, 0, 0, 0),
}


@pytest.mark.parametrize(("text", "host"), list(AGREED))
def test_matches_read_as_in_launchers_py(text: str, host: str) -> None:
    match = parse(text).match(HOSTS[host])
    if AGREED[(text, host)] is None:
        assert match is None
        return
    assert isinstance(match, MatchRequirement)
    requirement = match.requirement
    seen = (match.score, len(requirement.accelerators), len(requirement.cuda_gpus), requirement.cpu.memory,
            requirement.cpu.cores)  # fmt: skip
    assert seen == AGREED[(text, host)]
    assert match.host is HOSTS[host] and len(match.accelerators) == len(requirement.accelerators)


def test_the_first_alternative_that_fits_wins() -> None:
    union = cuda_gpu(mem="30G") | cuda_gpu(mem="20G") * 2 | gpu()
    match = union.match(GPU2)
    assert match is not None and match.requirement == cuda_gpu(mem="20G") * 2 and match.score == 3
    assert match.accelerators == (CudaSpecification(24 * GiB), CudaSpecification(24 * GiB))


def test_host_specifications_take_experimaestro_arguments() -> None:
    # cuda= adds CUDA devices to the accelerators; the value is compared by what the host offers
    assert HostSpecification(cuda=[CudaSpecification(GiB)]) == HostSpecification(accelerators=[CudaSpecification(GiB)])
    assert HostSpecification(cuda=[CudaSpecification(GiB)]).cuda == ()
    # CPUSpecification(memory, cores), equal to the keyword one
    assert CPUSpecification(16 * GiB, 4) == KeywordCPUSpecification(cores=4, memory=16 * GiB)
    assert hash(CPUSpecification(16 * GiB, 4)) == hash(KeywordCPUSpecification(cores=4, memory=16 * GiB))
    assert CPUSpecification(16 * GiB, 4).match(CPUSpecification(8 * GiB, 4))
    assert not CPUSpecification(16 * GiB, 4).match(cpu(cores=5).cpu)
    # a device serves a request of its kind (or of any kind) within its memory bounds
    a100 = CudaSpecification(80 * GiB, "A100", 40 * GiB)
    assert a100.accelerator_type is AcceleratorType.CUDA and not a100.unified_memory
    assert a100.match(CudaSpecification(50 * GiB)) and a100.match(AcceleratorSpecification(50 * GiB))
    assert not a100.match(CudaSpecification(20 * GiB)) and not a100.match(MPSSpecification(50 * GiB))
    assert MPSSpecification(GiB).unified_memory and AcceleratorSpecification().accelerator_type is None


# --- Bad values: one line naming the call ------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: cuda_gpu(mem="8"), "cuda_gpu(mem='8'): expected a size with its unit, such as 8G or 512MiB, "
                                    "found '8'"),
        (lambda: cpu(mem=8 * GiB), "cpu(mem=8589934592): expected a size with its unit, such as '8G' or '512MiB'"),
        (lambda: gpu(mem="8 gigs"), "gpu(mem='8 gigs'): expected a size unit (B, K, KiB, M, MiB, G, GiB, T or TiB), "
                                    "found 'gigs'"),
        (lambda: cpu(cores=-1), "cpu(cores=-1): expected a number of cores >= 0"),
        (lambda: duration("4 weeks"), "duration('4 weeks'): expected a duration unit (s, m or min, h or hours, "
                                      "d or days), found 'weeks'"),
        (lambda: duration(None), "duration(None): expected a duration such as '4h', or a number of seconds"),
        (lambda: gpu() * 0, "(gpu()) * 0: a requirement is multiplied by an integer >= 1"),
        (lambda: RequirementUnion(), "RequirementUnion(): a union needs at least one requirement"),
        (lambda: gpu() & "cpu()", "gpu() & ...: expected a requirement such as cpu(), cuda_gpu() or duration(), "
                                  "got str"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_call(build, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SpecificationError) as info:
        build()
    assert str(info.value) == message
    assert isinstance(info.value, XpmError) and isinstance(info.value, ValueError)


def test_a_bad_text_is_a_requirement_error() -> None:
    with pytest.raises(RequirementError, match=r"^bad requirement at column 10: expected a size"):
        parse("cuda(mem=8)")


def test_host_specification_rejects_a_negative_min_gpu() -> None:
    with pytest.raises(ValueError, match="min_gpu must be >= 0"):
        HostSpecification(min_gpu=-1)


# --- Listeners ---------------------------------------------------------------------------------------


class Job:
    def __init__(self, name: str, state: str):
        self.name, self.state = name, state


def test_listeners_are_told_in_order_and_a_failing_one_stops_nothing(caplog: pytest.LogCaptureFixture) -> None:
    told: list[str] = []

    class Watch(Listener):
        def on_job_submitted(self, job: Job) -> None:
            told.append(f"submitted {job.name}")

        def on_job_state_changed(self, job: Job) -> None:
            told.append(f"{job.name} {job.state}")

    class Broken(Listener):
        def on_job_state_changed(self, job: Job) -> None:
            raise RuntimeError("broken listener")

    class Duck:  # not a Listener: only what it defines is called
        def on_job_state_changed(self, job: Job) -> None:
            told.append(f"duck {job.state}")

    listeners = Listeners(on_change=lambda job: told.append(f"callback {job.state}"))
    watch = Watch()
    for listener in (Broken(), watch, watch, Duck()):
        listeners.add(listener)
    assert len(listeners) == 3
    job = Job("t/1", "waiting")
    listeners.submitted(job)
    with caplog.at_level(logging.ERROR, logger="xpm.listeners"):
        listeners.state_changed(job)
    assert told == ["submitted t/1", "callback waiting", "t/1 waiting", "duck waiting"]
    assert "broken listener" in caplog.text
    # the former names call the new ones
    told.clear()
    watch.job_state(Job("t/2", "done"))
    watch.job_submitted(Job("t/3", "waiting"))
    assert told == ["t/2 done", "submitted t/3"]
    listeners.discard(watch)
    listeners.state_changed(Job("t/4", "done"))
    assert told == ["t/2 done", "submitted t/3", "callback done", "duck done"]
