"""The local launcher: each job is a process of this machine (``python -m xpm run <jobdir>``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Callable

from xpm.launchers import (
    CannotStop,
    Launched,
    Launcher,
    LaunchRequest,
    LocalConnector,
    ProcessHandler,
    check_connector,
    forkserver,
)
from xpm.process import LocalProcessRef, ProcessRef, alive_here, hostname, local_process, proc_stat

#: Set to ``0`` to start every job with Popen (see :class:`LocalLauncher`)
FORK_VARIABLE = "XPM_LOCAL_FORK"


class LocalProcess(Launched):
    """A job process started with Popen: this process is its parent."""

    def __init__(self, popen: subprocess.Popen[bytes]):
        self.popen = popen
        self.process = local_process(popen.pid)

    def wait(self) -> int:
        return self.popen.wait()


class ForkedProcess(Launched):
    """A job process forked by a fork server, which reports its end."""

    def __init__(self, pid: int, start: int | None, end: forkserver._Exit):
        self.pid = pid
        process: LocalProcessRef = local_process(pid)
        if start is not None:
            # A child that ended at once is gone from /proc: its server read the start time.
            process["start"] = start
        self.process = process
        self._end = end

    def on_exit(self, callback: Callable[[int], None]) -> None:
        # No thread per job: the fork server's reader thread calls back (a lost end is polled).
        def ended() -> None:
            if self._end.lost:
                super(ForkedProcess, self).on_exit(callback)
            else:
                callback(self._end.status)

        self._end.then(ended)

    def wait(self) -> int:
        self._end.done.wait()
        if self._end.lost:
            # The server died before the job: follow the process itself, its status is unknown.
            while alive_here(self.process):
                time.sleep(0.2)
        return self._end.status


class LocalLauncher(Launcher):
    """Runs each job as a process of this machine, in its job folder.

    The process gets its own session, so that a Ctrl-C (or the death) of the
    experiment process leaves it running: a later run of the experiment finds it
    again through the job's state record.

    Jobs start through a *fork server* (:mod:`xpm.launchers.forkserver`): a helper
    process, one per experiment process and interpreter (and start-up variables:
    ``PYTHON*``, ``LD_*``, locale...), that imports xpm once and forks a child per
    job. The child becomes what ``python -m xpm run <jobdir>`` would be (session,
    folder, standard streams, environment, ``sys.path``, ``sys.argv``) without the
    interpreter start-up and imports, several times the cost of a small task. The
    server never imports a task's module. Popen (a fresh interpreter per job) is
    used instead when ``fork=False``, when the ``XPM_LOCAL_FORK`` environment
    variable is ``0``, on systems other than Linux, when ``PYTHONPATH`` has relative
    entries, or when the server cannot start. Differences that remain with a fork
    server: the job's parent is the server, it shares the server's hash seed, and
    it has the umask and resource limits the experiment had when the server started.

    Args:
        max_jobs: how many jobs run at once from one experiment process (default:
            the ``local.max_jobs`` setting, else the number of CPUs).
        python: the Python interpreter of the jobs (default: this one).
        fork: whether to start jobs through a fork server (default: unless the
            ``XPM_LOCAL_FORK`` environment variable is ``0``).
        connector: None or :meth:`LocalConnector.instance() <xpm.launchers.LocalConnector.instance>`;
            experimaestro's spelling, ``DirectLauncher(LocalConnector.instance())``,
            gives it first, in the place of ``max_jobs``.
        priority: a preference, for a ``launchers.py`` that compares launchers.
    """

    def __init__(
        self,
        max_jobs: int | LocalConnector | None = None,
        python: str | None = None,
        fork: bool | None = None,
        *,
        connector: LocalConnector | None = None,
        priority: float = 0,
    ):
        if isinstance(max_jobs, LocalConnector):
            max_jobs, connector = None, connector or max_jobs
        check_connector(connector, type(self).__name__)
        self.max_jobs = max_jobs
        self.python = python or sys.executable
        self.fork = fork
        self.priority = priority

    def command(self, request: LaunchRequest) -> list[str]:
        return [self.python, "-m", "xpm", "run", str(request.jobdir)]

    def environment(self, request: LaunchRequest) -> dict[str, str]:
        env = dict(os.environ)
        env.update(request.env)
        paths = list(request.python_path)
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        if paths:
            env["PYTHONPATH"] = os.pathsep.join(paths)
        return env

    def uses_fork_server(self) -> bool:
        """Whether jobs start through a fork server (when it can start them)."""
        if self.fork is not None:
            return self.fork
        return os.environ.get(FORK_VARIABLE, "1").strip() != "0"

    def launch(self, request: LaunchRequest) -> Launched:
        env = self.environment(request)
        if self.uses_fork_server():
            try:
                pid, start, end = forkserver.launch(
                    self.python, env, jobdir=str(request.jobdir), stdout=str(request.stdout), stderr=str(request.stderr)
                )
                return ForkedProcess(pid, start, end)
            except forkserver.Unavailable as exc:
                forkserver.logger.debug("starting %s with Popen: %s", request.jobdir, exc)
        # Opened here, closed once the child has its own copies.
        with open(request.stdout, "ab") as out, open(request.stderr, "ab") as err:
            popen = subprocess.Popen(
                self.command(request),
                cwd=request.jobdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=env,
                start_new_session=True,
                close_fds=True,
            )
        return LocalProcess(popen)

    def __repr__(self) -> str:
        return f"LocalLauncher(max_jobs={self.max_jobs!r})"


#: experimaestro's name for the local launcher (the same class)
DirectLauncher = LocalLauncher


class LocalProcessHandler(ProcessHandler):
    """Job processes of this host: signals to the process group the launcher made.

    The launcher made each job process a session (and group) leader, so a
    signal reaches the processes the task started too.
    """

    def alive(self, process: ProcessRef) -> bool | None:
        alive = alive_here(process)
        # An ended process that its parent (an experiment) has not reaped yet is gone.
        return False if alive and _zombie(int(process["pid"])) else alive

    def check_stoppable(self, process: ProcessRef) -> None:
        host = process.get("host")
        if host != hostname():
            raise CannotStop(f"its process runs on host {host}: run the command there")
        try:
            os.kill(int(process["pid"]), 0)
        except ProcessLookupError:
            pass  # already gone: nothing to stop
        except PermissionError:
            raise CannotStop(f"process {process['pid']} belongs to another user") from None

    def terminate(self, process: ProcessRef) -> None:
        _signal(int(process["pid"]), signal.SIGTERM)

    def kill(self, process: ProcessRef) -> None:
        _signal(int(process["pid"]), signal.SIGKILL)


def _signal(pid: int, signum: int) -> bool:
    """Signals the group ``pid`` leads, or else the process alone; False when it is gone."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)
    except ProcessLookupError:
        return False
    return True


def _zombie(pid: int) -> bool:
    """Whether ``pid`` has ended but its parent (an experiment process) has not reaped it yet."""
    fields = proc_stat(pid)
    return bool(fields) and fields[0] == b"Z"  # type: ignore[index]
