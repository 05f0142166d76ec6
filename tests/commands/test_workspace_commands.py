"""``experiments list``, ``orphans`` and ``parameters-difference``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.commands.conftest import Maker, dead_pid, local
from tests.unit.configs import Model, Train
from xpm.serialize import dumps


def test_experiments_list(maker: Maker, xpm_cli):
    first = ("first", maker.run("first", host="node1"))
    maker.job("m.train", 1, "done", experiment=first)
    maker.job("m.train", 2, "error", reason="failed", experiment=first)
    maker.job("m.train", 3, "done", experiment=first)
    # An earlier run of "second" does not count: only the current one.
    maker.run("second", "20240101_000000", host="old")
    maker.job("m.train", 4, "done", experiment=("second", "20240101_000000"))
    second = ("second", maker.run("second", "20250101_000000", host="gpu-7"))
    maker.job("m.eval", 5, "running", process=local(dead_pid()), experiment=second)
    for args in (("experiments", "list", "--workdir", "{ws}"), ("experiments", "--workdir", "{ws}", "list")):
        result = xpm_cli(*args)
        assert result.exit_code == 0
        assert result.stdout.splitlines() == ["first [node1] (2/3 jobs)", "second [gpu-7] (0/1 jobs)"]
    data = json.loads(xpm_cli("experiments", "list", "--workdir", "{ws}", "--json").stdout)
    assert data[0]["experiment_id"] == "first" and data[0]["states"] == {"done": 2, "error": 1}
    assert data[1]["run_id"] == "20250101_000000" and data[1]["hostname"] == "gpu-7"


def test_experiments_list_empty(maker: Maker, xpm_cli):
    result = xpm_cli("experiments", "list", "--workdir", "{ws}")
    assert result.exit_code == 0 and result.stdout == "No experiments found.\n"


def test_orphans_lists_and_cleans_only_unreferenced_finished_jobs(maker: Maker, xpm_cli):
    run = ("xp", maker.run("xp"))
    kept = maker.job("m.train", 1, "done", experiment=run)
    old_run = ("xp", maker.run("xp", "20240101_000000"))
    in_old_run = maker.job("m.train", 2, "done", experiment=old_run)
    orphan = maker.job("m.train", 3, "done")
    failed = maker.job("m.train", 4, "error", reason="failed")
    running = maker.job("m.eval", 5, "running", process=local(dead_pid()))
    generated = maker.job("m.eval", 6, None)
    (maker.path(orphan) / "big.bin").write_bytes(b"x" * 3000)

    result = xpm_cli("orphans", "{ws}")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "RUNNING     m.eval/000000000000",
        "UNSCHEDULED m.eval/000000000000",
        "DONE        m.train/000000000000",
        "ERROR       m.train/000000000000",
        "4 orphan job(s).",
    ]
    everything = xpm_cli("orphans", "{ws}", "--show-all").stdout.splitlines()
    assert everything.count("DONE        m.train/000000000000 (not orphan)") == 2 and len(everything) == 7
    sized = xpm_cli("orphans", "{ws}", "--size").stdout.splitlines()
    assert sized[2].startswith("DONE        m.train/000000000000 3.") and sized[2].endswith(" KiB")
    # 3,000 bytes of big.bin, and each job's params.json (it records the identifier), state and logs
    assert sized[-1].startswith("4 orphan job(s), 4.") and sized[-1].endswith(" KiB.")

    result = xpm_cli("orphans", "{ws}", "--clean")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "SKIPPED m.eval/000000000000: RUNNING (only jobs that ended or never started are cleaned)",
        "CLEANED m.eval/000000000000",
        "CLEANED m.train/000000000000",
        "CLEANED m.train/000000000000",
    ]
    assert not maker.path(orphan).exists() and not maker.path(failed).exists()
    assert not maker.path(generated).exists()  # planned, never started: an orphan that --clean deletes
    for key in (kept, in_old_run, running):
        assert maker.path(key).exists()
    assert xpm_cli("orphans", "{ws}").stdout.splitlines()[-1] == "1 orphan job(s)."


@pytest.mark.parametrize("damage", ["bad line", "torn last line"])
def test_orphans_never_deletes_when_a_run_log_is_damaged(maker: Maker, xpm_cli, damage: str):
    run = ("xp", maker.run("xp"))
    referenced = maker.job("m.train", 1, "done", experiment=run)
    log = maker.root / "experiments" / "xp" / run[1] / "jobs.jsonl"
    data = log.read_bytes()
    log.write_bytes(data.replace(b'"kind"', b'"kinD"') if damage == "bad line" else data[:-1])
    listed = xpm_cli("orphans", "{ws}")
    assert listed.stdout.splitlines() == ["DONE        m.train/000000000000", "1 orphan job(s)."]
    assert listed.stderr.startswith("Warning: ") and "jobs.jsonl: damaged lines" in listed.stderr
    result = xpm_cli("orphans", "{ws}", "--clean")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.splitlines()[-1].startswith("Error: not deleting anything: 1 run log(s) could not be read")
    assert maker.path(referenced).exists()


def test_orphans_of_a_missing_workspace(tmp_path: Path, xpm_cli):
    result = xpm_cli("orphans", str(tmp_path / "nowhere"))
    assert result.exit_code != 0 and len(result.stderr.splitlines()) == 1


def test_parameters_difference(tmp_path: Path, xpm_cli):
    first, second = tmp_path / "job1", tmp_path / "job2"
    first.mkdir()
    second.mkdir()
    (first / "params.json").write_bytes(dumps(Train.C(model=Model.C(hidden=64), lr=0.001)))
    (second / "params.json").write_bytes(dumps(Train.C(model=Model.C(hidden=128), lr=0.01)))
    result = xpm_cli("parameters-difference", str(first), str(second / "params.json"))
    assert result.exit_code == 0
    assert result.stdout.splitlines() == ["lr: 0.001 -> 0.01", "model.hidden: 64 -> 128"]
    same = xpm_cli("parameters-difference", str(first), str(first))
    assert same.stdout == "No difference: the two jobs have the same identifier.\n"
    as_json = xpm_cli("parameters-difference", "--json", str(first), str(second))
    assert json.loads(as_json.stdout) == [
        {"path": "lr", "left": "0.001", "right": "0.01"},
        {"path": "model.hidden", "left": "64", "right": "128"},
    ]
    assert json.loads(xpm_cli("parameters-difference", "--json", str(first), str(first)).stdout) == []


def test_json_of_orphans_sync_and_check(maker: Maker, xpm_cli):
    """--json wherever a command prints records."""
    run = ("xp", maker.run("xp"))
    maker.job("m.train", 1, "done", experiment=run)
    orphan = maker.job("m.train", 3, "error", reason="failed")
    listed = json.loads(xpm_cli("orphans", "{ws}", "--json", "--size").stdout)
    assert [(o["task_id"], o["identifier"], o["state"], o["orphan"]) for o in listed] == [(*orphan, "error", True)]
    assert listed[0]["path"] == str(maker.path(orphan)) and listed[0]["size"] > 0
    assert len(json.loads(xpm_cli("orphans", "{ws}", "--json", "--show-all").stdout)) == 2
    refused = xpm_cli("orphans", "{ws}", "--json", "--clean")
    assert refused.exit_code == 2 and maker.path(orphan).exists()

    (maker.root / "index" / "jobs.jsonl").unlink()
    check = xpm_cli("workspace", "check", "--workdir", "{ws}", "--json", "--no-recompute")
    assert check.exit_code == 1
    assert json.loads(check.stdout) == [
        {"path": str(maker.root / "index" / "jobs.jsonl"), "message": "missing (run experiments sync)"}
    ]
    synced = json.loads(xpm_cli("experiments", "sync", "--workdir", "{ws}", "--json").stdout)
    assert synced["jobs"] == 2 and len(synced["fixed"]) == 2
    check = xpm_cli("workspace", "check", "--workdir", "{ws}", "--json", "--no-recompute")
    assert check.exit_code == 0 and json.loads(check.stdout) == []


def test_parameters_difference_of_job_ids(maker: Maker, xpm_cli):
    one = maker.job("m.train", 1 << 250, "done")
    two = maker.job("m.train", 2 << 250, "done")
    maker.path(one).joinpath("params.json").write_bytes(dumps(Train.C(model=Model.C(hidden=64), lr=0.1)))
    maker.path(two).joinpath("params.json").write_bytes(dumps(Train.C(model=Model.C(hidden=64), lr=0.2)))
    result = xpm_cli("parameters-difference", "--workdir", "{ws}", f"m.train/{one[1]}", f"m.train/{two[1][:20]}")
    assert result.exit_code == 0 and result.stdout == "lr: 0.1 -> 0.2\n"
    result = xpm_cli("parameters-difference", "--workdir", "{ws}", f"m.train/{one[1]}", "m.train/eeeeeeee")
    assert result.exit_code == 1 and result.stderr == "Error: job m.train/eeeeeeee: not found\n"


def test_parameters_difference_bad_inputs(tmp_path: Path, xpm_cli):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = xpm_cli("parameters-difference", str(empty), str(empty))
    assert result.exit_code == 2 and "params.json" in result.stderr
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    result = xpm_cli("parameters-difference", str(broken), str(broken))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert str(broken) in result.stderr


def test_help_of_every_command_fits_80_columns_and_shows_an_example(xpm_cli):
    for command in (["experiments", "list"], ["experiments", "sync"], ["orphans"], ["parameters-difference"],
                    ["jobs"], ["experiments"], ["experiments", "copy"], ["experiments", "ssh-monitor"]):
        result = xpm_cli(*command, "--help")
        assert result.exit_code == 0
        assert "experimaestro " + " ".join(command) in result.stdout
        assert max(len(line) for line in result.stdout.splitlines()) <= 80, command
