"""A workspace where an experiment ran twice with different jobs: what the monitors' runs screens list."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import NamedTuple

from tests.run.conftest import script_env
from xpm.store.runs import RunStore
from xpm.workspace import LocalWorkspace

SCRIPT = """
    from xpm import experiment, tag
    from tests.run.tasks import Record

    with experiment({ws!r}, "twice") as xp:
        for key in {keys!r}:
            Record.C(key=tag(key), log={log!r}, fail=key.endswith("bad")).submit()
"""


class TwoRuns(NamedTuple):
    ws: Path
    #: the run ids, oldest first
    runs: list[str]


def run_twice(root: Path) -> TwoRuns:
    """Runs the experiment ``twice``: first ``old-a``, ``old-b`` and ``old-bad`` (which fails), then ``new``;
    the first run is tagged ``baseline``."""
    ws = root / "workspace"
    config = root / "config"
    config.mkdir(parents=True, exist_ok=True)
    for n, keys in enumerate((["old-a", "old-b", "old-bad"], ["new"])):
        script = root / f"run{n}.py"
        script.write_text(textwrap.dedent(SCRIPT.format(ws=str(ws), keys=keys, log=str(root / "log"))))
        done = subprocess.run([sys.executable, str(script)], cwd=root, env=script_env(XPM_CONFIG_DIR=str(config)),
                              capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == (1 if n == 0 else 0), done.stderr  # (old-bad fails the first run)
    store = RunStore(LocalWorkspace(str(ws)))
    runs = store.run_ids("twice")
    assert len(runs) == 2
    store.tag("twice", runs[0], "baseline")
    return TwoRuns(ws, runs)
