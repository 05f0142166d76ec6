"""experiments sync and workspace check find damage made on purpose, on every filesystem."""

from __future__ import annotations

import os

from click.testing import CliRunner

import xpm
from xpm import codec, layout
from xpm.cli import cli
from xpm.maintenance import check, sync
from xpm.schema import JobSubmitted, LockOwner
from xpm.serialize import dumps
from xpm.store.jobs import JobStore
from xpm.store.log import EventLog
from xpm.store.refs import RefStore
from xpm.workspace import Workspace
from tests.unit.configs import Model, Train


def add_job(ws: Workspace, hidden: int, state: str = "done") -> tuple[str, str]:
    task = Train.C(model=Model.C(hidden=hidden), lr=0.1)
    task_id, identifier = task.__xpmtype__.identifier, xpm.identifier(task)
    jobs = JobStore(ws)
    jobs.write_params(task_id, identifier, dumps(task))
    jobs.record_state(task_id, identifier, state)
    return task_id, identifier


def test_healthy_workspace_has_no_problem(workspace: Workspace):
    add_job(workspace, 1)
    add_job(workspace, 2, "running")
    assert check(workspace) == []
    report = sync(workspace)
    assert report.jobs == 2 and report.fixed == []


def test_deleted_index_is_reported_and_rebuilt_with_tags(workspace: Workspace):
    t1, i1 = add_job(workspace, 1)
    EventLog(workspace, layout.run_jobs("xp", "20260101_000000")).append(
        JobSubmitted(ts=1.0, task_id=t1, identifier=i1, tags={"hidden": 1})
    )
    workspace.remove(layout.JOB_INDEX)
    assert [p.message for p in check(workspace)] == ["missing (run experiments sync)"]
    report = sync(workspace)
    assert report.fixed == [f"{t1}/{i1}: missing from the index (added as done)"]
    assert check(workspace) == []
    job = JobStore(workspace).index.load().jobs[(t1, i1)]
    assert job.state == "done" and job.tags == {"hidden": 1}


def test_stale_state_in_the_index(workspace: Workspace):
    t1, i1 = add_job(workspace, 1, "running")
    # The job process recorded DONE in its folder, but its index line never landed
    workspace.write_atomic(
        layout.job_state(t1, i1),
        workspace.read_bytes(layout.job_state(t1, i1)).replace(b'"running"', b'"done"'),
    )
    assert [p.message for p in check(workspace)] == [f"{t1}/{i1} is running, its folder says done"]
    assert sync(workspace).fixed == [f"{t1}/{i1}: stale state running in the index (now done)"]
    assert check(workspace) == []


def test_truncated_log_line(workspace: Workspace):
    t1, i1 = add_job(workspace, 1)
    rel = layout.job_events(t1, i1)
    data = workspace.read_bytes(rel)
    workspace.write_atomic(rel, data[:-7])  # the last line lost its end
    problems = check(workspace)
    assert len(problems) == 1
    assert problems[0].path == workspace.describe(rel) and "incomplete last line" in problems[0].message
    # sync never touches job logs or folders
    sync(workspace)
    assert workspace.read_bytes(rel) == data[:-7]


def test_job_folder_renamed_to_a_wrong_identifier(workspace: Workspace):
    t1, i1 = add_job(workspace, 1)
    wrong = "0" * 64
    workspace.rename(layout.job_dir(t1, i1), layout.job_dir(t1, wrong))
    messages = [str(p) for p in check(workspace)]
    assert f"{workspace.describe(layout.job_dir(t1, wrong))}: the folder name differs from the identifier {i1} in params.json" in messages
    report = sync(workspace)
    assert f"{t1}/{i1}: in the index but has no job folder (removed from the index)" in report.fixed
    assert workspace.exists(layout.job_params(t1, wrong))  # nothing deleted


def test_changed_parameters_are_detected_by_recomputing(workspace: Workspace):
    t1, i1 = add_job(workspace, 1)
    rel = layout.job_params(t1, i1)
    workspace.write_atomic(rel, workspace.read_bytes(rel).replace(b'"hidden": 1', b'"hidden": 2'))
    messages = [p.message for p in check(workspace)]
    assert len(messages) == 1 and "the parameters give the identifier" in messages[0]
    assert check(workspace, recompute=False) == []


def test_stale_lock(workspace: Workspace):
    if workspace.local_path("") is not None:
        # Local workspaces use OS locks: the OS releases them when the owner dies.
        rel = layout.lock("stale")
        with workspace.lock(rel, timeout=1):
            pass
        assert check(workspace) == []
        return
    rel = layout.lock("experiments/xp")
    workspace.makedirs(rel)
    import socket

    dead = LockOwner(host=socket.gethostname(), pid=2**22 + 12345, acquired_at=1.0)
    workspace.write_atomic(f"{rel}/owner.json", codec.encode(dead))
    assert [p.message for p in check(workspace)] == [f"stale lock of dead process {dead.pid} on {dead.host}"]


def test_dangling_current_run_ref(workspace: Workspace):
    workspace.makedirs(layout.run_dir("xp", "20260101_000000"))
    refs = RefStore(workspace)
    name = layout.current_run_ref("xp")
    refs.set_if_equals(name, None, "20260102_000000")
    report = sync(workspace)
    assert report.fixed == [f"refs/{name}: pointed at missing run 20260102_000000 (now 20260101_000000)"]
    assert refs.value(name) == "20260101_000000"


def test_cli_check_and_sync(tmp_path):
    ws = Workspace.open(tmp_path / "ws", create=True)
    t1, i1 = add_job(ws, 1)
    runner = CliRunner()
    result = runner.invoke(cli, ["workspace", "check", "--workdir", str(tmp_path / "ws")])
    assert result.exit_code == 0 and result.output == "no problem found\n"
    ws.remove(layout.JOB_INDEX)
    result = runner.invoke(cli, ["workspace", "check", "--workdir", str(tmp_path / "ws")])
    assert result.exit_code == 1
    assert result.stdout == f"{ws.describe(layout.JOB_INDEX)}: missing (run experiments sync)\n"
    result = runner.invoke(cli, ["experiments", "sync", "--workdir", str(tmp_path / "ws")])
    assert result.exit_code == 0
    assert result.output == f"fixed: {t1}/{i1}: missing from the index (added as done)\n1 jobs, 1 fixes\n"
    result = runner.invoke(cli, ["workspace", "check", "--workdir", str(tmp_path / "missing")])
    assert result.exit_code == 1 and result.output == f"Error: {tmp_path / 'missing'}: no such folder\n"
    assert os.path.isdir(tmp_path / "ws" / "jobs")


def test_check_says_once_that_classes_cannot_be_imported_and_checks_the_rest(workspace: Workspace):
    """The task's module is not installed where the check runs: one line says so, and why, for
    all its jobs; the other checks still run (here, a missing index)."""
    jobs = [add_job(workspace, hidden) for hidden in (1, 2, 3)]
    for task_id, identifier in jobs:
        rel = layout.job_params(task_id, identifier)
        workspace.write_atomic(rel, workspace.read_bytes(rel).replace(b"tests.unit.configs", b"gone_module"))
    workspace.remove(layout.JOB_INDEX)
    found = [str(p) for p in check(workspace)]
    jobs_folder = workspace.describe(layout.JOBS)
    assert found == [
        f"{jobs_folder}: the identifiers of 3 job(s) could not be recomputed: cannot import gone_module:Model "
        "(ModuleNotFoundError: No module named 'gone_module'); their other files were checked",
        f"{workspace.describe(layout.JOB_INDEX)}: missing (run experiments sync)",
    ]
