"""The requirement language: parsing, error messages, matching hosts, canonical text."""

from __future__ import annotations

import pytest

from xpm.errors import XpmError
from xpm.launchers.requirements import (
    AcceleratorRequirement,
    AcceleratorSpecification,
    CPURequirement,
    CPUSpecification,
    CudaSpecification,
    HostRequirement,
    HostSimpleRequirement,
    HostSpecification,
    Match,
    MPSSpecification,
    RequirementError,
    format_duration,
    format_size,
    parse_duration,
    parse_requirement,
    parse_size,
)

G = 1000**3
GiB = 1024**3
M = 1000**2
MiB = 1024**2
H = 3600

TERM = "a term (duration=..., cpu(...), cuda(...), mps(...) or gpu(...))"
SIZE = "a size with its unit, such as 8G or 512MiB"


def one(text: str) -> HostSimpleRequirement:
    """The only alternative of a requirement."""
    requirement = parse_requirement(text)
    assert len(requirement.alternatives) == 1
    return requirement.alternatives[0]


def error_of(text: str) -> RequirementError:
    with pytest.raises(RequirementError) as info:
        parse_requirement(text)
    return info.value


# --- Parsing ---------------------------------------------------------------------------


def test_the_example_of_the_issue() -> None:
    assert parse_requirement("duration=4h & cuda(mem=8G)*2 & cpu(mem=16G, cores=4)") == HostRequirement(
        (
            HostSimpleRequirement(
                duration_seconds=4 * H,
                cpu=CPURequirement(memory=16 * G, cores=4),
                accelerators=(AcceleratorRequirement("cuda", 8 * G, 2),),
            ),
        )
    )


def test_alternatives_keep_their_order() -> None:
    requirement = parse_requirement("cuda(mem=8G) | mps(mem=8G) | gpu()")
    assert [alt.accelerators for alt in requirement.alternatives] == [
        (AcceleratorRequirement("cuda", 8 * G),),
        (AcceleratorRequirement("mps", 8 * G),),
        (AcceleratorRequirement("any", 0),),
    ]
    assert requirement.requirements == requirement.alternatives  # experimaestro's name


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("4h", 4 * H),
        ("4hour", 4 * H),
        ("4hours", 4 * H),
        ("2d", 2 * 86400),
        ("1day", 86400),
        ("3days", 3 * 86400),
        ("30m", 1800),
        ("30min", 1800),
        ("30mins", 1800),
        ("1minute", 60),
        ("90minutes", 5400),
        ("45s", 45),
        ("45sec", 45),
        ("45secs", 45),
        ("1second", 1),
        ("10seconds", 10),
        ("4 days", 4 * 86400),  # experimaestro's documentation writes it so
        ("4H", 4 * H),
        ("2Days", 2 * 86400),
        ("0h", 0),
    ],
)
def test_duration_units(text: str, seconds: int) -> None:
    assert one(f"duration={text}").duration_seconds == seconds
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("8G", 8 * G),
        ("8GiB", 8 * GiB),
        ("512M", 512 * M),
        ("512MiB", 512 * MiB),
        ("3K", 3000),
        ("3KiB", 3 * 1024),
        ("2T", 2 * 1000**4),
        ("2TiB", 2 * 1024**4),
        ("100B", 100),
        ("8GB", 8 * G),
        ("8g", 8 * G),
        ("8gib", 8 * GiB),
        ("8GIB", 8 * GiB),
        ("16mib", 16 * MiB),
        ("8 G", 8 * G),
        ("0G", 0),
    ],
)
def test_size_units(text: str, size: int) -> None:
    assert one(f"cuda(mem={text})").accelerators[0].memory == size
    assert parse_size(text) == size


def test_g_is_decimal_and_gib_binary_as_in_experimaestro() -> None:
    # experimaestro reads sizes with humanfriendly.parse_size, decimal by default.
    assert parse_size("1G") == 1_000_000_000
    assert parse_size("1GiB") == 1_073_741_824


@pytest.mark.parametrize(
    "text",
    [
        "duration=4h&cuda(mem=8G)*2&cpu(mem=16G,cores=4)",
        "  duration = 4h  &  cuda ( mem = 8G ) * 2  &  cpu ( mem = 16G , cores = 4 )  ",
        "\tduration=4h &\n cuda(mem=8G) *2 & cpu(cores=4, mem=16G)",
        "DURATION=4H & CUDA(MEM=8G)*2 & CPU(MEM=16G, CORES=4)",
        "cpu(cores=4, mem=16G) & cuda(mem=8G) * 2 & duration=240min",
    ],
)
def test_whitespace_case_and_order_do_not_matter(text: str) -> None:
    assert parse_requirement(text) == parse_requirement("duration=4h & cuda(mem=8G) * 2 & cpu(mem=16G, cores=4)")


def test_optional_arguments() -> None:
    assert one("cpu()").cpu == CPURequirement()
    assert one("cpu(mem=2G)").cpu == CPURequirement(memory=2 * G)
    assert one("cpu(cores=3)").cpu == CPURequirement(cores=3)
    assert one("gpu()").accelerators == (AcceleratorRequirement("any"),)
    assert one("mps() * 3").accelerators == (AcceleratorRequirement("mps", 0, 3),)


def test_terms_combine_in_one_alternative() -> None:
    alt = one("duration=2h & cpu(mem=8G) & duration=3h & cpu(cores=4) & cpu(mem=4G) & cuda(mem=8G) & gpu() * 2")
    assert alt.duration_seconds == 3 * H  # the largest
    assert alt.cpu == CPURequirement(memory=8 * G, cores=4)
    assert alt.accelerators == (AcceleratorRequirement("cuda", 8 * G), AcceleratorRequirement("any", 0, 2))
    assert alt.accelerator_count == 3


def test_nothing_said_means_no_need() -> None:
    alt = one("gpu()")
    assert (alt.duration_seconds, alt.duration, alt.cpu) == (0, 0, CPURequirement())


# --- Errors ----------------------------------------------------------------------------


def test_requirement_error_carries_its_data() -> None:
    error = error_of("cuda(mem=8)")
    assert isinstance(error, XpmError) and isinstance(error, ValueError)
    assert (error.text, error.column, error.expected, error.found) == ("cuda(mem=8)", 10, SIZE, "'8'")
    assert str(error) == f"bad requirement at column 10: expected {SIZE}, found '8'"
    assert RequirementError.exit_code == 2


@pytest.mark.parametrize(
    ("text", "column", "expected", "found"),
    [
        # a bare number: the column is the number's
        ("cpu(mem=8)", 9, SIZE, "'8'"),
        ("duration=4h & cpu(mem=16, cores=4)", 23, SIZE, "'16'"),
        ("cuda(mem=8 )", 10, SIZE, "'8'"),
        ("cuda(mem=)", 10, SIZE, "')'"),
        ("duration=4", 10, "a duration with its unit, such as 4h", "'4'"),
        ("duration=h", 10, "a duration with its unit, such as 4h", "'h'"),
        # unknown units
        ("cuda(mem=8X)", 11, "a size unit (B, K, KiB, M, MiB, G, GiB, T or TiB)", "'X'"),
        ("cuda(mem=8Gi)", 11, "a size unit (B, K, KiB, M, MiB, G, GiB, T or TiB)", "'Gi'"),
        ("duration=4w", 11, "a duration unit (s, m or min, h or hours, d or days)", "'w'"),
        ("duration=4 weeks", 12, "a duration unit (s, m or min, h or hours, d or days)", "'weeks'"),
        # unknown terms and keys
        ("foo(mem=8G)", 1, TERM, "'foo'"),
        ("cuda(mem=8G) & tpu()", 16, TERM, "'tpu'"),
        ("8G", 1, TERM, "'8'"),
        ("cpu(memory=8G)", 5, "'mem' or 'cores'", "'memory'"),
        ("cuda(cores=2)", 6, "'mem'", "'cores'"),
        ("cpu(mem=1G, mem=2G)", 13, "a key not given yet", "'mem' again"),
        ("cpu(cores=0)", 11, "a number of cores of at least 1", "'0'"),
        ("cpu(cores=x)", 11, "a number of cores such as 4", "'x'"),
        # punctuation
        ("cuda(mem=8G", 12, "',' or ')'", "end of requirement"),
        ("cpu(mem=8G cores=4)", 12, "',' or ')'", "'cores'"),
        ("cpu(mem=8G; cores=4)", 11, "',' or ')'", "';'"),
        ("cpu(mem=8G,)", 12, "'mem' or 'cores'", "')'"),
        ("cuda mem=8G", 6, "'('", "'mem'"),
        ("duration:4h", 9, "'='", "':'"),
        # counts
        ("cuda(mem=8G) * 0", 16, "a count of at least 1", "'0'"),
        ("cuda(mem=8G)*", 14, "a count such as 2", "end of requirement"),
        ("gpu() * two", 9, "a count such as 2", "'two'"),
        ("cpu(cores=2) * 2", 14, "'&', '|' or the end of the requirement (only cuda, mps and gpu take '* N')", "'*'"),
        # empty alternatives and terms
        ("", 1, TERM, "end of requirement"),
        ("   ", 4, TERM, "end of requirement"),
        ("cuda() | | cpu()", 10, TERM, "'|'"),
        ("| cuda()", 1, TERM, "'|'"),
        ("cuda() |", 9, TERM, "end of requirement"),
        ("cuda() &", 9, TERM, "end of requirement"),
        ("cuda() & & cpu()", 10, TERM, "'&'"),
        ("cuda() & | cpu()", 10, TERM, "'|'"),
        # text after a complete requirement
        ("cuda() cpu()", 8, "'&', '|' or the end of the requirement", "'cpu'"),
        ("cuda())", 7, "'&', '|' or the end of the requirement", "')'"),
    ],
)
def test_errors_name_the_column(text: str, column: int, expected: str, found: str) -> None:
    error = error_of(text)
    assert (error.column, error.expected, error.found) == (column, expected, found)
    assert str(error) == f"bad requirement at column {column}: expected {expected}, found {found}"


def test_error_messages_stay_on_one_line() -> None:
    error = error_of("cuda(mem=8G)\n\x01")
    assert "\n" not in str(error) and error.found == "'\\x01'"
    assert error.column == 14


def test_parse_size_and_duration_reject_trailing_text() -> None:
    with pytest.raises(RequirementError, match="column 4"):
        parse_size("8G x")
    with pytest.raises(RequirementError, match="found '8'"):
        parse_size("8")
    with pytest.raises(RequirementError, match="column 3"):
        parse_duration("4h30m")


# --- Matching --------------------------------------------------------------------------


BIG_CPU = CPUSpecification(cores=64, memory=512 * GiB)


def host(*accelerators: AcceleratorSpecification, max_duration: int | None = None, cpu=BIG_CPU) -> HostSpecification:
    return HostSpecification(max_duration=max_duration, cpu=cpu, accelerators=list(accelerators))


def matches(text: str, spec: HostSpecification) -> bool:
    return parse_requirement(text).match(spec) is not None


def test_duration_is_checked_against_the_host_limit() -> None:
    assert matches("duration=4h", host(max_duration=4 * H))
    assert not matches("duration=4h", host(max_duration=4 * H - 1))
    assert matches("duration=400d", host())  # None: no limit
    assert matches("duration=400d", host(max_duration=0))  # experimaestro's "no limit"
    assert matches("cpu()", host(max_duration=1))  # no duration said


def test_cpu_memory_and_cores() -> None:
    spec = host(cpu=CPUSpecification(cores=8, memory=32 * GiB))
    assert matches("cpu(mem=32GiB, cores=8)", spec)
    assert not matches("cpu(mem=33GiB)", spec)
    assert not matches("cpu(cores=9)", spec)
    # A host that says nothing of its CPU offers none (as in experimaestro).
    assert not matches("cpu(cores=1)", HostSpecification())
    assert matches("duration=1h", HostSpecification())


def test_cuda_times_two_needs_two_devices() -> None:
    assert not matches("cuda(mem=8G) * 2", host(CudaSpecification(24 * GiB)))
    assert matches("cuda(mem=8G) * 2", host(CudaSpecification(24 * GiB), CudaSpecification(24 * GiB)))
    assert not matches("cuda(mem=8G) & cuda(mem=8G)", host(CudaSpecification(24 * GiB)))
    # each device must have the memory
    assert not matches("cuda(mem=16G) * 2", host(CudaSpecification(24 * GiB), CudaSpecification(12 * GiB)))


def test_devices_are_placed_so_that_the_big_request_gets_the_big_device() -> None:
    spec = host(CudaSpecification(12 * GiB), CudaSpecification(40 * GiB))
    found = parse_requirement("cuda(mem=8G) & cuda(mem=32G)").match(spec)
    assert found is not None
    assert found.accelerators == (CudaSpecification(12 * GiB), CudaSpecification(40 * GiB))


def test_cuda_and_mps_need_their_kind_gpu_takes_any() -> None:
    cuda, mps, other = CudaSpecification(16 * GiB), MPSSpecification(64 * GiB), AcceleratorSpecification(16 * GiB)
    assert matches("cuda(mem=8G)", host(cuda))
    assert not matches("cuda(mem=8G)", host(mps))
    assert not matches("cuda(mem=8G)", host(other))
    assert matches("mps(mem=8G)", host(mps))
    assert not matches("mps(mem=8G)", host(cuda))
    assert not matches("mps(mem=8G)", host(other))
    for device in (cuda, mps, other):
        assert matches("gpu(mem=8G)", host(device))
    assert not matches("gpu(mem=32G)", host(cuda))
    assert not matches("gpu()", host())


def test_mixed_kinds_share_the_devices() -> None:
    spec = host(CudaSpecification(16 * GiB), AcceleratorSpecification(16 * GiB))
    # gpu() must leave the cuda device to cuda()
    assert matches("gpu() & cuda()", spec)
    assert not matches("gpu() * 2 & cuda()", spec)
    assert not matches("cuda() * 2", spec)


def test_min_memory_keeps_big_devices_for_big_requests() -> None:
    spec = host(CudaSpecification(80 * GiB, model="A100", min_memory=40 * GiB))
    assert matches("cuda(mem=48GiB)", spec)
    assert not matches("cuda(mem=8G)", spec)


def test_mps_memory_is_shared_with_the_cpu() -> None:
    mac = HostSpecification(cpu=CPUSpecification(cores=8, memory=32 * GiB), accelerators=[MPSSpecification(32 * GiB)])
    assert matches("mps(mem=24GiB)", mac)
    assert matches("cpu(mem=8GiB) & mps(mem=24GiB)", mac)
    assert not matches("cpu(mem=9GiB) & mps(mem=24GiB)", mac)
    # a generic request placed on the MPS device takes unified memory too
    assert not matches("cpu(mem=9GiB) & gpu(mem=24GiB)", mac)
    # and cuda hosts have no such limit
    pc = HostSpecification(cpu=CPUSpecification(cores=8, memory=32 * GiB), accelerators=[CudaSpecification(24 * GiB)])
    assert matches("cpu(mem=32GiB) & gpu(mem=24GiB)", pc)


def test_gpu_goes_to_a_dedicated_device_before_the_unified_one() -> None:
    spec = HostSpecification(
        cpu=CPUSpecification(cores=8, memory=32 * GiB),
        accelerators=[MPSSpecification(32 * GiB), CudaSpecification(24 * GiB)],
    )
    found = parse_requirement("cpu(mem=30GiB) & gpu(mem=8GiB)").match(spec)
    assert found is not None and found.accelerators == (CudaSpecification(24 * GiB),)


def test_the_first_matching_alternative_is_chosen() -> None:
    requirement = parse_requirement("cuda(mem=40G) | cuda(mem=20G) * 2 | gpu(mem=8G)")
    two_small = host(CudaSpecification(24 * GiB), CudaSpecification(24 * GiB))
    found = requirement.match(two_small)
    assert isinstance(found, Match)
    assert found.requirement is requirement.alternatives[1]
    assert found.host is two_small
    assert len(found.accelerators) == 2
    found = requirement.match(host(CudaSpecification(80 * GiB), CudaSpecification(80 * GiB)))
    assert found is not None and found.requirement is requirement.alternatives[0]
    found = requirement.match(host(MPSSpecification(64 * GiB)))
    assert found is not None and found.requirement is requirement.alternatives[2]
    assert requirement.match(host()) is None


def test_eight_identical_gpus_match_quickly() -> None:
    spec = host(*[CudaSpecification(24 * GiB) for _ in range(16)])
    assert matches("cuda(mem=8G) * 16", spec)
    assert not matches("cuda(mem=8G) * 17", spec)


# --- multiply_duration and text --------------------------------------------------------


def test_multiply_duration_returns_a_new_requirement() -> None:
    requirement = parse_requirement("duration=4h & cuda(mem=8G) | duration=90min")
    doubled = requirement.multiply_duration(2)
    assert [alt.duration_seconds for alt in doubled.alternatives] == [8 * H, 3 * H]
    assert [alt.duration_seconds for alt in requirement.alternatives] == [4 * H, 5400]
    assert doubled.alternatives[0].accelerators == requirement.alternatives[0].accelerators
    assert str(requirement.multiply_duration(1.5)) == "duration=6h & cuda(mem=8G) | duration=135m"
    # rounded up to the second
    assert one("duration=1s").multiply_duration(0.4).duration_seconds == 1
    with pytest.raises(ValueError):
        requirement.multiply_duration(-1)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        (
            "duration=4h & cuda(mem=8G)*2 & cpu(mem=16G, cores=4)",
            "duration=4h & cpu(mem=16G, cores=4) & cuda(mem=8G) * 2",
        ),
        ("cuda(mem=8G) | mps(mem=8G)", "cuda(mem=8G) | mps(mem=8G)"),
        ("gpu(mem=8192MiB)", "gpu(mem=8GiB)"),
        ("gpu(mem=1536MiB)*1", "gpu(mem=1536MiB)"),
        ("gpu(mem=8000M)", "gpu(mem=8G)"),
        ("gpu(mem=1024B)", "gpu(mem=1KiB)"),
        ("gpu(mem=7B)", "gpu(mem=7B)"),
        ("gpu(mem=0G)", "gpu()"),
        ("duration=120 minutes", "duration=2h"),
        ("duration=48h", "duration=2d"),
        ("duration=61s", "duration=61s"),
        ("duration=0h & cpu()", "cpu()"),
        ("cpu(cores=2) & cpu(mem=1G)", "cpu(mem=1G, cores=2)"),
        ("DURATION=4H & CPU(MEM=16GIB)", "duration=4h & cpu(mem=16GiB)"),
    ],
)
def test_str_is_canonical_and_parses_back(text: str, canonical: str) -> None:
    requirement = parse_requirement(text)
    assert str(requirement) == canonical
    assert parse_requirement(canonical) == requirement


def test_str_of_requirements_built_in_python_parses_back() -> None:
    requirement = HostRequirement(
        [
            HostSimpleRequirement(),
            HostSimpleRequirement(
                duration_seconds=12345,
                cpu=CPURequirement(memory=123456789, cores=7),
                accelerators=[AcceleratorRequirement("any", 3 * GiB + 1, 3), AcceleratorRequirement("mps")],
            ),
        ]
    )
    assert str(requirement) == (
        "cpu() | duration=12345s & cpu(mem=123456789B, cores=7) & gpu(mem=3221225473B) * 3 & mps()"
    )
    assert parse_requirement(str(requirement)) == requirement


@pytest.mark.parametrize("size", [1, 999, 1000, 1024, 1500 * MiB, 8 * G, 8 * GiB, 3 * 1024**4, 10**15])
def test_format_size_reads_back(size: int) -> None:
    assert parse_size(format_size(size)) == size


@pytest.mark.parametrize("seconds", [1, 59, 60, 3599, 3600, 86399, 86400, 10 * 86400 + 1])
def test_format_duration_reads_back(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


def test_constructors_reject_impossible_values() -> None:
    with pytest.raises(ValueError):
        AcceleratorRequirement("tpu")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        AcceleratorRequirement("cuda", 0, 0)
    with pytest.raises(ValueError):
        CPURequirement(memory=-1)
    with pytest.raises(ValueError):
        HostRequirement([])
    with pytest.raises(TypeError):
        CPUSpecification(8, 16 * GiB)  # type: ignore[misc]  # keywords only: no swapped arguments


def test_values_are_immutable_and_hashable() -> None:
    requirement = parse_requirement("cuda(mem=8G) * 2 | mps()")
    assert isinstance(requirement.alternatives, tuple)
    assert hash(requirement) == hash(parse_requirement(str(requirement)))
    with pytest.raises(AttributeError):
        requirement.alternatives = ()  # type: ignore[misc]
    spec = HostSpecification(accelerators=[CudaSpecification(GiB)])
    assert spec.accelerators == (CudaSpecification(GiB),)
    assert hash(spec) == hash(HostSpecification(accelerators=(CudaSpecification(GiB),)))
