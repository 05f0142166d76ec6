"""Runs as commits: two real runs of a YAML experiment in a real git repository, with a code change
committed between them, read back by ``experiments history|show|diff|tag|untag|tags|prune``."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import NamedTuple

import pytest
from click.testing import CliRunner, Result

from xpm.cli import cli

ROOT = Path(__file__).resolve().parents[2]

TASKS = """
from xpm import Param, Task

class Train(Task):
    __xpmid__ = "hist.train"
    hidden: Param[int]
    lr: Param[float]

    def execute(self):
        print(f"trained {self.hidden} {self.lr}")
"""

EXPERIMENT = """
from tasks import Train
from xpm import tag
from xpm.experiments import ConfigurationBase, ExperimentHelper, configuration

@configuration
class Configuration(ConfigurationBase):
    lr: float = 0.1
    hidden: list[int] = None

def run(helper: ExperimentHelper, cfg: Configuration):
    for hidden in cfg.hidden:
        Train.C(hidden=tag(hidden), lr=tag(cfg.lr)).submit()
"""

NOTIFY = 'echo "$XPM_EXPERIMENT $XPM_RUN $XPM_STATUS $XPM_JOBS_DONE/$XPM_JOBS_FAILED/$XPM_JOBS_TOTAL" >> "{log}"'


def git(project: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.org", *args],
        cwd=project, check=True, capture_output=True, text=True,
    )
    return result.stdout.strip()


class TwoRuns(NamedTuple):
    project: Path
    ws: Path
    config: Path
    #: the run ids, oldest first, and the commits of the project for each
    runs: list[str]
    commits: list[str]


def run_xp(project: Path, config: Path, ws: Path, *options: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["XPM_CONFIG_DIR"] = str(config)
    return subprocess.run(
        [sys.executable, "-m", "xpm", "run-experiment", "--workdir", str(ws), "hist.yaml", *options],
        cwd=project, env=env, capture_output=True, text=True, timeout=120, check=False,
    )


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> TwoRuns:
    """Run 1 with -c lr=0.5; a committed change of tasks.py; run 2 with -c lr=0.25 and an uncommitted change."""
    base = tmp_path_factory.mktemp("history")
    project, ws, config = base / "project", base / "ws", base / "config"
    (project / "xp").mkdir(parents=True)
    config.mkdir()
    (config / "settings.yaml").write_text(f"notify: '{NOTIFY.format(log=base / 'notified.txt')}'\n")
    (project / "xp" / "tasks.py").write_text(textwrap.dedent(TASKS))
    (project / "xp" / "experiment.py").write_text(textwrap.dedent(EXPERIMENT))
    (project / "hist.yaml").write_text("id: hist\nfile: xp/experiment\nlr: 0.1\nhidden: [16, 32]\n")
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "first")
    commits = [git(project, "rev-parse", "HEAD")]
    first = run_xp(project, config, ws, "-c", "lr=0.5")
    assert first.returncode == 0, first.stderr
    tasks = project / "xp" / "tasks.py"
    tasks.write_text(tasks.read_text().replace("trained", "trained model"))
    git(project, "commit", "-qam", "second")
    commits.append(git(project, "rev-parse", "HEAD"))
    with (project / "xp" / "experiment.py").open("a") as out:
        out.write("# an uncommitted change\n")
    second = run_xp(project, config, ws, "-c", "lr=0.25")
    assert second.returncode == 0, second.stderr
    runs = sorted(p.name for p in (ws / "experiments" / "hist").iterdir() if p.is_dir())
    assert len(runs) == 2
    return TwoRuns(project, ws, config, runs, commits)


@pytest.fixture
def copy(two_runs: TwoRuns, tmp_path: Path) -> Path:
    """A copy of the two-run workspace that a test may change."""
    return Path(shutil.copytree(two_runs.ws, tmp_path / "ws", symlinks=True))


def xpm(ws: Path, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["experiments", "--workdir", str(ws), *args], input=stdin,
                              catch_exceptions=False, prog_name="experimaestro")


def test_history_lists_both_runs_newest_first(two_runs: TwoRuns):
    out = xpm(two_runs.ws, "history", "hist")
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].split() == ["RUN", "STATUS", "JOBS", "DURATION", "TAGS", "COMMIT", "HOST"]
    newest, oldest = lines[1].split(), lines[2].split()
    assert newest[:3] == [two_runs.runs[1], "done", "2/0/2"]
    assert oldest[:3] == [two_runs.runs[0], "done", "2/0/2"]
    assert newest[5] == two_runs.commits[1][:10] + "+dirty"
    assert oldest[5] == two_runs.commits[0][:10]
    listed = json.loads(xpm(two_runs.ws, "history", "hist", "--json").output)
    assert [run["run_id"] for run in listed] == two_runs.runs[::-1]
    assert listed[0]["commit"] == two_runs.commits[1] and listed[0]["dirty"] is True
    assert (listed[1]["done"], listed[1]["errors"], listed[1]["total"]) == (2, 0, 2)


def test_show_prints_the_spec_the_code_version_and_the_jobs(two_runs: TwoRuns):
    out = xpm(two_runs.ws, "show", "hist", "~1")
    assert out.exit_code == 0, out.output
    text = out.output
    assert f"run {two_runs.runs[0]} of hist" in text
    assert f"{two_runs.project}  {two_runs.commits[0]}" in text
    assert "configuration (-c lr=0.5):" in text and '"lr": "0.5"' in text
    assert f"{two_runs.project / 'hist.yaml'}" in text and f"{two_runs.project / 'xp' / 'tasks.py'}" in text
    assert "command:  " in text and "run-experiment" in text
    assert text.count("DONE        hist.train/") == 2 and "hidden=16 lr=0.5" in text
    latest = xpm(two_runs.ws, "show", "hist", "--patch").output
    assert f"{two_runs.commits[1]}  (master) +dirty" in latest or f"{two_runs.commits[1]}  (main) +dirty" in latest
    assert "+# an uncommitted change" in latest
    as_json = json.loads(xpm(two_runs.ws, "show", "hist", "oldest", "--json").output)
    assert as_json["run"]["run_id"] == two_runs.runs[0] and as_json["run"]["status"] == "done"
    assert as_json["spec"]["overrides"] == ["lr=0.5"] and as_json["spec"]["repositories"][0]["commit"] == \
        two_runs.commits[0]
    assert [job["tags"] for job in as_json["jobs"]] == [{"hidden": 16, "lr": 0.5}, {"hidden": 32, "lr": 0.5}]
    recorded = xpm(two_runs.ws, "show", "hist", "oldest", "--source", "xp/tasks.py")
    assert recorded.exit_code == 0 and 'print(f"trained {self.hidden}' in recorded.output  # before the change
    missing = xpm(two_runs.ws, "show", "hist", "oldest", "--source", "nope.py")
    assert missing.exit_code == 1 and missing.output.startswith("Error: nope.py: no recorded source matches")
    # The run records the configuration exactly as run-experiment --show prints it.
    spec = json.loads((two_runs.ws / "experiments" / "hist" / two_runs.runs[1] / "spec.json").read_text())
    shown = subprocess.run([sys.executable, "-m", "xpm", "run-experiment", "--show", "hist.yaml", "-c", "lr=0.25"],
                           cwd=two_runs.project, capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT), "XPM_CONFIG_DIR": str(two_runs.config)})
    assert spec["configuration"] == json.loads(shown.stdout)


def test_sources_are_stored_once(two_runs: TwoRuns):
    specs = [json.loads((two_runs.ws / "experiments" / "hist" / run / "spec.json").read_text())
             for run in two_runs.runs]
    yaml = [next(s for s in spec["sources"] if s["path"].endswith("hist.yaml")) for spec in specs]
    assert yaml[0]["digest"] == yaml[1]["digest"]  # the same file, one blob
    blob = two_runs.ws / "blobs" / yaml[0]["digest"][:2] / yaml[0]["digest"][2:]
    assert blob.read_bytes() == (two_runs.project / "hist.yaml").read_bytes()
    tasks = [next(s for s in spec["sources"] if s["path"].endswith("tasks.py")) for spec in specs]
    assert tasks[0]["digest"] != tasks[1]["digest"]


def test_diff_names_the_key_the_commits_the_files_and_the_jobs(two_runs: TwoRuns):
    out = xpm(two_runs.ws, "diff", "hist", "oldest", "latest")
    assert out.exit_code == 1, out.output
    text = out.output
    assert f"diff hist {two_runs.runs[0]} {two_runs.runs[1]}" in text
    assert '~ lr: "0.5" -> "0.25"' in text
    assert "-c: lr=0.5 -> lr=0.25" in text
    assert f"{two_runs.project}: {two_runs.commits[0][:10]} -> {two_runs.commits[1][:10]}+dirty" in text
    assert f"M {two_runs.project / 'xp' / 'tasks.py'}" in text
    assert f"jobs only in {two_runs.runs[0]} (2):" in text and f"jobs only in {two_runs.runs[1]} (2):" in text
    assert text.count("lr: 0.5 -> 0.25") == 2  # each training matched by its hidden tag
    assert "jobs in both: 0" in text
    same = xpm(two_runs.ws, "diff", "hist", "latest", two_runs.runs[1])
    assert same.exit_code == 0 and "no difference" in same.output


def test_the_notification_runs_once_per_run(two_runs: TwoRuns):
    lines = (two_runs.project.parent / "notified.txt").read_text().splitlines()
    assert lines == [f"hist {run} done 2/0/2" for run in two_runs.runs]


def test_tags_name_runs(copy: Path, two_runs: TwoRuns):
    first, second = two_runs.runs
    assert xpm(copy, "tags", "hist").output == "No tags for the experiment hist.\n"
    assert xpm(copy, "tag", "hist", "~1", "baseline").output == f"baseline -> {first}\n"
    assert xpm(copy, "tag", "hist", first, "baseline").output == f"baseline already names {first}\n"
    taken = xpm(copy, "tag", "hist", "latest", "baseline")
    assert taken.exit_code == 1
    assert taken.output == f"Error: the tag 'baseline' of hist names the run {first}: use --force to move it\n"
    assert xpm(copy, "tag", "hist", "latest", "baseline", "--force").output == f"baseline: {first} -> {second}\n"
    assert xpm(copy, "tag", "hist", "oldest", "best").exit_code == 0
    assert json.loads(xpm(copy, "tags", "hist", "--json").output) == {"baseline": second, "best": first}
    assert f"run {first} of hist (tags: best)" in xpm(copy, "show", "hist", "best").output
    assert f"{first} " in xpm(copy, "history", "hist").output.splitlines()[2] + " "
    assert "best" in xpm(copy, "history", "hist").output.splitlines()[2].split()
    assert xpm(copy, "untag", "hist", "best").output == f"removed best (was {first})\n"
    gone = xpm(copy, "untag", "hist", "best")
    assert (gone.exit_code, gone.output) == (1, "Error: no tag 'best' for the experiment hist\n")
    bad = xpm(copy, "tag", "hist", "latest", "latest")
    assert bad.exit_code == 1 and "invalid tag name 'latest'" in bad.output


def test_prune_keeps_the_current_and_tagged_runs_and_leaves_orphans(copy: Path, two_runs: TwoRuns):
    first, second = two_runs.runs
    xpm(copy, "tag", "hist", first, "baseline")
    out = xpm(copy, "prune", "hist")
    assert out.output == f"kept: {first} (tagged baseline)\nkept: {second} (the current run)\nNo runs to remove.\n"
    xpm(copy, "untag", "hist", "baseline")
    dry = xpm(copy, "prune", "hist", "--status", "done")
    assert f"would remove (dry run; --perform removes them):\n  {first} (done)\n" in dry.output
    assert f"2 job(s) would then be referenced by no run: `experimaestro orphans {copy}`" in dry.output
    assert (copy / "experiments" / "hist" / first).is_dir()  # a dry run deletes nothing
    assert "No runs to remove." in xpm(copy, "prune", "hist", "--before", first[:8], "--perform").output
    assert "No runs to remove." in xpm(copy, "prune", "hist", "--status", "failed", "--perform").output
    # experimaestro's name asks first; no answer removes nothing
    asked = xpm(copy, "history-prune", "hist", stdin="n\n")
    assert "Aborted: nothing removed." in asked.output and (copy / "experiments" / "hist" / first).is_dir()
    folder = copy / "experiments" / "hist"
    specs = {run: json.loads((folder / run / "spec.json").read_text()) for run in (first, second)}
    digests = {run: {s["path"].rsplit("/", 1)[-1]: s["digest"] for s in spec["sources"]} for run, spec in specs.items()}
    done = xpm(copy, "prune", "hist", "--keep", "0", "--perform")
    assert done.exit_code == 0, done.output
    assert "removed 1 run(s)" in done.output and "2 job(s) are now referenced by no run" in done.output
    # The stored files only the removed run named go with it; those the kept run names stay.
    assert "stored source(s) or patch(es) that no run names" in done.output
    blob = copy / "blobs" / digests[first]["tasks.py"][:2] / digests[first]["tasks.py"][2:]
    assert not blob.exists()
    assert all((copy / "blobs" / d[:2] / d[2:]).is_file() for d in digests[second].values())
    assert not (copy / "experiments" / "hist" / first).exists()
    assert (copy / "experiments" / "hist" / second).is_dir()
    assert len(list((copy / "jobs" / "hist.train").iterdir())) == 4  # no job folder is deleted
    orphans = CliRunner().invoke(cli, ["orphans", str(copy)], catch_exceptions=False)
    assert "2 orphan job(s)." in orphans.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("history", "nope"), "Error: no experiment 'nope' in the workspace"),
        (("show", "hist", "20990101"), "Error: no run '20990101' of the experiment hist"),
        (("show", "hist", "~2"), "Error: '~2': hist has only 1 run(s) before"),
        (("diff", "hist", "nope"), "Error: no run 'nope' of the experiment hist"),
        (("untag", "hist", "nope"), "Error: no tag 'nope' for the experiment hist"),
        (("prune", "hist", "--before", "yesterday"), "Error: invalid date 'yesterday'"),
    ],
)
def test_bad_input_is_one_line(two_runs: TwoRuns, args: tuple[str, ...], message: str):
    out = xpm(two_runs.ws, *args)
    assert out.exit_code == 1
    assert out.output.startswith(message) and out.output.count("\n") == 1


def test_ambiguous_and_damaged_runs(copy: Path, two_runs: TwoRuns):
    first, second = two_runs.runs
    common = first[:8]  # the day: both runs started on it, unless the test ran across midnight
    if second.startswith(common):
        out = xpm(copy, "show", "hist", common)
        assert out.exit_code == 1 and out.output.startswith(f"Error: '{common}' names several runs of hist: ")
    (copy / "experiments" / "hist" / first / "run.json").write_text("{not json")
    out = xpm(copy, "show", "hist", first)
    assert out.exit_code == 1 and out.output.count("\n") == 1
    assert f"{first}/run.json" in out.output
    listed = xpm(copy, "history", "hist")  # the history still lists it, as damaged
    assert listed.exit_code == 0 and f"{first} damaged" in " ".join(listed.output.split())
    (copy / "experiments" / "hist" / first / "run.json").unlink()
    out = xpm(copy, "show", "hist", first)
    assert out.exit_code == 1 and "run.json: missing (a damaged run folder)" in out.output


def test_a_run_whose_process_ended_without_recording_it_is_stale(copy: Path, two_runs: TwoRuns):
    from tests.commands.conftest import dead_pid

    first = two_runs.runs[0]
    path = copy / "experiments" / "hist" / first / "run.json"
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "status": "running", "ended_at": None, "pid": os.getpid(),
                                "hostname": socket.gethostname()}))
    assert f"kept: {first} (running)" in xpm(copy, "prune", "hist").output
    path.write_text(json.dumps({**record, "status": "running", "ended_at": None, "pid": dead_pid(),
                                "hostname": socket.gethostname()}))
    assert f"{first} stale" in " ".join(xpm(copy, "history", "hist").output.split())
    out = xpm(copy, "prune", "hist", "--perform")
    assert f"removing {first} (running, its process ended)" in out.output and "removed 1 run(s)" in out.output
    assert not (copy / "experiments" / "hist" / first).exists()


def test_a_copied_run_keeps_its_sources_and_patch(two_runs: TwoRuns, tmp_path: Path):
    """experiments copy brings the blobs the run's spec names: show --source and --patch work there."""
    from xpm.workspace import Workspace

    dest = tmp_path / "dest"
    Workspace.open(dest, create=True)
    copied = CliRunner().invoke(cli, ["experiments", "copy", "--from-workdir", str(two_runs.ws), "--to-workdir",
                                      str(dest), "hist", two_runs.runs[1], "-y"], catch_exceptions=False)
    assert copied.exit_code == 0, copied.output
    source = xpm(dest, "show", "hist", "latest", "--source", "xp/tasks.py")
    assert source.exit_code == 0 and "trained model" in source.output
    patch = xpm(dest, "show", "hist", "latest", "--patch")
    assert patch.exit_code == 0 and "+# an uncommitted change" in patch.output
    from xpm import layout
    from xpm.store.runs import RunStore

    named = RunStore(Workspace.open(dest)).blob_digests("hist", two_runs.runs[1])
    assert named and all((dest / layout.blob(digest)).is_file() for digest in named)
