"""Run summaries: experiments list reads a run's counts from summary.json while it holds, and never
shows the counts of a stale or damaged one (each damaged here on purpose)."""

from __future__ import annotations

import json

import msgspec

from tests.commands.conftest import Maker
from xpm import codec, layout
from xpm.query import experiments
from xpm.schema import RunSummary
from xpm.store.summaries import RunCounts, digest


def listed(maker: Maker, xpm_cli) -> dict[str, object]:
    """The one experiment of ``experiments list --json``."""
    result = xpm_cli("experiments", "list", "--workdir", "{ws}", "--json")
    assert result.exit_code == 0, result.output
    (only,) = json.loads(result.stdout)
    return only


def summary_of(maker: Maker, run: tuple[str, str]) -> RunSummary:
    return codec.decode_record((maker.root / layout.run_summary(*run)).read_bytes(), RunSummary)


def setup(maker: Maker) -> tuple[tuple[str, str], tuple[str, str]]:
    run = ("xp", maker.run("xp"))
    maker.job("m.train", 1, "done", experiment=run)
    waiting = maker.job("m.train", 2, "waiting", experiment=run)
    maker.job("m.other", 3, "done")  # not in the run
    return run, waiting


def test_the_second_listing_reads_the_summary_only(maker: Maker, xpm_cli) -> None:
    run, _ = setup(maker)
    assert listed(maker, xpm_cli)["states"] == {"done": 1, "waiting": 1}
    assert summary_of(maker, run).states == {"done": 1, "waiting": 1}
    counts = RunCounts(maker.ws)
    assert counts(*run) == {"done": 1, "waiting": 1}
    assert counts.computed == 0 and counts._jobs is None  # the index was not even folded


def test_a_state_change_makes_the_summary_stale_and_the_counts_follow(maker: Maker, xpm_cli) -> None:
    run, waiting = setup(maker)
    listed(maker, xpm_cli)
    maker.store.record_state(*waiting, "running")  # appends to the index
    assert listed(maker, xpm_cli)["states"] == {"done": 1, "running": 1}
    assert summary_of(maker, run).states == {"done": 1, "running": 1}
    # A job submitted again by the run grows its jobs.jsonl: stale too.
    maker.job("m.train", 4, "done", experiment=run)
    assert listed(maker, xpm_cli)["states"] == {"done": 2, "running": 1}


def test_damaged_summaries_are_never_believed(maker: Maker, xpm_cli) -> None:
    run, _ = setup(maker)
    listed(maker, xpm_cli)
    path = maker.root / layout.run_summary(*run)
    good = path.read_bytes()
    # Counts changed by hand (the check no longer matches), a torn file, something else entirely.
    for damaged in (good.replace(b'"done":1', b'"done":7'), good[: len(good) // 2], b"[1, 2, 3]"):
        path.write_bytes(damaged)
        assert listed(maker, xpm_cli)["states"] == {"done": 1, "waiting": 1}
        assert path.read_bytes() == good  # written again
    # Only a forged summary (wrong counts, check recomputed) holds: workspace check finds it,
    # and experiments sync says it fixed it.
    forged = msgspec.structs.replace(summary_of(maker, run), states={"done": 7})
    path.write_bytes(codec.encode(msgspec.structs.replace(forged, check=digest(forged))))
    check = xpm_cli("workspace", "check", "--workdir", "{ws}", "--no-recompute")
    assert check.exit_code == 1
    assert f"{path}: its counts differ from the index (experiments sync rewrites it)" in check.stdout
    sync = xpm_cli("experiments", "sync", "--workdir", "{ws}")
    assert f"fixed: {path}: counts differed from the index (rewritten)" in sync.stdout
    assert listed(maker, xpm_cli)["states"] == {"done": 1, "waiting": 1}
    assert xpm_cli("workspace", "check", "--workdir", "{ws}", "--no-recompute").exit_code == 0


def test_a_damaged_index_is_said_at_every_listing(maker: Maker, xpm_cli) -> None:
    run, _ = setup(maker)
    with open(maker.root / layout.JOB_INDEX, "ab") as index:
        index.write(b"not json\n")
    notes: list[str] = []
    assert {xp.experiment_id: xp.states for xp in experiments(maker.ws, notes)} == {
        "xp": {"done": 1, "waiting": 1}
    }
    assert len(notes) == 1 and "damaged line(s) skipped" in notes[0]
    # No summary was kept from a damaged index: the next listing folds it again and says so again.
    assert not (maker.root / layout.run_summary(*run)).exists()
    notes.clear()
    experiments(maker.ws, notes)
    assert len(notes) == 1


def test_a_rebuilt_index_of_the_same_size_is_told_apart(maker: Maker, xpm_cli) -> None:
    """The summary keeps the index's last bytes: an index rewritten to the same size (here by hand)
    with other states does not pass for the one it saw."""
    run, _ = setup(maker)
    listed(maker, xpm_cli)
    index = maker.root / layout.JOB_INDEX
    data = index.read_bytes()
    last = data.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    index.write_bytes(data[: len(data) - len(last) - 1] + last.replace(b'"done"', b'"DONE"') + b"\n")
    assert RunCounts(maker.ws).valid(*run) is None
