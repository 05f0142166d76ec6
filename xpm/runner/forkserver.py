"""The fork server's program: job processes forked from a warm interpreter.

``python -m xpm.runner.forkserver <events fd>`` is started by the local
launcher's client (:mod:`xpm.launchers.forkserver`, where the protocol is
described). It imports what a job process needs (:data:`PRELOAD`) but never a
user's module, then forks one child per job. The child turns itself into what
``python -m xpm run <jobdir>`` would have been (see :func:`_become_job`) and runs
:func:`xpm.runner.job.main`.

The server is single-threaded (forking a threaded process is unsafe) and waits for
its children through pidfds (Linux 5.3+). At the end of its input (the experiment
process ended, or dropped it) it exits without touching its children: they are in
sessions of their own.
"""

from __future__ import annotations

import atexit
import gc
import importlib
import importlib.util
import io
import json
import os
import select
import signal
import sys
import threading
import types
from typing import Any

from xpm.process import process_start
from xpm.runner.job import main as run_job

#: What the server imports before forking: what a job process imports before the task's modules
PRELOAD = (
    "fcntl",
    "xpm.config.base",
    "xpm.config.operations",
    "xpm.errors",
    "xpm.layout",
    "xpm.locks",
    "xpm.runner.job",
    "xpm.serialize",
    "xpm.store.jobs",
    "xpm.workspace",
)


def _write(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]


def serve(events: int) -> dict[str, Any] | None:
    """The server loop: returns in a child (with its job's request), or at the end of the input."""
    poller = select.poll()
    poller.register(0, select.POLLIN)
    children: dict[int, int] = {}  # pidfd -> pid
    pending = b""
    try:
        while True:
            for fd, _ in poller.poll():
                if fd != 0:
                    pid = children.pop(fd)
                    poller.unregister(fd)
                    os.close(fd)
                    _, status = os.waitpid(pid, 0)
                    _write(events, f"exit {pid} {os.waitstatus_to_exitcode(status)}\n".encode())
                    continue
                data = os.read(0, 1 << 16)
                if not data:
                    return None  # the experiment is gone, or done with us: our children go on
                pending += data
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    request = json.loads(line)
                    started = _fork(request)
                    if started is None:
                        return request  # in the child
                    if isinstance(started, OSError):
                        details = json.dumps([started.strerror, started.filename])
                        _write(1, f"error {started.errno or 0} {details}\n".encode())
                        continue
                    pidfd = os.pidfd_open(started)
                    children[pidfd] = started
                    poller.register(pidfd, select.POLLIN)
                    start = process_start(started)
                    _write(1, f"pid {started} {'-' if start is None else start}\n".encode())
    except BrokenPipeError:
        return None  # the experiment is gone


def _fork(request: dict[str, Any]) -> int | OSError | None:
    """Forks a child for a job: in the parent, its pid (or why there is none); in the child, None.

    What can fail (opening the job's files, entering its folder, forking) is done
    here, so that a failure is an error of the launch (as with Popen), not of the job.
    """
    opened: list[int] = []
    try:
        opened.append(os.open(os.devnull, os.O_RDONLY))
        for name in ("stdout", "stderr"):
            opened.append(os.open(request[name], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666))
        os.chdir(request["cwd"])  # the child starts there; checked here, as Popen checks its cwd
        pid = os.fork()
    except OSError as exc:
        for fd in opened:
            os.close(fd)
        return exc
    if pid == 0:
        try:
            _become_job(request, opened)
        except BaseException:  # noqa: BLE001 - a child must never return into the server's loop
            os._exit(127)
        return None
    for fd in opened:
        os.close(fd)
    os.chdir("/")
    return pid


#: The server's signal handlers when it started: those of a fresh interpreter
_INITIAL_SIGNALS = {signum: signal.getsignal(signum) for signum in signal.valid_signals()}


def _become_job(request: dict[str, Any], stdio: list[int]) -> None:
    """In a forked child: becomes what ``python -m xpm run <jobdir>`` in a new process would be.

    The parent reports the pid without waiting for this: a ``jobs kill`` that came
    before :func:`os.setsid` would signal the process alone (see
    :func:`xpm.launchers.local._signal`), which has started nothing yet.
    """
    os.setsid()  # own session and process group: `jobs kill` signals the group
    for target, fd in enumerate(stdio):
        os.dup2(fd, target)
    # As Popen(close_fds=True): nothing of the server's (its pipes, pidfds) stays open.
    _close_fds()

    for signum, handler in _INITIAL_SIGNALS.items():
        if handler is not None and signal.getsignal(signum) is not handler:
            signal.signal(signum, handler)
    env = request["env"]
    for name in [name for name in os.environ if name not in env]:
        del os.environ[name]
    for name, value in env.items():
        if os.environ.get(name) != value:
            os.environ[name] = value
    # sys.path[0] of `python -m` is its start folder; PYTHONPATH (absolute entries, the
    # server's key) and the site folders are already those of a fresh interpreter.
    if not getattr(sys.flags, "safe_path", False):
        sys.path[0] = os.getcwd()
    importlib.invalidate_caches()  # the user's folders may have changed since the server started
    sys.stdin = sys.__stdin__ = _stdio(0, sys.stdin)
    sys.stdout = sys.__stdout__ = _stdio(1, sys.stdout)
    sys.stderr = sys.__stderr__ = _stdio(2, sys.stderr)
    main = _main_module(_MAIN_SPEC)
    sys.modules["__main__"] = main
    sys.argv = [main.__file__ or "-m", "run", request["argv"]]
    sys.orig_argv = [sys.orig_argv[0] if sys.orig_argv else sys.executable, "-m", "xpm", "run", request["argv"]]


def _close_fds() -> None:
    """Closes every descriptor above 2 (those listed in ``/proc/self/fd``: the limit may be huge)."""
    for name in os.listdir("/proc/self/fd"):
        if int(name) > 2:
            try:
                os.close(int(name))
            except OSError:
                pass  # the descriptor of the listing itself, closed already


def _stdio(fd: int, like: Any) -> io.TextIOWrapper:
    """A standard stream on ``fd``, made as CPython makes one at start-up (``create_stdio``),
    with the encoding, error handler and buffering of the server's (same start-up variables)."""
    reading = fd == 0
    unbuffered = not reading and isinstance(getattr(like, "buffer", None), io.FileIO)
    raw = io.FileIO(fd, "r" if reading else "w", closefd=False)
    buffer: Any = raw if unbuffered else (io.BufferedReader(raw) if reading else io.BufferedWriter(raw))
    raw.name = ("<stdin>", "<stdout>", "<stderr>")[fd]  # type: ignore[misc]
    stream = io.TextIOWrapper(
        buffer,
        encoding=getattr(like, "encoding", None),
        errors=getattr(like, "errors", None),
        newline="\n",
        line_buffering=not unbuffered and fd == 2,  # a file is no terminal: only stderr is line-buffered
        write_through=unbuffered,
    )
    stream.mode = "r" if reading else "w"  # type: ignore[misc]
    return stream


#: The spec of ``xpm.__main__`` (found once, by the server)
_MAIN_SPEC: Any = None


def _main_module(spec: Any) -> types.ModuleType:
    """A ``__main__`` like that of ``python -m xpm`` (not the server's)."""
    main = types.ModuleType("__main__")
    main.__spec__ = spec
    main.__file__ = spec.origin if spec is not None else None
    main.__package__ = "xpm"
    main.__builtins__ = __builtins__  # type: ignore[attr-defined]
    main.sys = sys  # type: ignore[attr-defined]
    return main


def _run_job(argv: str) -> None:
    """In a child: runs the job, then ends as ``python -m xpm run`` would, minus the teardown.

    An interpreter's own exit (``Py_FinalizeEx``) would free every object inherited
    from the server, writing to (so copying) each of its memory pages: a few dozen
    milliseconds, more than a small task. Only what a program can see of that exit
    is done: the wait for non-daemon threads, the atexit handlers, a last garbage
    collection (the server's objects are frozen out of it), the flush of the
    standard streams (status 120 when it fails), the exit status of an uncaught
    exception.
    """
    interrupted = False
    try:
        code = run_job([argv])
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except KeyboardInterrupt:
        sys.excepthook(*sys.exc_info())  # type: ignore[arg-type]
        code, interrupted = 1, True
    except BaseException:  # noqa: BLE001 - reported as the interpreter reports it
        sys.excepthook(*sys.exc_info())  # type: ignore[arg-type]
        code = 1
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is not None:
        shutdown()
    atexit._run_exitfuncs()
    gc.collect()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - the interpreter ignores it too, but exits with 120
            code = code or 120
    if interrupted:
        # As the interpreter does: die of SIGINT, so that the status says so.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    os._exit(code)


def _exit_code(code: object) -> int:
    """The exit status of ``SystemExit(code)``, printing a non-integer code as the interpreter does."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def main() -> None:
    """``python -m xpm.runner.forkserver``: serves until the end of stdin; in a child, runs its job."""
    global _MAIN_SPEC
    os.close(os.pidfd_open(os.getpid()))  # fails (so the experiment uses Popen) where pidfds are missing
    for module in PRELOAD:
        importlib.import_module(module)
    _MAIN_SPEC = importlib.util.find_spec("xpm.__main__")
    # The collector of a child skips what the server imported: it would otherwise
    # write to (copy) the pages of objects that live until the end anyway.
    gc.collect()
    gc.freeze()
    request = serve(int(sys.argv[1]))
    if request is not None:
        _run_job(request["argv"])


if __name__ == "__main__":
    main()
