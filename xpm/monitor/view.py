"""The console monitor's root widget: screens, header, status line, key bindings and actions.

:class:`MonitorView` is a plain urwid widget: tests drive it with ``keypress``
and read it with ``render``; :mod:`xpm.monitor.app` puts it in a main loop that
calls :meth:`MonitorView.tick` every second.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import urwid

from xpm import control, query, state
from xpm.monitor.model import MonitorModel
from xpm.monitor.view_detail import ConfirmKill, DetailScreen, HelpScreen
from xpm.monitor.view_rows import STATE_ATTRS, ExperimentsScreen, JobsScreen, RunsScreen
from xpm.store.index import JobKey

logger = logging.getLogger("xpm.monitor")

#: ``run_action(action, done)``: runs ``action()`` (maybe in a thread), then ``done(result, error)``
ActionRunner = Callable[[Callable[[], Any], Callable[[Any, BaseException | None], None]], None]

#: (name, foreground, background, monochrome): the fourth entry is what a terminal without
#: colours shows (``NO_COLOR`` set, or a mono terminal), so that the cursor row, the header
#: and failures still stand out there.
PALETTE = [
    ("header", "white,bold", "dark blue", "standout"),
    ("keys", "black", "light gray", "standout"),
    ("key", "yellow,bold", "", "bold"),
    ("title", "bold", "", "bold"),
    ("label", "light gray", "", ""),
    ("focus", "black", "light cyan", "standout"),
    ("message", "light green", "", "bold"),
    ("problem", "light red", "", "bold,underline"),
    ("filter error", "light red", "", "bold,underline"),
    ("dialog", "white", "dark red", "standout"),
    ("state unscheduled", "dark gray", "", ""),
    ("state waiting", "light cyan", "", ""),
    ("state ready", "light cyan", "", ""),
    ("state scheduled", "light blue", "", ""),
    ("state running", "yellow,bold", "", "bold"),
    ("state done", "light green", "", ""),
    ("state error", "light red,bold", "", "bold,underline"),
]

#: Every key, by screen (the help screen lists them)
HELP: list[tuple[str, list[tuple[str, str]]]] = [
    ("Everywhere", [
        ("↑ ↓  j k", "move"),
        ("PgUp PgDn", "move by a page"),
        ("g G  Home End", "go to the top, the bottom"),
        ("Enter", "open (an experiment's jobs, a run's jobs, a job's detail)"),
        ("Esc  Backspace", "go back"),
        ("r", "refresh now (the monitor refreshes itself every second)"),
        ("?", "this help"),
        ("q", "quit"),
    ]),
    ("Experiments", [
        ("Enter", "the jobs of the experiment's current run (first line: every job)"),
        ("h", "the runs of the experiment (its history)"),
    ]),
    ("Runs", [
        ("Enter", "the jobs of the run (the header names a run that is not the current one)"),
    ]),
    ("Jobs", [
        ("/", "filter, as `jobs list --filter` (Enter applies, Esc cancels, empty: no filter)"),
        ("  ↑  Ctrl-U", "in the filter box: the current filter; clear up to the cursor"),
        ("s", "next order: submitted, state, task, updated"),
        ("h", "the runs of the experiment"),
        ("Enter", "the job's detail"),
        ("K", "kill the job (asks first: y kills, any other key cancels)"),
        ("c", "copy the job folder's path (to the terminal's clipboard)"),
    ]),
    ("Job detail", [
        ("o", "show stdout instead of stderr (and back)"),
        ("Tab", "move between the details and the log"),
        ("K", "kill the job (asks first)"),
        ("c", "copy the job folder's path"),
    ]),
]


def _sync_runner(action: Callable[[], Any], done: Callable[[Any, BaseException | None], None]) -> None:
    try:
        result = action()
    except Exception as exc:  # noqa: BLE001 - shown in the status line
        done(None, exc)
    else:
        done(result, None)


def outcome_text(outcome: control.Outcome) -> str:
    """What a kill did, as ``jobs kill`` says it: ``KILLED demo.train/986c06c266ed``..."""
    name = query.short_name(outcome.key)
    if outcome.failed:
        return f"KILL FAILED {name}: {outcome.detail}"
    text = f"{outcome.result.upper()} {name}"
    return f"{text}: {outcome.detail}" if outcome.detail else text


class MonitorView(urwid.WidgetWrap):  # type: ignore[misc]
    """The monitor: a stack of screens (experiments, jobs, job detail, help), a kill dialog over them.

    Args:
        model: the model (refreshed by :meth:`tick`).
        copy: copies a text to the clipboard; returns whether it could.
        run_action: how a kill runs (the application runs it in a thread, tests in line).
        kill_grace: seconds a killed job has to stop before it is killed outright.
    """

    def __init__(
        self,
        model: MonitorModel,
        *,
        copy: Callable[[str], bool] | None = None,
        run_action: ActionRunner = _sync_runner,
        kill_grace: float = control.KILL_GRACE,
    ):
        self.model = model
        self.copy = copy
        self.run_action = run_action
        self.kill_grace = kill_grace
        self.message = ""
        self.dialog: ConfirmKill | None = None
        self.header = urwid.Text("", wrap="clip")
        self.status = urwid.Text("", wrap="clip")
        self.problem = urwid.Text("", wrap="clip")
        self.keys = urwid.Text("", wrap="clip")
        self.footer = urwid.Pile([])
        self.frame = urwid.Frame(urwid.SolidFill(" "), header=urwid.AttrMap(self.header, "header"),
                                 footer=self.footer)
        self.jobs = JobsScreen(model, self.open_job)
        self.stack: list[Any] = [ExperimentsScreen(model, self.open_experiment)]
        if model.experiment is not None:
            self.jobs.refresh()
            self.stack.append(self.jobs)
        super().__init__(self.frame)
        self._show()

    # --- screens -------------------------------------------------------------------

    @property
    def screen(self) -> Any:
        return self.stack[-1]

    def push(self, screen: Any) -> None:
        self.stack.append(screen)
        self._show()

    def back(self) -> None:
        if len(self.stack) > 1:
            closed = self.stack.pop()
            if isinstance(closed, DetailScreen):
                closed.close()
            self.screen.refresh()
        self._show()

    def open_experiment(self, experiment_id: str | None) -> None:
        self.model.select(experiment_id)
        if self.model.run is not None:  # (the experiment opens on its current run)
            self.model.select_run(None)
        self.jobs.walker.reset()
        self.jobs.refresh()
        self.push(self.jobs)

    def open_runs(self) -> None:
        """Shows the runs of the experiment in focus (experiments screen) or shown (jobs screen)."""
        screen = self.screen
        experiment = screen.selected() if isinstance(screen, ExperimentsScreen) else self.model.experiment
        if not isinstance(screen, (ExperimentsScreen, JobsScreen)) or experiment is None:
            self.say("no experiment selected: the runs are an experiment's")
        else:
            self.push(RunsScreen(self.model, experiment, self.open_run))

    def open_run(self, experiment_id: str, run_id: str) -> None:
        """Shows the jobs of a run (Esc goes back to the experiments)."""
        self.model.select(experiment_id)
        self.model.select_run(run_id)
        self.jobs.walker.reset()
        self.jobs.refresh()
        del self.stack[1:]
        self.push(self.jobs)

    def open_job(self, key: JobKey) -> None:
        self.push(DetailScreen(self.model, key))

    def _show(self) -> None:
        """Puts the current screen in the frame, with its title and keys."""
        self.frame.body = self.screen
        self._show_header()
        self.keys.set_text(self.screen.keys)
        self._show_status()

    def _show_header(self) -> None:
        self.header.set_text(f" {self.screen.title}  ·  xpm monitor  {self.model.workspace.location}")

    def _show_status(self) -> None:
        self.status.set_text(self.message)
        problems = self.model.problems
        rows: list[Any] = []
        if problems:
            more = f" (+{len(problems) - 1} more: ?)" if len(problems) > 1 else ""
            self.problem.set_text(f"! {problems[-1]}{more}")
            rows.append((urwid.AttrMap(self.problem, "problem"), ("pack", None)))
        if self.message:
            rows.append((urwid.AttrMap(self.status, "message"), ("pack", None)))
        rows.append((urwid.AttrMap(self.keys, "keys"), ("pack", None)))
        self.footer.contents[:] = rows

    def say(self, message: str) -> None:
        """Shows a message in the status line (until the next one)."""
        self.message = message
        self._show_status()

    # --- refreshing ------------------------------------------------------------------

    def tick(self) -> None:
        """Reads what changed and shows it (the main loop calls this every second)."""
        try:
            self.model.refresh()
            self.update()
        except Exception as exc:  # noqa: BLE001 - a bug must not leave a broken terminal behind
            logger.exception("refresh failed")
            self.say(f"refresh failed: {exc}")

    def update(self) -> None:
        """Shows the model again (the rows also show the time that passed: durations)."""
        screen = self.screen
        screen.refresh()
        if isinstance(screen, DetailScreen):
            screen.follow_log()
        self._show_header()
        self._show_status()

    # --- keys ----------------------------------------------------------------------

    def keypress(self, size: Any, key: str) -> str | None:
        if self.dialog is not None:
            self._answer(key)
            return None
        unhandled = self.frame.keypress(size, key)
        if unhandled is None:
            return None
        return self._global_key(unhandled)

    def _global_key(self, key: str) -> str | None:
        if key == "q":
            raise urwid.ExitMainLoop()
        if key == "?":
            if not isinstance(self.screen, HelpScreen):
                self.push(HelpScreen(HELP, self.model.problems))
        elif key in ("esc", "backspace"):
            self.back()
        elif key == "r":
            self.model.refresh()
            self.update()
            self.say("refreshed")
        elif key == "h":
            self.open_runs()
        elif key == "K":
            self._ask_kill()
        elif key == "c":
            self._copy_path()
        else:
            return key
        return None

    # --- actions -------------------------------------------------------------------

    def _ask_kill(self) -> None:
        key = self.screen.selected_job()
        if key is None:
            self.say("no job selected: open a job list first")
            return
        known = self.model.job_state(key) or state.UNSCHEDULED
        if known not in state.KILLABLE:
            self.say(f"{query.short_name(key)} is {query.state_text(known)}: only waiting, ready, scheduled or "
                     "running jobs can be killed")
            return
        self.dialog = ConfirmKill(key, known)
        self._w = urwid.Overlay(self.dialog, self.frame, "center", ("relative", 60), "middle", "pack", min_width=40)

    def _answer(self, answer: str) -> None:
        assert self.dialog is not None
        key = self.dialog.key
        self.dialog = None
        self._w = self.frame
        if answer != "y":
            self.say(f"not killed: {query.short_name(key)}")
            return
        self.say(f"killing {query.short_name(key)}…")
        self.run_action(lambda: self.model.kill(key, grace=self.kill_grace), self._killed)

    def _killed(self, outcome: Any, error: BaseException | None) -> None:
        self.say(outcome_text(outcome) if error is None else f"KILL FAILED: {error}")
        self.model.refresh()
        self.update()

    def _copy_path(self) -> None:
        key = self.screen.selected_job()
        if key is None:
            self.say("no job selected: open a job list first")
            return
        path = self.model.job_path(key)
        copied = False
        if self.copy is not None:
            try:
                copied = self.copy(path)
            except Exception as exc:  # noqa: BLE001 - the path is shown anyway
                logger.debug("copy failed: %s", exc)
        self.say(f"copied: {path}" if copied else f"path: {path}")


__all__ = ["HELP", "PALETTE", "MonitorView", "STATE_ATTRS", "outcome_text"]
