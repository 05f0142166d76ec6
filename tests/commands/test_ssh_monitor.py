"""``experiments ssh-monitor``: its arguments, its bad inputs, and what a refresh costs over SFTP.

The option parsing and the settings need no server. The bad inputs are run as a user runs them (the
command in its own process, with a home folder of the test's own); those that reach a host, and the
round-trip count, use the real sshd on 127.0.0.1 (scripts/ci/start-sshd.sh).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.run.conftest import ROOT, script_env
from tests.sshd import fresh_host_folder
from xpm.cli.sshmonitor import (
    SSHMonitorError,
    open_target,
    parse_ssh_options,
    remote_command,
    resolve_target,
    start_server,
)
from xpm.settings import SettingsError

# --- ssh options ------------------------------------------------------------------------


def test_ssh_options_become_storage_options(tmp_path: Path) -> None:
    parsed = parse_ssh_options(["-p 2222", "-i ~/.ssh/mykey", "-o StrictHostKeyChecking=no", "-l me"])
    assert parsed.port == 2222 and parsed.user == "me"
    assert parsed.storage == {"client_keys": [str(Path("~/.ssh/mykey").expanduser())], "known_hosts": None}
    # Attached values, ssh's configuration keys (any case), a value without a flag read as -o.
    parsed = parse_ssh_options(["-p2200", "-oUser=you", "IdentityFile=/k", "-o ConnectTimeout=5",
                                "-o UserKnownHostsFile=/tmp/hosts", "-J jump", "-F /cfg"])
    assert (parsed.port, parsed.user) == (2200, "you")
    assert parsed.storage == {"client_keys": ["/k"], "connect_timeout": 5.0, "known_hosts": "/tmp/hosts",
                              "tunnel": "jump", "config": ["/cfg"]}
    assert parse_ssh_options(["-o StrictHostKeyChecking=yes"]).storage == {}
    assert parse_ssh_options(["Port 2022"]).port == 2022


@pytest.mark.parametrize("option, message", [
    ("-p", "-p needs a value"),
    ("-p http", "'http' is not a port number"),
    ("-p 70000", "'70000' is not a port number"),
    ("-X", "'-X' is not supported here"),
    ("-o Compression=yes", "-o compression is not supported here"),
    ("-o StrictHostKeyChecking=maybe", "expected yes, no, accept-new or ask"),
    ("-o ConnectTimeout=soon", "'soon' is not a number of seconds"),
    ('-i "unclosed', "No closing quotation"),
])
def test_bad_ssh_options_are_named(option: str, message: str) -> None:
    with pytest.raises(SSHMonitorError, match=message) as raised:
        parse_ssh_options([option])
    assert repr(option) in str(raised.value) and "\n" not in str(raised.value)


# --- which workspace ---------------------------------------------------------------------


def test_host_and_path_make_an_ssh_url() -> None:
    target = resolve_target("me@cluster", "/scratch/me/xp/", ["-p 2222", "-i /k"])
    assert target.url == "ssh://me@cluster:2222/scratch/me/xp"
    assert target.storage_options == {"client_keys": ["/k"], "connect_timeout": 30.0}
    assert resolve_target("cluster", "/xp", ["-l you"]).url == "ssh://you@cluster/xp"
    # The user of HOST wins over -l, as the one written first.
    assert resolve_target("me@cluster", "/xp", ["-l you", "-o ConnectTimeout=3"]) == \
        type(target)("ssh://me@cluster/xp", {"connect_timeout": 3.0})


def settings(folder: Path, text: str) -> str:
    (folder / "settings.yaml").write_text(textwrap.dedent(text))
    return str(folder)


def test_workspace_id_takes_host_path_and_host_key_setting(tmp_path: Path) -> None:
    config = settings(tmp_path, f"""
        workspaces:
          - id: cluster
            path: ssh://me@cluster:2022/scratch/xp
            known_hosts: false
          - id: here
            path: {tmp_path / 'ws'}
    """)
    with pytest.warns(UserWarning, match="not checked"):
        target = resolve_target(None, None, [], "cluster", config)
    assert target.url == "ssh://me@cluster:2022/scratch/xp"
    assert target.storage_options == {"known_hosts": None, "connect_timeout": 30.0}
    # Command-line options on top of the settings.
    with pytest.warns(UserWarning):
        assert resolve_target(None, None, ["-p 2200", "-i /k"], "cluster", config).url == \
            "ssh://me@cluster:2200/scratch/xp"
    with pytest.raises(SSHMonitorError, match="workspace here is local .*experiments monitor --workspace here"):
        resolve_target(None, None, [], "here", config)
    with pytest.raises(SettingsError, match="no workspace has the id 'nowhere'.*known ids: cluster, here"):
        resolve_target(None, None, [], "nowhere", config)


@pytest.mark.parametrize("args, message", [
    (("cluster", None, None), "missing HOST and REMOTE_WORKDIR"),
    ((None, None, None), "missing HOST and REMOTE_WORKDIR"),
    (("cluster", "/xp", "other"), "not both"),
    (("cluster", "scratch/xp", None), "'scratch/xp': give an absolute path on cluster"),
    (("me@", "/xp", None), "expected \\[user@\\]host"),
    (("@cluster", "/xp", None), "expected \\[user@\\]host"),
    (("-p", "/xp", None), "expected \\[user@\\]host"),
])
def test_missing_or_contradictory_arguments(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(SSHMonitorError, match=message):
        resolve_target(args[0], args[1], [], args[2])


# --- the command, as a user runs it ----------------------------------------------------


def xpm(home: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``experimaestro ARGS`` in its own process, with ``home`` as HOME (no key or known host of the user)."""
    env = {**script_env(), "HOME": str(home), "XPM_CONFIG_DIR": str(home / "config")}
    return subprocess.run([sys.executable, "-m", "xpm", *args], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=ROOT, stdin=subprocess.DEVNULL)


def one_error_line(out: subprocess.CompletedProcess[str], *expected: str) -> str:
    """The run failed with one ``Error:`` line that says each of ``expected`` (and no traceback)."""
    assert out.returncode != 0, out
    errors = [line for line in out.stderr.splitlines() if not line.startswith("note:")]
    assert len(errors) == 1 and errors[0].startswith("Error: "), out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    for text in expected:
        assert text in errors[0], errors[0]
    return errors[0]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "home"
    (folder / "config").mkdir(parents=True)
    return folder


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unknown_workspace_id(home: Path) -> None:
    out = xpm(home, "experiments", "ssh-monitor", "--workspace", "nowhere")
    one_error_line(out, "no workspace has the id 'nowhere'")


def test_bad_ssh_option_on_the_command_line(home: Path) -> None:
    out = xpm(home, "experiments", "ssh-monitor", "cluster", "/xp", "-o", "-X")
    assert out.returncode == 2
    one_error_line(out, "'-X' is not supported here")


def test_unreachable_host_in_both_modes(home: Path) -> None:
    port = closed_port()
    # The server mode asked for: ssh's own error.
    out = xpm(home, "experiments", "ssh-monitor", "127.0.0.1", "/xp", "-o", f"-p {port}",
              "--remote-xpm", "/opt/xpm", "--uv-offline", "--request-timeout", "5")
    one_error_line(out, f"ssh://127.0.0.1:{port}/xp: the monitor server ended", "Connection refused")
    # Not asked for: no xpm could be looked for, and the SFTP connection says why.
    out = xpm(home, "experiments", "ssh-monitor", "127.0.0.1", "/xp", "-o", f"-p {port}")
    one_error_line(out, f"ssh://127.0.0.1:{port}/xp", "cannot connect")
    assert "note:" not in out.stderr


@pytest.mark.parametrize("args, message", [
    (["--remote-xpm", "x", "--remote-python", "python3"], "give --remote-xpm or --remote-python, not both"),
    (["--remote-xpm", "'unclosed"], "No closing quotation"),
    (["--request-timeout", "0"], "--request-timeout 0: give a number of seconds above 0"),
])
def test_bad_server_mode_options(home: Path, args: list[str], message: str) -> None:
    one_error_line(xpm(home, "experiments", "ssh-monitor", "cluster", "/xp", *args), message)


def test_remote_command_of_each_option() -> None:
    assert remote_command("/s p/xp", remote_python="/opt/py") == \
        "exec env /opt/py -m xpm experiments monitor-server --workdir '/s p/xp'"
    assert remote_command("/xp", remote_xpm="uv run --project ~/x experimaestro", shell_init="module load py;",
                          uv_offline=True) == ("module load py; exec env UV_OFFLINE=1 uv run --project ~/x "
                                               "experimaestro experiments monitor-server --workdir /xp")
    assert remote_command("/xp") == ("command -v experimaestro >/dev/null 2>&1 || exit 127; exec env experimaestro "
                                     "experiments monitor-server --workdir /xp")


# --- against the real sshd ---------------------------------------------------------------



@pytest.fixture
def remote(server: dict[str, Any]) -> Iterator[Path]:
    """The workspace's folder on the host (this machine: the sshd runs on 127.0.0.1), removed afterwards."""
    yield from fresh_host_folder(server, "mon")


def ssh_args(server: dict[str, Any], key: str | None = None) -> list[str]:
    """HOST and the -o options that reach the test server, as a user writes them."""
    return [f"{server['username']}@{server['host']}", "-o", f"-p {server['port']}",
            "-o", f"-i {key or server['client_keys'][0]}", "-o", "-o StrictHostKeyChecking=no"]


def test_wrong_remote_path_and_refused_key(server: dict[str, Any], home: Path, tmp_path: Path) -> None:
    host, *options = ssh_args(server)
    out = xpm(home, "experiments", "ssh-monitor", host, "/no/such/xp", *options)
    one_error_line(out, "/no/such/xp", "no such folder")
    out = xpm(home, "experiments", "ssh-monitor", host, str(tmp_path), *options)
    one_error_line(out, "not an xpm workspace")
    stranger = tmp_path / "stranger_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    host, *options = ssh_args(server, str(stranger))
    out = xpm(home, "experiments", "ssh-monitor", host, str(tmp_path), *options)
    one_error_line(out, "cannot connect")


def test_a_remote_workdir_under_the_home_folder(server: dict[str, Any], home: Path) -> None:
    """'~/path' (quoted, so that the local shell leaves it) is under the login's home folder on the host."""
    import pwd

    host, *options = ssh_args(server)
    remote_home = pwd.getpwnam(server["username"]).pw_dir  # the test server runs on this machine
    out = xpm(home, "experiments", "ssh-monitor", host, "~/no-such-xpm-workspace", *options)
    one_error_line(out, f"{remote_home}/no-such-xpm-workspace", "no such folder")


def run_experiment(tmp_path: Path, remote: Path, go: Path) -> subprocess.Popen[str]:
    """An experiment "on the host": here, with the workspace's path as its workdir; one job waits for ``go``."""
    script = tmp_path / "experiment.py"
    script.write_text(textwrap.dedent(f"""
        from xpm import experiment, tag
        from tests.run.tasks import Record

        with experiment({str(remote)!r}, "faraway"):
            Record.C(key=tag("quick"), log={str(tmp_path / 'log')!r}).submit()
            Record.C(key=tag("slow"), log={str(tmp_path / 'log')!r}, wait_for={str(go)!r}).submit()
    """))
    return subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=script_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class Counting:
    """The SFTP filesystem, counting the calls each of which is one SFTP request (or a few for a listing)."""

    def __init__(self, fs: Any):
        self._fs = fs
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._fs, name)
        if name.startswith("_") or not callable(value):
            return value

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(f"{name} {args[0] if args else ''}")
            return value(*args, **kwargs)

        return counted


def test_a_refresh_with_no_change_costs_a_few_round_trips(server: dict[str, Any], remote: Path,
                                                          tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.run.conftest import wait_until
    from xpm.monitor.model import MonitorModel

    go = tmp_path / "go"
    experiment = run_experiment(tmp_path, remote, go)
    try:
        wait_until(lambda: (remote / "index").exists(), what="the workspace")
        host, *options = ssh_args(server)
        ws = open_target(resolve_target(host, str(remote), options[1::2]))  # the values of the -o flags
        counting = ws.fs = Counting(ws.fs)
        model = MonitorModel(ws, experiment="faraway")
        wait_until(lambda: model.refresh() is not None and model.job_count() == 2, what="both jobs listed")
        rows = [model.job_row(i) for i in range(model.job_count())]
        assert sorted(row.tags["key"] for row in rows) == ["quick", "slow"]
        go.write_text("go")
        experiment.communicate(timeout=60)
        assert experiment.returncode == 0
        # Until the monitor has seen every change (the jobs' end), then nothing changes any more.
        wait_until(lambda: not model.refresh(), what="a refresh without change")
        assert {model.job_row(i).state for i in range(2)} == {"done"}
        model.refresh()
        counting.calls.clear()
        assert model.refresh() is False
        calls = list(counting.calls)
    finally:
        if experiment.poll() is None:
            experiment.kill()
            experiment.wait()
    with capsys.disabled():
        print(f"\nssh-monitor: a refresh with no change (1 experiment, 2 jobs) = {len(calls)} SFTP calls: {calls}")
    # A few per experiment and for the index; none per job (the jobs are done: their logs are not read again).
    assert len(calls) <= 10, calls
    assert not any("/jobs/" in call for call in calls), calls


def test_web_monitor_of_a_remote_workspace(server: dict[str, Any], remote: Path, home: Path, tmp_path: Path) -> None:
    """ssh-monitor --web serves the web monitor here, on the remote files read over SFTP."""
    import json
    import re
    import urllib.request

    from tests.run.conftest import wait_until

    go = tmp_path / "go"
    go.write_text("go")
    experiment = run_experiment(tmp_path, remote, go)
    assert experiment.wait(timeout=60) == 0
    env = {**script_env(), "HOME": str(home), "XPM_CONFIG_DIR": str(home / "config")}
    monitor = subprocess.Popen(
        [sys.executable, "-m", "xpm", "experiments", "ssh-monitor", *ssh_args(server)[:1], str(remote),
         *ssh_args(server)[1:], "--web", "--port", "0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert monitor.stdout is not None
        line = monitor.stdout.readline()
        found = re.search(r"open (http://127\.0\.0\.1:(\d+)/\S*token=(\S+))", line)
        assert found, line + (monitor.stderr.read() if monitor.poll() is not None else "")
        port, token = found.group(2), found.group(3)

        def experiments() -> list[dict[str, Any]]:
            url = f"http://127.0.0.1:{port}/api/experiments?token={token}"
            with urllib.request.urlopen(url, timeout=10) as answer:
                return json.load(answer)["experiments"]

        wait_until(lambda: any(xp["id"] == "faraway" for xp in experiments()), what="the remote experiment")
        faraway = next(xp for xp in experiments() if xp["id"] == "faraway")
        assert faraway["total"] == 2
    finally:
        monitor.terminate()
        monitor.wait(timeout=30)


# --- the server mode: an xpm on the host answers ---------------------------------------------------


def test_server_mode_over_ssh_lists_kills_and_survives_bad_requests(server: dict[str, Any], remote: Path,
                                                                    tmp_path: Path, home: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from tests.run.conftest import wait_until
    from xpm.monitor.remote import ServerError

    go = tmp_path / "go"
    experiment = run_experiment(tmp_path, remote, go)
    try:
        wait_until(lambda: (remote / "index").exists(), what="the workspace")
        host, *options = ssh_args(server)
        target = resolve_target(host, str(remote), options[1::2])
        # The host's xpm is this one: --remote-python runs `PY -m xpm` there.
        model = start_server(target, remote_command(str(remote), remote_python=sys.executable), 30, "faraway")
        try:
            def slow_running() -> bool:
                model.refresh()
                rows = [model.job_row(i) for i in range(model.job_count())]
                return len(rows) == 2 and any(r.tags["key"] == "slow" and r.state == "running" for r in rows)

            wait_until(slow_running, what="both jobs, the slow one running")
            connection = model.connection
            # Bad requests: an error reply each, and the server goes on.
            with pytest.raises(ServerError, match="no job x/y in the workspace"):
                connection.request("detail", key=["x", "y"])
            with pytest.raises(ServerError, match="unknown request 'fly'"):
                connection.request("fly")
            wait_until(lambda: model.refresh() is False, what="a refresh without change")
            before = connection.requests
            assert model.refresh() is False and connection.requests == before + 1
            # Kill through the server: the job's process on the host.
            [slow] = [model.job_key(i) for i in range(2) if model.job_row(i).tags["key"] == "slow"]
            outcome = model.kill(slow, grace=5)
            assert outcome.result == "killed", outcome
            experiment.communicate(timeout=60)
            assert experiment.returncode == 1  # the killed job failed the experiment
            wait_until(lambda: model.refresh() is not None and model.row(slow) is not None
                       and model.row(slow).state == "error", what="the killed job in error")  # type: ignore[union-attr]
            assert model.detail(slow).state.failure_reason == "cancelled"  # type: ignore[union-attr]
        finally:
            model.close()
    finally:
        if experiment.poll() is None:
            experiment.kill()
            experiment.wait()
    with capsys.disabled():
        print(f"\nssh-monitor server mode: a refresh with no change = 1 request ({connection.requests} in all)")


def test_server_mode_errors_are_one_line(server: dict[str, Any], home: Path, tmp_path: Path) -> None:
    host, *options = ssh_args(server)
    # The server runs but the path is wrong: its own error, through ssh.
    out = xpm(home, "experiments", "ssh-monitor", host, "/no/such/xp", *options, "--remote-python", sys.executable)
    one_error_line(out, "the monitor server ended", "/no/such/xp: no such folder")
    # No such program on the host.
    out = xpm(home, "experiments", "ssh-monitor", host, str(tmp_path), *options, "--remote-xpm", "/no/such/xpm")
    one_error_line(out, "the monitor server ended", "/no/such/xpm")
    # Not asked for but found (after --remote-shell-init), and failing: a note, then the SFTP mode's error.
    init = f"PATH={Path(sys.executable).parent}:$PATH"
    out = xpm(home, "experiments", "ssh-monitor", host, "/no/such/xp", *options, "--remote-shell-init", init)
    one_error_line(out, "/no/such/xp", "no such folder")
    [note] = [line for line in out.stderr.splitlines() if line.startswith("note:")]
    assert "the monitor server ended: Error: /no/such/xp: no such folder; reading the workspace over SFTP" in note
