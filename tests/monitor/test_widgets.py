"""The monitor's widgets rendered to text, driven by key presses: what a person sees."""

from __future__ import annotations

from pathlib import Path

import pytest
import urwid
from urwid.testing import ScriptedScreen, press, render_text

from tests.commands.conftest import Maker
from tests.monitor.test_model import RUN, big_workspace, fill, ident, short
from xpm import layout
from xpm.monitor.app import run
from xpm.monitor.model import MonitorModel
from xpm.monitor.view import HELP, MonitorView
from xpm.monitor.view_rows import JobWalker

SIZE = (100, 24)


@pytest.fixture
def filled(tmp_path: Path) -> Maker:
    return fill(Maker(tmp_path / "ws"))


def view_of(maker: Maker, **kw) -> MonitorView:
    model = MonitorModel(maker.ws, experiment=kw.pop("experiment", None))
    model.refresh()
    return MonitorView(model, **kw)


def screen(view: MonitorView, size: tuple[int, int] = SIZE) -> str:
    return "\n".join(line.rstrip() for line in render_text(view, size, focus=True))


def typed(view: MonitorView, text: str) -> None:
    assert press(view, SIZE, *text) == []


def test_experiments_screen_shows_each_experiment_with_its_counts(filled: Maker):
    text = screen(view_of(filled))
    assert "Experiments" in text and "All jobs (6 in the workspace)" in text
    [line] = [line for line in text.splitlines() if line.startswith("xp ")]
    assert RUN[1] in line and "node1" in line and "done" in line
    assert "2/5 done  WAITING 1  RUNNING 1  ERROR 1" in line


def test_enter_opens_the_experiment_jobs_with_their_states(filled: Maker):
    view = view_of(filled)
    press(view, SIZE, "enter")
    text = screen(view)
    assert "Jobs of xp (run 20250101_000000)" in text and "5 job(s)  sort: submitted" in text
    rows = [line.split()[:2] for line in text.splitlines()[3:8]]
    assert rows == [["DONE", short(5, "m.eval")], ["WAITING", short(4, "m.eval")], ["RUNNING", short(3)],
                    ["ERROR", short(2)], ["DONE", short(1)]]
    assert "model=splade" in text
    press(view, SIZE, "esc")
    assert "Experiments" in screen(view)


def test_all_jobs_entry_and_sort_key(filled: Maker):
    view = view_of(filled)
    press(view, SIZE, "k", "enter")  # the first entry: every job
    assert "All jobs" in screen(view) and "6 job(s)  sort: updated" in screen(view)
    press(view, SIZE, "s")
    text = screen(view)
    assert "sort: state" in text
    shown = [line.split()[0] for line in text.splitlines()[3:9]]
    assert shown == ["RUNNING", "ERROR", "WAITING", "DONE", "DONE", "DONE"]


def test_filter_box_applies_and_shows_a_bad_expression_in_place(filled: Maker):
    view = view_of(filled, experiment="xp")
    press(view, SIZE, "/")
    typed(view, "@state = ")
    press(view, SIZE, "enter")
    text = screen(view)
    assert "Filter: @state =" in text
    assert "bad filter at column 10: expected a value (a quoted string, a number or a word), found end of" in text
    caret = [line for line in text.splitlines() if line.strip() == "^"]
    assert caret and caret[0].index("^") == len("Filter: ") + 9
    typed(view, "running q")  # still in the box: q is a letter of the expression, not quit
    press(view, SIZE, *["backspace"] * 2, "enter")
    text = screen(view)
    assert "Filter:" not in text and "1 job(s)" in text and "filter: @state = running" in text
    assert "RUNNING     " + short(3) in text and "DONE" not in text.split("DURATION")[1]
    press(view, SIZE, "/", "x", "esc")  # Esc cancels: the filter stays
    assert "filter: @state = running" in screen(view) and "Filter:" not in screen(view)
    press(view, SIZE, "/")  # the box opens empty; ↑ brings the current filter back, Ctrl-U clears it
    assert "\nFilter:\n" in screen(view)
    press(view, SIZE, "up")
    assert "Filter: @state = running" in screen(view)
    press(view, SIZE, "ctrl u", "enter")
    assert "6 job(s)" not in screen(view) and "5 job(s)" in screen(view) and "filter:" not in screen(view)


def test_kill_asks_first_and_names_the_job(filled: Maker):
    view = view_of(filled, experiment="xp")
    press(view, SIZE, "j", "j")  # the running job
    press(view, SIZE, "K")
    text = screen(view)
    assert f"Kill {short(3)} (RUNNING)?" in text and "y kill" in text
    press(view, SIZE, "n")
    text = screen(view)
    assert "Kill " not in text and f"not killed: {short(3)}" in text
    press(view, SIZE, "K", "y")
    text = screen(view)
    assert f"CANCELLED {short(3)}" in text  # its process had already gone
    assert "ERROR       " + short(3) in text


def test_kill_of_a_finished_job_is_refused_without_asking(filled: Maker):
    view = view_of(filled, experiment="xp")
    press(view, SIZE, "K")  # the first row is DONE
    text = screen(view)
    assert "Kill " not in text and "is DONE: only waiting, ready, scheduled or running jobs can be killed" in text


def test_help_lists_every_key(filled: Maker):
    view = view_of(filled)
    press(view, SIZE, "?")
    text = screen(view, (100, 60))
    for _, keys in HELP:
        for key, what in keys:
            assert f"{key:<16}{what}"[:80] in text
    for key in ("q", "?", "/", "K", "c", "o", "s", "j k", "g G"):
        assert key in text
    press(view, SIZE, "esc")
    assert "Experiments" in screen(view)


def test_detail_shows_the_job_and_follows_its_log(filled: Maker):
    view = view_of(filled, experiment="xp")
    key = ("m.train", f"{ident(3):064x}")
    filled.ws.append(layout.job_stderr(*key), b"starting\n")
    press(view, SIZE, "j", "j", "enter")
    text = screen(view, (100, 30))
    assert f"Job {short(3)}" in text and "State       RUNNING" in text
    assert "Folder      " + str(filled.root) in text
    assert "stderr (o: stdout)" in text and "starting" in text
    filled.ws.append(layout.job_stderr(*key), b"epoch 1\nepoch 2 \r50%\r100%\n")
    view.tick()
    text = screen(view, (100, 30))
    assert "epoch 1" in text and "epoch 2 100%" not in text and "\n100%" in text
    press(view, SIZE, "o")
    assert "stdout (o: stderr)" in screen(view, (100, 30)) and "starting" not in screen(view, (100, 30))
    press(view, SIZE, "backspace")
    assert "5 job(s)" in screen(view)
    assert view.model.followed is None


def test_copy_sends_the_job_path_and_shows_it(filled: Maker):
    copied: list[str] = []
    view = view_of(filled, experiment="xp", copy=lambda text: copied.append(text) is None)
    press(view, SIZE, "c")
    path = str(filled.root / layout.job_dir("m.eval", f"{ident(5):064x}"))
    assert copied == [path]
    assert f"copied: {path}"[:95] in screen(view)
    view.copy = None
    press(view, SIZE, "c")
    assert f"path: {path}"[:95] in screen(view)


def test_problems_show_in_the_status_line(filled: Maker):
    filled.ws.append(layout.JOB_INDEX, b"garbage\n")
    view = view_of(filled)
    assert "! " + str(filled.root) + "/index/jobs.jsonl: 1 damaged line(s) skipped" in screen(view, (200, 24))
    assert "Traceback" not in screen(view)


def test_q_quits_anywhere_but_in_the_filter_box(filled: Maker):
    view = view_of(filled, experiment="xp")
    with pytest.raises(urwid.ExitMainLoop):
        press(view, SIZE, "q")
    press(view, SIZE, "/")
    press(view, SIZE, "q")
    press(view, SIZE, "esc")
    with pytest.raises(urwid.ExitMainLoop):
        press(view, SIZE, "q")


def test_jobs_list_makes_widgets_for_the_rows_drawn_only(tmp_path: Path):
    ws = big_workspace(tmp_path / "ws", 10_000)
    model = MonitorModel(ws)
    model.refresh()
    view = MonitorView(model)
    press(view, SIZE, "k", "enter")
    text = screen(view)
    assert "10000 job(s)" in text
    walker = view.jobs.walker
    assert isinstance(walker, JobWalker) and len(walker._widgets) < 30
    press(view, SIZE, "G")
    text = screen(view)
    assert f"big.task0/{0:012x}" in text and view.jobs.selected_job() == ("big.task0", f"{0:064x}")
    press(view, SIZE, "g", "j", "j")
    assert view.jobs.selected_job() == ("big.task1", f"{9_997:064x}")
    assert len(walker._widgets) < 60


def test_focus_stays_on_its_job_when_rows_move(filled: Maker):
    view = view_of(filled, experiment="xp")
    press(view, SIZE, "j", "j")
    assert view.jobs.selected_job() == ("m.train", f"{ident(3):064x}")
    filled.job("m.eval", ident(7), "waiting", experiment=RUN)  # a new first row
    view.tick()
    assert view.jobs.selected_job() == ("m.train", f"{ident(3):064x}")
    assert short(7, "m.eval") in screen(view)


def test_run_draws_and_quits_on_q(filled: Maker):
    scripted = ScriptedScreen(size=SIZE, inputs=[["enter"], ["q"]])
    run(filled.ws, refresh_interval=0.05, screen=scripted)
    text = "\n".join(scripted.last_text)
    assert "Jobs of xp" in text and "RUNNING" in text


def test_detail_log_starts_again_with_a_new_attempt(filled: Maker):
    key = ("m.train", f"{ident(3):064x}")
    err = layout.job_stderr(*key)
    filled.ws.append(err, b"attempt 1: a long line of the first attempt\n")
    view = view_of(filled, experiment="xp")
    press(view, SIZE, "j", "j", "enter")
    view.tick()
    assert "attempt 1" in screen(view, (100, 30))
    filled.store.record_state(*key, "error", "failed")
    filled.ws.rename(err, f"{err}.1")
    filled.store.record_state(*key, "waiting")
    filled.store.record_state(*key, "running")
    filled.ws.append(err, b"attempt 2, growing past the old offset: " + b"x" * 60 + b"\n")
    view.tick()
    text = screen(view, (100, 30))
    assert "attempt 2" in text and "attempt 1" not in text


def test_run_without_a_terminal_says_so(filled: Maker):
    from xpm.monitor.app import NoTerminal

    with pytest.raises(NoTerminal, match="needs a terminal"):
        run(filled.ws)  # pytest captures stdin and stdout: not a terminal
