"""The Slurm launcher: each job is a Slurm batch job (``sbatch``), followed with batched queries.

A job's script (``<name>.sh`` in its folder) runs ``python -m xpm run <jobdir>``,
which records the job's state itself, as with the local launcher. Slurm is asked
only what the job process could not record (a job killed at its time limit, out
of memory, cancelled), by the status tracker of :mod:`xpm.launchers.slurm_status`:
one query for all of the user's jobs per interval and per host.
"""

from __future__ import annotations

import itertools
import logging
import os
import shlex
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from xpm import codec, layout, state
from xpm.errors import XpmError
from xpm.launchers import CannotStop, Launched, Launcher, LaunchRequest, LocalConnector, ProcessHandler, check_connector
from xpm.launchers.slurm_options import SlurmOptions, format_time
from xpm.launchers.slurm_status import LIVE, SlurmError, command_path, failure_reason, run_command, tracker
from xpm.process import ProcessRef, slurm_process
from xpm.schema import JobStateRecord

logger = logging.getLogger("xpm.launchers.slurm")


class SlurmJob(Launched):
    """A submitted Slurm job.

    Its end is seen in the workspace first: the job process records ``done`` or
    ``error`` in its state record, looked at every :data:`WATCH_INTERVAL` seconds
    (read only when it changed). Slurm (through the shared status tracker, at its
    interval) is asked only whether the job still exists, for jobs that end
    without recording it. One thread per process follows every Slurm job
    (:class:`_Watcher`).
    """

    def __init__(self, jobid: str, jobdir: Path, binpath: str | None, interval: float):
        self.jobid = jobid
        # Exactly what the job process records as itself (xpm.process.this_process).
        self.process = slurm_process(jobid)
        self._state_file = jobdir / layout.JOB_STATE_FILE
        self._binpath = binpath
        self._interval = interval
        self._seen: tuple[float, int] | None = None  # (mtime, size) of the record last read
        self._end: tuple[str, str | None] | None = None

    def _recorded_end(self) -> tuple[str, str | None] | None:
        try:
            stat = self._state_file.stat()
            if (stat.st_mtime, stat.st_size) == self._seen:
                return self._end
            record = codec.decode_record(self._state_file.read_bytes(), JobStateRecord)
        except (OSError, XpmError):
            return None
        self._seen = (stat.st_mtime, stat.st_size)
        if record.process == self.process and record.state in state.FINAL:
            self._end = (record.state, record.failure_reason)
        else:
            self._end = None
        return self._end

    def poll(self) -> int | None:
        """The job's exit status (0: done, 1: error) once it is over, else None."""
        ended = self._recorded_end()
        # A job cancelled may have been stopped at its time limit: it records
        # "cancelled" (it got SIGTERM) while Slurm completes it as TIMEOUT. Its end
        # is taken once Slurm says it is over, so that Slurm's reason is known.
        if ended is not None and ended != (state.ERROR, state.CANCELLED):
            return 0 if ended[0] == state.DONE else 1
        slurm_state = tracker(self._binpath, self._interval).state(self.jobid)
        if slurm_state is None or slurm_state in LIVE:
            # Running, or Slurm cannot say now (it does not answer): keep waiting, never conclude.
            return None
        # Over for Slurm: what the job recorded, else what Slurm says.
        self._seen = None
        ended = self._recorded_end() or ended
        if ended is not None:
            return 0 if ended[0] == state.DONE else 1
        return 0 if slurm_state == "COMPLETED" else 1

    def wait(self) -> int:
        while True:
            code = self.poll()
            if code is not None:
                return code
            time.sleep(WATCH_INTERVAL)

    def on_exit(self, callback: Callable[[int], None]) -> None:
        _Watcher.instance().add(self, callback)


#: How often the state record of a Slurm job is looked at while waiting for it (seconds)
WATCH_INTERVAL = 0.5
#: ... but at most this many records per second (a cluster filesystem serves many users)
WATCH_RATE = 500


class _Watcher:
    """The thread that follows every Slurm job of this process (none per job)."""

    _instance: _Watcher | None = None
    _instance_lock = threading.Lock()

    def __init__(self) -> None:
        self._jobs: dict[int, tuple[SlurmJob, Callable[[int], None]]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        threading.Thread(target=self._loop, name="xpm-slurm-watch", daemon=True).start()

    @classmethod
    def instance(cls) -> _Watcher:
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = _Watcher()
            return cls._instance

    def add(self, job: SlurmJob, callback: Callable[[int], None]) -> None:
        with self._lock:
            self._jobs[id(job)] = (job, callback)
        self._wake.set()

    def _loop(self) -> None:
        while True:
            with self._lock:
                jobs = list(self._jobs.items())
            if not jobs:
                self._wake.wait()
                self._wake.clear()
                continue
            for key, (job, callback) in jobs:
                try:
                    code = job.poll()
                except Exception:  # noqa: BLE001 - one job's trouble must not stop the others
                    logger.exception("cannot follow Slurm job %s", job.jobid)
                    continue
                if code is not None:
                    with self._lock:
                        del self._jobs[key]
                    callback(code)
            time.sleep(max(WATCH_INTERVAL, len(jobs) / WATCH_RATE))


class SlurmLauncher(Launcher):
    """Submits jobs to Slurm with ``sbatch``: alone, or together as job arrays.

    Args:
        options: the ``#SBATCH`` options of every job.
        interval: seconds between two status queries once jobs are settled (the
            first ones come 1, 2, 4, 8 s after a submission).
        binpath: the folder of ``sbatch``, ``squeue``, ``scancel`` (default: the PATH).
        python: the Python interpreter of the jobs on the nodes (default: this one).
        max_jobs: how many jobs one experiment process keeps submitted at once
            (default: no limit; the experiment's ``max_jobs`` is for local jobs).
        launcherenv: environment variables for the jobs, on top of the experiment's.
        array_size: the most jobs submitted together, as one job array (one
            ``sbatch`` for all of them; 1: one ``sbatch`` per job). Each job keeps
            its folder, logs, state and Slurm id (``<array id>_<index>``); how
            jobs are grouped never changes an identifier.
        connector: None or ``LocalConnector.instance()`` (experimaestro's argument:
            Slurm's commands run on this host).
        main: experimaestro's launcher that polls for others; accepted and unused,
            since every Slurm launcher of a host shares one status query already.
        priority: a preference, for a ``launchers.py`` that compares launchers.
    """

    def __init__(
        self,
        options: SlurmOptions | None = None,
        *,
        interval: float = 60.0,
        binpath: str | None = None,
        python: str | None = None,
        max_jobs: int | None = None,
        launcherenv: dict[str, str] | None = None,
        array_size: int = 100,
        connector: LocalConnector | None = None,
        main: Any = None,
        priority: float = 0,
    ):
        check_connector(connector, "SlurmLauncher")
        if array_size < 1:
            raise ValueError(f"array_size must be at least 1, not {array_size}")
        self.priority = priority
        self.options = options or SlurmOptions()
        self.interval = interval
        self.binpath = binpath
        self.python = python or sys.executable
        self.max_jobs = max_jobs
        self.launcherenv = dict(launcherenv or {})
        self.batch_size = array_size
        self.local = False

    def config(self, **options: Any) -> SlurmLauncher:
        """A launcher like this one with other ``#SBATCH`` options (None values change nothing)."""
        return SlurmLauncher(
            self.options.merge(**options),
            interval=self.interval,
            binpath=self.binpath,
            python=self.python,
            max_jobs=self.max_jobs,
            launcherenv=self.launcherenv,
            array_size=self.batch_size,
            priority=self.priority,
        )

    def script(self, request: LaunchRequest) -> str:
        """The batch script of a job (``<name>.sh`` in its folder)."""
        name = layout.job_basename(request.task_id)
        env = dict(self.launcherenv)
        env.update(request.env)
        if os.environ.get("XPM_EXPERIMAESTRO") == "1":
            # The drop-in `import experimaestro` (xpm/compat), written out: clusters
            # may run sbatch without passing the submitting environment on.
            env.setdefault("XPM_EXPERIMAESTRO", "1")
        paths = list(request.python_path)
        lines = [
            "#!/bin/sh",
            f"#SBATCH --job-name=xpm-{name}-{request.identifier[:12]}",
            f"#SBATCH --chdir={request.jobdir}",
            f"#SBATCH --output={request.stdout}",
            f"#SBATCH --error={request.stderr}",
            "#SBATCH --open-mode=append",
            *self.options.sbatch_lines(),
            "",
            "# Written by xpm: the job records its own state in the workspace.",
        ]
        for key, value in sorted(env.items()):
            lines.append(f"export {key}={shlex.quote(value)}")
        if paths:
            joined = shlex.quote(os.pathsep.join(paths))
            lines.append(f'export PYTHONPATH={joined}"${{PYTHONPATH:+{os.pathsep}$PYTHONPATH}}"')
        # A job array's element passes its id (<array id>_<index>) as the first argument.
        lines.append('export XPM_SLURM_JOB_ID="${1:-$SLURM_JOB_ID}"')
        lines.append(f"exec {shlex.quote(self.python)} -m xpm run {shlex.quote(str(request.jobdir))}")
        return "\n".join(lines) + "\n"

    def _write_script(self, request: LaunchRequest) -> Path:
        path = request.jobdir / layout.job_script_name(request.task_id)
        path.write_text(self.script(request))
        return path

    def launch(self, request: LaunchRequest) -> SlurmJob:
        return self._submit(self._write_script(request), [request], array=False)[0]

    def _submit(self, script: Path, requests: list[LaunchRequest], *, array: bool) -> list[SlurmJob]:
        """``sbatch`` of a script; the Slurm job of each request (element ``i`` of an array)."""
        jobid = parse_sbatch(run_command(self.binpath, ["sbatch", "--parsable", str(script)]))
        status = tracker(self.binpath, self.interval)
        jobs = []
        for index, request in enumerate(requests):
            element = f"{jobid}_{index}" if array else jobid
            status.submitted(element)
            jobs.append(SlurmJob(element, request.jobdir, self.binpath, self.interval))
        return jobs

    def launch_many(self, requests: list[LaunchRequest]) -> list[Launched | Exception]:
        """Submits several jobs as one job array (one ``sbatch``); each job gets its own element."""
        workdir = requests[0].workdir if requests else None
        if len(requests) < 2 or workdir is None:
            return super().launch_many(requests)
        try:
            return list(self._launch_array(workdir, requests))
        except (OSError, XpmError) as exc:
            return [exc] * len(requests)

    def _launch_array(self, workdir: Path, requests: list[LaunchRequest]) -> list[SlurmJob]:
        folder = workdir / layout.slurm_array_dir(_array_name())
        folder.mkdir(parents=True)
        scripts = [self._write_script(request) for request in requests]
        for index, request in enumerate(requests):
            # Slurm writes what it says of an element (time limit, memory...) to the
            # job's own logs, as for a job submitted alone.
            (folder / f"{index}.out").symlink_to(request.stdout)
            (folder / f"{index}.err").symlink_to(request.stderr)
        path = folder / "array.sh"
        path.write_text(self.array_script(requests, scripts, folder))
        return self._submit(path, requests, array=True)

    def array_script(self, requests: list[LaunchRequest], scripts: list[Path], folder: Path) -> str:
        """The batch script of a job array: element ``i`` runs the script of job ``i``."""
        name = layout.job_basename(requests[0].task_id)
        lines = [
            "#!/bin/sh",
            f"#SBATCH --job-name=xpm-{name}-x{len(requests)}",
            f"#SBATCH --array=0-{len(requests) - 1}",
            f"#SBATCH --chdir={folder}",
            f"#SBATCH --output={folder}/%a.out",
            f"#SBATCH --error={folder}/%a.err",
            "#SBATCH --open-mode=append",
            *self.options.sbatch_lines(),
            "",
            "# Written by xpm: one element per job, each running the job's own script in its folder.",
            'id="${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"',
            'case "$SLURM_ARRAY_TASK_ID" in',
        ]
        for index, (request, script) in enumerate(zip(requests, scripts)):
            jobdir, script_path = shlex.quote(str(request.jobdir)), shlex.quote(str(script))
            lines.append(f'{index}) cd {jobdir} && exec /bin/sh {script_path} "$id" ;;')
        lines += ["esac", 'echo "xpm: no job for array element $id" >&2', "exit 1"]
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        options = ", ".join(f"{name}={value!r}" for name, value in self.options.values().items())
        return f"SlurmLauncher({options})"


_array_counter = itertools.count()


def _array_name() -> str:
    """A new job array's folder name: unique on this host (time, process, counter)."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{next(_array_counter)}"


def launcher_from_settings(spec: dict[str, Any]) -> SlurmLauncher:
    """The launcher a (checked) workspace ``launcher`` setting describes."""
    return SlurmLauncher(
        SlurmOptions().merge(**spec.get("slurm", {})),
        interval=float(spec.get("interval", 60)),
        binpath=spec.get("binpath"),
        max_jobs=spec.get("max_jobs"),
        array_size=spec.get("array_size", 100),
    )


def parse_sbatch(output: str) -> str:
    """The job id ``sbatch --parsable`` printed (``id`` or ``id;cluster``)."""
    first = output.strip().splitlines()[-1] if output.strip() else ""
    jobid = first.split(";", 1)[0].strip()
    if not jobid.isdigit():
        raise SlurmError(f"sbatch printed no job id: {output.strip()!r}")
    return jobid


class SlurmProcessHandler(ProcessHandler):
    """Slurm jobs: alive while the status tracker says so; stopped with ``scancel``."""

    def alive(self, process: ProcessRef) -> bool | None:
        slurm_state = tracker(None).state(str(process["jobid"]))
        if slurm_state is None:
            return None
        return slurm_state in LIVE

    def end_reason(self, process: ProcessRef) -> str:
        return failure_reason(tracker(None).state(str(process["jobid"])))

    def check_stoppable(self, process: ProcessRef) -> None:
        if command_path(None, "scancel") is None:
            raise CannotStop("scancel is not on this host: run the command on the cluster")

    def terminate(self, process: ProcessRef) -> None:
        # Slurm sends SIGTERM (the task gets TaskCancelled), then SIGKILL after its KillWait.
        tracker(None).cancel(str(process["jobid"]))

    def kill(self, process: ProcessRef) -> None:
        self.terminate(process)


__all__ = ["SlurmLauncher", "SlurmOptions", "SlurmJob", "SlurmError", "format_time", "parse_sbatch"]
