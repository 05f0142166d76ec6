"""Every command on an ``ssh://`` workspace whose jobs ran on its host.

Against the real sshd on 127.0.0.1 (scripts/ci/start-sshd.sh). That host is this machine: an
experiment run here with the workspace's path as its workdir writes exactly what an experiment on
the remote host writes (flock lock files, local job processes of that host), and the commands
reach it through ``ssh://`` as they would from a laptop, in their own processes, with a home
folder of the test's own (``~/.ssh/config`` and ``known_hosts``, as a user sets them up).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tests.run.conftest import ROOT, script_env, wait_until
from tests.run.tasks import log_lines
from tests.sshd import fresh_host_folder
from xpm import codec
from xpm.locks import LockTimeout
from xpm.process import pid_alive
from xpm.schema import LockOwner
from xpm.workspace import LocalWorkspace, Workspace


@pytest.fixture
def home(tmp_path: Path, server: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home folder that reaches the server as a user's would: its key and port in ~/.ssh/config,
    its host key in ~/.ssh/known_hosts."""
    folder = tmp_path / "home"
    (folder / ".ssh").mkdir(parents=True)
    (folder / ".ssh" / "config").write_text(
        f"Host {server['host']}\n  User {server['username']}\n  Port {server['port']}\n"
        f"  IdentityFile {server['client_keys'][0]}\n"
    )
    keys = subprocess.run(["ssh-keyscan", "-p", str(server["port"]), server["host"]],
                          capture_output=True, text=True, timeout=30, check=True).stdout
    (folder / ".ssh" / "known_hosts").write_text(keys)
    monkeypatch.setenv("HOME", str(folder))
    return folder


@pytest.fixture
def remote(server: dict[str, Any]) -> Iterator[Path]:
    """The workspace's folder on the host (this machine), removed afterwards."""
    yield from fresh_host_folder(server, "cmds")


def url(server: dict[str, Any], path: Path, user: str = "") -> str:
    return f"ssh://{user + '@' if user else ''}{server['host']}{path}"


def xpm(home: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``experimaestro ARGS`` in its own process, as the user of ``home`` runs it."""
    env = {**script_env(), "HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "xpm", *args], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=ROOT)


def start_experiment(tmp_path: Path, source: str) -> subprocess.Popen[str]:
    """An experiment run "on the host": here, with the workspace's path as its workdir."""
    script = tmp_path / "experiment.py"
    script.write_text(textwrap.dedent(source))
    return subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=script_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def experiments(tmp_path: Path) -> Iterator[Callable[[str], subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []

    def start(source: str) -> subprocess.Popen[str]:
        started.append(start_experiment(tmp_path, source))
        return started[-1]

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def ran_quick_job(remote: Path, tmp_path: Path, experiments: Callable[[str], subprocess.Popen[str]]) -> str:
    """Runs an experiment with one quick job on the host; its job folder (relative)."""
    script = experiments(f"""
        from xpm import experiment, tag
        from tests.run.tasks import Record

        with experiment({str(remote)!r}, "one"):
            Record.C(key=tag("quick"), log={str(tmp_path / "log")!r}).submit()
    """)
    _, err = script.communicate(timeout=60)
    assert script.returncode == 0, err
    [folder] = [str(p.relative_to(remote)) for p in (remote / "jobs").glob("*/*")]
    return folder


def test_every_command_on_an_ssh_workspace_whose_jobs_ran_there(server, home: Path, remote: Path, tmp_path: Path,
                                                                experiments) -> None:
    log, go = tmp_path / "log", tmp_path / "go"
    script = experiments(f"""
        from xpm import experiment, tag
        from tests.run.tasks import Record

        with experiment({str(remote)!r}, "ctl") as xp:
            slow = Record.C(key=tag("slow"), log={str(log)!r}, wait_for={str(go)!r}).submit()
            Record.C(key=tag("after"), log={str(log)!r}).add_dependencies(slow.job).submit()
            Record.C(key=tag("quick"), log={str(log)!r}).submit()
    """)
    ws = url(server, remote)

    def listing(*args: str) -> list[str]:
        out = xpm(home, "jobs", "list", "--workdir", ws, *args)
        assert out.returncode == 0, out.stderr
        return out.stdout.splitlines()

    wait_until(lambda: (remote / "index").exists() and len(listing("--filter", "@state = running")) == 1
               and len(listing("--filter", '@state = "DONE"')) == 1, what="the slow job to run")
    assert [line.split()[0] for line in listing("--experiment", "ctl")] == ["DONE", "WAITING", "RUNNING"]
    quick = listing("--filter", 'key = "quick"')[0].split()[1]
    slow = listing("--filter", 'key = "slow"')[0].split()[1]
    after = listing("--filter", 'key = "after"')[0].split()[1]
    assert xpm(home, "jobs", "log", "--std", "--workdir", ws, quick).stdout == "record quick\n"
    path = xpm(home, "jobs", "path", "--workdir", ws, slow).stdout.strip()
    assert path.startswith(f"{ws}/jobs/{slow}")
    assert xpm(home, "experiments", "list", "--workdir", ws).stdout == f"ctl [{socket.gethostname()}] (1/3 jobs)\n"

    # Follow the slow job's log over SFTP while it is killed over ssh: its process really ends.
    [pid] = [int(line[3]) for line in log_lines(log) if line[:2] == ["slow", "start"]]
    follower = subprocess.Popen([sys.executable, "-m", "xpm", "jobs", "log", "-f", "--workdir", ws, slow],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**script_env(), "HOME": str(home)})
    killed = xpm(home, "jobs", "kill", "--workdir", ws, "--filter", '@state="RUNNING"', "--perform")
    assert (killed.returncode, killed.stdout.splitlines(), killed.stderr) == (0, [f"KILLED {slow}"], "")
    wait_until(lambda: not pid_alive(pid), what="the killed job's process to end")
    followed, _ = follower.communicate(timeout=30)
    assert "xpm: the job was cancelled" in followed
    _, err = script.communicate(timeout=60)
    assert script.returncode == 1 and "Traceback" not in err
    states = {job["tags"]["key"]: (job["state"], job["failure_reason"])
              for job in json.loads(xpm(home, "jobs", "list", "--workdir", ws, "--json").stdout)}
    assert states == {"quick": ("DONE", None), "slow": ("ERROR", "cancelled"), "after": ("ERROR", "dependency")}

    assert xpm(home, "experiments", "sync", "--workdir", ws).returncode == 0
    check = xpm(home, "workspace", "check", "--workdir", ws)
    assert (check.returncode, check.stdout) == (0, "no problem found\n")
    assert xpm(home, "orphans", ws).stdout == "No orphan jobs found.\n"

    # Clean deletes the job folders, and nothing else.
    before = sorted(str(p.relative_to(remote)) for p in remote.rglob("*") if "jobs/" not in str(p.relative_to(remote)))
    cleaned = xpm(home, "jobs", "clean", "--workdir", ws, "--experiment", "ctl", "--perform")
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert sorted(cleaned.stdout.splitlines()) == sorted(f"CLEANED {job}" for job in (quick, slow, after))
    assert list((remote / "jobs").glob("*/*")) == []
    after = sorted(str(p.relative_to(remote)) for p in remote.rglob("*") if "jobs/" not in str(p.relative_to(remote)))
    assert [p for p in before if p not in after] == []
    assert listing() == ["No jobs found."]


def test_the_host_and_ssh_locks_exclude_each_other(server, home: Path, remote: Path, tmp_path: Path,
                                                   experiments) -> None:
    folder = ran_quick_job(remote, tmp_path, experiments)
    lock = f"{folder}/.xpm/lock"
    ws = Workspace.open(url(server, remote))
    # A process of the host holds the job's lock (as a job process does)...
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys
            from xpm.workspace import LocalWorkspace
            with LocalWorkspace({str(remote)!r}).lock({lock!r}, timeout=10):
                print("held", flush=True)
                sys.stdin.read()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=script_env())
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(LockTimeout) as caught:
            ws.lock(lock, timeout=1).acquire()
        assert f"by host {socket.gethostname()}, pid {holder.pid}," in str(caught.value)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(30)
    # ...and once it let go, the lock taken over ssh keeps the host's processes out.
    with ws.lock(lock, timeout=10):
        with pytest.raises(LockTimeout) as caught:
            LocalWorkspace(str(remote)).lock(lock, timeout=0.5).acquire()
        assert f"by host {socket.gethostname()}, pid {os.getpid()}," in str(caught.value)
    with LocalWorkspace(str(remote)).lock(lock, timeout=5):
        pass


def test_a_lock_left_by_a_dead_process_is_reported_with_its_owner(server, home: Path, remote: Path, tmp_path: Path,
                                                                  experiments) -> None:
    folder = ran_quick_job(remote, tmp_path, experiments)
    # A lock folder (an older xpm's lock over SFTP) whose owner, a process of the host, is dead.
    lock = remote / folder / ".xpm" / "lock"
    lock.unlink()
    lock.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    owner = LockOwner(host=socket.gethostname(), pid=int(dead.stdout), acquired_at=time.time() - 3600)
    (lock / "owner.json").write_bytes(codec.encode(owner))
    ws = url(server, remote)
    cleaned = xpm(home, "jobs", "clean", "--workdir", ws, "--perform")
    assert cleaned.returncode != 0
    [line] = cleaned.stdout.splitlines()
    assert line.startswith("CLEAN FAILED ") and f"by host {owner.host}, pid {owner.pid}, since " in line
    assert "that process has ended" in line
    assert (remote / folder / "params.json").exists()
    check = xpm(home, "workspace", "check", "--workdir", ws)
    assert check.returncode != 0 and f"stale lock of dead process {owner.pid} on {owner.host}" in check.stdout

    # The owner is on another host: reported with its owner, never taken for dead.
    other = LockOwner(host="elsewhere.example", pid=owner.pid, acquired_at=owner.acquired_at)
    (lock / "owner.json").write_bytes(codec.encode(other))
    cleaned = xpm(home, "jobs", "clean", "--workdir", ws, "--perform")
    assert cleaned.returncode != 0 and "by host elsewhere.example, pid" in cleaned.stdout
    assert "ended" not in cleaned.stdout and (remote / folder / "params.json").exists()
    check = xpm(home, "workspace", "check", "--workdir", ws)
    assert check.returncode != 0
    assert "a lock folder where a lock file belongs, by host elsewhere.example" in check.stdout


def test_orphans_are_cleaned_over_ssh_and_nothing_else(server, home: Path, remote: Path, tmp_path: Path,
                                                       experiments) -> None:
    folder = ran_quick_job(remote, tmp_path, experiments)
    kept = experiments(f"""
        from xpm import experiment, tag
        from tests.run.tasks import Record

        with experiment({str(remote)!r}, "kept"):
            Record.C(key=tag("kept"), log={str(tmp_path / "log")!r}).submit()
    """)
    assert kept.wait(60) == 0
    subprocess.run(["rm", "-r", str(remote / "experiments" / "one")], check=True)
    ws = url(server, remote)
    listed = xpm(home, "orphans", ws)
    assert listed.returncode == 0 and listed.stdout.splitlines()[-1] == "1 orphan job(s)."
    cleaned = xpm(home, "orphans", "--clean", ws)
    assert cleaned.returncode == 0 and cleaned.stdout.splitlines()[-1].startswith("CLEANED ")
    assert not (remote / folder).exists()
    assert [str(p.relative_to(remote)) for p in (remote / "jobs").glob("*/*")] != []
    assert xpm(home, "orphans", ws).stdout == "No orphan jobs found.\n"


@pytest.mark.parametrize("case", ["unknown host", "wrong path", "authentication"])
def test_bad_input_is_one_line_and_deletes_nothing(case: str, server, home: Path, remote: Path, tmp_path: Path,
                                                   experiments) -> None:
    folder = ran_quick_job(remote, tmp_path, experiments)
    where = {
        "unknown host": f"ssh://no-such-host.invalid{remote}",
        "wrong path": url(server, remote / "missing"),
        "authentication": url(server, remote, user="nobody"),
    }[case]
    for args in (["jobs", "clean", "--perform", "--workdir", where], ["jobs", "kill", "--perform", "--workdir", where],
                 ["jobs", "list", "--workdir", where], ["orphans", "--clean", where]):
        out = xpm(home, *args)
        assert out.returncode != 0 and out.stdout == "", (args, out.stdout)
        assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr, out.stderr
    assert (remote / folder / "params.json").exists()


def test_a_slurm_job_is_killed_with_scancel_on_the_host(server, home: Path, remote: Path, tmp_path: Path,
                                                        experiments) -> None:
    from tests.slurm.conftest import cluster_up

    if not cluster_up():
        pytest.skip("no Slurm cluster (scripts/ci/start-slurm.sh)")
    log, go = tmp_path / "log", tmp_path / "go"
    script = experiments(f"""
        from xpm import experiment, tag
        from xpm.launchers.slurm import SlurmLauncher, SlurmOptions
        from tests.run.tasks import Record

        with experiment({str(remote)!r}, "cluster", launcher=SlurmLauncher(SlurmOptions(time="0:10:00"), interval=1)):
            Record.C(key=tag("stuck"), log={str(log)!r}, wait_for={str(go)!r}).submit()
    """)
    ws = url(server, remote)

    def jobs() -> list[dict[str, Any]]:
        return json.loads(xpm(home, "jobs", "list", "--workdir", ws, "--json").stdout or "[]")

    wait_until(lambda: (remote / "index").exists() and [j["state"] for j in jobs()] == ["RUNNING"], timeout=90,
               what="the job to run on the cluster")
    [folder] = (remote / "jobs").glob("*/*")
    jobid = json.loads((folder / ".xpm" / "state.json").read_text())["process"]["jobid"]
    killed = xpm(home, "jobs", "kill", "--workdir", ws, "--perform")
    assert killed.returncode == 0 and killed.stdout.startswith("KILLED "), killed.stdout + killed.stderr

    def gone() -> bool:
        out = subprocess.run(["squeue", "-h", "-j", jobid, "-o", "%T"], capture_output=True, text=True)
        return out.stdout.strip() in ("", "COMPLETING") or out.returncode != 0

    wait_until(gone, timeout=60, what="scancel to end the Slurm job")
    _, err = script.communicate(timeout=120)
    assert script.returncode == 1 and "Traceback" not in err
    assert [(j["state"], j["failure_reason"]) for j in jobs()] == [("ERROR", "cancelled")]


def test_a_job_of_another_machine_is_left_alone_with_its_host_named(server, home: Path, remote: Path) -> None:
    from tests.commands.conftest import Maker

    maker = Maker(remote)
    node = {"type": "local", "pid": 4242, "host": "node12.example"}
    running = maker.job("test.record", 1, "running", process=node)
    killed = maker.job("test.record", 2, "error", reason="cancelled", process=node)
    ws = url(server, remote)
    out = xpm(home, "jobs", "kill", "--workdir", ws, "--perform")
    assert out.returncode != 0 and "node12.example" in out.stdout, out.stdout + out.stderr
    out = xpm(home, "jobs", "clean", "--workdir", ws, "--perform")
    assert "node12.example" in out.stdout and "clean it from there" in out.stdout, out.stdout + out.stderr
    assert maker.path(running).exists() and maker.path(killed).exists()
    assert json.loads((maker.path(running) / ".xpm" / "state.json").read_text())["state"] == "running"
