"""``jobs list`` and ``jobs path``: states, order, tags, short and full ids, JSON, both option places."""

from __future__ import annotations

import json

import pytest

from tests.commands.conftest import Maker
from xpm import layout


@pytest.fixture
def filled(maker: Maker) -> Maker:
    run = ("xp", maker.run("xp"))
    maker.job("m.train", 1, "done", tags={"model": "bm25", "epochs": 10}, experiment=run)
    maker.job("m.train", 2, "error", reason="failed", tags={"model": "splade", "epochs": 20}, experiment=run)
    maker.job("m.train", 3, "running", tags={"model": "bm25", "mode": "debug"}, experiment=run)
    maker.job("m.evaluate", 4, "waiting", tags={"model": "splade", "dataset": "msmarco"}, experiment=run)
    maker.job("m.evaluate", 5, "done", tags={"model": "bm25", "dataset": "msmarco"})
    return maker


def lines(result) -> list[str]:
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def test_list_most_recent_first_with_states_and_short_ids(filled: Maker, xpm_cli):
    assert lines(xpm_cli("jobs", "list", "--workdir", "{ws}")) == [
        "DONE        m.evaluate/000000000000",
        "WAITING     m.evaluate/000000000000",
        "RUNNING     m.train/000000000000",
        "ERROR       m.train/000000000000",
        "DONE        m.train/000000000000",
    ]


def test_count_and_tags(filled: Maker, xpm_cli):
    assert lines(xpm_cli("jobs", "list", "--workdir", "{ws}", "-c", "2", "--tags")) == [
        "DONE        m.evaluate/000000000000 model=bm25 dataset=msmarco",
        "WAITING     m.evaluate/000000000000 model=splade dataset=msmarco",
    ]
    assert lines(xpm_cli("jobs", "list", "--workdir", "{ws}", "--count", "0")) == ["No jobs found."]


def test_workspace_options_on_group_or_subcommand(filled: Maker, xpm_cli):
    after = lines(xpm_cli("jobs", "list", "--workdir", "{ws}"))
    before = lines(xpm_cli("jobs", "--workdir", "{ws}", "list"))
    assert after == before and len(after) == 5


def test_fullpath_is_the_job_folder(filled: Maker, xpm_cli):
    out = lines(xpm_cli("jobs", "list", "--workdir", "{ws}", "-c", "1", "--fullpath"))
    assert out == [f"DONE        {filled.root / layout.job_dir('m.evaluate', '5'.rjust(64, '0'))}"]


def test_experiment_lists_its_run_in_submission_order(filled: Maker, xpm_cli):
    out = lines(xpm_cli("jobs", "list", "--workdir", "{ws}", "--experiment", "xp", "--tags"))
    assert out == [
        "WAITING     m.evaluate/000000000000 model=splade dataset=msmarco",
        "RUNNING     m.train/000000000000 model=bm25 mode=debug",
        "ERROR       m.train/000000000000 model=splade epochs=20",
        "DONE        m.train/000000000000 model=bm25 epochs=10",
    ]


def test_unknown_experiment_is_one_line(filled: Maker, xpm_cli):
    result = xpm_cli("jobs", "list", "--workdir", "{ws}", "--experiment", "nope")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [f"Error: no experiment 'nope' in the workspace {filled.root}"]


def test_json_has_full_identifiers(filled: Maker, xpm_cli):
    data = json.loads(xpm_cli("jobs", "list", "--workdir", "{ws}", "--json").stdout)
    assert len(data) == 5
    failed = [job for job in data if job["state"] == "ERROR"][0]
    assert failed["identifier"] == "2".rjust(64, "0") and failed["failure_reason"] == "failed"
    assert failed["job"] == f"m.train/{failed['identifier']}" and failed["tags"] == {"model": "splade", "epochs": 20}
    assert failed["path"] == str(filled.root / "jobs" / "m.train" / failed["identifier"])


def test_lines_fit_80_columns(filled: Maker, xpm_cli):
    assert all(len(line) <= 80 for line in lines(xpm_cli("jobs", "list", "--workdir", "{ws}", "--tags")))


def test_path_takes_full_ids_and_unique_prefixes(maker: Maker, xpm_cli):
    key = maker.job("m.train", 0xABCDEF123, "done")
    maker.job("m.train", 0xABCDEF999, "done")
    full = f"m.train/{key[1]}"
    assert lines(xpm_cli("jobs", "path", "--workdir", "{ws}", full)) == [str(maker.path(key))]
    # The identifiers are 0...0abcdef123 and 0...0abcdef999: a prefix must tell them apart.
    prefix = key[1][:61]
    assert lines(xpm_cli("jobs", "path", "--workdir", "{ws}", f"m.train/{prefix}1")) == [str(maker.path(key))]
    result = xpm_cli("jobs", "path", "--workdir", "{ws}", f"m.train/{prefix}")
    assert result.exit_code == 1 and "ambiguous (2 jobs" in result.stderr


@pytest.mark.parametrize(
    "jobid, message",
    [
        ("../../etc/passwd", "invalid job id '../../etc/passwd': expected task-id/identifier"),
        ("/etc/passwd", "invalid job id '/etc/passwd': expected task-id/identifier"),
        ("m.train/../../x", "invalid job id 'm.train/../../x': expected task-id/identifier"),
        ("..", "invalid job id '..': expected task-id/identifier"),
        ("../" + "0" * 64, "invalid job id '../" + "0" * 64 + "': '..' is not a task id"),
        ("m.train/xyz123456", "invalid job id 'm.train/xyz123456': the identifier must be lowercase hexadecimal"),
        ("m.train/ABCDEF12", "invalid job id 'm.train/ABCDEF12': the identifier must be lowercase hexadecimal"),
        ("m.train/abc", "invalid job id 'm.train/abc': give at least 6 characters of the identifier"),
        ("m.train", "invalid job id 'm.train': expected task-id/identifier"),
        ("m.train/" + "0" * 65, "invalid job id 'm.train/" + "0" * 65
         + "': the identifier must be 64 lowercase hexadecimal characters"),
    ],
)
def test_bad_job_ids_are_refused(maker: Maker, xpm_cli, jobid: str, message: str):
    for command in (["path"], ["log"], ["log", "--std"]):
        result = xpm_cli("jobs", *command, "--workdir", "{ws}", jobid)
        assert result.exit_code == 2, result.output
        assert result.stderr.splitlines() == [f"Error: {message}"]


def test_unknown_job_says_so(maker: Maker, xpm_cli):
    for jobid in ("m.train/" + "e" * 64, "m.train/eeeeeeee", "other.task/" + "0" * 64):
        result = xpm_cli("jobs", "path", "--workdir", "{ws}", jobid)
        assert result.exit_code == 1
        assert result.stderr.splitlines() == [f"Error: job {jobid}: not found"]


def test_missing_workspace_folder_is_one_line(tmp_path, xpm_cli):
    result = xpm_cli("jobs", "list", "--workdir", str(tmp_path / "nowhere"))
    assert result.exit_code != 0
    lines_ = result.stderr.splitlines()
    assert len(lines_) == 1 and lines_[0].startswith("Error: ") and "nowhere" in lines_[0]


def test_unknown_workspace_id_is_one_line(xpm_cli):
    result = xpm_cli("jobs", "list", "--workspace", "nope")
    assert result.exit_code != 0
    assert len(result.stderr.splitlines()) == 1 and "nope" in result.stderr


def test_help_of_every_job_command_shows_an_example(xpm_cli):
    for command in ("list", "kill", "clean", "log", "path"):
        result = xpm_cli("jobs", command, "--help")
        assert result.exit_code == 0 and "experimaestro jobs " + command in result.stdout
        assert max(len(line) for line in result.stdout.splitlines()) <= 80


def test_missing_or_damaged_index_is_said(filled: Maker, xpm_cli):
    index = filled.root / "index" / "jobs.jsonl"
    data = index.read_bytes()
    index.write_bytes(data.replace(b'"kind"', b'"kinD"', 1))
    result = xpm_cli("jobs", "list", "--workdir", "{ws}")
    assert len(result.stdout.splitlines()) == 4  # the first job had one line, damaged
    assert result.stderr.startswith("Warning: ") and "1 damaged line(s) skipped" in result.stderr
    assert "experiments sync --workdir" in result.stderr
    index.unlink()
    result = xpm_cli("experiments", "list", "--workdir", "{ws}")
    assert result.stdout == "xp [node1] (0/0 jobs)\n" and "is missing or empty" in result.stderr


def test_usage_errors_are_one_line(filled: Maker, xpm_cli):
    for args in (["-c", "-1"], ["-c", "ten"], ["--bogus"]):
        result = xpm_cli("jobs", "list", "--workdir", "{ws}", *args)
        assert result.exit_code == 2
        assert result.stderr.splitlines() == [result.stderr.strip()] and result.stderr.startswith("Error: ")
        assert "(see 'experimaestro jobs list --help')" in result.stderr
