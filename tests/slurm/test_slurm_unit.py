"""The Slurm launcher without a cluster: options, scripts, output parsing, and the shared status queries
(against fake sbatch/squeue/sacct at the seam; the real cluster is tested in test_slurm_real.py)."""

from __future__ import annotations

import os
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from xpm.launchers import LaunchRequest
from xpm.launchers.slurm import SlurmLauncher, SlurmOptions, format_time, parse_sbatch
from xpm.launchers.slurm_status import SlurmError, StatusTracker, failure_reason, parse_time_left, xpm_state


def test_options_become_sbatch_lines_and_merge():
    options = SlurmOptions(time="1:00:00", mem="8G", cpus_per_task=4, gpus_per_node=2, partition=None)
    assert options.sbatch_lines() == [
        "#SBATCH --nodes=1", "#SBATCH --time=1:00:00", "#SBATCH --mem=8G", "#SBATCH --cpus-per-task=4",
        "#SBATCH --gpus-per-node=2",
    ]
    merged = options.merge(partition="gpu", mem=None, time="2:00:00")
    assert (merged.partition, merged.mem, merged.time) == ("gpu", "8G", "2:00:00")
    with pytest.raises(TypeError, match="unknown Slurm option"):
        options.merge(memory="8G")


def test_launcher_config_returns_a_new_launcher():
    base = SlurmLauncher(SlurmOptions(qos="normal"), interval=5)
    gpu = base.config(gpus=1, qos=None)
    assert gpu is not base and gpu.options.gpus == 1 and gpu.options.qos == "normal" and gpu.interval == 5
    assert base.options.gpus is None


def test_format_time():
    assert [format_time(s) for s in (0, 59, 3600, 3661, 90061)] == ["0:00:00", "0:00:59", "1:00:00", "1:01:01", "25:01:01"]


def test_script(tmp_path: Path):
    request = LaunchRequest(
        jobdir=tmp_path / "jobs" / "m.train" / ("a" * 64), task_id="m.train", identifier="a" * 64,
        stdout=tmp_path / "train.out", stderr=tmp_path / "train.err",
        env={"MESSAGE": "it's $HOME"}, python_path=["/code/a b"],
    )
    script = SlurmLauncher(SlurmOptions(time="0:10:00"), python="/usr/bin/python3",
                           launcherenv={"OMP": "1"}).script(request)
    lines = script.splitlines()
    assert lines[0] == "#!/bin/sh"
    assert f"#SBATCH --chdir={request.jobdir}" in lines and "#SBATCH --time=0:10:00" in lines
    assert f"#SBATCH --error={request.stderr}" in lines and "#SBATCH --open-mode=append" in lines
    assert "export MESSAGE='it'\"'\"'s $HOME'" in lines and "export OMP=1" in lines
    assert "export PYTHONPATH='/code/a b'\"${PYTHONPATH:+:$PYTHONPATH}\"" in lines
    assert lines[-2:] == ['export XPM_SLURM_JOB_ID="${1:-$SLURM_JOB_ID}"',
                          f"exec /usr/bin/python3 -m xpm run {request.jobdir}"]


def test_parse_sbatch():
    assert parse_sbatch("1234\n") == "1234" and parse_sbatch("77;cluster\n") == "77"
    with pytest.raises(SlurmError, match="no job id"):
        parse_sbatch("sbatch: error: Batch job submission failed\n")


@pytest.mark.parametrize(
    "slurm, state",
    [
        ("PENDING", ("scheduled", None)), ("CONFIGURING", ("scheduled", None)), ("REQUEUE_HOLD", ("scheduled", None)),
        ("RUNNING", ("running", None)), ("COMPLETING", ("running", None)), ("COMPLETED", ("done", None)),
        ("TIMEOUT", ("error", "timeout")), ("OUT_OF_MEMORY", ("error", "memory")),
        ("CANCELLED", ("error", "cancelled")), ("CANCELLED by 0", ("error", "cancelled")),
        ("FAILED", ("error", "failed")), ("NODE_FAIL", ("error", "failed")), ("UNKNOWN", ("error", "failed")),
    ],
)
def test_state_mapping(slurm: str, state: tuple[str, str | None]):
    assert xpm_state(slurm) == state
    assert failure_reason(slurm) == (state[1] or "failed")


def fake_slurm(folder: Path, listing: str) -> Path:
    """Fake squeue (prints ``listing``, counts its calls) and sacct (accounting disabled)."""
    folder.mkdir()
    for name, body in {
        "squeue": f'echo x >> "{folder}/squeue.calls"\ncat "{folder}/listing"\n',
        "sacct": 'echo "Slurm accounting storage is disabled"\n',
        "scancel": f'echo "$@" >> "{folder}/scancel.calls"\n',
    }.items():
        path = folder / name
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    (folder / "listing").write_text(listing)
    return folder


def calls(folder: Path, name: str) -> int:
    path = folder / f"{name}.calls"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_one_query_per_interval_for_any_number_of_jobs_and_processes(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    fake = fake_slurm(tmp_path / "bin", "".join(f"{i}|RUNNING\n" for i in range(200)))
    # Three "experiment processes" of one host (three trackers sharing the cache file).
    trackers = [StatusTracker(str(fake), interval=3600) for _ in range(3)]
    threads = [threading.Thread(target=lambda t=t: [t.state(str(i)) for i in range(200)]) for t in trackers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls(fake, "squeue") == 1
    assert all(t.state("17") == "RUNNING" for t in trackers)
    assert calls(fake, "squeue") == 1


def test_a_job_the_controller_forgot_is_over(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    fake = fake_slurm(tmp_path / "bin", "1|RUNNING\n")
    tracker = StatusTracker(str(fake), interval=3600)
    assert tracker.state("1") == "RUNNING"
    # Job 2 is not listed: asked once more (the answer may predate it), then accounting: disabled.
    assert tracker.state("2") == "UNKNOWN" and calls(fake, "squeue") == 2
    assert tracker.state("2") == "UNKNOWN" and calls(fake, "squeue") == 2


def test_a_job_submitted_after_the_answer_is_pending(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    fake = fake_slurm(tmp_path / "bin", "1|RUNNING\n")
    tracker = StatusTracker(str(fake), interval=3600)
    tracker.state("1")
    tracker.submitted("5")
    assert tracker.state("5") == "PENDING"


def test_missing_commands_are_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    tracker = StatusTracker(str(tmp_path / "nowhere"), interval=1)
    assert tracker.state("1") is None
    with pytest.raises(SlurmError, match="scancel: not found"):
        tracker.cancel("1")
    assert os.path.isdir(tmp_path / f"xpm-slurm-{os.getuid()}")


def write_settings(folder: Path, launcher: str) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "settings.yaml").write_text(
        f"workspaces:\n  - id: cluster\n    path: {folder / 'ws'}\n    launcher:\n{launcher}"
    )
    return folder


def test_workspace_default_launcher_from_settings(tmp_path):
    from xpm.settings import load_settings

    folder = write_settings(
        tmp_path, '      slurm: {partition: gpu, time: "4:00:00", gpus: 2}\n      interval: 30\n      array_size: 20\n'
    )
    launcher = load_settings(folder).workspace("cluster").make_launcher()
    assert isinstance(launcher, SlurmLauncher) and launcher.interval == 30 and launcher.batch_size == 20
    assert (launcher.options.partition, launcher.options.time, launcher.options.gpus) == ("gpu", "4:00:00", 2)


@pytest.mark.parametrize(
    "launcher, message",
    [
        ("      slurm: {cpu: 3}\n", "workspaces[0].launcher.slurm.cpu: unknown option (known: nodes, time"),
        ("      slurm: {}\n      every: 3\n", "workspaces[0].launcher.every: unknown key (known: array_size, binpath"),
        ("      slurm: {}\n      array_size: 0\n", "workspaces[0].launcher.array_size: expected a positive integer"),
        ("      slurm: {}\n      interval: 0\n", "workspaces[0].launcher.interval: expected a positive number"),
        ("      slurm: {time: [1]}\n", "workspaces[0].launcher.slurm.time: expected a string or an integer"),
        ("      pbs: {}\n", "workspaces[0].launcher: expected 'local', or a mapping with a 'slurm' mapping"),
    ],
)
def test_bad_launcher_settings(tmp_path, launcher: str, message: str):
    from xpm.settings import SettingsError, load_settings

    folder = write_settings(tmp_path, launcher)
    with pytest.raises(SettingsError) as info:
        load_settings(folder)
    assert message in str(info.value) and str(folder / "settings.yaml") in str(info.value)


def requests_in(workdir: Path, count: int) -> list[LaunchRequest]:
    requests = []
    for i in range(count):
        identifier = f"{i:064x}"
        jobdir = workdir / "jobs" / "m.train" / identifier
        jobdir.mkdir(parents=True)
        requests.append(LaunchRequest(jobdir=jobdir, task_id="m.train", identifier=identifier,
                                      stdout=jobdir / "train.out", stderr=jobdir / "train.err", workdir=workdir))
    return requests


def test_many_jobs_are_one_job_array(tmp_path: Path, monkeypatch):
    """One sbatch for a batch; element i runs job i's own script, in its folder, as <array id>_<i>."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    fake = fake_slurm(tmp_path / "bin", "")
    (fake / "sbatch").write_text(f'#!/bin/sh\necho "$@" >> "{fake}/sbatch.calls"\necho "4242;cluster"\n')
    (fake / "sbatch").chmod(0o755)
    python = tmp_path / "python"  # stands for the interpreter: says who and where it is
    python.write_text('#!/bin/sh\necho "$XPM_SLURM_JOB_ID $(pwd) $*"\n')
    python.chmod(0o755)
    requests = requests_in(tmp_path / "ws", 3)
    launcher = SlurmLauncher(SlurmOptions(time="0:10:00"), binpath=str(fake), python=str(python), array_size=50)
    assert launcher.batch_size == 50
    jobs = launcher.launch_many(requests)
    assert [job.process for job in jobs] == [{"type": "slurm", "jobid": f"4242_{i}"} for i in range(3)]
    assert calls(fake, "sbatch") == 1
    (folder,) = (tmp_path / "ws" / "launchers" / "slurm").iterdir()
    script = (folder / "array.sh").read_text()
    assert "#SBATCH --array=0-2" in script and "#SBATCH --time=0:10:00" in script
    assert f"#SBATCH --output={folder}/%a.out" in script
    # Slurm's own messages about an element go to that job's logs.
    assert os.readlink(folder / "1.err") == str(requests[1].stderr)
    for index, request in enumerate(requests):
        assert (request.jobdir / "train.sh").exists()
        env = dict(os.environ, SLURM_ARRAY_JOB_ID="4242", SLURM_ARRAY_TASK_ID=str(index), SLURM_JOB_ID="9")
        out = subprocess.run(["sh", str(folder / "array.sh")], env=env, capture_output=True, text=True)
        assert out.stdout.split() == [f"4242_{index}", str(request.jobdir), "-m", "xpm", "run", str(request.jobdir)]
    env = dict(os.environ, SLURM_ARRAY_JOB_ID="4242", SLURM_ARRAY_TASK_ID="7")
    out = subprocess.run(["sh", str(folder / "array.sh")], env=env, capture_output=True, text=True)
    assert out.returncode == 1 and "no job for array element 4242_7" in out.stderr


def test_a_job_submitted_alone_is_not_an_array(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    fake = fake_slurm(tmp_path / "bin", "")
    (fake / "sbatch").write_text(f'#!/bin/sh\necho "$@" >> "{fake}/sbatch.calls"\necho 77\n')
    (fake / "sbatch").chmod(0o755)
    (request,) = requests_in(tmp_path / "ws", 1)
    (job,) = SlurmLauncher(binpath=str(fake)).launch_many([request])
    assert job.process == {"type": "slurm", "jobid": "77"}
    assert (fake / "sbatch.calls").read_text().split() == ["--parsable", str(request.jobdir / "train.sh")]
    assert not (tmp_path / "ws" / "launchers").exists()


def test_a_failed_submission_is_the_failure_of_each_job(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    fake = fake_slurm(tmp_path / "bin", "")
    (fake / "sbatch").write_text('#!/bin/sh\necho "sbatch: error: QOSMaxSubmitJobPerUserLimit" >&2\nexit 1\n')
    (fake / "sbatch").chmod(0o755)
    results = SlurmLauncher(binpath=str(fake)).launch_many(requests_in(tmp_path / "ws", 4))
    assert len(results) == 4 and all(isinstance(r, SlurmError) for r in results)
    assert "QOSMaxSubmitJobPerUserLimit" in str(results[0])


def test_array_size_must_be_positive():
    with pytest.raises(ValueError, match="array_size"):
        SlurmLauncher(array_size=0)


@pytest.mark.parametrize("text, seconds", [
    ("9:59", 599.0), ("1:00:00", 3600.0), ("2-03:04:05", 2 * 86400 + 3 * 3600 + 4 * 60 + 5.0), ("45", 45.0),
    ("UNLIMITED", None), ("NOT_SET", None), ("INVALID", None), ("", None),
])
def test_time_left_parsing(text: str, seconds: float | None):
    assert parse_time_left(text) == seconds


def test_remaining_time_is_none_outside_slurm(monkeypatch):
    from xpm import ResumableTask
    from xpm.process import SLURM_JOB_VARIABLE

    monkeypatch.delenv(SLURM_JOB_VARIABLE, raising=False)
    assert ResumableTask().remaining_time() is None


def test_launcher_repr_names_the_options_set():
    assert repr(SlurmLauncher(SlurmOptions(partition="gpu"))) == "SlurmLauncher(nodes=1, partition='gpu')"


def test_one_thread_follows_every_slurm_job(tmp_path: Path, monkeypatch):
    """200 submitted jobs: their ends are seen in their state records, by one thread, and Slurm is asked once."""
    from xpm import codec
    from xpm.launchers.slurm import SlurmJob
    from xpm.launchers.slurm_status import reset_trackers
    from xpm.schema import RECORD_VERSION, JobStateRecord

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    reset_trackers()
    fake = fake_slurm(tmp_path / "bin", "".join(f"{i}|RUNNING\n" for i in range(200)))
    ended: dict[str, int] = {}
    done = threading.Event()
    jobs = []
    for request in requests_in(tmp_path / "ws", 200):
        jobid = str(int(request.identifier, 16))
        (request.jobdir / ".xpm").mkdir()
        job = SlurmJob(jobid, request.jobdir, str(fake), 3600)
        jobs.append(job)

        def record(code: int, jobid: str = jobid) -> None:
            ended[jobid] = code
            if len(ended) == 200:
                done.set()

        job.on_exit(record)
    before = threading.active_count()
    for i, job in enumerate(jobs):
        state = "done" if i % 2 else "error"
        data = codec.encode(JobStateRecord(
            version=RECORD_VERSION, task_id="m.train", identifier=f"{i:064x}", state=state,
            failure_reason=None if i % 2 else "failed", updated_at=0.0, process=job.process))
        (job._state_file).write_bytes(data)
    assert done.wait(30)
    assert ended == {str(i): (0 if i % 2 else 1) for i in range(200)}
    assert threading.active_count() == before  # no thread per job
    assert calls(fake, "squeue") <= 1
    reset_trackers()
