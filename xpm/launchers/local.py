"""The local launcher: each job is a process of this machine (``python -m xpm run <jobdir>``)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from typing import Any

from xpm.launchers import CannotStop, Launched, Launcher, LaunchRequest, ProcessHandler


class LocalProcess(Launched):
    def __init__(self, popen: subprocess.Popen[bytes]):
        from xpm.jobprocess import local_process

        self.popen = popen
        self.process = local_process(popen.pid)

    def wait(self) -> int:
        return self.popen.wait()


class LocalLauncher(Launcher):
    """Runs each job as a process of this machine, in its job folder.

    The process gets its own session, so that a Ctrl-C (or the death) of the
    experiment process leaves it running: a later run of the experiment finds it
    again through the job's state record.

    Args:
        max_jobs: how many jobs run at once from one experiment process (default:
            the ``local.max_jobs`` setting, else the number of CPUs).
        python: the Python interpreter of the jobs (default: this one).
    """

    def __init__(self, max_jobs: int | None = None, python: str | None = None):
        self.max_jobs = max_jobs
        self.python = python or sys.executable

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

    def launch(self, request: LaunchRequest) -> LocalProcess:
        # Opened here, closed once the child has its own copies.
        with open(request.stdout, "ab") as out, open(request.stderr, "ab") as err:
            popen = subprocess.Popen(
                self.command(request),
                cwd=request.jobdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=self.environment(request),
                start_new_session=True,
                close_fds=True,
            )
        return LocalProcess(popen)

    def __repr__(self) -> str:
        return f"LocalLauncher(max_jobs={self.max_jobs!r})"


#: experimaestro's name for the local launcher
DirectLauncher = LocalLauncher


class LocalProcessHandler(ProcessHandler):
    """Job processes of this host: signals to the process group the launcher made.

    The launcher made each job process a session (and group) leader, so a
    signal reaches the processes the task started too.
    """

    def alive(self, process: dict[str, Any]) -> bool | None:
        from xpm.jobprocess import process_alive

        alive = process_alive(process)
        # An ended process that its parent (an experiment) has not reaped yet is gone.
        return False if alive and _zombie(int(process["pid"])) else alive

    def check_stoppable(self, process: dict[str, Any]) -> None:
        host = process.get("host")
        if host != socket.gethostname():
            raise CannotStop(f"its process runs on host {host}: run the command there")
        try:
            os.kill(int(process["pid"]), 0)
        except ProcessLookupError:
            pass  # already gone: nothing to stop
        except PermissionError:
            raise CannotStop(f"process {process['pid']} belongs to another user") from None

    def terminate(self, process: dict[str, Any]) -> None:
        _signal(int(process["pid"]), signal.SIGTERM)

    def kill(self, process: dict[str, Any]) -> None:
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
    from xpm.jobprocess import proc_stat

    fields = proc_stat(pid)
    return bool(fields) and fields[0] == b"Z"  # type: ignore[index]
