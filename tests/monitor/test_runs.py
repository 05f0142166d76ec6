"""The runs of an experiment in the monitor's model: listed with their counts and tags, and opened."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.monitor.runs import TwoRuns, run_twice
from tests.monitor.test_model import CountingWorkspace
from xpm import layout
from xpm.monitor.model import MonitorModel


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> TwoRuns:
    return run_twice(tmp_path_factory.mktemp("runs"))


def keys(model: MonitorModel) -> list[str]:
    return [model.job_row(i).tags["key"] for i in range(model.job_count())]


def test_the_runs_are_listed_newest_first_with_their_jobs_and_tags(two_runs: TwoRuns) -> None:
    model = MonitorModel(CountingWorkspace(str(two_runs.ws)))
    model.refresh()
    new, old = model.run_rows("twice")
    assert (new.run_id, new.current, new.status, new.tags) == (two_runs.runs[1], True, "done", [])
    assert (new.done, new.errors, new.total) == (1, 0, 1)
    assert (old.run_id, old.current, old.status, old.tags) == (two_runs.runs[0], False, "failed", ["baseline"])
    assert (old.done, old.errors, old.total) == (2, 1, 3)
    assert old.ended_at is not None and old.started_at is not None
    assert old.duration(0.0) == old.ended_at - old.started_at
    assert model.problems == []


def test_opening_an_older_run_shows_its_jobs(two_runs: TwoRuns) -> None:
    model = MonitorModel(CountingWorkspace(str(two_runs.ws)), experiment="twice")
    model.refresh()
    assert keys(model) == ["new"] and model.run is None and model.shown_run() == two_runs.runs[1]

    model.select_run(two_runs.runs[0])
    assert model.run == model.shown_run() == two_runs.runs[0]
    assert keys(model) == ["old-bad", "old-b", "old-a"]  # submitted, last first
    assert model.job_row(0).state == "error"
    model.set_filter('@state = "done"')
    assert keys(model) == ["old-b", "old-a"]
    model.set_filter("")
    model.refresh()  # nothing changed: the older run stays on screen
    assert keys(model) == ["old-bad", "old-b", "old-a"]

    # Its current run's id, or None: the current run again (and it follows the current ref).
    model.select_run(two_runs.runs[1])
    assert model.run is None and keys(model) == ["new"]
    model.select_run(two_runs.runs[0])
    model.select(None)
    assert model.run is None and model.shown_run() is None and len(keys(model)) == 4
    model.select("twice")
    assert keys(model) == ["new"]  # another experiment selected: its current run


def test_a_run_is_read_once(two_runs: TwoRuns) -> None:
    ws = CountingWorkspace(str(two_runs.ws))
    model = MonitorModel(ws, experiment="twice")
    model.refresh()
    old = layout.run_jobs("twice", two_runs.runs[0])
    assert ws.read[old] == 0  # (not listed yet)
    for _ in range(3):
        model.run_rows("twice")
        model.select_run(two_runs.runs[0])
        assert not model.refresh()
    size = (two_runs.ws / old).stat().st_size
    assert ws.read[old] == size
    assert ws.read[layout.run_record("twice", two_runs.runs[0])] == (two_runs.ws / layout.run_record(
        "twice", two_runs.runs[0])).stat().st_size


def test_a_run_that_is_not_there(two_runs: TwoRuns, tmp_path: Path) -> None:
    model = MonitorModel(CountingWorkspace(str(two_runs.ws)), experiment="twice")
    model.refresh()
    model.select_run("19990101_000000")
    assert model.job_count() == 0
    assert model.run_rows("nope") == []
    with pytest.raises(ValueError):
        MonitorModel(CountingWorkspace(str(tmp_path))).select_run("x")


def test_the_runs_screen_of_the_console_monitor(two_runs: TwoRuns) -> None:
    from urwid.testing import press, render_text

    from xpm.monitor.view import MonitorView

    size = (110, 20)

    def screen() -> str:
        return "\n".join(line.rstrip() for line in render_text(view, size, focus=True))

    model = MonitorModel(CountingWorkspace(str(two_runs.ws)))
    model.refresh()
    view = MonitorView(model)
    press(view, size, "up")  # "All jobs": no experiment, no runs
    press(view, size, "h")
    assert "no experiment selected" in screen()
    press(view, size, "down", "h")
    text = screen()
    assert "Runs of twice" in text and "h runs" not in text and "Enter jobs of the run" in text
    press(view, size, "j", "enter")
    text = screen()
    assert f"Jobs of twice, run {two_runs.runs[0]} (not the current run)" in text and "3 job(s)" in text
    press(view, size, "h")  # from the jobs: the focus on the run shown
    press(view, size, "enter")
    assert f"run {two_runs.runs[0]} (not the current run)" in screen()
    press(view, size, "esc")
    assert "Experiments" in screen()
    press(view, size, "enter")
    assert f"Jobs of twice (run {two_runs.runs[1]})" in screen() and "1 job(s)" in screen()


def test_the_runs_over_a_monitor_server(two_runs: TwoRuns) -> None:
    """The same runs, asked of `experiments monitor-server` (the ssh-monitor's server mode)."""
    import sys

    from xpm.monitor.remote import RemoteModel, ServerConnection

    command = [sys.executable, "-m", "xpm", "experiments", "monitor-server", "--workdir", str(two_runs.ws)]
    connection = ServerConnection(command, "the test server")
    remote = RemoteModel(connection, f"ssh://host{two_runs.ws}", connection.hello(60), experiment="twice")
    try:
        remote.refresh()
        new, old = remote.run_rows("twice")
        assert (new.run_id, new.current, new.total) == (two_runs.runs[1], True, 1)
        assert (old.run_id, old.tags, old.done, old.errors, old.total) == (two_runs.runs[0], ["baseline"], 2, 1, 3)
        assert [remote.job_row(i).tags["key"] for i in range(remote.job_count())] == ["new"]
        remote.select_run(two_runs.runs[0])
        remote.refresh()
        assert [remote.job_row(i).tags["key"] for i in range(remote.job_count())] == ["old-bad", "old-b", "old-a"]
        remote.select("twice")  # the same experiment: the run stays
        assert remote.run == two_runs.runs[0]
        remote.select(None)
        remote.refresh()
        assert remote.run is None and remote.job_count() == 4
    finally:
        remote.close()
