"""The fork server of the local launcher, seen from the experiment: job processes forked from a warm interpreter.

Starting a job as ``python -m xpm run <jobdir>`` costs an interpreter start-up and
the import of xpm and its dependencies (msgspec, typing...), several times what a
trivial task costs. A fork server is a long-lived helper process, started once per
experiment process and start-up environment, that imports what a job process needs
(the job program and what it loads) but never a user's module, then forks one
child per job. The server is a program of the job side, :mod:`xpm.runner.forkserver`,
started by its module name: this module never imports it.

Protocol, one line per message:

* experiment -> server (stdin): a JSON object ``{"cwd", "argv", "stdout",
  "stderr", "env"}`` per job;
* server -> experiment, replies (stdout): ``pid <pid> <start>`` once the child is
  forked, or ``error <errno> <json [message, file]>`` when its files or folder
  could not be opened, or the fork failed (nothing runs then);
* server -> experiment, events (a pipe whose descriptor is the server's argument):
  ``exit <pid> <status>`` when a child ended (the status as
  :attr:`subprocess.Popen.returncode` gives it).

Replies and events have pipes of their own so that the launching thread reads its
reply itself (one thread wake-up less per job), while a reader thread follows the
ends of jobs.

At the end of its input (the experiment process ended, or dropped it) the server
exits without touching its children: they are in sessions of their own, and a
later run of the experiment finds them through their state records, as it finds
jobs started by any other experiment process.

The experiment side of the protocol is :class:`ForkServer`; :func:`launch` is what
:class:`xpm.launchers.local.LocalLauncher` calls.
"""

from __future__ import annotations

import atexit
import io
import json
import logging
import os
import subprocess
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

from xpm.errors import XpmError

logger = logging.getLogger("xpm.launchers.local")

#: Exit status given to a job whose server died before reporting it (the job's own record tells more)
EXIT_UNKNOWN = 255

#: Variables read when an interpreter (or the dynamic loader) starts, not later: a
#: forked child keeps the values its server started with, so jobs whose values
#: differ get a server of their own.
_STARTUP_PREFIXES = ("PYTHON", "LD_", "LC_", "MALLOC_")
#: XPM_EXPERIMAESTRO turns the drop-in `import experimaestro` on at start-up (xpm/compat).
_STARTUP_NAMES = frozenset({"LANG", "LANGUAGE", "TZ", "HOME", "GLIBC_TUNABLES", "XPM_EXPERIMAESTRO"})

#: At most this many servers per experiment process: beyond, an idle one ends (or Popen is used)
MAX_SERVERS = 4


class Unavailable(XpmError):
    """The fork server cannot start this job: the caller starts it another way (Popen)."""


# --- experiment side --------------------------------------------------------------------------


def supported() -> bool:
    """Whether this system can run fork servers (Linux: fork and pidfds)."""
    return sys.platform.startswith("linux") and hasattr(os, "fork") and hasattr(os, "pidfd_open")


def startup_key(python: str, env: dict[str, str]) -> tuple[Any, ...]:
    """What a job's interpreter takes from its environment at start-up: jobs with the
    same key can share a server (started with that environment)."""
    items = sorted(
        (name, value) for name, value in env.items() if name.startswith(_STARTUP_PREFIXES) or name in _STARTUP_NAMES
    )
    if os.sep not in python:
        items.append(("PATH", env.get("PATH", "")))  # where a bare interpreter name is found
    return (python, tuple(items))


def forkable(env: dict[str, str]) -> bool:
    """Whether a forked child can have the ``sys.path`` a fresh interpreter would.

    A fresh interpreter resolves relative ``PYTHONPATH`` entries against its start
    folder (the job folder), not the server's: those jobs use Popen.
    """
    entries = env.get("PYTHONPATH", "")
    return not entries or all(os.path.isabs(entry) for entry in entries.split(os.pathsep))


@dataclass
class _Exit:
    """The end of one child, as the reader thread learns it."""

    done: threading.Event = field(default_factory=threading.Event)
    status: int = EXIT_UNKNOWN
    #: the server died first: the status is unknown, the process may still run
    lost: bool = False
    #: called once, from the thread that learns the end (see :meth:`then`)
    _callbacks: list[Callable[[], None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def finish(self, status: int = EXIT_UNKNOWN, *, lost: bool = False) -> None:
        """The child ended with ``status`` (or its server died first: ``lost``)."""
        with self._lock:
            self.status, self.lost = status, lost
            self.done.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def then(self, callback: Callable[[], None]) -> None:
        """Calls ``callback()`` once the end is known: now if it is, else from the reader thread."""
        with self._lock:
            if not self.done.is_set():
                self._callbacks.append(callback)
                return
        callback()


class ForkServer:
    """A fork server, seen from the experiment process.

    :meth:`start` sends a request and reads its reply; a thread reads the events
    and hands each ``exit`` to the child's :class:`_Exit`.

    Args:
        python: the server's (and the jobs') interpreter.
        env: the server's environment (that of its first job).
    """

    def __init__(self, python: str, env: dict[str, str]):
        self.python = python
        events_r, events_w = os.pipe()
        try:
            self.proc = subprocess.Popen(
                [python, "-m", "xpm.runner.forkserver", str(events_w)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                pass_fds=(events_w,),
                cwd="/",  # nothing the server imports may come from the folder it started in
                env=env,
                # Like the jobs: a Ctrl-C of the experiment (its process group) leaves the
                # server alone; it learns of the experiment's end from its stdin.
                start_new_session=True,
                close_fds=True,
            )
        except BaseException:
            os.close(events_r)
            raise
        finally:
            os.close(events_w)
        #: whether the server ever started a job (a server that never did is not tried again)
        self.worked = False
        self.broken = False
        self._request_lock = threading.Lock()
        self._state = threading.Lock()  # guards _exits, _early, _events_ended
        self._exits: dict[int, _Exit] = {}
        #: ends read before the reply that announced their pid (the two come through different pipes)
        self._early: dict[int, int] = {}
        self._events_ended = False
        events = os.fdopen(events_r, "rb")
        threading.Thread(target=self._read_events, args=(events,), name="xpm-forkserver", daemon=True).start()

    def start(self, request: dict[str, Any]) -> tuple[int, int | None, _Exit]:
        """Starts a job; returns its pid, its start time, and where its end arrives.

        Raises:
            OSError: the job could not be started (a missing job folder...), as Popen would raise it.
            Unavailable: the server is gone.
        """
        line = json.dumps(request).encode() + b"\n"
        assert self.proc.stdin is not None and self.proc.stdout is not None
        with self._request_lock:
            if self.broken:
                raise Unavailable("the fork server has ended")
            try:
                self.proc.stdin.write(line)
                self.proc.stdin.flush()
                reply = self.proc.stdout.readline()
            except (OSError, ValueError) as exc:  # ValueError: closed meanwhile
                self.broken = True
                raise Unavailable(f"the fork server has ended ({exc})") from None
            if not reply.endswith(b"\n"):
                self.broken = True
                raise Unavailable("the fork server has ended")
            kind, _, rest = reply.partition(b" ")
            if kind == b"error":
                errno, details = rest.split(b" ", 1)
                message, filename = json.loads(details)
                raise OSError(int(errno), message, filename)
            pid_text, start_text = rest.split()
            pid, end = int(pid_text), _Exit()
            # Registered before the request lock is released: close_if_idle() sees the job.
            with self._state:
                if pid in self._early:
                    end.finish(self._early.pop(pid))
                elif self._events_ended:
                    end.finish(lost=True)
                else:
                    self._exits[pid] = end
            self.worked = True
        return pid, (None if start_text == b"-" else int(start_text)), end

    def _read_events(self, events: io.BufferedReader) -> None:
        with events:
            for line in events:
                kind, _, rest = line.partition(b" ")
                if kind != b"exit":
                    continue
                pid_text, status_text = rest.split()
                pid, status = int(pid_text), int(status_text)
                with self._state:
                    end = self._exits.pop(pid, None)
                    if end is None:
                        self._early[pid] = status
                if end is not None:
                    end.finish(status)
        # The server ended: its children (if any) go on, but their statuses are lost.
        with self._state:
            self.broken = self._events_ended = True
            lost, self._exits = list(self._exits.values()), {}
        for end in lost:
            end.finish(lost=True)
        self.proc.wait()

    def close_if_idle(self) -> bool:
        """Ends the server if no job it started still runs; whether it did."""
        with self._request_lock:
            with self._state:
                if self._exits:
                    return False
            self._close()
        return True

    def close(self) -> None:
        """Ends the server once it has read its input; running jobs go on (their ends are not reported)."""
        with self._request_lock:
            self._close()

    def _close(self) -> None:
        self.broken = True
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError:
                    pass  # the server is gone already (a broken pipe)


#: the servers of this process, least recently used first
_servers: OrderedDict[tuple[Any, ...], ForkServer] = OrderedDict()
#: start-up environments whose server never started a job (tried once, then Popen)
_failed: set[tuple[Any, ...]] = set()
_servers_lock = threading.Lock()


def server_for(python: str, env: dict[str, str]) -> ForkServer:
    """The fork server of this process for ``python`` and ``env``'s start-up variables (started if needed).

    Raises:
        Unavailable: no server can be used for these jobs.
    """
    if not supported():
        raise Unavailable("no fork server on this system")
    if not forkable(env):
        raise Unavailable("PYTHONPATH has relative entries")
    # The pid is part of the key: a fork of the experiment process must not share its parent's pipes.
    key = (os.getpid(), *startup_key(python, env))
    with _servers_lock:
        server = _servers.get(key)
        if server is not None and server.broken:
            del _servers[key]
            if not server.worked:
                _failed.add(key)
            server = None
        if server is not None:
            _servers.move_to_end(key)
            return server
        if key in _failed:
            raise Unavailable("the fork server did not start")
        if len(_servers) >= MAX_SERVERS:
            # A server whose jobs all ended can go (the least recently used); one that follows jobs cannot.
            idle = next((other for other, candidate in _servers.items() if candidate.close_if_idle()), None)
            if idle is None:
                raise Unavailable("too many fork servers follow running jobs")
            del _servers[idle]
        if not _servers and not _failed:
            atexit.register(_close_all)
        try:
            server = _servers[key] = ForkServer(python, env)
        except OSError as exc:
            _failed.add(key)
            raise Unavailable(f"cannot start the fork server: {exc}") from None
        return server


def _close_all() -> None:
    """At the exit of the experiment process: ends its servers (their jobs go on)."""
    with _servers_lock:
        for server in _servers.values():
            server.close()
        _servers.clear()


def launch(python: str, env: dict[str, str], *, jobdir: str, stdout: str, stderr: str) -> tuple[int, int | None, _Exit]:
    """Starts ``python -m xpm run <jobdir>`` through a fork server; see :meth:`ForkServer.start`.

    Raises:
        OSError: the job could not be started (as Popen would raise it).
        Unavailable: no server could start it (start it another way).
    """
    request = {
        "cwd": os.path.abspath(jobdir),
        "argv": jobdir,
        "stdout": os.path.abspath(stdout),
        "stderr": os.path.abspath(stderr),
        "env": env,
    }
    server = server_for(python, env)
    try:
        return server.start(request)
    except Unavailable:
        if server.worked:
            # It died after it worked (killed from outside?): a new server starts the job.
            return server_for(python, env).start(request)
        raise
