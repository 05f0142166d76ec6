"""``experiments copy``: real workspaces, local and over the real sshd on 127.0.0.1.

Source workspaces are written through the store (as experiments write them), with
output files of their own; the copy runs as the command line does (in this process,
or as a separate process when it is killed mid-way).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from click.testing import CliRunner, Result

from tests.commands.conftest import Maker
from tests.run.conftest import start_script  # noqa: F401 - a fixture
from xpm import layout
from xpm.cli import cli
from xpm.copying import STAGING
from xpm.schema import JobStateRecord
from xpm.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]
XP = "xp1"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, prog_name="experimaestro")


def make_source(root: Path, jobs: int = 3, size: int = 50_000, running: int = 0) -> tuple[Maker, list[tuple[str, str]]]:
    """A workspace with one run of ``jobs`` finished jobs (each with output files) and ``running`` running ones."""
    maker = Maker(root)
    run = maker.run(XP)
    keys = []
    for n in range(jobs + running):
        key = maker.job("my.task", n, "done" if n < jobs else "running", tags={"n": n}, experiment=(XP, run))
        folder = maker.path(key)
        (folder / "out.bin").write_bytes(os.urandom(size + n))
        (folder / "models").mkdir()
        (folder / "models" / "last.pt").write_bytes(os.urandom(size // 2 + n))
        keys.append(key)
    return maker, keys


def header(output: str) -> str:
    """The line of a copy's output that says what it copies, and how."""
    return next(line for line in output.splitlines() if line.startswith(("Copying", "Would copy")))


def files_of(ws: Workspace, rel: str) -> dict[str, bytes]:
    """Every file under a workspace folder, read back (the job lock excluded: it is the source's)."""
    found: dict[str, bytes] = {}

    def walk(folder: str, name: str) -> None:
        for entry in ws.listdir(folder):
            child, child_name = f"{folder}/{entry}", f"{name}/{entry}" if name else entry
            if child_name.startswith(".xpm/lock"):
                continue
            if ws.isdir(child):
                walk(child, child_name)
            else:
                found[child_name] = ws.read_bytes(child)

    walk(rel, "")
    return found


def assert_same_jobs(src: Workspace, dst: Workspace, keys: list[tuple[str, str]]) -> None:
    for key in keys:
        folder = layout.job_dir(*key)
        expected = files_of(src, folder)
        assert expected and files_of(dst, folder) == expected, folder
    run = layout.run_dir(XP, "20250101_000000")
    assert files_of(dst, run) == files_of(src, run)


# --- local to local ---------------------------------------------------------------------------


@pytest.fixture
def source(tmp_path: Path) -> tuple[Maker, list[tuple[str, str]]]:
    return make_source(tmp_path / "src", running=1)


@pytest.fixture
def dest(tmp_path: Path) -> Workspace:
    return Workspace.open(tmp_path / "dst", create=True)


def test_the_dry_run_says_what_would_be_copied_and_writes_nothing(source, dest: Workspace, tmp_path: Path):
    maker, keys = source
    result = invoke("experiments", "copy", "--from-workdir", str(maker.root), "--to-workdir", dest.location, XP)
    assert result.exit_code == 0, result.output
    assert "Would copy xp1/20250101_000000" in result.output
    # three finished jobs of 4 files each (params, state, events, two outputs: 5) and the run's 2 files
    assert "3 job(s), 17 file(s)" in result.output
    assert f"{keys[3][0]}/{keys[3][1]} is running at the source: skipped" in result.output
    assert "Dry run: nothing copied" in result.output
    assert sorted(os.listdir(dest.location)) == sorted([layout.MARKER])


def test_a_copy_brings_the_run_and_its_jobs_and_the_listings_show_them(source, dest: Workspace):
    maker, keys = source
    args = ("experiments", "copy", "--from-workdir", str(maker.root), "--to-workdir", dest.location, XP)
    result = invoke(*args, "-y")
    assert result.exit_code == 0, result.output
    assert "Copied xp1/20250101_000000: 3 job(s), 17 file(s)" in result.output
    assert_same_jobs(maker.ws, dest, keys[:3])
    assert not dest.isdir(layout.job_dir(*keys[3]))  # running: skipped
    assert not dest.exists(STAGING)  # emptied staging folders are removed
    listed = invoke("jobs", "list", "--workdir", dest.location)
    assert listed.output.count("DONE") == 3
    assert "xp1 [node1]" in invoke("experiments", "list", "--workdir", dest.location).output
    # The same copy again: every job is there already; nothing is copied twice.
    again = invoke(*args, "-y")
    assert again.exit_code == 0 and "0 job(s)" in again.output and "3 job(s) already there" in again.output
    # The source is untouched: nothing deleted, nothing added.
    assert sorted(os.listdir(maker.root)) == sorted([layout.MARKER, "experiments", "index", "jobs", "locks", "refs"])


def test_a_running_job_is_copied_with_include_running_and_marked_not_finished(source, dest: Workspace):
    maker, keys = source
    result = invoke("experiments", "copy", "--from-workdir", str(maker.root), "--to-workdir", dest.location, XP,
                    "-y", "--include-running")
    assert result.exit_code == 0, result.output
    import msgspec

    record = msgspec.json.decode(dest.read_bytes(layout.job_state(*keys[3])), type=JobStateRecord)
    assert (record.state, record.failure_reason, record.process) == ("error", "cancelled", None)
    assert files_of(dest, layout.job_dir(*keys[3]))["out.bin"] == maker.ws.read_bytes(
        f"{layout.job_dir(*keys[3])}/out.bin")
    assert "running at the source" not in result.output


def test_a_job_with_other_parameters_at_the_destination_is_an_error_and_nothing_is_copied(source, dest: Workspace):
    maker, keys = source
    other = f"{layout.job_dir(*keys[1])}"
    dest.makedirs(other)
    dest.write_atomic(f"{other}/{layout.PARAMS_FILE}", b'{"version":1,"objects":[],"root":null}')
    result = invoke("experiments", "copy", "--from-workdir", str(maker.root), "--to-workdir", dest.location, XP,
                    "-y")
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert dest.describe(other) in lines[0] and maker.ws.describe(other) in lines[0]
    assert "not overwritten" in lines[0]
    assert dest.read_bytes(f"{other}/{layout.PARAMS_FILE}") == b'{"version":1,"objects":[],"root":null}'
    assert not dest.isdir(layout.job_dir(*keys[0])) and not dest.isdir(layout.EXPERIMENTS)


def test_without_arguments_and_without_a_terminal_it_names_what_is_missing():
    result = invoke("experiments", "copy")
    assert result.exit_code == 2
    assert result.output.strip() == (
        "Error: missing --from-workspace (or --from-workdir), --to-workspace (or --to-workdir), EXPERIMENT_ID "
        "(no terminal to ask them on)"
    )
    assert "EXPERIMENT_ID" in invoke("experiments", "copy", "--from-workdir", "a", "--to-workdir", "b").output


@pytest.mark.parametrize("case", ["unknown-id", "not-a-workspace", "no-folder", "unknown-experiment", "unknown-run",
                                  "same"])
def test_bad_input_is_one_line_and_writes_nothing(case: str, source, dest: Workspace, tmp_path: Path):
    maker, _ = source
    plain = tmp_path / "plain"
    plain.mkdir()
    src, dst, extra = ["--from-workdir", str(maker.root)], ["--to-workdir", dest.location], [XP]
    expected = {
        "unknown-id": "destination workspace: ",
        "not-a-workspace": "not an xpm workspace",
        "no-folder": "no such folder",
        "unknown-experiment": "no experiment 'nope'",
        "unknown-run": "no run xp1/19990101_000000",
        "same": "the source and the destination are the same workspace",
    }[case]
    if case == "unknown-id":
        dst = ["--to-workspace", "nowhere"]
    elif case == "not-a-workspace":
        dst = ["--to-workdir", str(plain)]
    elif case == "no-folder":
        src = ["--from-workdir", str(tmp_path / "missing")]
    elif case == "unknown-experiment":
        extra = ["nope"]
    elif case == "unknown-run":
        extra = [XP, "19990101_000000"]
    elif case == "same":
        dst = ["--to-workdir", str(maker.root)]
    result = invoke("experiments", "copy", *src, *dst, *extra, "-y")
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and expected in lines[0], result.output
    assert os.listdir(plain) == [] and sorted(os.listdir(dest.location)) == [layout.MARKER]


# --- over SSH ---------------------------------------------------------------------------------



@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: dict[str, Any]) -> Path:
    """A home folder whose ssh configuration knows the test server and its key (as a user's would)."""
    from tests.contract.test_ssh_trust import host_key_line

    folder = tmp_path / "home"
    (folder / ".ssh").mkdir(parents=True)
    (folder / ".ssh" / "config").write_text(f"Host *\n    IdentityFile {server['client_keys'][0]}\n")
    (folder / ".ssh" / "known_hosts").write_text(host_key_line(server) + "\n")
    monkeypatch.setenv("HOME", str(folder))
    return folder


@pytest.fixture
def remote(server: dict[str, Any], home: Path) -> Iterator[Callable[[bool], Any]]:
    """Makes a fresh folder on the SSH server: a workspace (True) or a missing one (False, its location);
    the workspaces are removed after the test."""
    made: list[Any] = []

    def make(create: bool = True) -> Any:
        location = f"ssh://{server['username']}@{server['host']}:{server['port']}{server['root']}/copy-" \
                   f"{uuid.uuid4().hex}"
        if not create:
            return location
        made.append(Workspace.open(location, create=True))
        return made[-1]

    yield make
    for ws in made:
        ws.fs.rm(ws.root, recursive=True)


@pytest.mark.parametrize("transport", ["rsync", "sftp"])
def test_local_to_ssh_and_back(transport: str, source, remote, tmp_path: Path):
    """Both ways, by rsync over ssh (the default where both ends have rsync) or through SFTP (--no-rsync)."""
    maker, keys = source
    far = remote()
    extra = ["--no-rsync"] if transport == "sftp" else []
    up = invoke("experiments", "copy", "--from-workdir", str(maker.root), "--to-workdir", far.location, XP, "-y",
                *extra)
    assert up.exit_code == 0, up.output
    assert ("with rsync" in header(up.output)) == (transport == "rsync"), up.output
    assert_same_jobs(maker.ws, far, keys[:3])
    assert not far.exists(STAGING)
    assert invoke("jobs", "list", "--workdir", far.location).output.count("DONE") == 3
    back = Workspace.open(tmp_path / "back", create=True)
    down = invoke("experiments", "copy", "--from-workdir", far.location, "--to-workdir", back.location, XP, "-y",
                  *extra)
    assert down.exit_code == 0, down.output
    assert ("with rsync" in header(down.output)) == (transport == "rsync"), down.output
    assert_same_jobs(maker.ws, back, keys[:3])
    assert not back.exists(STAGING)
    assert "xp1 [node1] (3/3 jobs)" in invoke("experiments", "list", "--workdir", back.location).output


@pytest.mark.parametrize("transport", ["rsync", "sftp"])
def test_local_to_local(transport: str, source, dest: Workspace, monkeypatch: pytest.MonkeyPatch):
    """rsync between two local folders; XPM_COPY_NO_RSYNC=1 turns it off as --no-rsync does."""
    maker, keys = source
    if transport == "sftp":
        monkeypatch.setenv("XPM_COPY_NO_RSYNC", "1")
    result = invoke("experiments", "copy", "--from-workdir", str(maker.root), "--to-workdir", dest.location, XP, "-y")
    assert result.exit_code == 0, result.output
    assert ("with rsync" in header(result.output)) == (transport == "rsync"), result.output
    assert "Copied xp1/20250101_000000: 3 job(s), 17 file(s)" in result.output
    assert "[3/3 jobs] 15/17 files" in result.output  # the jobs' files counted (the run's 2 come last)
    assert_same_jobs(maker.ws, dest, keys[:3])
    assert not dest.exists(STAGING)
    assert invoke("jobs", "list", "--workdir", dest.location).output.count("DONE") == 3


def test_ssh_to_ssh(source, remote):
    """Between two SSH workspaces: through SFTP (rsync copies between this machine and one host)."""
    maker, keys = source
    first, second = remote(), remote()
    assert invoke("experiments", "copy", "--from-workdir", str(maker.root), "--to-workdir", first.location, XP,
                  "-y").exit_code == 0
    result = invoke("experiments", "copy", "--from-workdir", first.location, "--to-workdir", second.location, XP, "-y")
    assert result.exit_code == 0, result.output
    assert "rsync not used: both workspaces are remote" in result.output
    assert_same_jobs(maker.ws, second, keys[:3])


def test_a_wrong_remote_path_or_an_unreachable_host_is_one_line(source, remote, server: dict[str, Any]):
    maker, _ = source
    for where, expected in [
        (remote(False), "no such folder"),
        (f"ssh://{server['username']}@127.0.0.1:1/tmp/x", "cannot connect"),
    ]:
        result = invoke("experiments", "copy", "--from-workdir", str(maker.root), "--to-workdir", where, XP, "-y")
        lines = result.output.strip().splitlines()
        assert result.exit_code != 0 and len(lines) == 1 and expected in lines[0], result.output


@pytest.mark.parametrize("direction, stop", [("local-to-ssh", signal.SIGKILL), ("ssh-to-local", signal.SIGKILL),
                                             ("local-to-ssh", signal.SIGINT)])
def test_an_interrupted_copy_leaves_no_half_job_and_the_same_command_finishes_it(
    direction: str, stop: int, tmp_path: Path, remote, home: Path
):
    """Through SFTP (--no-rsync: job by job), killed, or stopped with Ctrl-C (which says how to resume),
    mid-way: run again, it finishes."""
    maker, keys = make_source(tmp_path / "src", jobs=12, size=3_000_000)
    origin: Workspace = maker.ws
    if direction == "local-to-ssh":
        far = remote()
    else:
        origin = remote()
        assert invoke("experiments", "copy", "--from-workdir", str(maker.root), "--to-workdir", origin.location, XP,
                      "-y").exit_code == 0
        far = Workspace.open(tmp_path / "dst", create=True)
    args = [sys.executable, "-m", "xpm", "experiments", "copy", "--from-workdir", origin.location,
            "--to-workdir", far.location, XP, "-y", "--no-rsync"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True, cwd=REPO)
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("[2/12 jobs]"):
            process.send_signal(stop)
            break
    process.wait(timeout=60)
    assert process.stderr is not None
    errors = process.stderr.read()
    if stop == signal.SIGINT:
        assert process.returncode == 130 and "the same command resumes the copy" in errors, errors
    else:
        assert process.returncode == -signal.SIGKILL, errors
    # Every job folder in place is whole; the others are not there (at most staged).
    placed = [key for key in keys if far.isdir(layout.job_dir(*key))]
    assert 2 <= len(placed) < len(keys)
    for key in placed:
        assert files_of(far, layout.job_dir(*key)) == files_of(maker.ws, layout.job_dir(*key))
    assert not far.isdir(layout.run_dir(XP, "20250101_000000"))  # the run comes last
    assert far.isdir(STAGING)  # the jobs under way when it was killed (several are copied at once)
    finished = subprocess.run(args, capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert f"{len(keys) - len(placed)} job(s)" in finished.stdout
    assert_same_jobs(maker.ws, far, keys)
    assert not far.exists(STAGING)
    listed = subprocess.run([sys.executable, "-m", "xpm", "jobs", "list", "--workdir", far.location],
                            capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    assert listed.stdout.count("DONE") == len(keys)


def test_on_a_terminal_it_asks_for_the_workspaces_the_experiment_and_the_run(source, dest: Workspace,
                                                                             own_settings: Path):
    """Without arguments, on a terminal: each missing choice is asked, among what exists."""
    import pty
    import select

    maker, _ = source
    (own_settings / "settings.yaml").write_text(
        f"workspaces:\n  - id: here\n    path: {maker.root}\n  - id: there\n    path: {dest.location}\n"
    )
    master, slave = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(REPO), "XPM_CONFIG_DIR": str(own_settings)}
    process = subprocess.Popen([sys.executable, "-m", "xpm", "experiments", "copy"], stdin=slave, stdout=slave,
                               stderr=slave, env=env, cwd=REPO)
    os.close(slave)
    seen, transcript = b"", b""

    def answer_after(prompt: bytes, reply: bytes) -> None:
        nonlocal seen, transcript
        while prompt not in seen:
            ready, _, _ = select.select([master], [], [], 30)
            assert ready, f"no prompt {prompt!r}; got {seen!r}"
            chunk = os.read(master, 4096)
            seen, transcript = seen + chunk, transcript + chunk
        seen = seen[seen.index(prompt) + len(prompt):]
        os.write(master, reply)

    try:
        answer_after(b"Source workspace (here, there):", b"here\r")
        answer_after(b"Destination workspace (there) [there]:", b"\r")
        answer_after(b"Experiment (xp1) [xp1]:", b"\r")
        answer_after(b"Run (20250101_000000) [20250101_000000]:", b"\r")
        answer_after(b"Dry run: nothing copied", b"")
        assert f"Would copy xp1/20250101_000000 from {maker.root} to {dest.location}".encode() in transcript
    finally:
        process.wait(timeout=30)
        os.close(master)
    assert process.returncode == 0


def test_a_job_that_changed_at_the_source_during_the_copy_is_not_put_in_place(source, dest: Workspace):
    """The staged job is checked against the sizes listed when the copy began: a mismatch stops the copy
    with the job left in staging, and the same copy later (planned afresh) finishes."""
    from xpm.copying import CopyError, perform_copy, plan_copy

    maker, keys = source
    plan = plan_copy(maker.ws, dest, XP)
    (maker.path(keys[1]) / "out.bin").write_bytes(b"shorter now")
    with pytest.raises(CopyError, match="bytes expected"):
        perform_copy(plan, maker.ws, dest)
    assert dest.isdir(layout.job_dir(*keys[0])) and not dest.isdir(layout.job_dir(*keys[1]))
    assert dest.isdir(f"{STAGING}/{keys[1][0]}/{keys[1][1]}")
    from xpm.store.index import JobIndex

    placed = {key for key in keys if dest.isdir(layout.job_dir(*key))}
    assert set(JobIndex(dest).load().jobs) == placed  # what is in place is listed
    perform_copy(plan_copy(maker.ws, dest, XP), maker.ws, dest)
    assert_same_jobs(maker.ws, dest, keys[:3])
    assert not dest.exists(STAGING)


def test_a_running_job_whose_files_change_while_copied_is_copied_as_it_is_then(source, dest: Workspace):
    from xpm.copying import perform_copy, plan_copy

    maker, keys = source
    plan = plan_copy(maker.ws, dest, XP, include_running=True)
    (maker.path(keys[3]) / "out.bin").write_bytes(b"grown " * 100_000)
    (maker.path(keys[3]) / "models" / "last.pt").unlink()
    notes = perform_copy(plan, maker.ws, dest)
    assert any("last.pt: removed while copied" in note for note in notes)
    copied = files_of(dest, layout.job_dir(*keys[3]))
    assert copied["out.bin"] == b"grown " * 100_000 and "models/last.pt" not in copied


def test_a_real_experiment_copied_to_ssh_and_back_checks_and_is_not_run_again(tmp_path: Path, remote, home: Path,
                                                                             start_script):  # noqa: F811
    """Jobs run by a real experiment: copied to an SSH workspace, `workspace check` (identifiers recomputed
    from params.json) finds nothing wrong there; copied back, the same experiment finds its jobs done."""
    log = tmp_path / "log"

    def experiment_at(where: Path) -> str:
        return f"""
            from xpm import experiment, tag
            from tests.run.tasks import Record

            with experiment({str(where)!r}, "real") as xp:
                first = Record.C(key=tag("a"), log={str(log)!r}).submit()
                Record.C(key=tag("b"), log={str(log)!r}).add_dependencies(first.job).submit()
        """

    ran = start_script(experiment_at(tmp_path / "ws"))
    _, errors = ran.communicate(timeout=120)
    assert ran.returncode == 0, errors
    assert len(log.read_text().splitlines()) == 4  # two jobs, a start and an end line each
    far = remote()
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def xpm(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "xpm", *args], capture_output=True, text=True, env=env,
                              cwd=REPO, timeout=120)

    up = xpm("experiments", "copy", "--from-workdir", str(tmp_path / "ws"), "--to-workdir", far.location, "real",
             "-y")
    assert up.returncode == 0, up.stderr
    checked = xpm("workspace", "check", "--workdir", far.location)
    assert checked.returncode == 0 and checked.stdout == "no problem found\n", checked.stdout + checked.stderr
    listed = xpm("jobs", "list", "--workdir", far.location, "--experiment", "real", "--tags")
    assert [line.split()[0] + " " + line.split()[-1] for line in listed.stdout.splitlines()] == [
        "DONE key=b", "DONE key=a"
    ]
    back = Workspace.open(tmp_path / "back", create=True)
    down = xpm("experiments", "copy", "--from-workdir", far.location, "--to-workdir", back.location, "real", "-y")
    assert down.returncode == 0, down.stderr
    again = start_script(experiment_at(tmp_path / "back"), name="again.py")
    _, errors = again.communicate(timeout=120)
    assert again.returncode == 0, errors
    assert len(log.read_text().splitlines()) == 4  # nothing ran again: the copies are the same jobs, done


def test_symbolic_links_are_copied_as_links_between_local_folders_and_named_otherwise(source, dest: Workspace,
                                                                                      remote, tmp_path: Path):
    maker, keys = source
    shared = tmp_path / "shared.bin"
    shared.write_bytes(b"big shared data")
    (maker.path(keys[0]) / "data").symlink_to(shared)
    assert invoke("experiments", "copy", "--from-workdir", str(maker.root), "--to-workdir", dest.location, XP,
                  "-y").exit_code == 0
    copied = Path(dest.location) / layout.job_dir(*keys[0]) / "data"
    assert copied.is_symlink() and os.readlink(copied) == str(shared)
    result = invoke("experiments", "copy", "--from-workdir", str(maker.root), "--to-workdir", remote().location, XP,
                    "-y")
    assert result.exit_code == 0, result.output
    assert f"{maker.ws.describe(layout.job_dir(*keys[0]))}/data: a symbolic link, not copied" in result.output


# --- rsync: interrupted, and the ssh command ---------------------------------------------------


def wait_for(condition: Callable[[], bool], process: subprocess.Popen[str], timeout: float = 60) -> None:
    """Polls ``condition`` until it holds (fails if the process ends first)."""
    import time

    end = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"the copy ended first: {process.communicate()}"
        assert time.monotonic() < end, "timed out"
        time.sleep(0.005)


def large_source(root: Path) -> tuple[Maker, list[tuple[str, str]]]:
    """Three jobs, the second with a 400 MB file: a copy takes long enough to be stopped within it."""
    maker, keys = make_source(root, jobs=3, size=20_000)
    with open(maker.path(keys[1]) / "model.bin", "wb") as f:
        block = os.urandom(1 << 20)
        for _ in range(400):
            f.write(block)
    return maker, keys


def copy_process(origin: str, target: str, *extra: str) -> tuple[list[str], subprocess.Popen[str]]:
    args = [sys.executable, "-m", "xpm", "experiments", "copy", "--from-workdir", origin, "--to-workdir", target, XP,
            "-y", *extra]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return args, subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True, cwd=REPO)


def sizes_under(folder: Path) -> dict[Path, int]:
    """The files under a folder and their sizes, as rsync writes and renames them ({} when it does not exist)."""
    found = {}
    for path in folder.rglob("*"):
        try:
            if path.is_file():
                found[path] = path.stat().st_size
        except FileNotFoundError:
            continue  # renamed or removed meanwhile
    return found


def host_folder(ws: Workspace) -> Path:
    """The folder of a workspace on this machine (the test sshd runs on 127.0.0.1: its folders are here too)."""
    local = ws.local_path("")
    return local if local is not None else Path(ws.root)  # type: ignore[attr-defined]


@pytest.mark.parametrize("direction", ["local-to-ssh", "ssh-to-local", "local-to-local"])
def test_an_rsync_copy_killed_mid_way_is_finished_by_the_same_command(direction: str, tmp_path: Path, remote,
                                                                       home: Path):
    """The copy process is killed (SIGKILL) while rsync sends a large file: no job is in place, rsync stops
    too (nothing is written in the staging folder afterwards), and the same command finishes the copy:
    every file compared. A temporary file that a killed rsync could not remove (its host went down) is
    not put in place with the job."""
    maker, keys = large_source(tmp_path / "src")
    origin: Workspace = maker.ws
    if direction == "ssh-to-local":
        origin = remote()
        assert invoke("experiments", "copy", "--from-workdir", str(maker.root), "--to-workdir", origin.location, XP,
                      "-y").exit_code == 0
    far = remote() if direction == "local-to-ssh" else Workspace.open(tmp_path / "dst", create=True)
    staging = host_folder(far) / STAGING
    args, process = copy_process(origin.location, far.location)
    # rsync writes the file being sent under a temporary name in its staged job folder: a part of the large one
    wait_for(lambda: any(size > (20 << 20) for size in sizes_under(staging).values()), process)
    process.kill()
    process.wait(timeout=30)
    import time

    sizes = sizes_under(staging)
    time.sleep(1.0)
    after = sizes_under(staging)
    assert all(p in sizes and size <= sizes[p] for p, size in after.items())  # rsync ended with it (cleaning up)
    assert not any(far.isdir(layout.job_dir(*key)) for key in keys)  # placed only once all files are there
    assert not far.isdir(layout.run_dir(XP, "20250101_000000"))
    staged = staging / keys[1][0] / keys[1][1]
    staged.mkdir(parents=True, exist_ok=True)
    (staged / ".model.bin.Xy12Zw").write_bytes(b"left by an rsync killed with its host")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    finished = subprocess.run(args, capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert "with rsync" in finished.stdout
    assert_same_jobs(maker.ws, far, keys)
    assert ".model.bin.Xy12Zw" not in files_of(far, layout.job_dir(*keys[1]))
    assert files_of(far, layout.job_dir(*keys[1]))["model.bin"] == (maker.path(keys[1]) / "model.bin").read_bytes()
    assert not far.exists(STAGING)  # and with it, what the killed rsync left in its temporary folder
    assert far.read_bytes(layout.MARKER)  # the destination is still a workspace


@pytest.mark.parametrize("where", ["local", "ssh"])
def test_a_second_copy_into_the_same_workspace_meanwhile_is_refused_naming_the_first(where: str, tmp_path: Path,
                                                                                     remote, home: Path):
    """While a copy writes into a workspace, another copy into it stops at once, naming the first (host, pid);
    once the first is killed, its lock goes with it: the next copy takes it and finishes."""
    import socket

    maker, keys = large_source(tmp_path / "src")
    far = remote() if where == "ssh" else Workspace.open(tmp_path / "dst", create=True)
    other, _ = make_source(tmp_path / "other", jobs=1)
    first_args, first = copy_process(str(maker.root), far.location)
    wait_for(lambda: (host_folder(far) / STAGING).is_dir(), first)
    # Held where it is (it holds the lock): a fast machine could otherwise finish the copy first.
    os.kill(first.pid, signal.SIGSTOP)
    second = invoke("experiments", "copy", "--from-workdir", str(other.root), "--to-workdir", far.location, XP, "-y")
    lines = second.output.strip().splitlines()
    assert second.exit_code != 0, second.output
    assert lines[-1].startswith("Error: another copy into this workspace is under way"), second.output
    assert f"{far.describe(layout.COPY_LOCK)} is held by host {socket.gethostname()}, pid {first.pid}" in lines[-1]
    first.kill()
    first.wait(timeout=30)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    finished = subprocess.run(first_args, capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert_same_jobs(maker.ws, far, keys)


def test_the_ssh_command_checks_host_keys_as_the_workspace_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The ssh command under rsync: host keys checked strictly (known_hosts of $HOME, as asyncssh reads
    them) unless the workspace's options turn the check off; options ssh cannot take mean no rsync."""
    from xpm.rsync import ssh_command

    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "config").write_text("Host *\n    IdentityFile /k\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    checked = ssh_command({"host": "h", "known_hosts": (), "username": "me", "port": 2200})
    assert isinstance(checked, list)
    text = " ".join(checked)
    assert "StrictHostKeyChecking=yes" in text and "StrictHostKeyChecking=no" not in text
    assert f"UserKnownHostsFile={tmp_path}/.ssh/known_hosts" in text and f"-F {tmp_path}/.ssh/config" in text
    assert "-p 2200" in text and "-l me" in text and "BatchMode=yes" in text
    named = " ".join(ssh_command({"known_hosts": "/etc/kh", "client_keys": ["/key"]}))  # type: ignore[arg-type]
    assert "UserKnownHostsFile=/etc/kh" in named and "-i /key" in named and "StrictHostKeyChecking=yes" in named
    off = " ".join(ssh_command({"known_hosts": None}))  # type: ignore[arg-type]
    assert "StrictHostKeyChecking=no" in off and "UserKnownHostsFile=/dev/null" in off
    assert ssh_command({"password": "secret"}) == "the option(s) password cannot be given to the ssh command"


def test_when_the_ssh_command_cannot_reach_the_host_the_files_go_through_sftp(source, remote, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch):
    """The workspace's own connection works but the ssh command under rsync does not (here: an ssh that
    always fails, first on PATH): the copy says so and copies through SFTP."""
    maker, keys = source
    shims = tmp_path / "bin"
    shims.mkdir()
    (shims / "ssh").write_text("#!/bin/sh\necho 'ssh: connect to host example: Connection refused' >&2\nexit 255\n")
    (shims / "ssh").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shims}:{os.environ['PATH']}")
    far = remote()
    result = invoke("experiments", "copy", "--from-workdir", str(maker.root), "--to-workdir", far.location, XP, "-y")
    assert result.exit_code == 0, result.output
    assert "with rsync" in header(result.output)
    assert "Connection refused (the files went through SFTP instead)" in result.output
    assert_same_jobs(maker.ws, far, keys[:3])
    assert not far.exists(STAGING)
