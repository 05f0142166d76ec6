"""``jobs log``: print a job's log, and follow it like ``tail -f`` until the job ends."""

from __future__ import annotations

import sys
import time
from typing import Any

from xpm import layout, state
from xpm.errors import XpmError
from xpm.store.jobs import JobStore

#: How often a followed log is read again (seconds)
FOLLOW_INTERVAL = 0.25


class NoLog(XpmError):
    """A job without the log asked for (it never started, or its folder was emptied)."""


def print_log(ws: Any, jobid: str, suffix: str, follow: bool) -> None:
    """Writes the log ``<name>.<suffix>`` of a job to stdout; with ``follow``, until the job ends.

    Raises:
        InvalidJobId, UnknownJob: ``jobid`` does not designate a job.
        NoLog: the job has no such log (and is not running, when following).
    """
    from xpm.control import Handlers

    store = JobStore(ws)
    handlers = Handlers(store)
    key = store.resolve(jobid)
    rel = layout.job_stdout(*key) if suffix == "out" else layout.job_stderr(*key)
    offset = 0
    out = sys.stdout.buffer
    try:
        while True:
            # Read the state before the log: a job that ended has written all
            # of its log before recording its end, so one more read gets the rest.
            ended = _ended(store, key, handlers if follow else None)
            try:
                data = ws.read_from(rel, offset)
            except XpmError:
                data = None
                if not follow or ended:
                    raise NoLog(f"job {jobid} has no {_what(suffix)} log ({ws.describe(rel)})") from None
            if data:
                out.write(data)
                out.flush()
                offset += len(data)
            if not follow or ended:
                return
            time.sleep(FOLLOW_INTERVAL)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except BrokenPipeError:
        from xpm.cli.common import quiet_broken_pipe

        quiet_broken_pipe()


def _ended(store: Any, key: tuple[str, str], handlers: Any = None) -> bool:
    try:
        record = store.state(*key)
    except XpmError:
        return True  # an unreadable record: nothing to wait for
    if record is None or record.state not in state.LOG_ENDED:
        return record is None
    if handlers is not None and record.failure_reason == state.CANCELLED and record.process:
        # A kill is recorded before its process stops: the process still writes its last lines.
        try:
            return not handlers.alive_or_unknown(record.process)
        except XpmError:
            return True
    return True


def _what(suffix: str) -> str:
    return "standard output" if suffix == "out" else "standard error"
