"""The local launcher's fork server, with real processes: a forked job is what ``python -m xpm run``
would have been (folder, environment, ``sys.path``, streams, session), its end is reported, it
outlives the experiment and the server, ``jobs kill`` reaches its group; Popen stays as the fallback."""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from tests.run.conftest import wait_until
from xpm import RunMode, experiment
from xpm.launchers import LaunchRequest, forkserver
from xpm.launchers.local import ForkedProcess, LocalLauncher, LocalProcess, LocalProcessHandler

pytestmark = pytest.mark.skipif(not forkserver.supported(), reason="fork servers need Linux (fork, pidfds)")

TASKS = '''
import atexit, json, os, signal, subprocess, sys, threading, time
from pathlib import Path
from xpm import Meta, Param, Task

# Who imports this module: the fork server must not.
with open(os.environ.get("FS_IMPORTS", os.devnull), "a") as f:
    f.write(f"{os.getpid()}\\n")


class Probe(Task):
    """Writes what a job process looks like from inside to probe.json."""

    __xpmid__ = "fs.probe"
    key: Param[str]

    def execute(self):
        streams = {
            name: [s.encoding, s.errors, s.line_buffering, s.write_through, s.mode, s.buffer.__class__.__name__]
            for name, s in (("stdout", sys.stdout), ("stderr", sys.stderr))
        }
        info = {
            "cwd": os.getcwd(), "env": dict(os.environ), "path": sys.path, "argv": sys.argv,
            "orig_argv": sys.orig_argv, "pid": os.getpid(), "ppid": os.getppid(), "pgid": os.getpgid(0),
            "sid": os.getsid(0), "stdin": sys.stdin.read(), "fd0": os.readlink("/proc/self/fd/0"),
            "fds": sorted(os.listdir("/proc/self/fd")), "streams": streams,
            "main": getattr(sys.modules["__main__"], "__file__", None),
            "signals": {s.name: str(signal.getsignal(s)) for s in (signal.SIGINT, signal.SIGPIPE, signal.SIGCHLD)},
            "threads": threading.active_count(),
        }
        Path("probe.json").write_text(json.dumps(info))
        print("to stdout")
        print("to stderr", file=sys.stderr)


class Exit(Task):
    """Ends its process with ``code`` (or with signal ``-code``) without recording its end."""

    __xpmid__ = "fs.exit"
    code: Param[int]

    def execute(self):
        if self.code < 0:
            os.kill(os.getpid(), -self.code)
        os._exit(self.code)


class Sleep(Task):
    """Starts a child process, writes both pids to ``pids``, then sleeps."""

    __xpmid__ = "fs.sleep"
    pids: Meta[Path]

    def execute(self):
        child = subprocess.Popen(["sleep", "600"])
        tmp = self.pids.with_suffix(".tmp")
        tmp.write_text(json.dumps({"job": os.getpid(), "child": child.pid, "parent": os.getppid()}))
        tmp.rename(self.pids)
        time.sleep(600)


class Ending(Task):
    """Leaves work for the interpreter's exit: an atexit handler, a thread, unflushed output."""

    __xpmid__ = "fs.ending"
    out: Meta[Path]

    def execute(self):
        atexit.register(lambda: Path(self.out, "atexit").write_text("ran"))

        def late():
            time.sleep(0.3)
            Path(self.out, "thread").write_text("ran")

        threading.Thread(target=late).start()  # not a daemon: the exit waits for it
        sys.stdout.write("no newline")
'''


@pytest.fixture(scope="module")
def modules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the tasks module (``fs_tasks``) of these tests."""
    folder = tmp_path_factory.mktemp("modules")
    (folder / "fs_tasks.py").write_text(textwrap.dedent(TASKS))
    return folder


@pytest.fixture
def tasks(modules: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(modules))
    import fs_tasks  # type: ignore[import-not-found]

    return fs_tasks


def plan(ws: Path, *tasks: Any) -> list[Any]:
    """Submits tasks in GENERATE_ONLY mode: their job folders exist, nothing runs."""
    with experiment(ws, "plan", run_mode=RunMode.GENERATE_ONLY):
        return [task.submit() for task in tasks]


def request(task: Any, modules: Path, **env: str) -> LaunchRequest:
    return LaunchRequest(
        jobdir=task.jobpath,
        task_id=task.jobpath.parent.name,
        identifier=task.jobpath.name,
        stdout=task.stdout(),
        stderr=task.stderr(),
        env={"FS_TEST": "yes", **env},
        python_path=[str(modules)],
    )


def probe(task: Any) -> dict[str, Any]:
    return json.loads((task.jobpath / "probe.json").read_text())  # type: ignore[no-any-return]


def gone(pid: int) -> bool:
    """Whether a process has ended (a zombie whose parent died and nobody reaps counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except FileNotFoundError:
        return True


def test_a_forked_job_is_what_popen_would_have_started(tmp_path: Path, tasks: Any, modules: Path) -> None:
    first, forked_task, popen_task = plan(
        tmp_path / "ws", tasks.Probe.C(key="first"), tasks.Probe.C(key="fork"), tasks.Probe.C(key="popen")
    )
    for task in (forked_task, popen_task):
        task.stdout().parent.mkdir(parents=True, exist_ok=True)
        task.stdout().write_text("earlier\n")  # appended to, not overwritten
    # A start-up variable of this test's own: a new server, started with the first job's environment.
    key = {"PYTHON_FS_TEST": str(tmp_path)}
    forked_request, popen_request = request(forked_task, modules, **key), request(popen_task, modules, **key)
    assert LocalLauncher(fork=True).launch(request(first, modules, FS_FIRST_ONLY="1", **key)).wait() == 0
    assert probe(first)["env"]["FS_FIRST_ONLY"] == "1"

    launched = LocalLauncher(fork=True).launch(forked_request)
    assert isinstance(launched, ForkedProcess)
    assert launched.wait() == 0
    reference = LocalLauncher(fork=False).launch(popen_request)
    assert isinstance(reference, LocalProcess)
    assert reference.wait() == 0

    forked, popen = probe(forked_task), probe(popen_task)
    for task, info in ((forked_task, forked), (popen_task, popen)):
        jobdir = os.path.realpath(task.jobpath)
        assert info["cwd"] == jobdir
        assert info["path"][0] == jobdir
        assert info["argv"][1:] == ["run", str(task.jobpath)]
        assert info["orig_argv"][1:] == ["-m", "xpm", "run", str(task.jobpath)]
        assert info["pgid"] == info["sid"] == info["pid"], "a session (and group) leader"
        assert (info["stdin"], info["fd0"]) == ("", os.devnull)
        assert task.stdout().read_text() == "earlier\nto stdout\n"
        assert task.stderr().read_text() == "to stderr\n"
    # The same environment as Popen's (the experiment's, the request's, PYTHONPATH)...
    assert forked["env"] == popen["env"] == LocalLauncher().environment(forked_request)
    assert forked["env"]["FS_TEST"] == "yes" and "FS_FIRST_ONLY" not in forked["env"]
    assert probe(first)["ppid"] == forked["ppid"], "one server for both"
    # ... and the same interpreter state, but for the job folder.
    assert forked["path"][1:] == popen["path"][1:]
    assert forked["path"][1] == str(modules)
    for name in ("argv", "orig_argv"):
        assert forked[name][0] == popen[name][0]
    for name in ("streams", "fds", "signals", "main", "threads"):
        assert forked[name] == popen[name], name
    assert popen["ppid"] == os.getpid() != forked["ppid"], "the fork server is the parent"


def test_exit_statuses_and_launch_errors_are_those_of_popen(tmp_path: Path, tasks: Any, modules: Path) -> None:
    tasks_ = plan(tmp_path / "ws", tasks.Exit.C(code=7), tasks.Exit.C(code=-signal.SIGKILL), tasks.Exit.C(code=0))
    seven, killed, zero = (LocalLauncher(fork=True).launch(request(task, modules)) for task in tasks_)
    assert all(isinstance(launched, ForkedProcess) for launched in (seven, killed, zero))
    assert (seven.wait(), killed.wait(), zero.wait()) == (7, -signal.SIGKILL, 0)
    assert seven.process["start"] > 0

    # What Popen raises, the fork server raises: nothing starts.
    missing = request(tasks_[0], modules)
    for fork in (True, False):
        missing.jobdir = tmp_path / "no-such-folder"
        with pytest.raises(FileNotFoundError):
            LocalLauncher(fork=fork).launch(missing)
        missing.jobdir = tasks_[0].jobpath
        missing.stdout = tmp_path / "no-such-folder" / "out"
        with pytest.raises(FileNotFoundError):
            LocalLauncher(fork=fork).launch(missing)
        missing.stdout = tasks_[0].stdout()


def test_the_interpreter_exit_still_runs_atexit_threads_and_flushes(tmp_path: Path, tasks: Any, modules: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (task,) = plan(tmp_path / "ws", tasks.Ending.C(out=out))
    launched = LocalLauncher(fork=True).launch(request(task, modules))
    assert isinstance(launched, ForkedProcess)
    assert launched.wait() == 0
    assert (out / "atexit").read_text() == "ran"
    assert (out / "thread").read_text() == "ran"
    assert task.stdout().read_text() == "no newline"


def test_the_server_is_single_threaded_and_never_imports_tasks(
    tmp_path: Path, tasks: Any, modules: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pids = tmp_path / "pids.json"
    (task,) = plan(tmp_path / "ws", tasks.Sleep.C(pids=pids))
    imports = tmp_path / "imports"
    monkeypatch.setenv("FS_IMPORTS", str(imports))
    launched = LocalLauncher(fork=True).launch(request(task, modules))
    try:
        wait_until(pids.exists, what="the job to start")
        server = json.loads(pids.read_text())["parent"]
        status = Path(f"/proc/{server}/status").read_text()
        assert "\nThreads:\t1\n" in status
        assert imports.read_text().split() == [str(launched.process["pid"])], "only the job imports the tasks"
    finally:
        LocalProcessHandler().kill(launched.process)
    assert launched.wait() == -signal.SIGKILL


def test_kill_reaches_the_process_group(tmp_path: Path, tasks: Any, modules: Path) -> None:
    pids = tmp_path / "pids.json"
    (task,) = plan(tmp_path / "ws", tasks.Sleep.C(pids=pids))
    launched = LocalLauncher(fork=True).launch(request(task, modules))
    assert isinstance(launched, ForkedProcess)
    wait_until(pids.exists, what="the job to start")
    started = json.loads(pids.read_text())
    assert LocalProcessHandler().alive(launched.process)
    LocalProcessHandler().terminate(launched.process)
    assert launched.wait() != 0
    wait_until(lambda: gone(started["child"]), what="the job's own child to be killed with it")
    assert not LocalProcessHandler().alive(launched.process)


def test_jobs_outlive_the_experiment_and_its_server(tmp_path: Path, start_script: Any) -> None:
    ws, pids = tmp_path / "ws", tmp_path / "pids.json"
    modules = tmp_path / "mods"
    modules.mkdir()
    (modules / "fs_tasks.py").write_text(textwrap.dedent(TASKS))
    script = start_script(f"""
        import sys
        sys.path.insert(0, {str(modules)!r})
        from pathlib import Path
        from xpm import experiment
        from fs_tasks import Sleep

        with experiment({str(ws)!r}, "outlive"):
            Sleep.C(pids=Path({str(pids)!r})).submit()
    """)
    wait_until(pids.exists, what="the job to start")
    started = json.loads(pids.read_text())
    server = started["parent"]
    assert server != script.pid and not gone(server)
    script.send_signal(signal.SIGKILL)
    script.wait()
    wait_until(lambda: gone(server), what="the server to end with the experiment")
    time.sleep(0.2)
    assert not gone(started["job"]) and not gone(started["child"]), "the job goes on"
    state = json.loads(next((ws / "jobs" / "fs.sleep").iterdir()).joinpath(".xpm", "state.json").read_text())
    assert state["state"] == "running" and state["process"]["pid"] == started["job"]
    LocalProcessHandler().kill(state["process"])
    wait_until(lambda: gone(started["job"]) and gone(started["child"]), what="the job to be killed")


def test_popen_when_asked_or_when_the_server_cannot_start(
    tmp_path: Path, tasks: Any, modules: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = plan(tmp_path / "ws", *(tasks.Probe.C(key=str(i)) for i in range(4)))
    assert isinstance(LocalLauncher(fork=False).launch(request(jobs[0], modules)), LocalProcess)
    monkeypatch.setenv("XPM_LOCAL_FORK", "0")
    launched = LocalLauncher().launch(request(jobs[1], modules))
    assert isinstance(launched, LocalProcess) and launched.wait() == 0
    assert probe(jobs[1])["ppid"] == os.getpid()
    monkeypatch.delenv("XPM_LOCAL_FORK")
    # A relative PYTHONPATH entry means another thing in the job folder than in the server's.
    relative = request(jobs[2], modules, PYTHONPATH="relative")
    launched = LocalLauncher().launch(relative)
    assert isinstance(launched, LocalProcess) and launched.wait() == 0
    # An interpreter that cannot run the server (here: not Python) gets Popen, which fails as it would.
    launched = LocalLauncher(python="/bin/false").launch(request(jobs[3], modules))
    assert isinstance(launched, LocalProcess) and launched.wait() == 1


def test_a_dead_server_is_replaced_and_its_jobs_still_followed(tmp_path: Path, tasks: Any, modules: Path) -> None:
    pids = tmp_path / "pids.json"
    sleeper, probed = plan(tmp_path / "ws", tasks.Sleep.C(pids=pids), tasks.Probe.C(key="after"))
    launched = LocalLauncher(fork=True).launch(request(sleeper, modules))
    assert isinstance(launched, ForkedProcess)
    wait_until(pids.exists, what="the job to start")
    os.kill(json.loads(pids.read_text())["parent"], signal.SIGKILL)  # the server dies
    # The next job gets a new server...
    after = LocalLauncher(fork=True).launch(request(probed, modules))
    assert isinstance(after, ForkedProcess) and after.wait() == 0
    # ... and the orphaned job is followed through its process until it ends.
    LocalProcessHandler().kill(launched.process)
    assert launched.wait() == forkserver.EXIT_UNKNOWN
