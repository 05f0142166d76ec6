"""Pruning past runs with the ``history`` settings (``cleanup_experiment_history``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from xpm import Param, Task, experiment
from xpm.errors import XpmError
from xpm.history import cleanup_experiment_history, prune_runs, runs_to_prune
from xpm.settings import HistorySettings
from xpm.store.runs import RunStore
from xpm.workspace import Workspace

RUNS = [
    ("20261201_100000", "done"),
    ("20261201_110000", "failed"),
    ("20261201_120000", "done"),
    ("20261201_130000", "failed"),
    ("20261201_140000", "running"),
    ("20261201_150000", None),
]


def test_the_rules_in_order():
    # experimaestro's example: max_done=2, max_failed=1 removes the failure superseded by 12:00
    assert runs_to_prune(RUNS, HistorySettings(max_done=2, max_failed=1)) == ["20261201_110000"]
    assert runs_to_prune(RUNS, HistorySettings(max_done=1, max_failed=0)) == [
        "20261201_100000",
        "20261201_110000",
        "20261201_130000",
    ]
    # Only what is limited is pruned; running runs and unknown ones never
    assert runs_to_prune(RUNS, HistorySettings(max_done=0)) == ["20261201_100000", "20261201_120000"]
    assert runs_to_prune(RUNS, HistorySettings()) == []
    # The current run is never removed
    assert runs_to_prune(RUNS, HistorySettings(max_done=0), current="20261201_120000") == ["20261201_100000"]
    # Suffixed runs sort after their base
    assert runs_to_prune([("20261201_100000.2", "done"), ("20261201_100000.10", "done")],
                         HistorySettings(max_done=1)) == ["20261201_100000.2"]


class Step(Task):
    __xpmid__ = "tests.history.step"
    n: Param[int]

    def execute(self) -> None:
        pass


def test_old_runs_go_their_jobs_stay(tmp_path: Path):
    ws_path = tmp_path / "ws"
    for n in range(3):
        with experiment(ws_path, "hist"):
            Step.C(n=n).submit()
    ws = Workspace.open(ws_path)
    store = RunStore(ws)
    runs = store.run_ids("hist")
    assert len(runs) == 3
    # Nothing is removed unless the settings ask
    assert prune_runs(ws, "hist", HistorySettings()) == []
    # max_done counts the runs besides the current one (the latest)
    removed = cleanup_experiment_history(ws_path / "experiments" / "hist", history=HistorySettings(max_done=1))
    assert [p.name for p in removed] == runs[:1]
    assert store.run_ids("hist") == runs[1:]
    assert len(list((ws_path / "jobs" / "tests.history.step").iterdir())) == 3  # every job is kept
    with pytest.raises(XpmError, match="is the current run of the experiment: it is kept"):
        store.remove_run("hist", runs[2])


def test_an_experiment_that_ends_well_prunes_as_the_settings_ask(tmp_path: Path):
    from xpm.settings import WorkspaceSettings

    settings = WorkspaceSettings("pruned", tmp_path / "ws", history=HistorySettings(max_done=1))
    runs = []
    for n in range(3):
        with experiment(settings, "pruned") as xp:
            Step.C(n=n).submit()
            runs.append(Path(xp.workdir).name)
    store = RunStore(Workspace.open(tmp_path / "ws"))
    assert store.run_ids("pruned") == runs[1:]  # the current run and one more
