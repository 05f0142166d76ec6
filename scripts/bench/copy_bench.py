"""Benchmark: ``experiments copy`` against ``rsync -a`` of the same folders, in one run.

Two workloads, each copied local→SSH (an sshd, by default the one of the tests on
127.0.0.1: the variables ``XPM_TEST_SSH_*`` that ``scripts/ci/start-sshd.sh`` prints):

* a run of ``--jobs`` small jobs (1,000 by default), made by a real experiment
  (the jobs do nothing), plus a 2 KB output file per job;
* one job holding a ``--size-mb`` file (1,024 by default).

For each, the median of ``--repeat`` copies into a fresh remote folder, for
``experimaestro experiments copy -y`` and for ``rsync -a -e ssh`` of the job folders
and the run folder. Printed: the times and the ratio copy/rsync (goal: ≤ 1.5).

``experiments copy`` uses rsync there (both ends have it); ``--fsspec`` adds a column for
the same copies with ``--no-rsync`` (through SFTP); ``--before DIR`` one for the copies made by
another version of xpm (its package in ``DIR``, e.g. ``git archive HEAD xpm | tar -x -C DIR``),
taking turns with the others, so that a change is measured before and after in one run.

``--tmp DIR`` puts the workspaces in ``DIR`` (``/dev/shm``: out of reach of a busy disk); each remote
copy is removed once timed.

Run: ``python scripts/bench/copy_bench.py [--jobs 1000] [--size-mb 1024] [--repeat 3] [--fsspec] [--before DIR]``;
``--small`` for a quick run (100 jobs, a 64 MB file, once).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def ssh_target() -> tuple[str, str, str, str]:
    host = os.environ.get("XPM_TEST_SSH_HOST", "127.0.0.1")
    port = os.environ.get("XPM_TEST_SSH_PORT", "2222")
    user = os.environ.get("XPM_TEST_SSH_USER", "root")
    key = os.environ.get("XPM_TEST_SSH_KEY", "/tmp/xpm-sshd/client_key")
    return host, port, user, key


def make_workspace(folder: Path, jobs: int, size_mb: int) -> None:
    """A workspace with a run of ``jobs`` small jobs, and an experiment with one large job."""
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from xpm import Param, Task, experiment

        class Small(Task):
            __xpmid__ = "bench.copy.small"
            n: Param[int]
            def execute(self): pass

        class Large(Task):
            __xpmid__ = "bench.copy.large"
            def execute(self): pass

        if __name__ == "__main__":
            with experiment({str(folder)!r}, "small") as xp:
                for n in range({jobs}):
                    task = Small.C(n=n).submit()
            with experiment({str(folder)!r}, "large"):
                Large.C().submit()
        """
    )
    # A file: the job processes import its classes
    path = folder.parent / "make_workspace.py"
    path.write_text(script)
    subprocess.run([sys.executable, str(path)], check=True, capture_output=True)
    for job in (folder / "jobs" / "bench.copy.small").iterdir():
        (job / "output.txt").write_text("x" * 2048)
    (large,) = (folder / "jobs" / "bench.copy.large").iterdir()
    with open(large / "model.bin", "wb") as f:
        chunk = os.urandom(1 << 20)
        for _ in range(size_mb):
            f.write(chunk)


def ssh(args: list[str]) -> None:
    host, port, user, key = ssh_target()
    base = ["ssh", "-p", port, "-i", key, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", f"{user}@{host}"]  # fmt: skip
    subprocess.run(base + args, check=True, capture_output=True)


def ssh_home(folder: Path) -> Path:
    """A home folder whose ssh configuration names the key and knows the server (as a user's would)."""
    host, port, user, key = ssh_target()
    (folder / ".ssh").mkdir(parents=True)
    (folder / ".ssh" / "config").write_text(f"Host *\n    IdentityFile {key}\n")
    keys = subprocess.run(["ssh-keyscan", "-p", port, host], capture_output=True, text=True, check=True).stdout
    (folder / ".ssh" / "known_hosts").write_text(keys)
    return folder


def time_xpm(source: Path, remote: str, experiment: str, home: Path, *extra: str, version: str | None = None) -> float:
    """One ``experiments copy -y`` into a fresh remote folder (with xpm's package from ``version``, a folder,
    if given); its wall time."""
    host, port, user, key = ssh_target()
    url = f"ssh://{user}@{host}:{port}{remote}"
    env = dict(os.environ, HOME=str(home))
    if version is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [version, env.get("PYTHONPATH")]))
    # The destination is a workspace (copy refuses anything else): made before the clock starts
    subprocess.run([sys.executable, "-c", f"from xpm.workspace import Workspace; Workspace.open({url!r}, create=True)"],
                   check=True, capture_output=True, env=env)  # fmt: skip
    os.sync()  # what the previous copies wrote is on disk: their writeback does not slow this one
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "xpm", "experiments", "copy", experiment, "--from-workdir", str(source),
         "--to-workdir", url, "-y", *extra],
        capture_output=True, text=True, env=env, cwd=home,  # not the checkout's folder: -m would import its xpm
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"experiments copy failed: {done.stderr.strip()}")
    return elapsed


def time_rsync(source: Path, remote: str, experiment: str, task: str) -> float:
    host, port, user, key = ssh_target()
    shell = f"ssh -p {port} -i {key} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
    ssh(["mkdir", "-p", f"{remote}/jobs", f"{remote}/experiments"])
    os.sync()
    start = time.perf_counter()
    for rel, dest in ((f"jobs/{task}", "jobs/"), (f"experiments/{experiment}", "experiments/")):
        subprocess.run(["rsync", "-a", "-e", shell, str(source / rel), f"{user}@{host}:{remote}/{dest}"],
                       check=True, capture_output=True)  # fmt: skip
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--small", action="store_true", help="a quick run: 100 jobs, a 64 MB file, once")
    parser.add_argument("--fsspec", action="store_true", help="also time the copy with --no-rsync")
    parser.add_argument("--before", metavar="DIR", help="also time the copy of the xpm package in DIR")
    parser.add_argument("--tmp", metavar="DIR", help="where the workspaces go (default: the temporary folder)")
    args = parser.parse_args()
    if args.small:
        args.jobs, args.size_mb, args.repeat = 100, 64, 1
    if shutil.which("rsync") is None:
        print("rsync is not installed (apt-get install rsync)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="xpm-bench-copy-", dir=args.tmp) as tmp:
        source = Path(tmp) / "ws"
        make_workspace(source, args.jobs, args.size_mb)
        home = ssh_home(Path(tmp) / "home")
        rows = []
        for experiment, task, label in (
            ("small", "bench.copy.small", f"{args.jobs:,} small jobs"),
            ("large", "bench.copy.large", f"one job with a {args.size_mb:,} MB file"),
        ):
            xpm_times, rsync_times, sftp_times, before_times = [], [], [], []
            for i in range(args.repeat):
                # the tools take turns, each into a fresh remote folder
                xpm_times.append(time_xpm(source, f"{tmp}/remote-xpm-{experiment}-{i}", experiment, home))
                rsync_times.append(time_rsync(source, f"{tmp}/remote-rsync-{experiment}-{i}", experiment, task))
                ssh(["rm", "-rf", f"{tmp}/remote-xpm-{experiment}-{i}", f"{tmp}/remote-rsync-{experiment}-{i}"])
                if args.before:
                    before_times.append(time_xpm(source, f"{tmp}/remote-before-{experiment}-{i}", experiment, home,
                                                 version=str(Path(args.before).resolve())))
                    ssh(["rm", "-rf", f"{tmp}/remote-before-{experiment}-{i}"])
                if args.fsspec:
                    sftp_times.append(time_xpm(source, f"{tmp}/remote-sftp-{experiment}-{i}", experiment, home,
                                               "--no-rsync"))
                    ssh(["rm", "-rf", f"{tmp}/remote-sftp-{experiment}-{i}"])
            x, r = statistics.median(xpm_times), statistics.median(rsync_times)
            rows.append((label, x, r, statistics.median(sftp_times) if sftp_times else None,
                         statistics.median(before_times) if before_times else None))
        head = " before | before/rsync |" if args.before else ""
        head += " --no-rsync | ratio |" if args.fsspec else ""
        print("| workload | experiments copy | rsync -a | copy/rsync |" + head)
        print("|---|---:|---:|---:|" + "---:|---:|" * (bool(args.before) + args.fsspec))
        for label, x, r, f, b in rows:
            extra = f" {b:.2f} s | {b / r:.2f} |" if b is not None else ""
            extra += f" {f:.2f} s | {f / r:.2f} |" if f is not None else ""
            print(f"| {label} | {x:.2f} s | {r:.2f} s | {x / r:.2f} |{extra}")
        print(f"\n{args.repeat} repetition(s), medians; local→SSH on {ssh_target()[0]}:{ssh_target()[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
