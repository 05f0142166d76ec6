"""The job detail screen (state, parameters, the log followed live), the help screen and the kill dialog."""

from __future__ import annotations

import time
from typing import Any

import urwid

from xpm import query
from xpm.monitor.model import JobDetail, LogFollower, MonitorModel
from xpm.monitor.view_rows import (
    STATE_ATTRS,
    MovingList,
    duration_text,
    progress_text,
    state_label,
    time_text,
)
from xpm.store.index import JobKey

#: Most lines of log kept on screen (the oldest go first)
MAX_LOG_LINES = 5_000


def _line(label: str, value: str, attr: str | None = None) -> urwid.Widget:
    """``label   value``: a line of the job's details."""
    markup: list[Any] = [("label", f"{label:<12}"), (attr, value) if attr else value]
    return urwid.Text(markup, wrap="any")  # long paths break anywhere, not before themselves


class DetailScreen(urwid.WidgetWrap):  # type: ignore[misc]
    """One job: its details above, its stderr (or stdout) below, followed like ``tail -f``.

    Tab moves between the two parts; ``o`` switches between stderr and stdout.
    The model follows this job's events while the screen is open.
    """

    keys = "o stdout/stderr  Tab details/log  K kill  c copy path  Esc back  ? help  q quit"

    def __init__(self, model: MonitorModel, key: JobKey):
        self.model = model
        self.key = key
        self.stream = "stderr"
        self.follower: LogFollower = model.log(key, self.stream)
        model.follow(key)
        self.info = urwid.SimpleFocusListWalker([])
        self.log = urwid.SimpleFocusListWalker([])
        self.log_title = urwid.Text("", wrap="clip")
        #: the last line of the log while it has no newline yet
        self._partial = False
        #: when the job's current attempt started (another one has another log)
        self._started: float | None = None
        self.pile = urwid.Pile(
            [
                ("weight", 2, MovingList(self.info)),
                ("pack", urwid.AttrMap(self.log_title, "title")),
                ("weight", 3, MovingList(self.log)),
            ],
            focus_item=2,
        )
        super().__init__(self.pile)
        self.refresh()
        self.follow_log()

    @property
    def title(self) -> str:
        return f"Job {query.short_name(self.key)}"

    def selected_job(self) -> JobKey | None:
        return self.key

    def close(self) -> None:
        self.model.follow(None)

    # --- details --------------------------------------------------------------------

    def refresh(self) -> None:
        """Shows the job's details again (the model reads them again only when the job changed)."""
        row = self.model.row(self.key)
        started = row.started_at if row is not None else None
        if started is not None and self._started not in (None, started):
            # A new attempt: its log is a new file (the old one was renamed <name>.err.1).
            self._open_log()
        self._started = started or self._started
        detail = self.model.detail(self.key)
        focus = self.info.focus if len(self.info) else 0
        self.info[:] = self._details(detail)
        if len(self.info):
            self.info.set_focus(min(focus, len(self.info) - 1))

    def _details(self, detail: JobDetail) -> list[urwid.Widget]:
        row = self.model.row(self.key)
        record = detail.state
        lines = [_line("Job", f"{self.key[0]}/{self.key[1]}"), _line("Folder", detail.folder)]
        if record is not None:
            state, reason = record.state, record.failure_reason
        elif row is not None:
            state, reason = row.state, row.failure_reason
        else:
            state, reason = self.model.job_state(self.key), None
        if state is not None:
            text = state_label(state, reason)
            if record is not None and record.exit_code is not None:
                text += f"  exit code {record.exit_code}"
            if record is not None and record.retry_count:
                text += f"  retries {record.retry_count}"
            lines.append(_line("State", text, STATE_ATTRS.get(state)))
        started = record.started_at if record is not None else None
        ended = record.ended_at if record is not None else None
        if row is not None and row.started_at is not None:
            started, ended = row.started_at, row.ended_at
        if started is not None:
            times = time_text(started, full=True)
            if ended is not None:
                times += f"  ended {time_text(ended, full=True)}"
            end = ended if ended is not None else time.time()
            lines.append(_line("Started", f"{times}  ({duration_text(max(0.0, end - started))})"))
        if row is not None and row.progress is not None:
            lines.append(_line("Progress", f"{progress_text(row.progress)} {row.progress_desc or ''}".rstrip()))
        if record is not None and record.process:
            process = record.process
            where = f" on {process['host']}" if process.get("host") else ""
            ident = process.get("pid", process.get("jobid", "?"))
            lines.append(_line("Process", f"{process.get('type', '?')} {ident}{where}"))
        if row is not None and row.tags:
            lines.append(_line("Tags", query.tags_text(row.tags)))
        for i, (name, dep_state) in enumerate(detail.dependencies):
            label = "Depends on" if i == 0 else ""
            lines.append(_line(label, f"{name} {query.state_text(dep_state)}", STATE_ATTRS.get(dep_state)))
        if detail.params:
            lines.append(urwid.AttrMap(urwid.Text("Parameters"), "label"))
            lines.extend(urwid.Text(f"  {text}") for text in detail.params)
        for problem in detail.problems:
            lines.append(urwid.AttrMap(urwid.Text(f"! {problem}"), "problem"))
        return [urwid.AttrMap(w, None, "focus") for w in lines]

    # --- the log ----------------------------------------------------------------------

    def toggle_stream(self) -> None:
        """Shows the other log (stdout after stderr, and back)."""
        self.stream = "stdout" if self.stream == "stderr" else "stderr"
        self._open_log()

    def _open_log(self) -> None:
        self.follower = self.model.log(self.key, self.stream)
        self.log[:] = []
        self._partial = False
        self.follow_log()

    def follow_log(self) -> None:
        """Appends what the log gained since the last call (the view stays at the end if it was there)."""
        text = self.follower.read()
        other = "stdout" if self.stream == "stderr" else "stderr"
        title = f"{self.stream} (o: {other})  {self.follower.path}"
        if self.follower.problem:
            title += f"  ! {self.follower.problem}"
        elif self.follower.offset is None:
            title += "  (no such file yet)"
        self.log_title.set_text(title)
        if not text:
            return
        at_end = not len(self.log) or self.log.focus >= len(self.log) - 1
        if self.follower.skipped:
            self.log[:] = [urwid.AttrMap(urwid.Text("… (earlier lines not shown)"), "label")]
            self._partial = False
        lines = text.split("\n")
        if self._partial and len(self.log):
            lines[0] = self._visible(self.log[-1].base_widget.text) + lines[0]
            del self.log[-1]
        self._partial = lines[-1] != ""
        if not self._partial:
            lines.pop()
        self.log.extend(urwid.Text(self._visible(line)) for line in lines)
        if len(self.log) > MAX_LOG_LINES:
            del self.log[: len(self.log) - MAX_LOG_LINES]
        if at_end and len(self.log):
            self.log.set_focus(len(self.log) - 1)

    @staticmethod
    def _visible(line: str) -> str:
        """What a terminal would show of a line that rewrites itself with carriage returns (progress bars)."""
        if "\r" in line:
            parts = [p for p in line.split("\r") if p]
            line = parts[-1] if parts else ""
        return line.expandtabs()

    def keypress(self, size: Any, key: str) -> str | None:
        if key == "o":
            self.toggle_stream()
            return None
        if key == "tab":
            self.pile.focus_position = 0 if self.pile.focus_position == 2 else 2
            return None
        return super().keypress(size, key)  # type: ignore[no-any-return]


class HelpScreen(urwid.WidgetWrap):  # type: ignore[misc]
    """Every key, by screen, and what the monitor could not read."""

    title = "Help"
    keys = "Esc back  q quit"

    def __init__(self, sections: list[tuple[str, list[tuple[str, str]]]], problems: list[str]):
        lines: list[urwid.Widget] = []
        for name, keys in sections:
            lines.append(urwid.AttrMap(urwid.Text(name), "title"))
            lines.extend(urwid.Text([("key", f"  {k:<16}"), what]) for k, what in keys)
            lines.append(urwid.Text(""))
        if problems:
            lines.append(urwid.AttrMap(urwid.Text("Could not read"), "title"))
            lines.extend(urwid.AttrMap(urwid.Text(f"  {p}"), "problem") for p in problems)
        self.walker = urwid.SimpleFocusListWalker([urwid.AttrMap(w, None, "focus") for w in lines])
        super().__init__(MovingList(self.walker))

    def selected_job(self) -> JobKey | None:
        return None

    def refresh(self) -> None:
        pass


class ConfirmKill(urwid.WidgetWrap):  # type: ignore[misc]
    """``Kill demo.train/986c06c266ed (RUNNING)?``: ``y`` confirms, any other key cancels."""

    def __init__(self, key: JobKey, state: str):
        self.key = key
        text = urwid.Text(
            [f"Kill {query.short_name(key)} ", (STATE_ATTRS.get(state), f"({query.state_text(state)})"), "?\n\n",
             ("key", "y"), " kill   ", ("key", "any other key"), " cancel"],
            align="center",
        )
        super().__init__(urwid.AttrMap(urwid.LineBox(urwid.Padding(text, left=1, right=1), title="Kill"), "dialog"))

    def selectable(self) -> bool:
        return True

    def keypress(self, size: Any, key: str) -> str | None:
        return key
