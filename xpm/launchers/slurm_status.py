"""What Slurm says of the user's jobs, asked once per interval for all of them, per host.

Sites limit how often users may query the controller. Whatever the number of
jobs and of experiment processes on this host, at steady state one ``squeue``
lists every job of the user once per interval: its answer is shared through a
cache file (``$TMPDIR/xpm-slurm-<uid>/``) that processes refresh in turn, under a
lock. Right after a submission, answers come sooner (1, 2, 4, 8 s later).

``sacct`` is asked only for jobs that ``squeue`` no longer lists (the controller
forgets jobs some minutes after they end), and only where accounting works: it
exits 0 saying "accounting storage is disabled" otherwise.

When Slurm does not answer (a busy controller's "Socket timed out", a command
that hangs), nothing is concluded: a job's state is "cannot say" (None), and
its followers keep waiting. The failure is recorded in the shared cache, and
every process of the host backs off together: the next query comes 2, 4, 8...
seconds later (at most the interval), one for all. The first failure and the
return of Slurm are logged once.
"""

from __future__ import annotations

import fcntl
import getpass
import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
from typing import NamedTuple

from xpm.errors import XpmError
from xpm.fsutil import write_local_atomic
from xpm.state import CANCELLED, DONE, ERROR, FAILED, MEMORY, RUNNING, SCHEDULED, TIMEOUT

#: Slurm states of jobs that are not over
LIVE = frozenset({
    "PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "REQUEUE_FED",
    "REQUEUE_HOLD", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD",
})
#: Slurm states that are failures, and their xpm failure reasons (others: "failed")
_REASONS = {"TIMEOUT": TIMEOUT, "DEADLINE": TIMEOUT, "OUT_OF_MEMORY": MEMORY, "CANCELLED": CANCELLED}
#: Delays of the first queries after a submission (seconds)
FIRST_QUERIES = (1.0, 2.0, 4.0, 8.0)
#: How old an answer may be for a first query (another process's recent answer will do)
FIRST_QUERY_AGE = 0.5
#: Set to a file path: every Slurm command xpm runs is appended to it (benchmarks, tests)
LOG_VARIABLE = "XPM_SLURM_LOG"
#: How long a Slurm command may take before it is taken for a failure (seconds)
COMMAND_TIMEOUT = 60.0

logger = logging.getLogger("xpm.launchers.slurm")


def backoff(failures: int, interval: float) -> float:
    """Seconds to wait after ``failures`` consecutive failed queries: 2, 4, 8... at most ``interval``."""
    return min(float(2 ** min(failures, 30)), interval)


class SlurmError(XpmError):
    """A Slurm command failed: its command line and what it printed are in the message."""


def normal_state(slurm_state: str | None) -> str:
    """A Slurm state as one word: ``CANCELLED by 0`` (sacct) and ``CANCELLED+`` read as ``CANCELLED``."""
    words = (slurm_state or "").split()
    return words[0].rstrip("+") if words else "UNKNOWN"


def xpm_state(slurm_state: str | None) -> tuple[str, str | None]:
    """The xpm state (and failure reason) of a Slurm state."""
    state = normal_state(slurm_state)
    if state in ("PENDING", "CONFIGURING") or state.startswith("REQUEUE") or state == "RESV_DEL_HOLD":
        return SCHEDULED, None
    if state in LIVE:
        return RUNNING, None
    if state == "COMPLETED":
        return DONE, None
    return ERROR, failure_reason(state)


def failure_reason(slurm_state: str | None) -> str:
    return _REASONS.get(normal_state(slurm_state), FAILED)


def parse_time_left(text: str) -> float | None:
    """Seconds in squeue's ``%L`` (``[D-][[H:]M:]S``); None for ``UNLIMITED``, ``NOT_SET``..."""
    text = text.strip()
    days, _, clock = text.rpartition("-")
    parts = clock.split(":")
    if not all(part.isdigit() for part in parts) or len(parts) > 3 or (days and not days.isdigit()):
        return None
    seconds = 0
    for part in parts:
        seconds = seconds * 60 + int(part)
    return float(seconds + int(days or 0) * 86400)


def time_left(jobid: str) -> float | None:
    """Seconds before the time limit of a Slurm job (one ``squeue``); None when it has none or
    Slurm cannot say."""
    try:
        out = run_command(None, ["squeue", "-h", "-j", jobid, "-o", "%L"])
    except SlurmError:
        return None
    lines = out.strip().splitlines()
    return parse_time_left(lines[0]) if lines else None


def command_path(binpath: str | None, name: str) -> str | None:
    """Where a Slurm command is (``binpath``, else the PATH); None when it is not on this host."""
    return shutil.which(name, path=binpath) if binpath else shutil.which(name)


def run_command(binpath: str | None, args: list[str], *, check: bool = True) -> str:
    """Runs a Slurm command; returns its standard output.

    Raises:
        SlurmError: the command is missing, or (with ``check``) failed.
    """
    path = command_path(binpath, args[0])
    if path is None:
        raise SlurmError(f"{args[0]}: not found{f' in {binpath}' if binpath else ' on the PATH'}")
    log = os.environ.get(LOG_VARIABLE)
    if log:
        with open(log, "a") as f:
            f.write(f"{time.time():.3f} {os.getpid()} {' '.join(args)}\n")
    try:
        done = subprocess.run(
            [path, *args[1:]], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=COMMAND_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        raise SlurmError(f"{' '.join(args)}: no answer in {COMMAND_TIMEOUT:g} s") from None
    if check and done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        raise SlurmError(f"{' '.join(args)}: exit status {done.returncode}: {message[-1] if message else ''}")
    return done.stdout


def cache_folder() -> str:
    """The folder of this host's shared answers (one cache file per Slurm installation)."""
    # TMPDIR read now (tempfile caches it): tests and users may change it.
    base = os.environ.get("TMPDIR") or tempfile.gettempdir()
    return os.path.join(base, f"xpm-slurm-{os.getuid()}")


#: How long a failed query is worth telling the monitors about (a cache no process updates any more
#: keeps its last failure)
RECENT_FAILURE = 600.0


def recent_failures() -> list[tuple[int, float, str]]:
    """The Slurm installations of this host that do not answer now: ``(failed queries, since when,
    the last message)`` each, from the shared caches (what the monitors show)."""
    found = []
    folder = cache_folder()
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    for name in names:
        if name.startswith("status-") and name.endswith(".json"):
            cached = _read_cache(os.path.join(folder, name))
            if cached is not None and cached.failures and time.time() - cached.failed_at < RECENT_FAILURE:
                found.append((cached.failures, cached.failed_at, cached.message))
    return found


class StatusTracker:
    """The states of the user's Slurm jobs on this host, refreshed at most once per interval.

    Args:
        binpath: the folder of the Slurm commands (None: the PATH).
        interval: seconds between two queries at steady state.
    """

    def __init__(self, binpath: str | None, interval: float):
        self.binpath = binpath
        self.interval = interval
        self.user = getpass.getuser()
        folder = cache_folder()
        os.makedirs(folder, mode=0o700, exist_ok=True)
        key = hashlib.sha1(f"{binpath}".encode()).hexdigest()[:12]
        self.cache_path = f"{folder}/status-{key}.json"
        self.lock_path = f"{folder}/status-{key}.lock"
        self.states: dict[str, str] = {}
        self.queried_at = 0.0
        #: the failed queries since the last answer (shared by the host's processes), and the last one's time
        self.failures = 0
        self.failed_at = 0.0
        #: when each job was submitted from this process (an older answer cannot know it)
        self.submitted_at: dict[str, float] = {}
        #: jobs this process cancelled: over for it, whatever the next answer says
        self.cancelled: set[str] = set()
        #: jobs the controller no longer lists, with what accounting said (asked once)
        self.forgotten: dict[str, str] = {}
        self._due: list[float] = []
        self._last_submission = 0.0
        self._lock = threading.Lock()

    # --- what callers ask ---------------------------------------------------------------

    def submitted(self, jobid: str) -> None:
        """A job was just submitted: the first of a batch brings answers sooner (1, 2, 4, 8 s).

        Only the first submission after a quiet interval does: a stream of
        submissions (jobs started as others end) must not turn into a stream of
        queries.
        """
        now = time.time()
        with self._lock:
            if now - self._last_submission >= self.interval:
                self._due = sorted(self._due + [now + delay for delay in FIRST_QUERIES])
            self._last_submission = now
            self.submitted_at[jobid] = now

    def state(self, jobid: str) -> str | None:
        """The Slurm state of a job, one word; None when Slurm cannot say (it cannot be asked from
        this host, or it does not answer now): nothing may be concluded then."""
        if jobid in self.cancelled:
            return "CANCELLED"
        try:
            self.refresh()
        except SlurmError:
            return None
        with self._lock:
            known = self.states.get(jobid) or self.forgotten.get(jobid)
        if known is None and self.submitted_at.get(jobid, 0.0) < self.queried_at:
            # The shared answer may predate the job (submitted by another process):
            # ask again before concluding anything.
            try:
                self.refresh(force=True)
            except SlurmError:
                return None
            with self._lock:
                known = self.states.get(jobid)
        return known if known is not None else self._absent(jobid)

    def cancel(self, jobid: str) -> None:
        """``scancel``: Slurm sends SIGTERM, then SIGKILL after its KillWait."""
        run_command(self.binpath, ["scancel", jobid])
        with self._lock:
            self.cancelled.add(jobid)

    # --- refreshing ---------------------------------------------------------------------

    def refresh(self, *, force: bool = False) -> None:
        """Reads the host's shared answer, and asks Slurm when it is older than allowed.

        Raises:
            SlurmError: Slurm did not answer (now, or lately: the host backs off).
        """
        max_age = 0.0 if force else self._max_age()
        if time.time() - self.queried_at < max_age:
            return
        if self._settled(self._read_cache(), max_age):
            return
        with open(self.lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            # Another process may have asked (or failed) while we waited for the lock.
            cached = self._read_cache()
            if self._settled(cached, max_age):
                return
            asked = time.time()
            try:
                # -r: one line per element of a job array (<array id>_<index>), pending ones too.
                out = run_command(
                    self.binpath, ["squeue", "-h", "-r", "-t", "all", "-u", self.user, "-o", "%i|%T"]
                )
            except SlurmError as exc:
                self._failed(cached, asked, exc)
                raise
            states = {jobid: normal_state(state) for jobid, _, state in
                      (line.partition("|") for line in out.splitlines() if "|" in line)}
            self._write_cache(asked, states)
        if cached is not None and cached.failures:
            logger.warning("Slurm answers again (after %d failed queries)", cached.failures)
        self._take(asked, states)

    def _settled(self, cached: _Cached | None, max_age: float) -> bool:
        """Whether the shared cache settles this refresh: a fresh answer (taken), or a recent
        failure whose back-off is not over (raised as a SlurmError, without asking Slurm)."""
        if cached is None:
            return False
        now = time.time()
        with self._lock:
            self.failures, self.failed_at = cached.failures, cached.failed_at
        if cached.failures and now < cached.failed_at + backoff(cached.failures, self.interval):
            raise SlurmError(f"Slurm did not answer ({cached.message}); asking again later")
        if now - cached.asked < max_age:
            self._take(cached.asked, cached.states)
            return True
        return False

    def _failed(self, cached: _Cached | None, when: float, exc: SlurmError) -> None:
        """Records a failed query in the shared cache (keeping the last answer), for every process."""
        failures = (cached.failures if cached is not None else 0) + 1
        asked, states = (cached.asked, cached.states) if cached is not None else (0.0, {})
        self._write_cache(asked, states, failures=failures, failed_at=when, message=str(exc))
        with self._lock:
            self.failures, self.failed_at = failures, when
        if failures == 1:
            logger.warning("Slurm does not answer (%s): its jobs are kept as they are, and it is asked again "
                           "in %g s, then less and less often", exc, backoff(1, self.interval))

    def _max_age(self) -> float:
        """How old an answer may be now: the interval, or less when a first query is due."""
        now = time.time()
        with self._lock:
            self._due = [t for t in self._due if t > self.queried_at]
            due = [t for t in self._due if t <= now]
        # A first query may take another process's answer of the last half second.
        return min(FIRST_QUERY_AGE, self.interval) if due else self.interval

    def _take(self, asked: float, states: dict[str, str]) -> None:
        with self._lock:
            if asked >= self.queried_at:
                self.queried_at = asked
                self.states = states

    def _absent(self, jobid: str) -> str | None:
        """A job the last answer does not list: not yet known, or forgotten by the controller."""
        if self.submitted_at.get(jobid, 0.0) >= self.queried_at:
            return "PENDING"  # submitted after the answer was made
        return self._accounting(jobid)

    def _accounting(self, jobid: str) -> str | None:
        """What accounting says of a job the controller forgot; None when ``sacct`` failed (ask later)."""
        try:
            out = run_command(self.binpath, ["sacct", "-n", "-P", "-X", "-j", jobid, "-o", "JobID,State"])
        except SlurmError:
            return None
        found = "UNKNOWN"  # no accounting ("accounting storage is disabled", exit status 0), or no such job
        for line in out.splitlines():
            parts = line.split("|")
            if len(parts) == 2 and parts[0] == jobid:
                found = normal_state(parts[1])
        with self._lock:
            # Remembered until the controller's answer names the job again (it will not).
            self.forgotten[jobid] = found
        return found

    def _read_cache(self) -> _Cached | None:
        return _read_cache(self.cache_path)

    def _write_cache(
        self, asked: float, states: dict[str, str], *, failures: int = 0, failed_at: float = 0.0, message: str = ""
    ) -> None:
        data: dict[str, object] = {"asked": asked, "states": states}
        if failures:
            data.update(failures=failures, failed_at=failed_at, message=message)
        write_local_atomic(self.cache_path, json.dumps(data).encode())


def _read_cache(path: str) -> _Cached | None:
    try:
        with open(path) as f:
            data = json.load(f)
        return _Cached(
            float(data["asked"]),
            {str(k): str(v) for k, v in data["states"].items()},
            int(data.get("failures", 0)),
            float(data.get("failed_at", 0.0)),
            str(data.get("message", "")),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


class _Cached(NamedTuple):
    """The host's shared answer: when Slurm was asked and what it said, and the failed queries since."""

    asked: float
    states: dict[str, str]
    failures: int = 0
    failed_at: float = 0.0
    #: what the last failed query said
    message: str = ""


_trackers: dict[str | None, StatusTracker] = {}
_trackers_lock = threading.Lock()


def tracker(binpath: str | None, interval: float | None = None) -> StatusTracker:
    """The tracker of this process for a Slurm installation (the shortest interval asked wins)."""
    with _trackers_lock:
        found = _trackers.get(binpath)
        if found is None:
            found = _trackers[binpath] = StatusTracker(binpath, interval or 60.0)
        elif interval is not None and interval < found.interval:
            found.interval = interval
        return found


def reset_trackers() -> None:
    """Forgets the trackers of this process (tests)."""
    with _trackers_lock:
        _trackers.clear()


__all__ = ["LIVE", "StatusTracker", "SlurmError", "tracker", "xpm_state", "failure_reason", "run_command"]
