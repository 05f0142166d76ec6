"""The list screens of the console monitor: experiments, the runs of one, and jobs (with the filter box).

The jobs list never builds a widget per job: :class:`JobWalker` asks the model
for the rows the list box draws, by position.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import urwid

from xpm import query, state
from xpm.filter import FilterError
from xpm.monitor.model import ExperimentRow, JobRow, MonitorModel, RunRow
from xpm.schema import JOB_STATES
from xpm.store.index import JobKey

#: Display attribute of each state (the palette of :mod:`xpm.monitor.view` colours them)
STATE_ATTRS = {state: f"state {state}" for state in JOB_STATES}
#: Every display attribute of a row shown reversed when the row has the focus
FOCUS_MAP: dict[Any, str] = {None: "focus", **{attr: "focus" for attr in STATE_ATTRS.values()}}

#: Widths of the columns of the jobs list
STATE_WIDTH, PROGRESS_WIDTH, STARTED_WIDTH, DURATION_WIDTH = 11, 4, 11, 8


# --- text of values ---------------------------------------------------------------------


def time_text(ts: float | None, *, full: bool = False) -> str:
    """A time in local time: ``11-26 17:43`` (``2025-11-26 17:43:54`` with ``full``); '' for None."""
    if ts is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S" if full else "%m-%d %H:%M", time.localtime(ts))


def duration_text(seconds: float | None) -> str:
    """``42s``, ``12m05s``, ``3h04m``, ``2d03h``; '' for None."""
    if seconds is None:
        return ""
    s = int(seconds)
    if s < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def progress_text(progress: float | None) -> str:
    return "" if progress is None else f"{max(0.0, min(1.0, progress)) * 100:.0f}%"


def state_label(job_state: str, failure_reason: str | None = None) -> str:
    """``RUNNING``, ``ERROR`` (``ERROR (cancelled)`` when a reason is given)."""
    text = query.state_text(job_state)
    return f"{text} ({failure_reason})" if failure_reason else text


def counts_text(row: ExperimentRow) -> str:
    """``6/8 done  RUNNING 1  ERROR 1``: done out of all, then the other states by lifecycle."""
    parts = [f"{row.finished}/{row.total} done"]
    parts += [f"{query.state_text(s)} {row.states[s]}" for s in JOB_STATES if s != state.DONE and row.states.get(s)]
    return "  ".join(parts)


# --- shared widgets -----------------------------------------------------------------------


class Selectable(urwid.WidgetWrap):  # type: ignore[misc]
    """A row that takes the focus (and passes every key on)."""

    def selectable(self) -> bool:
        return True

    def keypress(self, size: Any, key: str) -> str:
        return key


class MovingList(urwid.ListBox):  # type: ignore[misc]
    """A list box that also moves with ``j``/``k`` and jumps with ``g``/``G`` (and Home/End)."""

    def keypress(self, size: Any, key: str) -> str | None:
        key = {"j": "down", "k": "up"}.get(key, key)
        if key in ("g", "home", "G", "end"):
            last = self._last_position()
            if last is None:
                return None
            if key in ("g", "home"):
                self.set_focus(0, coming_from="below")
                self.set_focus_valign("top")
            else:
                self.set_focus(last, coming_from="above")
                self.set_focus_valign("bottom")
            return None
        return super().keypress(size, key)  # type: ignore[no-any-return]

    def _last_position(self) -> int | None:
        body = self.body
        if isinstance(body, JobWalker):
            count = body.model.job_count()
        else:
            count = len(body)
        return count - 1 if count else None


def _cell(text: str, attr: str | None = None, **kw: Any) -> urwid.Widget:
    widget = urwid.Text(text, wrap="clip", **kw)
    return urwid.AttrMap(widget, attr) if attr else widget


class IdsScreen(urwid.WidgetWrap):  # type: ignore[misc]
    """A list screen whose rows stand for ids: ``ids[i]`` is the id of the row ``i`` of ``walker``."""

    ids: list[Any]
    walker: Any

    def selected(self) -> Any:
        """The id of the row in focus (None: no row)."""
        _, position = self.walker.get_focus()
        return self.ids[position] if position is not None and position < len(self.ids) else None

    def selected_job(self) -> JobKey | None:
        return None  # (no job here: K and c say so)


# --- experiments -----------------------------------------------------------------------


class ExperimentsScreen(IdsScreen):
    """Every experiment with its current run; the first entry is "all jobs" (id None). Enter opens one."""

    title = "Experiments"
    keys = "Enter jobs  h runs  ↑↓ jk move  r refresh  ? help  q quit"

    def __init__(self, model: MonitorModel, on_open: Callable[[str | None], None]):
        self.model = model
        self.on_open = on_open
        self.walker = urwid.SimpleFocusListWalker([])
        self.ids: list[str | None] = []
        self.names = urwid.Text("", wrap="clip")
        self.list = MovingList(self.walker)
        self.pile = urwid.Pile([("pack", urwid.AttrMap(self.names, "title")), self.list])
        super().__init__(self.pile)
        self.refresh()

    def refresh(self) -> None:
        first = not self.ids
        focused = self.selected()
        rows = self.model.experiments()
        width = max([10, *(len(row.experiment_id) for row in rows)])
        self.pile.contents[0] = (urwid.AttrMap(self._columns(width, "EXPERIMENT", "RUN", "HOST", "STARTED",
                                                             "STATUS", "JOBS"), "title"), ("pack", None))
        widgets = [Selectable(_cell(f"All jobs ({self.model.indexed_count()} in the workspace)"))]
        self.ids = [None]
        for row in rows:
            self.ids.append(row.experiment_id)
            widgets.append(Selectable(self._columns(
                width, row.experiment_id, row.run_id or "(no run)", row.hostname or "", time_text(row.started_at),
                row.status or "", counts_text(row),
            )))
        self.walker[:] = [urwid.AttrMap(w, None, FOCUS_MAP) for w in widgets]
        if first:  # the experiment shown, or else the first one
            focused = self.model.experiment if self.model.experiment in self.ids else None
            position = self.ids.index(focused) if focused is not None else min(1, len(self.ids) - 1)
        else:
            position = self.ids.index(focused) if focused in self.ids else 0
        self.walker.set_focus(position)

    @staticmethod
    def _columns(width: int, *cells: str) -> urwid.Widget:
        experiment, run, host, started, status, jobs = cells
        return urwid.Columns(
            [(min(width, 40), _cell(experiment)), (15, _cell(run)), (12, _cell(host)), (11, _cell(started)),
             (7, _cell(status)), _cell(jobs)],
            dividechars=1,
        )

    def keypress(self, size: Any, key: str) -> str | None:
        if key == "enter":
            self.on_open(self.selected())
            return None
        return super().keypress(size, key)  # type: ignore[no-any-return]


# --- runs -------------------------------------------------------------------------------


def run_counts_text(row: RunRow) -> str:
    """``2/3 done  1 error``: done out of all, then those in error."""
    return f"{row.done}/{row.total} done" + (f"  {row.errors} error" if row.errors else "")


class RunsScreen(IdsScreen):
    """The runs of an experiment, newest first (as ``experiments history``); Enter opens a run's jobs."""

    keys = "Enter jobs of the run  ↑↓ jk move  Esc back  ? help  q quit"

    def __init__(self, model: MonitorModel, experiment_id: str, on_open: Callable[[str, str], None]):
        self.model = model
        self.experiment_id = experiment_id
        self.on_open = on_open
        self.walker: urwid.SimpleFocusListWalker[Any] = urwid.SimpleFocusListWalker([])
        self.ids: list[str] = []
        names = self._columns("RUN", "STATUS", "STARTED", "DURATION", "JOBS", "TAGS")
        self.list = MovingList(self.walker)
        super().__init__(urwid.Pile([("pack", urwid.AttrMap(names, "title")), self.list]))
        self.refresh()

    @property
    def title(self) -> str:
        return f"Runs of {self.experiment_id}"

    def refresh(self) -> None:
        """Lists the runs again, the focus staying on its run (at first: on the run whose jobs were shown)."""
        focused = self.selected() if self.ids else (self.model.run if self.model.experiment == self.experiment_id
                                                    else None)
        rows = self.model.run_rows(self.experiment_id)
        now = time.time()
        self.ids = [row.run_id for row in rows]
        self.walker[:] = [
            urwid.AttrMap(Selectable(self._columns(
                row.run_id + (" (current)" if row.current else ""), row.status or "?", time_text(row.started_at),
                duration_text(row.duration(now)), run_counts_text(row), ", ".join(row.tags),
            )), None, FOCUS_MAP)
            for row in rows
        ]
        if self.ids:
            self.walker.set_focus(self.ids.index(focused) if focused in self.ids else 0)

    @staticmethod
    def _columns(*cells: str) -> urwid.Widget:
        run, status, started, duration, jobs, tags = cells
        return urwid.Columns(
            [(27, _cell(run)), (7, _cell(status)), (11, _cell(started)), (DURATION_WIDTH, _cell(duration)),
             (22, _cell(jobs)), _cell(tags)],
            dividechars=1,
        )

    def keypress(self, size: Any, key: str) -> str | None:
        if key == "enter":
            run_id = self.selected()
            if run_id is not None:
                self.on_open(self.experiment_id, run_id)
            return None
        return super().keypress(size, key)  # type: ignore[no-any-return]


# --- jobs -------------------------------------------------------------------------------


def job_row_widget(row: JobRow, now: float) -> urwid.Widget:
    """One line of the jobs list: state, job, progress, start time, duration, tags."""
    label = urwid.AttrMap(urwid.Text(query.state_text(row.state), wrap="clip"), STATE_ATTRS.get(row.state))
    columns = urwid.Columns(
        [
            (STATE_WIDTH, label),
            ("weight", 3, _cell(row.name)),
            (PROGRESS_WIDTH, _cell(progress_text(row.progress), align="right")),
            (STARTED_WIDTH, _cell(time_text(row.started_at))),
            (DURATION_WIDTH, _cell(duration_text(row.duration(now)), align="right")),
            ("weight", 2, _cell(query.tags_text(row.tags))),
        ],
        dividechars=1,
    )
    return urwid.AttrMap(Selectable(columns), None, FOCUS_MAP)


class JobWalker(urwid.ListWalker):  # type: ignore[misc]
    """The rows of the model, by position: a widget is made only for the rows drawn.

    The focus follows a job, not a position: when the rows change, the focus
    stays on the job it was on (or on the same position if that job left).
    """

    def __init__(self, model: MonitorModel):
        self.model = model
        self.focus = 0
        self.focus_key: JobKey | None = None
        self.now = time.time()
        self._widgets: dict[int, urwid.Widget] = {}

    def __getitem__(self, position: int) -> urwid.Widget:
        if not 0 <= position < self.model.job_count():
            raise IndexError(position)
        widget = self._widgets.get(position)
        if widget is None:
            widget = self._widgets[position] = job_row_widget(self.model.job_row(position), self.now)
        return widget

    def __length_hint__(self) -> int:
        return self.model.job_count()

    def next_position(self, position: int) -> int:
        if position + 1 >= self.model.job_count():
            raise IndexError(position)
        return position + 1

    def prev_position(self, position: int) -> int:
        if position <= 0:
            raise IndexError(position)
        return position - 1

    def set_focus(self, position: int) -> None:
        self.focus = position
        self.focus_key = self.model.job_key(position) if 0 <= position < self.model.job_count() else None
        self._modified()

    def selected(self) -> JobKey | None:
        count = self.model.job_count()
        if count == 0:
            return None
        return self.focus_key or self.model.job_key(min(self.focus, count - 1))

    def reset(self) -> None:
        """Other rows (another experiment): the focus goes to the first."""
        self.focus, self.focus_key = 0, None
        self.changed()

    def changed(self) -> None:
        """The rows changed (or time passed): forget the widgets made, keep the focus on its job."""
        self._widgets.clear()
        self.now = time.time()
        count = self.model.job_count()
        position = self.model.job_position(self.focus_key) if self.focus_key is not None else None
        if position is None:
            position = max(0, min(self.focus, count - 1))
        self.focus = position
        self.focus_key = self.model.job_key(position) if count else None
        self._modified()


class JobsScreen(urwid.WidgetWrap):  # type: ignore[misc]
    """The jobs of the model's scope; ``/`` opens the filter box, ``s`` changes the order."""

    keys = "Enter detail  / filter  s sort  h runs  K kill  c copy path  Esc back  ? help  q quit"
    filter_caption = "Filter: "

    def __init__(self, model: MonitorModel, on_open: Callable[[JobKey], None]):
        self.model = model
        self.on_open = on_open
        self.walker = JobWalker(model)
        self.list = MovingList(self.walker)
        self.summary = urwid.Text("", wrap="clip")
        names = urwid.Columns(
            [(STATE_WIDTH, _cell("STATE")), ("weight", 3, _cell("JOB")), (PROGRESS_WIDTH, _cell("PROG")),
             (STARTED_WIDTH, _cell("STARTED")), (DURATION_WIDTH, _cell("DURATION", align="right")),
             ("weight", 2, _cell("TAGS"))],
            dividechars=1,
        )
        self.edit = urwid.Edit(self.filter_caption)
        self.error = urwid.Text("")
        self.filtering = False
        self.pile = urwid.Pile(
            [("pack", urwid.AttrMap(self.summary, "title")), ("pack", urwid.AttrMap(names, "title")), self.list]
        )
        super().__init__(self.pile)  # empty until refresh(): the rows are sorted when first shown

    @property
    def title(self) -> str:
        experiment = self.model.experiment
        if experiment is None:
            return "All jobs"
        if self.model.run is not None:
            return f"Jobs of {experiment}, run {self.model.run} (not the current run)"
        run = next((r.run_id for r in self.model.experiments() if r.experiment_id == experiment), None)
        return f"Jobs of {experiment}" + (f" (run {run})" if run else "")

    def selected_job(self) -> JobKey | None:
        return self.walker.selected()

    def refresh(self) -> None:
        """Shows the model's rows again, the focus staying on the same job if it is still there."""
        self.walker.changed()
        count = self.model.job_count()
        parts = [f"{count} job(s)", f"sort: {self.model.sort}"]
        if self.model.filter_text:
            parts.append(f"filter: {self.model.filter_text}")
        self.summary.set_text("  ".join(parts))

    # --- the filter box -------------------------------------------------------------

    def open_filter(self) -> None:
        """Opens the box empty (as a search in ``less`` or ``vim``); ↑ brings back the current filter."""
        self.filtering = True
        self.edit.set_edit_text("")
        self.error.set_text("")
        self.pile.contents.append((self.edit, ("pack", None)))
        self.pile.contents.append((urwid.AttrMap(self.error, "filter error"), ("pack", None)))
        self.pile.focus_position = len(self.pile.contents) - 2

    def close_filter(self) -> None:
        self.filtering = False
        del self.pile.contents[3:]
        self.pile.focus_position = 2

    def apply_filter(self) -> bool:
        """Applies the expression of the box; a malformed one is explained under it (the box stays)."""
        try:
            self.model.set_filter(self.edit.edit_text)
        except FilterError as exc:
            caret = " " * (len(self.filter_caption) + max(exc.column, 1) - 1) + "^"
            self.error.set_text(f"{caret}\n{exc}")
            return False
        self.close_filter()
        self.refresh()
        return True

    def keypress(self, size: Any, key: str) -> str | None:
        if self.filtering:
            if key == "enter":
                self.apply_filter()
            elif key == "esc":
                self.close_filter()
            elif key == "up":
                self.edit.set_edit_text(self.model.filter_text)
                self.edit.set_edit_pos(len(self.edit.edit_text))
            elif key == "ctrl u":  # as in a shell: delete up to the cursor
                self.edit.set_edit_text(self.edit.edit_text[self.edit.edit_pos :])
                self.edit.set_edit_pos(0)
            else:
                self.pile.keypress(size, key)
            return None  # every key goes to the box while it is open (q does not quit)
        if key == "/":
            self.open_filter()
            return None
        if key == "s":
            self.model.next_sort()
            self.refresh()
            return None
        if key == "enter":
            job = self.selected_job()
            if job is not None:
                self.on_open(job)
            return None
        return super().keypress(size, key)  # type: ignore[no-any-return]
