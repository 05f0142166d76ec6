"""The console monitor application: ``run(workspace)`` until the user presses ``q``."""

from __future__ import annotations

import sys
import threading
from typing import Any, Callable

from xpm.errors import XpmError
from xpm.workspace import Workspace


class NoTerminal(XpmError):
    """The console monitor needs a terminal to draw on, and stdin or stdout is not one."""

    def __init__(self) -> None:
        super().__init__("the console monitor needs a terminal: stdin and stdout must be one")


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


def run(
    workspace: Workspace | None,
    *,
    experiment: str | None = None,
    refresh_interval: float = 1.0,
    screen: Any = None,
    model: Any = None,
) -> None:
    """Runs the monitor in the terminal until the user presses ``q`` (the terminal is left as it was).

    Args:
        workspace: the workspace to show (local or SSH); None when ``model`` is given.
        experiment: open on the jobs of this experiment (None: the experiments).
        refresh_interval: seconds between two refreshes (the main loop's alarm: no thread).
        screen: an urwid screen (``raw_display.Screen``, ``curses_display.Screen``, a test
            screen); None for urwid's default on the current terminal.

    Raises:
        NoTerminal: ``screen`` is None and stdin or stdout is not a terminal.
    """
    if screen is None and not (_is_terminal(sys.stdin) and _is_terminal(sys.stdout)):
        raise NoTerminal()
    import urwid

    from xpm.monitor.model import MonitorModel
    from xpm.monitor.view import PALETTE, MonitorView

    if model is None:
        assert workspace is not None
        model = MonitorModel(workspace, experiment=experiment)
    model.refresh()
    pending: list[threading.Thread] = []
    loop: urwid.MainLoop

    def copy(text: str) -> bool:
        copy_to_clipboard = getattr(loop.screen, "copy_to_clipboard", None)
        if copy_to_clipboard is None:
            return False
        copy_to_clipboard(text)  # OSC 52: the terminal (or tmux) copies it, also over SSH
        return True

    def run_action(action: Callable[[], Any], done: Callable[[Any, BaseException | None], None]) -> None:
        # A kill may wait for its grace period: the screen must stay live meanwhile.
        result: dict[str, Any] = {}

        def work() -> None:
            try:
                result["value"] = action()
            except Exception as exc:  # noqa: BLE001 - reported in the status line
                result["error"] = exc

        thread = threading.Thread(target=work, name="xpm-monitor-action", daemon=True)
        pending.append(thread)
        thread.start()

        def poll(loop_: urwid.MainLoop, _: Any) -> None:
            if thread.is_alive():
                loop_.set_alarm_in(0.1, poll)
                return
            pending.remove(thread)
            done(result.get("value"), result.get("error"))

        loop.set_alarm_in(0.1, poll)

    view = MonitorView(model, copy=copy, run_action=run_action)

    def tick(loop_: urwid.MainLoop, _: Any) -> None:
        view.tick()
        loop_.set_alarm_in(refresh_interval, tick)

    loop = urwid.MainLoop(view, PALETTE, screen=screen, handle_mouse=False)
    # A first refresh soon: it reads the progress and times of the rows just drawn.
    loop.set_alarm_in(min(0.1, refresh_interval), tick)
    loop.run()
    for thread in pending:
        thread.join()  # a kill under way finishes (its SIGKILL after the grace period)
