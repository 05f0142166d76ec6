"""What a run records (spec.json, blobs), git states, run references, tags, and the end-of-run notification."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from xpm import Param, Task, experiment
from xpm.errors import SerializationError
from xpm.gitinfo import GitMissing, NotInGit, git_state
from xpm.history import prune_runs
from xpm.notify import notify_run
from xpm.rundiff import flatten
from xpm.runspec import RunInputs, capture, editable_folders
from xpm.settings import HistorySettings
from xpm.store.blobs import BlobStore, MissingBlob
from xpm.store.runs import AmbiguousRun, RunStore, UnknownExperiment, UnknownRun
from xpm.workspace import Workspace


def git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=T", "-c", "user.email=t@example.org", *args], cwd=folder,
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    folder = tmp_path / "repo"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "code.py").write_text("x = 1\n")
    git(folder, "init", "-q")
    git(folder, "add", "-A")
    git(folder, "commit", "-qm", "first")
    return folder


def test_git_state_of_a_clean_then_dirty_tree(repo: Path):
    clean = git_state(repo / "sub")
    assert clean.top == str(repo.resolve()) and clean.commit == git(repo, "rev-parse", "HEAD")
    assert (clean.dirty, clean.patch, clean.untracked) == (False, b"", 0)
    assert clean.branch == git(repo, "rev-parse", "--abbrev-ref", "HEAD")
    (repo / "sub" / "code.py").write_text("x = 2\n")
    (repo / "new.txt").write_text("untracked\n")
    dirty = git_state(repo)
    assert dirty.dirty and dirty.untracked == 1
    assert b"-x = 1\n+x = 2\n" in dirty.patch
    # The patch is what turns the commit into the tree: it applies on a clean checkout.
    git(repo, "checkout", "--", ".")
    subprocess.run(["git", "apply"], input=dirty.patch, cwd=repo, check=True)
    assert (repo / "sub" / "code.py").read_text() == "x = 2\n"


def test_git_state_outside_git_without_commit_and_without_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(NotInGit, match="not in a git repository"):
        git_state(plain)
    git(plain, "init", "-q")
    with pytest.raises(NotInGit, match="has no commit yet"):
        git_state(plain)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(GitMissing, match="git is not installed"):
        git_state(plain)


def test_capture_stores_sources_once_and_says_what_is_missing(tmp_path: Path, repo: Path):
    ws = Workspace.open(tmp_path / "ws", create=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "a.yaml").write_text("x: 1\n")
    heard: list[str] = []
    inputs = RunInputs(configuration={"x": 1}, overrides=["x=1"], files=[outside / "a.yaml", repo / "sub" / "code.py"],
                       folders=[repo, outside])
    spec = capture(ws, inputs, say=heard.append)
    assert [s.path for s in spec.sources] == [str((outside / "a.yaml").resolve()), str(repo / "sub" / "code.py")]
    # the repository of the code, then those of the editable packages (xpm itself, in its checkout)
    assert spec.repositories[0].path == str(repo.resolve())
    assert {r.path for r in spec.repositories[1:]} <= {str(folder.resolve()) for folder in editable_folders()}
    assert heard == spec.problems and len(heard) == 1 and "not in a git repository" in heard[0]
    again = capture(ws, inputs, say=heard.append)
    assert again.sources == spec.sources
    blobs = {p.parent.name + p.name for p in (tmp_path / "ws" / "blobs").rglob("*") if p.is_file()}
    patches = {r.patch for r in [*spec.repositories, *again.repositories] if r.patch}  # xpm's checkout may be dirty
    assert blobs == {s.digest for s in spec.sources} | patches  # two files, stored once for two captures
    assert BlobStore(ws).get(spec.sources[0].digest) == b"x: 1\n"
    with pytest.raises(MissingBlob):
        BlobStore(ws).get("0" * 64)


class Step(Task):
    __xpmid__ = "tests.runspec.step"
    n: Param[int]

    def execute(self) -> None:
        pass


def test_a_python_experiment_outside_git_is_recorded_with_a_warning(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]):
    project = tmp_path / "project"
    project.mkdir()
    with experiment(tmp_path / "ws", "plain", project_paths=[project]) as xp:
        Step.C(n=1).submit()
    store = RunStore(Workspace.open(tmp_path / "ws"))
    run = store.current_or_fail("plain")
    assert run == xp.run_id and store.load_record("plain", run).status == "done"
    spec = store.spec("plain", run)
    assert spec is not None and spec.configuration is None
    assert any("not in a git repository" in problem for problem in spec.problems)
    assert "not in a git repository" in capsys.readouterr().err
    assert store.load_record("plain", run).command[:1] == list(getattr(sys, "orig_argv", sys.argv))[:1]


def test_run_references(tmp_path: Path):
    ws = Workspace.open(tmp_path / "ws", create=True)
    store = RunStore(ws)
    runs = ["20261201_100000", "20261201_100000.1", "20261201_100000.2", "20261202_090000"]
    for run in runs:
        ws.makedirs(f"experiments/xp/{run}")
    assert store.run_ids("xp") == runs
    assert store.resolve("xp", "latest") == runs[-1] and store.resolve("xp", "oldest") == runs[0]
    assert store.resolve("xp", "~1") == runs[2] and store.resolve("xp", "latest~3") == runs[0]
    assert store.resolve("xp", "20261202") == runs[-1]
    with pytest.raises(AmbiguousRun, match="names several runs of xp: 20261201_100000, 20261201_100000.1"):
        store.resolve("xp", "20261201")
    assert store.resolve("xp", "20261201_100000") == runs[0]  # an exact id wins over its prefix use
    store.tag("xp", runs[1], "base")
    assert store.resolve("xp", "base") == runs[1] and store.resolve("xp", "base~1") == runs[0]
    with pytest.raises(UnknownRun, match="has only 1 run"):
        store.resolve("xp", "base~2")
    with pytest.raises(UnknownRun):
        store.resolve("xp", "2025")
    with pytest.raises(UnknownExperiment):
        store.resolve("other", "latest")
    (tmp_path / "ws" / "refs" / "tags" / "xp" / "base.json").write_text("{broken")
    with pytest.raises(SerializationError, match="base.json"):
        store.tags("xp")


def test_settings_pruning_keeps_tagged_runs(tmp_path: Path):
    for n in range(3):
        with experiment(tmp_path / "ws", "kept"):
            Step.C(n=n).submit()
    ws = Workspace.open(tmp_path / "ws")
    store = RunStore(ws)
    runs = store.run_ids("kept")
    store.tag("kept", runs[0], "first")
    assert prune_runs(ws, "kept", HistorySettings(max_done=0)) == [runs[1]]
    assert store.run_ids("kept") == [runs[0], runs[2]]
    with pytest.raises(Exception, match="is tagged \\(first\\): it is kept"):
        store.remove_run("kept", runs[0])


def test_a_failing_notification_is_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    log = tmp_path / "log"
    values = dict(experiment_id="xp", run_id="r1", status="failed", done=1, failed=2, total=3,
                  workspace=str(tmp_path), run_dir=str(tmp_path / "r1"))
    assert notify_run(f'echo "$XPM_EXPERIMENT $XPM_RUN $XPM_STATUS $XPM_JOBS_FAILED" > {log}', **values)
    assert log.read_text() == "xp r1 failed 2\n"
    assert not notify_run("exit 3", **values)
    assert "the notify command of the settings exited with status 3: exit 3" in capsys.readouterr().err


def test_a_failing_notification_does_not_fail_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]):
    config = tmp_path / "config"
    config.mkdir()
    (config / "settings.yaml").write_text("notify: 'echo $XPM_STATUS >> " + str(tmp_path / "n") + "; exit 1'\n")
    monkeypatch.setenv("XPM_CONFIG_DIR", str(config))
    with experiment(tmp_path / "ws", "notified"):
        Step.C(n=7).submit()
    assert (tmp_path / "n").read_text() == "done\n"  # once, for the run (not per job)
    assert "notify command of the settings exited with status 1" in capsys.readouterr().err


def test_flatten():
    assert flatten({"a": {"b": 1, "c": [1, {"d": 2}]}, "e": {}, "f": []}) == {
        "a.b": 1, "a.c[0]": 1, "a.c[1].d": 2, "e": {}, "f": []}


def test_a_run_start_asks_git_once_for_its_project(tmp_path: Path, repo: Path, monkeypatch: pytest.MonkeyPatch):
    """environment.json and spec.json record the same repository: its state is asked once (each git
    command once), through a git on PATH that logs its arguments before running the real one."""
    import shutil

    real = shutil.which("git")
    assert real is not None
    bin_dir, log = tmp_path / "bin", tmp_path / "git.log"
    bin_dir.mkdir()
    (bin_dir / "git").write_text(f'#!/bin/sh\necho "$@" >> {log}\nexec {real} "$@"\n')
    (bin_dir / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path(real).parent}")
    (repo / "sub" / "code.py").write_text("x = 2\n")  # dirty: the spec asks for the patch too
    with experiment(tmp_path / "ws", "once", project_paths=[repo / "sub"]) as xp:
        Step.C(n=2).submit()
    # (the spec also asks about the repositories of editable packages: only this one's calls count)
    asked = [line.split() for line in log.read_text().splitlines()
             if line.startswith(("-C " + str(repo), "-C " + str(repo.resolve())))]
    commands = [next(word for word in words if word in ("rev-parse", "status", "diff")) for words in asked]
    assert sorted(commands) == ["diff", "rev-parse", "status"], asked
    store = RunStore(Workspace.open(tmp_path / "ws"))
    spec, environment = store.spec("once", xp.run_id), store.environment("once", xp.run_id)
    assert spec is not None and environment is not None and environment.git is not None
    [repository] = [r for r in spec.repositories if r.path == str(repo.resolve())]
    assert (environment.git.commit, environment.git.dirty) == (repository.commit, True) and repository.patch
