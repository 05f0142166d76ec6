"""A launchers.py that sends jobs to the real Slurm cluster, with the time limit the requirement asks for."""

from __future__ import annotations

from pathlib import Path

from tests.run.tasks import log_lines
from tests.slurm.conftest import commands

LAUNCHERS = """
from xpm.launchers import LocalConnector
from xpm.launchers.slurm import SlurmLauncher, SlurmOptions, format_time
from xpm.launchers.specs import CPUSpecification, HostSpecification

PARTITION = HostSpecification(cpu=CPUSpecification(1024**3, 1), max_duration=3600)


def find_launcher(requirements, tags=set()):
    if match := requirements.match(PARTITION):
        time = format_time(match.requirement.duration)
        return SlurmLauncher(connector=LocalConnector.instance(), options=SlurmOptions(time=time), interval=1)
    return None
"""


def test_the_launcher_of_launchers_py_submits_to_slurm(
    slurm, ws: Path, tmp_path: Path, start_script, slurm_log, own_settings: Path
) -> None:
    (own_settings / "launchers.py").write_text(LAUNCHERS)
    log = tmp_path / "log"
    script = start_script(f"""
from xpm import experiment
from xpm.launchers.finder import find_launcher
from xpm.launchers.specs import cpu, duration
from tests.run.tasks import Record

launcher = find_launcher(duration("10m") & cpu(cores=1))
print(launcher)
with experiment({str(ws)!r}, "finder-slurm", launcher=launcher):
    task = Record.C(key="slurm", log={str(log)!r}).submit()
print(task.job.state)
""")
    out, err = script.communicate(timeout=120)
    assert script.returncode == 0, err
    assert out.splitlines() == ["SlurmLauncher(nodes=1, time='0:10:00')", "done"]
    assert [line[:2] for line in log_lines(log)] == [["slurm", "start"], ["slurm", "end"]]
    assert commands(slurm_log).count("sbatch") == 1
    script = next((ws / "jobs" / "test.record").iterdir()) / "record.sh"
    assert "#SBATCH --time=0:10:00" in script.read_text()
