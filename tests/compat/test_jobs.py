"""End to end: a library written for experimaestro, unchanged, submitted by an experiment and run by real
job processes (forked by the fork server, started with Popen, or run by Slurm), each of which imports the
library through the drop-in."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.compat.conftest import check, python
from xpm.launchers import forkserver

#: A library module as it is written for experimaestro: it never mentions xpm
LIBRARY = '''
import json
import os
import sys
from pathlib import Path

from experimaestro import Meta, Param, PathGenerator, Task, field


class Double(Task):
    """Writes twice its value, and what its process looks like, to its output file."""

    x: Param[int]
    out: Meta[Path] = field(default_factory=PathGenerator("out.json"))

    def execute(self):
        import experimaestro

        with open(f"/proc/{os.getppid()}/cmdline", "rb") as f:
            parent = f.read().replace(b"\\0", b" ").decode()
        self.out.write_text(json.dumps({
            "value": 2 * self.x,
            "drop_in": experimaestro.__xpm__,
            "variable": os.environ.get("XPM_EXPERIMAESTRO"),
            "parent": parent,
        }))
'''

#: The experiment: imports the library, submits its task, waits for the job
EXPERIMENT = '''
import json, sys
{activate}
sys.path.insert(0, {library!r})
from xpmlib import Double
from experimaestro import experiment{launcher_import}

with experiment({workspace!r}, "compat"{launcher}) as xp:
    task = Double.C(x=21).submit()
print(task.out.read_text())
'''


def run_experiment(tmp_path: Path, ws: Path, *, activate: str, env: dict[str, str], launcher: str = "",
                   launcher_import: str = "") -> dict[str, object]:
    library = tmp_path / "library"
    library.mkdir()
    (library / "xpmlib.py").write_text(LIBRARY)
    script = EXPERIMENT.format(activate=activate, library=str(library), workspace=str(ws), launcher=launcher,
                               launcher_import=launcher_import)
    (tmp_path / "experiment.py").write_text(textwrap.dedent(script))
    out = check(python("", args=[str(tmp_path / "experiment.py")], cwd=tmp_path, env=env, timeout=300))
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize("activate", ["install", "variable"])
@pytest.mark.parametrize("fork", [True, False], ids=["fork-server", "popen"])
def test_jobs_import_the_library_through_the_drop_in(tmp_path: Path, ws: Path, activate: str, fork: bool) -> None:
    if fork and not forkserver.supported():
        pytest.skip("fork servers need Linux (fork, pidfds)")
    env = {"XPM_LOCAL_FORK": "1" if fork else "0"}
    if activate == "variable":
        env["XPM_EXPERIMAESTRO"] = "1"
    code = "import xpm.compat; xpm.compat.install()" if activate == "install" else ""
    result = run_experiment(tmp_path, ws, activate=code, env=env)
    assert result["value"] == 42 and result["drop_in"] is True and result["variable"] == "1"
    # The job's parent: the fork server, or the experiment itself (Popen).
    assert ("xpm.runner.forkserver" in str(result["parent"])) is fork, result["parent"]


def test_slurm_jobs_import_the_library_through_the_drop_in(slurm: None, tmp_path: Path, ws: Path) -> None:
    result = run_experiment(
        tmp_path, ws,
        activate="import xpm.compat; xpm.compat.install()",
        env={},
        launcher_import="\nfrom experimaestro.launchers.slurm import SlurmLauncher, SlurmOptions",
        launcher=', launcher=SlurmLauncher(options=SlurmOptions(time="0:10:00"), interval=1)',
    )
    assert result["value"] == 42 and result["drop_in"] is True and result["variable"] == "1"


def test_install_after_the_fork_server_started(tmp_path: Path, ws: Path) -> None:
    if not forkserver.supported():
        pytest.skip("fork servers need Linux (fork, pidfds)")
    library = tmp_path / "library"
    library.mkdir()
    (library / "xpmlib.py").write_text(LIBRARY)
    (tmp_path / "plain.py").write_text(
        "from xpm import Task, Param\n\nclass Plain(Task):\n    x: Param[int]\n\n    def execute(self):\n        pass\n"
    )
    # The experiment's first job (plain xpm) starts the fork server before the drop-in is on.
    script = f"""
import sys
sys.path[:0] = [{str(library)!r}, {str(tmp_path)!r}]
from xpm import experiment
from plain import Plain
with experiment({str(ws)!r}, "late") as xp:
    Plain.C(x=1).submit().__xpm__.job.wait()
    import xpm.compat
    xpm.compat.install()
    from xpmlib import Double
    task = Double.C(x=21).submit()
print(task.out.read_text())
"""
    (tmp_path / "experiment.py").write_text(script)
    done = python("", args=[str(tmp_path / "experiment.py")], cwd=tmp_path, env={"XPM_LOCAL_FORK": "1"})
    assert json.loads(check(done).strip().splitlines()[-1])["drop_in"] is True
