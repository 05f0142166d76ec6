"""``experiments ssh-monitor`` in a real terminal (tmux), on a workspace of the test sshd (127.0.0.1), in both modes.

The sshd's host is this machine: the experiment runs here with the workspace's path as its workdir
(what it writes is what an experiment on the remote host writes), and the monitor reads it through
``ssh://`` over SFTP, as from a laptop. Needs tmux (XPM_REQUIRE_TMUX=1 fails without it) and the
test sshd (XPM_REQUIRE_SSH=1 fails without it).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.run.conftest import own_settings, script_env, wait_until  # noqa: F401 - autouse fixture
from tests.sshd import fresh_host_folder
from tests.terminal.test_monitor_tmux import (  # noqa: F401 - the tmux fixture
    kill_doomed_and_quit,
    line_with,
    tmux,
    wait_screen,
)


@pytest.fixture
def remote(server: dict[str, Any]) -> Iterator[Path]:
    """The workspace's folder on the host (this machine), removed afterwards."""
    yield from fresh_host_folder(server, "tmux")


@pytest.mark.parametrize("mode", ["agentless", "server"])
def test_ssh_monitor_shows_a_remote_experiment_live(server: dict[str, Any], remote: Path, tmp_path: Path,
                                                    tmux, mode: str) -> None:  # noqa: F811 - the fixture
    """Agentless (over SFTP), and in server mode: `experiments monitor-server` run on the host, found
    there with `command -v` once --remote-shell-init put this xpm on the PATH."""
    start, screen, keys = tmux
    server_mode = ["--remote-shell-init", f"PATH={Path(sys.executable).parent}:$PATH"] if mode == "server" else []
    go, log = tmp_path / "go", tmp_path / "log"
    script = tmp_path / "experiment.py"
    script.write_text(textwrap.dedent(f"""
        from xpm import experiment, tag
        from tests.run.tasks import Record

        with experiment({str(remote)!r}, "faraway"):
            Record.C(key=tag("quick"), log={str(log)!r}).submit()
            Record.C(key=tag("slow"), log={str(log)!r}, wait_for={str(go)!r}).submit()
            Record.C(key=tag("doomed"), log={str(log)!r}, wait_for={str(tmp_path / 'never')!r}).submit()
    """))
    experiment = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=script_env(),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: (remote / "index").exists(), what="the workspace")
        start([sys.executable, "-m", "xpm", "experiments", "ssh-monitor",
               f"{server['username']}@{server['host']}", str(remote),
               "-o", f"-p {server['port']}", "-o", f"-i {server['client_keys'][0]}",
               "-o", "-o StrictHostKeyChecking=no", *server_mode], script_env())

        # The experiments view names the remote experiment; Enter opens its jobs.
        wait_screen(screen, lambda s: "faraway" in s, "the remote experiment in the list")
        # The mode asked for: a monitor server runs on the host (this machine) for this workspace, or none.
        servers = subprocess.run(["pgrep", "-f", f"monitor-server --workdir {remote}"], capture_output=True, text=True)
        assert bool(servers.stdout.split()) == (mode == "server"), servers
        keys("Enter")
        shown = wait_screen(screen, lambda s: "RUNNING" in line_with("key=slow", s), "the slow job running")
        assert "key=quick" in shown

        # A change on the host shows up: the slow job ends while the monitor is open.
        go.write_text("go")
        wait_screen(screen, lambda s: "DONE" in line_with("key=slow", s), "the slow job done")
        assert "DONE" in line_with("key=quick", screen())

        # The job detail reads the job's files (over SFTP, or through the server): its output after 'o'.
        keys("/")
        keys(*"key = slow", "Enter")
        wait_screen(screen, lambda s: "key=doomed" not in s and "key=slow" in s, "the filtered list")
        keys("Enter")
        keys("o")
        wait_screen(screen, lambda s: "record slow" in s and remote.name in s, "the job's output in its detail")
        keys("Escape")

        # Kill from the monitor: the job's process on the host (through ssh, or by the server there).
        kill_doomed_and_quit(screen, keys, experiment,
                             lambda s: "RUNNING" in line_with("key=doomed", s) and "key=slow" not in s)
    finally:
        if experiment.poll() is None:
            experiment.kill()
            experiment.wait()


def test_ssh_monitor_on_a_wrong_path_leaves_one_line(server: dict[str, Any], tmp_path: Path,
                                                     tmux) -> None:  # noqa: F811 - the fixture
    start, screen, keys = tmux
    start([sys.executable, "-m", "xpm", "experiments", "ssh-monitor", server["host"], "/no/such/xp",
           "-o", f"-p {server['port']}", "-o", f"-i {server['client_keys'][0]}", "-o", f"-l {server['username']}",
           "-o", "StrictHostKeyChecking=no"], script_env())
    shown = wait_screen(screen, lambda s: "MONITOR-EXITED" in s, "the command to end")
    assert "no such folder" in line_with("Error:", shown)
    assert "MONITOR-EXITED 1" in shown and "Traceback" not in shown

