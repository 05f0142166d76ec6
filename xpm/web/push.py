"""One model for every page: refreshed in one task, and a "changed" event pushed to the pages.

The model (:class:`~xpm.monitor.model.MonitorModel`) is not thread-safe and its reads
block (an SSH workspace answers slowly): every call to it runs in one worker thread, in
order, and the event loop stays free for the other requests. The refresh task asks for
a refresh every interval; when it changed something, each open event stream sends a
small ``changed`` event (with the new version) and the page fetches only what it shows.

The model follows the event logs (progress, times) of the rows drawn lately: the rows
the pages fetched during the last seconds are drawn again before each refresh, so that
a running job's progress moves even when nothing else changes.
"""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

from aiohttp import web

from xpm.monitor.model import MonitorModel
from xpm.store.index import JobKey

T = TypeVar("T")

#: Rows fetched by a page during this many seconds have their events followed
VISIBLE_FOR = 10.0
#: Seconds between two comments on an idle event stream (proxies close silent connections)
KEEPALIVE = 15.0


class Hub:
    """The model of a workspace, its refreshes and the pages that listen to them.

    Args:
        model: the model (not refreshed yet).
        interval: seconds between two refreshes.
    """

    def __init__(self, model: MonitorModel, *, interval: float = 1.0):
        self.model = model
        self.interval = interval
        #: increases after each refresh that changed something
        self.version = 0
        #: job -> when a page last fetched its row (monotonic)
        self.visible: dict[JobKey, float] = {}
        #: the job whose page is open, and when it was last asked for
        self.followed: tuple[JobKey, float] | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="xpm-web-model")
        self._changed = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    async def call(self, action: Callable[..., T], *args: Any) -> T:
        """Runs ``action(*args)`` in the model's thread (after the calls made before it)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, action, *args)

    def start(self) -> None:
        """Starts the refresh task (in the running event loop)."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stops the refresh task and ends the event streams."""
        self._closing = True
        self._changed.set()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._executor.shutdown(wait=True)

    async def _run(self) -> None:
        while True:
            if await self.call(self.refresh):
                self.version += 1
                # Wakes the streams; the next change needs a new event.
                self._changed.set()
                self._changed = asyncio.Event()
            await asyncio.sleep(self.interval)

    def refresh(self) -> bool:
        """One refresh of the model (in its thread); whether it changed anything a page shows."""
        model = self.model
        now = time.monotonic()
        for key, seen in list(self.visible.items()):
            if now - seen > VISIBLE_FOR:
                del self.visible[key]
                continue
            position = model.job_position(key)
            if position is not None:
                model.job_row(position)  # drawn again: its events are followed
        if self.followed is not None and now - self.followed[1] > VISIBLE_FOR:
            self.followed = None
        model.follow(self.followed[0] if self.followed is not None else None)
        return model.refresh()

    def shown(self, keys: list[JobKey]) -> None:
        """A page fetched these rows (in the model's thread)."""
        now = time.monotonic()
        for key in keys:
            self.visible[key] = now

    def opened(self, key: JobKey) -> None:
        """A page shows this job (in the model's thread)."""
        self.followed = (key, time.monotonic())

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """The server-sent events of a page: ``hello`` first, then ``changed`` after each change."""
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )
        await response.prepare(request)
        await response.write(_event("hello", {"version": self.version}))
        seen = self.version
        while not self._closing:
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), KEEPALIVE)
            except asyncio.TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            if self._closing:
                break
            if self.version != seen:
                seen = self.version
                await response.write(_event("changed", {"version": seen}))
        return response


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
