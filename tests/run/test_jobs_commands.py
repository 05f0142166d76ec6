"""The job commands against a real experiment: its jobs run in real processes while we look and kill."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from tests.run.conftest import wait_until
from tests.run.tasks import log_lines


def xpm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "xpm", *args], capture_output=True, text=True, timeout=60)


def listing(ws: Path, *args: str) -> list[str]:
    out = xpm("jobs", "list", "--workdir", str(ws), *args)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_follow_kill_and_clean_a_running_experiment(ws: Path, tmp_path: Path, start_script) -> None:
    log, go = tmp_path / "log", tmp_path / "go"
    script = start_script(f"""
        from xpm import experiment, tag
        from tests.run.tasks import Record

        with experiment({str(ws)!r}, "ctl") as xp:
            slow = Record.C(key=tag("slow"), log={str(log)!r}, wait_for={str(go)!r}).submit()
            Record.C(key=tag("after"), log={str(log)!r}).add_dependencies(slow.job).submit()
            Record.C(key=tag("quick"), log={str(log)!r}).submit()
    """)
    wait_until(lambda: (ws / "index").exists() and len(listing(ws, "--filter", '@state = "DONE"')) == 1,
               what="the quick job to be done")
    wait_until(lambda: len(listing(ws, "--filter", "@state = running")) == 1, what="the slow job to run")
    assert [line.split()[0] for line in listing(ws, "--experiment", "ctl", "--tags")] == ["DONE", "WAITING", "RUNNING"]
    assert [line.split()[-1] for line in listing(ws, "--experiment", "ctl", "--tags")] == [
        "key=quick", "key=after", "key=slow"
    ]
    quick = listing(ws, "--filter", 'key = "quick"')[0].split()[1]
    out = xpm("jobs", "log", "--std", "--workdir", str(ws), quick)
    assert out.stdout == "record quick\n"
    assert xpm("experiments", "list", "--workdir", str(ws)).stdout == f"ctl [{socket.gethostname()}] (1/3 jobs)\n"

    # Follow the slow job's log while it is killed: the follower ends with the job.
    slow = listing(ws, "--filter", 'key = "slow"')[0].split()[1]
    follower = subprocess.Popen([sys.executable, "-m", "xpm", "jobs", "log", "-f", "--workdir", str(ws), slow],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    dry = xpm("jobs", "kill", "--workdir", str(ws), "--filter", '@state="RUNNING"')
    assert dry.stdout.splitlines() == [f"KILLING {slow} (dry run)", "1 job(s) would be killed: add --perform to kill them."]
    killed = xpm("jobs", "kill", "--workdir", str(ws), "--filter", '@state="RUNNING"', "--perform")
    assert killed.returncode == 0 and killed.stdout.splitlines() == [f"KILLED {slow}"]
    followed, _ = follower.communicate(timeout=30)
    assert "xpm: the job was cancelled" in followed

    _, err = script.communicate(timeout=60)
    assert script.returncode == 1
    assert "Traceback" not in err and "cancelled" in err
    states = {job["tags"]["key"]: (job["state"], job["failure_reason"])
              for job in json.loads(xpm("jobs", "list", "--workdir", str(ws), "--json").stdout)}
    assert states == {"quick": ("DONE", None), "slow": ("ERROR", "cancelled"), "after": ("ERROR", "dependency")}
    assert [line[:2] for line in log_lines(log) if line[0] == "slow"] == [["slow", "start"]]

    cleaned = xpm("jobs", "clean", "--workdir", str(ws), "--experiment", "ctl", "--perform")
    assert cleaned.returncode == 0 and len(cleaned.stdout.splitlines()) == 3
    assert all(line.startswith("CLEANED ") for line in cleaned.stdout.splitlines())
    assert listing(ws) == ["No jobs found."] and list((ws / "jobs").glob("*/*")) == []
    assert xpm("orphans", str(ws)).stdout == "No orphan jobs found.\n"


def test_a_waiting_job_killed_and_cleaned_never_starts(ws: Path, tmp_path: Path, start_script) -> None:
    log, go = tmp_path / "log", tmp_path / "go"
    script = start_script(f"""
        from xpm import experiment, tag
        from tests.run.tasks import Record

        with experiment({str(ws)!r}, "waits") as xp:
            slow = Record.C(key=tag("slow"), log={str(log)!r}, wait_for={str(go)!r}).submit()
            Record.C(key=tag("after"), log={str(log)!r}).add_dependencies(slow.job).submit()
    """)
    wait_until(lambda: (ws / "index").exists() and len(listing(ws, "--filter", "@state = running")) == 1,
               what="the slow job to run")
    after = listing(ws, "--filter", "key = after")
    assert after[0].startswith("WAITING ")
    (folder,) = [job["path"] for job in json.loads(xpm("jobs", "list", "--workdir", str(ws), "--json").stdout)
                 if job["tags"] == {"key": "after"}]
    killed = xpm("jobs", "kill", "--workdir", str(ws), "--filter", "key = after", "--perform")
    assert killed.stdout.splitlines() == [f"CANCELLED {after[0].split()[1]}"]
    cleaned = xpm("jobs", "clean", "--workdir", str(ws), "--filter", "key = after", "--perform")
    assert cleaned.stdout.splitlines() == [f"CLEANED {after[0].split()[1]}"]
    go.write_text("go")
    _, err = script.communicate(timeout=60)
    assert script.returncode == 1 and "Traceback" not in err
    assert [line[0] for line in log_lines(log)] == ["slow", "slow"]
    assert not Path(folder).exists(), "the cleaned job's folder came back"


def test_workspace_check_of_jobs_with_generated_paths(ws: Path) -> None:
    """Job-relative paths (PathGenerator) do not stop `workspace check` from recomputing identifiers."""
    from tests.run.tasks import Sum
    from xpm import experiment
    from xpm.maintenance import check
    from xpm.workspace import Workspace

    with experiment(ws, "check"):
        Sum.C(value=2, previous=Sum.C(value=1).submit()).submit()
    assert [str(p) for p in check(Workspace.open(ws))] == []


def test_a_waiting_job_killed_stays_cancelled_when_its_dependency_fails(
    ws: Path, tmp_path: Path, start_script
) -> None:
    """`jobs kill` of a waiting job records `cancelled`; the failure of its dependency does not
    turn that into `dependency` (what kill printed stays true)."""
    log, go = tmp_path / "log", tmp_path / "go"
    script = start_script(f"""
        from xpm import experiment, tag
        from tests.run.tasks import Record

        with experiment({str(ws)!r}, "killboth") as xp:
            slow = Record.C(key=tag("slow"), log={str(log)!r}, wait_for={str(go)!r}).submit()
            Record.C(key=tag("after"), log={str(log)!r}).add_dependencies(slow.job).submit()
    """)
    wait_until(lambda: (ws / "index").exists() and len(listing(ws, "--filter", "@state = running")) == 1,
               what="the slow job to run")
    after = listing(ws, "--filter", "key = after")[0].split()[1]
    killed = xpm("jobs", "kill", "--workdir", str(ws), "--filter", "key = after", "--perform")
    assert killed.stdout.splitlines() == [f"CANCELLED {after}"]
    killed = xpm("jobs", "kill", "--workdir", str(ws), "--filter", "key = slow", "--perform")
    assert killed.returncode == 0 and killed.stdout.splitlines()[0].startswith("KILLED ")
    _, err = script.communicate(timeout=60)
    assert script.returncode == 1 and "Traceback" not in err
    states = {job["tags"]["key"]: (job["state"], job["failure_reason"])
              for job in json.loads(xpm("jobs", "list", "--workdir", str(ws), "--json").stdout)}
    assert states == {"slow": ("ERROR", "cancelled"), "after": ("ERROR", "cancelled")}
    assert [line[0] for line in log_lines(log)] == ["slow"]
