"""The local launcher: each job is a process of this machine (``python -m xpm run <jobdir>``)."""

from __future__ import annotations

import os
import subprocess
import sys

from xpm.launchers import Launched, Launcher, LaunchRequest


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

