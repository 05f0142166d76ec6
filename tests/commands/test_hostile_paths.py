"""Never outside the workspace, never on a derived file's word (issue: faults found on purpose).

The job index and the runs' logs are derived files: they may name a job folder that is a
symbolic link to a folder elsewhere, a folder the user made, or the folder of another job.
`jobs kill`, `jobs clean` and `orphans --clean` act only on a real job folder under `jobs/`
(no link on the way, a params.json that records its identifier): anything else is left
alone, with one line that says why.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.commands.conftest import Maker, dead_pid, local, params_of
from xpm import layout
from xpm.schema import IndexEntry

OTHER = "e" * 64


def indexed(maker: Maker, identifier: str, state: str, **fields) -> tuple[str, str]:
    """An index entry for ``m.train/<identifier>``, whatever is (or is not) there."""
    maker.store.index.append(IndexEntry(ts=time.time(), task_id="m.train", identifier=identifier, state=state,
                                        **fields))
    return "m.train", identifier


def linked_elsewhere(maker: Maker, outside: Path, state: str) -> tuple[str, str]:
    """An indexed job whose folder is a symbolic link to ``outside`` (made empty)."""
    outside.mkdir(parents=True, exist_ok=True)
    linked = indexed(maker, "a" * 64, state)
    (maker.root / "jobs" / "m.train").mkdir(parents=True, exist_ok=True)
    maker.path(linked).symlink_to(outside, target_is_directory=True)
    return linked


def snapshot(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_clean_leaves_alone_a_linked_a_foreign_and_a_hand_made_folder(maker: Maker, xpm_cli, tmp_path: Path):
    outside = tmp_path / "outside" / "results"
    linked = linked_elsewhere(maker, outside, "done")
    (outside / "model.pt").write_bytes(b"weights")
    hand_made = indexed(maker, "b" * 64, "done")
    maker.path(hand_made).mkdir()
    foreign = indexed(maker, "c" * 64, "error")
    maker.path(foreign).mkdir()
    (maker.path(foreign) / "params.json").write_bytes(params_of("m.train", OTHER))
    real = maker.job("m.train", 7, "done")

    result = xpm_cli("jobs", "clean", "--workdir", "{ws}", "--perform")
    lines = result.stdout.splitlines()
    assert result.exit_code == 1, result.output
    assert f"CLEANED m.train/{real[1][:12]}" in lines
    failed = [line for line in lines if " FAILED " in line]
    assert len(failed) == 3 and all("not a job folder, left alone" in line for line in failed)
    assert any("is a symbolic link" in line for line in failed)
    assert any("no params.json" in line for line in failed)
    assert any("that of another job" in line for line in failed)
    # Nothing written in the folder outside, nothing deleted anywhere but the real job.
    assert snapshot(outside) == ["model.pt"]
    assert maker.path(linked).is_symlink() and maker.path(hand_made).is_dir() and maker.path(foreign).is_dir()
    assert not maker.path(real).exists()


def test_kill_writes_nothing_through_a_link(maker: Maker, xpm_cli, tmp_path: Path):
    outside = tmp_path / "outside"
    linked_elsewhere(maker, outside, "running")
    result = xpm_cli("jobs", "kill", "--workdir", "{ws}", "--perform")
    assert result.exit_code == 1 and "not a job folder, left alone" in result.stdout
    assert snapshot(outside) == []


def test_a_lock_file_that_is_a_link_is_never_opened(maker: Maker, xpm_cli, tmp_path: Path):
    """The job lock is opened for writing (and truncated): through a link it would clobber a file."""
    precious = tmp_path / "precious.txt"
    precious.write_text("do not truncate")
    key = maker.job("m.train", 8, "done")
    lock = maker.root / layout.job_lock(*key)
    lock.unlink(missing_ok=True)
    lock.symlink_to(precious)
    result = xpm_cli("jobs", "clean", "--workdir", "{ws}", "--perform")
    assert result.exit_code == 1 and "is a symbolic link" in result.stdout
    assert precious.read_text() == "do not truncate"


def test_orphans_clean_leaves_a_linked_folder_alone(maker: Maker, xpm_cli, tmp_path: Path):
    outside = tmp_path / "outside"
    linked = linked_elsewhere(maker, outside, "done")
    running = maker.job("m.eval", 5, "running", process=local(dead_pid()))
    result = xpm_cli("orphans", "{ws}", "--clean")
    assert "not a job folder, left alone" in result.stdout
    assert snapshot(outside) == [] and maker.path(linked).is_symlink() and maker.path(running).is_dir()
