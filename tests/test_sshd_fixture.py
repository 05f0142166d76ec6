"""What the SFTP filesystem (fsspec "ssh" = sshfs + asyncssh, OpenSSH's internal-sftp server) really does.

These tests run against a real SSH server (see tests/sshd.py) and pin down the behaviours a lock-file
protocol over SFTP relies on. Facts observed with sshfs 2026.8.0, asyncssh 2.24.1, fsspec 2026.9.0 and
OpenSSH 9.2p1 (SFTP protocol version 3, which has no "file exists" status code):

* exclusive directory creation: ``fs.mkdir(p, create_parents=False)`` is one SFTP MKDIR (atomic); on an
  existing path it raises ``asyncssh.sftp.SFTPFailure`` (code FX_FAILURE, reason "Failure"), **not**
  ``FileExistsError``. ``fs.mkdir(p)`` (default ``create_parents=True``) never fails on an existing
  folder. ``fs.makedirs(p, exist_ok=False)`` raises ``FileExistsError`` but is only exclusive when the
  parent already exists (when it creates parents, two racing clients can both "succeed").
* ``fs.open(p, "xb")`` maps to FXF_CREAT|FXF_EXCL (O_EXCL on the server): exclusive create works and is
  atomic; on an existing path it raises ``SFTPFailure`` (not ``FileExistsError``) and leaves the file alone.
* ``fs.open(p, "ab")`` maps to FXF_APPEND (O_APPEND on the server): every open appends at the end.
* ``fs.mv(a, b)`` uses posix-rename@openssh.com, i.e. rename(2): it atomically replaces an existing file.
* ``fs.rmdir(p)`` is a silent no-op (fsspec's default; sshfs only implements ``_rmdir``); use ``fs.rm(p)``.
* missing paths raise ``FileNotFoundError``; other failures surface as the generic ``SFTPFailure``.
* ``fs.info()``: ``size`` (int), ``type``, ``mtime`` and ``time`` (atime) as UTC-aware datetimes with
  whole-second resolution, ``uid``, ``gid``, ``permissions``, ``name`` (folders end with "/").
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

import asyncssh
import fsspec
import pytest

from tests.sshd import (  # noqa: F401 - ssh_fs is a fixture
    SSHWorkspace,
    close_fs,
    require_ssh,
    ssh_fs,
    ssh_server_status,
    ssh_workspace_params,
)

SFTPFailure = asyncssh.sftp.SFTPFailure


def test_write_then_read_back(ssh_fs: SSHWorkspace) -> None:
    fs, d = ssh_fs
    with fs.open(f"{d}/a.bin", "wb") as f:
        f.write(b"hello over sftp\n")
    with fs.open(f"{d}/a.bin", "rb") as f:
        assert f.read() == b"hello over sftp\n"
    fs.pipe(f"{d}/b.bin", b"\x00\x01" * 1000)
    assert fs.cat(f"{d}/b.bin") == b"\x00\x01" * 1000
    # Text mode goes through fsspec's TextIOWrapper.
    with fs.open(f"{d}/c.txt", "w") as f:
        f.write("héllo\n")
    assert fs.cat(f"{d}/c.txt") == "héllo\n".encode()


def test_ls(ssh_fs: SSHWorkspace) -> None:
    fs, d = ssh_fs
    fs.pipe(f"{d}/one", b"1")
    fs.pipe(f"{d}/two", b"22")
    fs.makedirs(f"{d}/sub")
    assert sorted(fs.ls(d, detail=False)) == [f"{d}/one", f"{d}/sub", f"{d}/two"]
    detail = {e["name"]: e for e in fs.ls(d, detail=True)}
    assert detail[f"{d}/two"]["type"] == "file" and detail[f"{d}/two"]["size"] == 2
    assert detail[f"{d}/sub"]["type"] == "directory"


def test_missing_paths_raise_file_not_found(ssh_fs: SSHWorkspace) -> None:
    fs, d = ssh_fs
    for call in (
        lambda: fs.cat(f"{d}/missing"),
        lambda: fs.info(f"{d}/missing"),
        lambda: fs.open(f"{d}/missing", "rb"),
        lambda: fs.rm(f"{d}/missing"),
        lambda: fs.mv(f"{d}/missing", f"{d}/elsewhere"),
        lambda: fs.mkdir(f"{d}/no/parent", create_parents=False),
    ):
        with pytest.raises(FileNotFoundError):
            call()


def test_mv_replaces_an_existing_file(ssh_fs: SSHWorkspace) -> None:
    fs, d = ssh_fs
    fs.pipe(f"{d}/new", b"new content")
    fs.pipe(f"{d}/target", b"old content")
    # posix-rename@openssh.com -> rename(2): atomic replacement, no error, source gone.
    fs.mv(f"{d}/new", f"{d}/target")
    assert fs.cat(f"{d}/target") == b"new content"
    assert not fs.exists(f"{d}/new")
    # A file cannot replace a folder: generic SFTP failure.
    fs.makedirs(f"{d}/folder")
    fs.pipe(f"{d}/other", b"x")
    with pytest.raises(SFTPFailure):
        fs.mv(f"{d}/other", f"{d}/folder")


def test_mkdir_on_existing_folder(ssh_fs: SSHWorkspace) -> None:
    fs, d = ssh_fs
    lock = f"{d}/lock.d"
    fs.mkdir(lock, create_parents=False)  # first creation succeeds
    assert fs.isdir(lock)

    # Exclusive mkdir: one SFTP MKDIR. SFTPv3 has no "already exists" status, OpenSSH answers
    # SSH_FX_FAILURE, and sshfs does not translate it: asyncssh.sftp.SFTPFailure, NOT FileExistsError.
    with pytest.raises(SFTPFailure) as info:
        fs.mkdir(lock, create_parents=False)
    assert not isinstance(info.value, FileExistsError)
    assert info.value.code == asyncssh.sftp.FX_FAILURE
    # The same error when a *file* is in the way, so the caller cannot tell the cases apart without a stat.
    fs.pipe(f"{d}/plain", b"x")
    with pytest.raises(SFTPFailure):
        fs.mkdir(f"{d}/plain", create_parents=False)

    # Pitfall: the default create_parents=True means makedirs(exist_ok=True): never fails.
    fs.mkdir(lock)

    # makedirs(exist_ok=False) does raise FileExistsError (asyncssh stats after a failed MKDIR and says
    # "... already exists"). It is exclusive only if the parent exists: when it has to create parent
    # folders, two racing clients can both succeed (seen in 3 of 100 races), so lock code should use
    # mkdir(create_parents=False) under an existing parent.
    with pytest.raises(FileExistsError):
        fs.makedirs(lock, exist_ok=False)


def test_rmdir_is_a_no_op_but_rm_removes_folders(ssh_fs: SSHWorkspace) -> None:
    fs, d = ssh_fs
    fs.mkdir(f"{d}/empty", create_parents=False)
    fs.rmdir(f"{d}/empty")  # fsspec's default rmdir does nothing for sshfs
    assert fs.isdir(f"{d}/empty")
    fs.rm(f"{d}/empty")  # an SFTP RMDIR
    assert not fs.exists(f"{d}/empty")
    fs.makedirs(f"{d}/full/child")
    with pytest.raises(SFTPFailure):
        fs.rm(f"{d}/full")  # not empty: generic failure
    fs.rm(f"{d}/full", recursive=True)
    assert not fs.exists(f"{d}/full")


def test_append_mode_appends_at_each_open(ssh_fs: SSHWorkspace) -> None:
    fs, d = ssh_fs
    path = f"{d}/log"
    with fs.open(path, "ab") as f:  # creates the file
        f.write(b"first\n")
    with fs.open(path, "ab") as f:
        f.write(b"second\n")
    assert fs.cat(path) == b"first\nsecond\n"
    # Two handles open at once both append (O_APPEND on the server), nothing is overwritten.
    with fs.open(path, "ab") as f1, fs.open(path, "ab") as f2:
        f1.write(b"third\n")
        f2.write(b"fourth\n")
    assert fs.cat(path) == b"first\nsecond\nthird\nfourth\n"


def test_exclusive_create_xb(ssh_fs: SSHWorkspace) -> None:
    fs, d = ssh_fs
    path = f"{d}/owner"
    with fs.open(path, "xb") as f:  # does not exist yet: created
        f.write(b"me")
    assert fs.cat(path) == b"me"
    # Exclusive create IS supported over SFTP (FXF_EXCL -> O_EXCL): opening an existing file with "xb"
    # fails, with asyncssh.sftp.SFTPFailure (generic FX_FAILURE), NOT FileExistsError, and the file is
    # left untouched.
    with pytest.raises(SFTPFailure) as info:
        fs.open(path, "xb")
    assert not isinstance(info.value, FileExistsError)
    assert info.value.code == asyncssh.sftp.FX_FAILURE
    assert fs.cat(path) == b"me"
    fs.makedirs(f"{d}/adir")
    with pytest.raises(SFTPFailure):
        fs.open(f"{d}/adir", "xb")


def test_exclusive_create_race_between_two_connections(ssh_fs: SSHWorkspace) -> None:
    fs, d = ssh_fs
    params = dict(ssh_fs.server.params)
    params.pop("root")
    other = fsspec.filesystem("ssh", skip_instance_cache=True, **params)
    rounds = 10
    winners: list[list[int]] = [[] for _ in range(rounds)]
    errors: list[BaseException] = []
    try:
        _race(fs, other, d, rounds, winners, errors)
    finally:
        close_fs(other)
    assert errors == []
    assert [len(w) for w in winners] == [1] * rounds
    assert [fs.cat(f"{d}/race-{r}") for r in range(rounds)] == [str(w[0]).encode() for w in winners]


def _race(
    fs: object, other: object, d: str, rounds: int, winners: list[list[int]], errors: list[BaseException]
) -> None:
    for r in range(rounds):
        barrier = threading.Barrier(2)

        def attempt(who: int, client: object, r: int = r, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                with client.open(f"{d}/race-{r}", "xb") as f:  # type: ignore[attr-defined]
                    f.write(str(who).encode())
                winners[r].append(who)
            except SFTPFailure:
                pass
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=attempt, args=(i, c)) for i, c in enumerate((fs, other))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def test_info_fields(ssh_fs: SSHWorkspace) -> None:
    fs, d = ssh_fs
    path = f"{d}/data"
    fs.pipe(path, b"12345")
    info = fs.info(path)
    assert {"name", "size", "type", "mtime", "time", "uid", "gid", "permissions"} <= set(info)
    assert info["name"] == path and info["type"] == "file"
    assert isinstance(info["size"], int) and info["size"] == 5
    mtime = info["mtime"]
    assert isinstance(mtime, datetime) and mtime.tzinfo == timezone.utc
    assert mtime.microsecond == 0  # SFTPv3 carries whole seconds only
    assert isinstance(info["time"], datetime)  # "time" is the access time
    assert fs.modified(path) == mtime
    folder = fs.info(d)
    assert folder["type"] == "directory" and folder["name"] == d + "/"

    time.sleep(1.1)  # one-second mtime resolution
    with fs.open(path, "ab") as f:
        f.write(b"678")
    later = fs.info(path)
    assert later["size"] == 8
    assert later["mtime"] > mtime


def test_same_connection_for_the_session(ssh_fs: SSHWorkspace) -> None:
    params = ssh_workspace_params()
    assert params is not None
    assert ssh_fs.fs is ssh_fs.server.fs
    assert ssh_fs.path.startswith(params["root"] + "/")
    assert {"host", "port", "username", "known_hosts", "root"} <= set(params)
    assert params["known_hosts"] is None


def test_require_ssh_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XPM_REQUIRE_SSH", raising=False)
    assert require_ssh() is False
    monkeypatch.setenv("XPM_REQUIRE_SSH", "1")
    assert require_ssh() is True
    monkeypatch.setenv("XPM_REQUIRE_SSH", "0")
    assert require_ssh() is False
    assert isinstance(ssh_server_status()[1], str)


def test_a_server_the_tests_start_is_stopped_when_they_end(tmp_path) -> None:
    """Without XPM_TEST_SSH_*, a test session starts its own sshd, and stops it when it ends; one
    that was running before (another state folder here) is reused and left running."""
    import os
    import subprocess
    import sys

    from tests import sshd

    if not sshd.SSHD_BIN.exists() or os.geteuid() != 0:
        sshd.skip_or_fail("starting a private sshd needs root and openssh-server")
    folder = tmp_path / "sshd"
    env = {k: v for k, v in os.environ.items() if not k.startswith("XPM_TEST_SSH_")}
    env.update(SSHD_DIR=str(folder), SSHD_PORT="2298", PYTHONPATH=str(sshd.START_SCRIPT.parents[2]))
    session = "from tests import sshd; print(sshd.ssh_server_status()[1]); print(sshd._running_sshd())"

    def run() -> tuple[str, int | None]:
        done = subprocess.run([sys.executable, "-c", session], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        *reason, pid = done.stdout.splitlines()
        return "\n".join(reason), None if pid == "None" else int(pid)

    out, pid = run()
    assert "started by start-sshd.sh" in out and pid is not None
    with pytest.raises(ProcessLookupError):  # stopped when the session (the process) ended
        for _ in range(50):
            os.kill(pid, 0)
            time.sleep(0.1)
    # A server already running is left running.
    started = subprocess.run(["bash", str(sshd.START_SCRIPT)], env=env, capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stderr
    running = int((folder / "sshd.pid").read_text())
    try:
        out, pid = run()
        assert pid == running
        os.kill(running, 0)  # still alive
    finally:
        os.kill(running, 15)
