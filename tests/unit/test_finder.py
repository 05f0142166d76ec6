"""find_launcher with a real launchers.py in a temporary configuration folder."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from xpm.errors import XpmError
from xpm.launchers.finder import (
    LauncherNotFoundError,
    LaunchersFileError,
    clear_cache,
    find_launcher,
    launchers_path,
    load_launchers,
)
from xpm.launchers.local import LocalLauncher
from xpm.launchers.requirements import RequirementError, parse_requirement

# A machine with 8 cores, 32 GiB and two 24 GiB CUDA GPUs (max_jobs tells the launchers apart),
# and a cluster for jobs tagged "slurm". Every call is recorded in CALLS.
LAUNCHERS = """
from xpm.launchers.local import LocalLauncher
from xpm.launchers.requirements import CPUSpecification, CudaSpecification, HostSpecification

GiB = 1024**3
CALLS = []
LOCAL = HostSpecification(
    max_duration=24 * 3600,
    cpu=CPUSpecification(cores=8, memory=32 * GiB),
    accelerators=[CudaSpecification(24 * GiB), CudaSpecification(24 * GiB)],
)
CLUSTER = HostSpecification(
    cpu=CPUSpecification(cores=64, memory=512 * GiB),
    accelerators=[CudaSpecification(80 * GiB)] * 8,
)


def find_launcher(requirements, tags=set()):
    CALLS.append((str(requirements), set(tags)))
    if "slurm" in tags:
        if match := requirements.match(CLUSTER):
            return LocalLauncher(max_jobs=100 + match.requirement.accelerator_count)
        return None
    if match := requirements.match(LOCAL):
        return LocalLauncher(max_jobs=match.requirement.accelerator_count)
    return None
"""


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake home and no XPM_CONFIG_DIR, so that the real user configuration never leaks in."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XPM_CONFIG_DIR", raising=False)
    return home


def write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "launchers.py"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    folder = tmp_path / "config"
    write(folder, LAUNCHERS)
    return folder


def calls(folder: Path) -> list[tuple[str, set[str]]]:
    return load_launchers(folder / "launchers.py").CALLS  # type: ignore[no-any-return]


# --- Finding ---------------------------------------------------------------------------


def test_the_launcher_of_launchers_py(config: Path) -> None:
    launcher = find_launcher("duration=4h & cuda(mem=8G) * 2 & cpu(mem=16G, cores=4)", config_dir=config)
    assert isinstance(launcher, LocalLauncher) and launcher.max_jobs == 2
    assert calls(config) == [("duration=4h & cpu(mem=16G, cores=4) & cuda(mem=8G) * 2", set())]


def test_a_parsed_requirement_is_accepted(config: Path) -> None:
    launcher = find_launcher(parse_requirement("gpu(mem=8G)"), config_dir=config)
    assert isinstance(launcher, LocalLauncher) and launcher.max_jobs == 1


def test_tags_are_passed_as_a_set(config: Path) -> None:
    launcher = find_launcher("cuda(mem=40G) * 4", ["slurm", "big"], config_dir=config)
    assert isinstance(launcher, LocalLauncher) and launcher.max_jobs == 104
    launcher = find_launcher("cuda(mem=40G)", "slurm", config_dir=config)  # one tag, not five letters
    assert isinstance(launcher, LocalLauncher) and launcher.max_jobs == 101
    assert [tags for _, tags in calls(config)] == [{"slurm", "big"}, {"slurm"}]


def test_alternatives_are_tried_in_order_one_at_a_time(config: Path) -> None:
    # The first alternative fits no host; the user's function sees each alternative alone.
    launcher = find_launcher("cuda(mem=8G) * 3 | cuda(mem=8G) * 2 | gpu()", config_dir=config)
    assert isinstance(launcher, LocalLauncher) and launcher.max_jobs == 2
    assert [text for text, _ in calls(config)] == ["cuda(mem=8G) * 3", "cuda(mem=8G) * 2"]


def test_the_user_function_gets_a_host_requirement(tmp_path: Path) -> None:
    folder = tmp_path / "config"
    write(
        folder,
        """
        from xpm.launchers.local import LocalLauncher
        from xpm.launchers.requirements import HostRequirement

        def find_launcher(requirements, tags):
            assert isinstance(requirements, HostRequirement), type(requirements)
            assert isinstance(tags, set), type(tags)
            return LocalLauncher()
        """,
    )
    assert isinstance(find_launcher("cpu()", config_dir=folder), LocalLauncher)


def test_the_folder_comes_from_the_environment_then_home(
    config: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XPM_CONFIG_DIR", str(config))
    assert launchers_path() == config / "launchers.py"
    assert isinstance(find_launcher("gpu()"), LocalLauncher)
    monkeypatch.delenv("XPM_CONFIG_DIR")
    default = isolated / ".config" / "experimaestro"
    assert launchers_path() == default / "launchers.py"
    write(default, LAUNCHERS)
    assert isinstance(find_launcher("gpu()"), LocalLauncher)


def test_the_module_is_imported_once_per_path(tmp_path: Path) -> None:
    folder = tmp_path / "config"
    loads = tmp_path / "loads.txt"
    path = write(
        folder,
        f"""
        from xpm.launchers.local import LocalLauncher

        with open({str(loads)!r}, "a") as out:
            out.write("loaded\\n")

        def find_launcher(requirements, tags):
            return LocalLauncher(max_jobs=1)
        """,
    )
    for _ in range(3):
        find_launcher("cpu()", config_dir=folder)
    assert loads.read_text().splitlines() == ["loaded"]
    # A change of the file is seen after clear_cache(), not before.
    path.write_text(path.read_text().replace("max_jobs=1", "max_jobs=2"))
    assert find_launcher("cpu()", config_dir=folder).max_jobs == 1
    clear_cache()
    assert find_launcher("cpu()", config_dir=folder).max_jobs == 2
    assert loads.read_text().splitlines() == ["loaded", "loaded"]


# --- Not found -------------------------------------------------------------------------


def test_not_found_names_the_requirement(config: Path) -> None:
    with pytest.raises(LauncherNotFoundError) as info:
        find_launcher("cuda(mem=100G) | mps()", ["slurm"], config_dir=config)
    error = info.value
    assert isinstance(error, XpmError)
    assert error.requirement == parse_requirement("cuda(mem=100G) | mps()")
    assert error.tags == frozenset({"slurm"})
    assert error.path == config / "launchers.py"
    assert str(error) == (
        f"no launcher for 'cuda(mem=100G) | mps()' with tags slurm: "
        f"find_launcher() in {config / 'launchers.py'} returned None"
    )
    assert "\n" not in str(error)


def test_a_missing_file_says_where_it_was_looked_for(tmp_path: Path) -> None:
    folder = tmp_path / "nowhere"
    with pytest.raises(LauncherNotFoundError) as info:
        find_launcher("duration=4h & gpu()", config_dir=folder)
    assert info.value.path == folder / "launchers.py"
    assert str(info.value) == (
        f"no launcher for 'duration=4h & gpu()': {folder / 'launchers.py'} does not exist "
        "(it should define find_launcher(requirements, tags))"
    )


def test_a_bad_requirement_fails_before_the_file_is_read(tmp_path: Path) -> None:
    with pytest.raises(RequirementError, match="column 10"):
        find_launcher("cuda(mem=8)", config_dir=tmp_path / "nowhere")


# --- Errors in launchers.py ------------------------------------------------------------


def test_an_error_while_importing_names_the_file_and_line(tmp_path: Path) -> None:
    folder = tmp_path / "config"
    path = write(folder, "import os\n\nLIMIT = 1 / 0\n")
    with pytest.raises(LaunchersFileError) as info:
        find_launcher("gpu()", config_dir=folder)
    error = info.value
    assert (error.path, error.key) == (str(path), "line 3")
    assert str(error) == f"{path}: line 3: cannot be imported: ZeroDivisionError: division by zero"
    assert isinstance(error.__cause__, ZeroDivisionError)
    # Not cached: once fixed, the file is read again.
    write(folder, LAUNCHERS)
    assert isinstance(find_launcher("gpu()", config_dir=folder), LocalLauncher)


def test_a_syntax_error_names_the_line(tmp_path: Path) -> None:
    folder = tmp_path / "config"
    path = write(folder, "def find_launcher(requirements, tags):\n    return (\n\n")
    with pytest.raises(LaunchersFileError) as info:
        find_launcher("gpu()", config_dir=folder)
    assert info.value.key.startswith("line ")
    assert str(info.value).startswith(f"{path}: line ")
    assert "SyntaxError" in str(info.value)


def test_an_error_inside_find_launcher_names_the_file_and_line(tmp_path: Path) -> None:
    folder = tmp_path / "config"
    path = write(
        folder,
        """
        def find_launcher(requirements, tags):
            hosts = {}
            return hosts["gpu"]
        """,
    )
    with pytest.raises(LaunchersFileError) as info:
        find_launcher("gpu()", config_dir=folder)
    assert str(info.value) == f"{path}: line 4: find_launcher('gpu()') raised KeyError: 'gpu'"
    assert isinstance(info.value.__cause__, KeyError)


def test_a_file_without_find_launcher(tmp_path: Path) -> None:
    folder = tmp_path / "config"
    path = write(folder, "def find_launchers(requirements, tags):\n    return None\n")
    with pytest.raises(LaunchersFileError) as info:
        find_launcher("gpu()", config_dir=folder)
    assert str(info.value) == f"{path}: defines no find_launcher(requirements, tags) function"


def test_find_launcher_must_return_a_launcher(tmp_path: Path) -> None:
    folder = tmp_path / "config"
    path = write(folder, "def find_launcher(requirements, tags):\n    return 'local'\n")
    with pytest.raises(LaunchersFileError) as info:
        find_launcher("gpu()", config_dir=folder)
    assert str(info.value) == (f"{path}: find_launcher('gpu()') returned str ('local'), not a Launcher or None")
