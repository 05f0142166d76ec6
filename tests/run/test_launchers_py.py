"""A launchers.py in the configuration folder chooses the launcher; jobs run with it in real processes.

Also: Launcher.get, WorkspaceSettings(id, path=...), resolve_workspace with a Path, tokens' totals, and
listeners told of a real job's states.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.compat.conftest import check, python
from tests.run.conftest import wait_until
from tests.run.tasks import Record, log_lines
from xpm import experiment
from xpm.errors import XpmError
from xpm.launchers import Launcher, LocalConnector
from xpm.launchers.finder import (
    LauncherNotFoundError,
    LauncherRegistry,
    LaunchersFileError,
    clear_cache,
    find_launcher,
    launchers_path,
)
from xpm.launchers.listeners import Listener
from xpm.launchers.local import DirectLauncher, LocalLauncher
from xpm.launchers.requirements import RequirementError
from xpm.launchers.slurm import SlurmLauncher
from xpm.launchers.specs import cpu, cuda_gpu, duration
from xpm.settings import SettingsError, WorkspaceSettings, resolve_workspace

#: The documentation, whose launchers.py the tests use as it is written there
DOCS = Path(__file__).resolve().parents[2] / "docs" / "launchers.md"
MARKER = "<!-- launchers.py: tests/run/test_launchers_py.py runs this file -->"


def documented_launchers_py() -> str:
    """The launchers.py of docs/launchers.md: a small local machine, and a GPU cluster for the rest."""
    after = DOCS.read_text(encoding="utf-8").split(MARKER, 1)[1]
    return after.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.fixture(autouse=True)
def fresh_registry() -> Iterator[None]:
    """Each test reads its own launchers.py, and leaves no configuration folder set."""
    clear_cache()
    yield
    LauncherRegistry.set_config_dir(None)
    LauncherRegistry.INSTANCES.clear()
    clear_cache()


@pytest.fixture
def config(own_settings: Path) -> Path:
    """The test's configuration folder (XPM_CONFIG_DIR), with the documented launchers.py."""
    (own_settings / "launchers.py").write_text(documented_launchers_py())
    return own_settings


def test_the_launcher_of_launchers_py_runs_the_job(config: Path, ws: Path, tmp_path: Path) -> None:
    log = tmp_path / "log"
    local = find_launcher("duration=1h & cpu(mem=1G)")
    assert isinstance(local, DirectLauncher)
    with experiment(ws, "finder") as xp:
        task = Record.C(key="local", log=log).submit(launcher=local)
        built = Record.C(key="built", log=log).submit(launcher=find_launcher(duration("1h") & cpu(cores=2)))
    assert task.job.launcher is local and isinstance(built.job.launcher, DirectLauncher)
    assert [job.state for job in xp.jobs.values()] == ["done", "done"]
    assert sorted(key for key, what, _when, _pid in log_lines(log) if what == "end") == ["built", "local"]
    assert task.stdout().read_text() == "record local\n"


def test_gpu_requirements_go_to_the_cluster_with_one_gpu_per_requested_device(config: Path) -> None:
    slurm = find_launcher("duration=4h & cuda(mem=8G) * 2 & cpu(mem=16G, cores=4)")
    assert isinstance(slurm, SlurmLauncher) and slurm.options.gpus_per_node == 2
    # tags reach the function; a CPU-only job is refused by the cluster (min_gpu=1)
    assert find_launcher(cuda_gpu(mem="20G") * 3, tags=["slurm"]).options.gpus_per_node == 3  # type: ignore[attr-defined]
    with pytest.raises(LauncherNotFoundError):
        find_launcher("cpu(cores=1)", tags=["slurm"])


def test_the_registry_of_the_configuration_folder(config: Path, tmp_path: Path) -> None:
    registry = LauncherRegistry.instance()
    assert registry.path == config / "launchers.py" and LauncherRegistry.instance() is registry
    assert isinstance(registry.find("cpu(cores=8)", "cpu(cores=1)"), DirectLauncher)  # the first that fits
    assert registry.find("cuda(mem=100G)") is None
    # another folder, as experimaestro's LauncherRegistry.set_config_dir: find_launcher follows it
    other = tmp_path / "other"
    other.mkdir()
    (other / "launchers.py").write_text(
        "from xpm.launchers.local import LocalLauncher\n"
        "def find_launcher(requirements, tags):\n    return LocalLauncher(max_jobs=7)\n"
    )
    LauncherRegistry.set_config_dir(other)
    assert launchers_path() == other / "launchers.py"
    assert LauncherRegistry.instance().basepath == other
    assert find_launcher("cuda(mem=100G)").max_jobs == 7  # type: ignore[attr-defined]
    # without a launchers.py, the registry gives a local launcher (find_launcher says the file is missing)
    LauncherRegistry.set_config_dir(tmp_path / "empty")
    assert isinstance(LauncherRegistry.instance().find("cuda(mem=8G)"), DirectLauncher)
    with pytest.raises(LauncherNotFoundError, match="launchers.py does not exist"):
        find_launcher("cuda(mem=8G)")


# --- Bad input -------------------------------------------------------------------------------------


def test_a_requirement_no_host_satisfies_is_one_line(config: Path) -> None:
    with pytest.raises(LauncherNotFoundError) as info:
        find_launcher("cuda(mem=100G) * 8 | duration=200h & gpu()")
    assert str(info.value) == (
        f"no launcher for 'cuda(mem=100G) * 8 | duration=200h & gpu()': "
        f"find_launcher() in {config / 'launchers.py'} returned None"
    )


def test_a_malformed_specification_is_one_line(config: Path, tmp_path: Path) -> None:
    with pytest.raises(RequirementError) as info:
        find_launcher("duration=4h & cuda(mem=8) * 2")
    assert str(info.value) == (
        "bad requirement at column 24: expected a size with its unit, such as 8G or 512MiB, found '8'"
    )
    with pytest.raises(RequirementError):
        LauncherRegistry.instance().find("cuda(mem=8G) &")
    # a bad value in launchers.py itself names the file, its line and the call
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "launchers.py").write_text(
        textwrap.dedent(
            """
            from xpm.launchers.specs import cuda_gpu

            def find_launcher(requirements, tags):
                return cuda_gpu(mem="24")
            """
        )
    )
    with pytest.raises(LaunchersFileError) as file_error:
        find_launcher("gpu()", config_dir=folder)
    assert str(file_error.value) == (
        f"{folder / 'launchers.py'}: line 5: find_launcher('gpu()') raised SpecificationError: "
        "cuda_gpu(mem='24'): expected a size with its unit, such as 8G or 512MiB, found '24'"
    )


# --- Launcher.get, DirectLauncher, connectors --------------------------------------------------------


def test_launcher_get_gives_a_local_launcher_that_runs_jobs(ws: Path, tmp_path: Path) -> None:
    launcher = Launcher.get(ws)
    assert type(launcher) is LocalLauncher and launcher is not Launcher.get(ws)
    with experiment(ws, "get", launcher=launcher):
        task = Record.C(key="get", log=tmp_path / "log").submit()
    assert task.job.launcher is launcher and task.job.state == "done"
    with pytest.raises(XpmError, match=r"^Launcher.get\('ssh://cluster/xp'\): jobs start on this host only"):
        Launcher.get("ssh://cluster/xp")


def test_direct_launcher_takes_experimaestro_arguments() -> None:
    assert DirectLauncher is LocalLauncher
    assert DirectLauncher(LocalConnector.instance()).max_jobs is None
    assert DirectLauncher(connector=LocalConnector(), priority=2).priority == 2
    slurm = SlurmLauncher(connector=LocalConnector.instance(), main=None, priority=1)
    assert slurm.config(time="1:00:00").priority == 1
    with pytest.raises(XpmError, match=r"^SlurmLauncher\(connector=object\): jobs start on this host only"):
        SlurmLauncher(connector=object())  # type: ignore[arg-type]


# --- Workspaces, tokens, listeners -------------------------------------------------------------------


def test_workspace_settings_from_a_path(ws: Path, tmp_path: Path) -> None:
    settings = WorkspaceSettings("scratch", path=ws)
    assert settings.path == ws and settings.location.is_local
    with experiment(settings, "from-settings") as xp:
        task = Record.C(key="ws", log=tmp_path / "log").submit()
    assert xp.settings is settings and task.jobpath.is_relative_to(ws) and task.job.state == "done"
    assert resolve_workspace(workdir=ws).path == ws  # a Path, as experimaestro's find_workspace takes it
    with pytest.raises(SettingsError, match=r"^WorkspaceSettings\('x'\): 'ftp://h/x' is neither"):
        WorkspaceSettings("x", path="ftp://h/x")


def test_a_token_counts_what_running_jobs_hold(ws: Path, tmp_path: Path) -> None:
    go = tmp_path / "go"
    log = tmp_path / "log"
    with experiment(ws, "token") as xp:
        token = xp.token("slots", 3)
        held = token(2, Record.C(key="held", log=log, wait_for=go)).submit()
        assert (token.total, token.path) == (3, ws / "tokens" / "slots")
        # while the job runs it holds 2 of the 3 units
        wait_until(lambda: bool(log_lines(log)), what="the job to start")
        assert token.available == 1
        go.touch()
    assert held.job.state == "done" and token.available == 3


def test_listeners_are_told_of_a_real_job(ws: Path, tmp_path: Path) -> None:
    seen: list[tuple[str, str]] = []
    submitted: list[str] = []

    class Watch(Listener):
        def on_job_submitted(self, job: Any) -> None:
            submitted.append(job.task_id)

        def on_job_state_changed(self, job: Any) -> None:
            seen.append((job.task_id, job.state))

    with experiment(ws, "listen") as xp:
        xp.scheduler.addlistener(Watch())
        Record.C(key="listen", log=tmp_path / "log").submit()
    assert submitted == ["test.record"]
    # in the order the experiment saw them (the job process records "running" itself)
    states = [state for task_id, state in seen if task_id == "test.record"]
    assert states[0] == "waiting" and "scheduled" in states and states[-1] == "done"


# --- The documented launchers.py, through the drop-in ---------------------------------------------

#: The launchers.py of experimaestro's documentation, unchanged
DOCUMENTED = '''
from typing import Set
from experimaestro.launcherfinder import (
    HostRequirement,
    HostSpecification,
    CudaSpecification,
    CPUSpecification,
)
from experimaestro.launchers.slurm import SlurmLauncher, SlurmOptions
from experimaestro.launchers.direct import DirectLauncher
from experimaestro.connectors.local import LocalConnector


def find_launcher(requirements: HostRequirement, tags: Set[str] = set()):
    """Find a launcher"""

    if match := requirements.match(HostSpecification(accelerators=[])):
        # No GPU: run directly
        return DirectLauncher(connector=LocalConnector.instance())

    # CUDA cluster with SLURM
    if match := requirements.match(
        HostSpecification(
            max_duration=100 * 3600,
            cpu=CPUSpecification(cores=32, memory=129 * (1024**3)),
            accelerators=[CudaSpecification(memory=24 * (1024**3)) for _ in range(8)],
        )
    ):
        if len(match.requirement.accelerators) > 0:
            return SlurmLauncher(
                connector=LocalConnector.instance(),
                options=SlurmOptions(gpus_per_node=len(match.requirement.accelerators)),
            )

    # Could not find a host
    return None
'''

#: A task of a library written for experimaestro
LIBRARY = '''
from experimaestro import Param, Task


class Hello(Task):
    name: Param[str]

    def execute(self):
        print("hello", self.name)
'''

EXPERIMENT = '''
import sys

sys.path.insert(0, {library!r})
from experimaestro import experiment
from experimaestro.launcherfinder import LauncherRegistry, cuda_gpu, find_launcher
from hellolib import Hello

LauncherRegistry.set_config_dir({config!r})
print(find_launcher(cuda_gpu(mem="8G") * 2).options.gpus_per_node)
with experiment({workspace!r}, "documented", launcher=find_launcher("duration=1h")) as xp:
    task = Hello.C(name="world").submit()
print(task.stdout().read_text().strip())
'''


def test_the_documented_launchers_py_runs_through_the_drop_in(tmp_path: Path, ws: Path) -> None:
    config = tmp_path / "xpmconfig"
    config.mkdir()
    (config / "launchers.py").write_text(DOCUMENTED)
    library = tmp_path / "library"
    library.mkdir()
    (library / "hellolib.py").write_text(LIBRARY)
    script = EXPERIMENT.format(library=str(library), config=str(config), workspace=str(ws))
    out = check(python(script, cwd=tmp_path, env={"XPM_EXPERIMAESTRO": "1"}))
    assert out.splitlines()[-2:] == ["2", "hello world"]
