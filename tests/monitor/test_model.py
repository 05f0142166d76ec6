"""The monitor's model on workspaces written through the store: rows, counts, incremental refreshes, damage."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.commands.conftest import Maker, dead_pid, local
from xpm import codec, layout
from xpm.filter import FilterError
from xpm.monitor.files import TAIL_BYTES, LogFollower
from xpm.monitor.model import MonitorModel
from xpm.schema import IndexEntry, IndexRemoved, JobProgress, JobSubmitted
from xpm.store.index import IndexedJob, JobIndex
from xpm.store.log import EventLog
from xpm.workspace import LocalWorkspace, Workspace

RUN = ("xp", "20250101_000000")


def ident(i: int) -> int:
    """A job number whose identifier starts with ``i`` in hex (short names differ)."""
    return int(f"{i:06x}".ljust(64, "0"), 16)


def short(i: int, task: str = "m.train") -> str:
    return f"{task}/{i:06x}000000"


class CountingWorkspace(LocalWorkspace):
    """A local workspace that counts the bytes read from each file."""

    def __init__(self, root: str):
        super().__init__(root)
        self.read: Counter[str] = Counter()

    def read_bytes(self, rel: str) -> bytes:
        data = super().read_bytes(rel)
        self.read[rel] += len(data)
        return data

    def read_from(self, rel: str, offset: int, length: int | None = None) -> bytes:
        data = super().read_from(rel, offset, length)
        self.read[rel] += len(data)
        return data


def fill(maker: Maker) -> Maker:
    """An experiment ``xp`` with five jobs in several states, and one job of no experiment."""
    maker.run(*RUN)
    maker.job("m.train", ident(1), "done", tags={"model": "bm25"}, experiment=RUN)
    maker.job("m.train", ident(2), "error", reason="failed", tags={"model": "splade"}, experiment=RUN)
    maker.job("m.train", ident(3), "running", tags={"model": "bm25"}, experiment=RUN, process=local(dead_pid()))
    maker.job("m.eval", ident(4), "waiting", tags={"model": "splade"}, experiment=RUN)
    maker.job("m.eval", ident(5), "done", tags={"model": "bm25"}, experiment=RUN)
    maker.job("m.other", ident(6), "done")
    return maker


@pytest.fixture
def maker(tmp_path: Path) -> Maker:
    return Maker(tmp_path / "ws")


@pytest.fixture
def filled(maker: Maker) -> Maker:
    return fill(maker)


def names(model: MonitorModel) -> list[str]:
    return [model.job_row(i).name for i in range(model.job_count())]


def states(model: MonitorModel) -> list[str]:
    return [model.job_row(i).state for i in range(model.job_count())]


# --- experiments and rows --------------------------------------------------------------


def test_experiment_row_has_its_run_host_start_and_counts(filled: Maker):
    model = MonitorModel(filled.ws)
    assert model.refresh() and model.problems == []
    [row] = model.experiments()
    assert (row.experiment_id, row.run_id, row.hostname, row.status) == ("xp", RUN[1], "node1", "done")
    assert row.started_at == pytest.approx(1_700_000_000.0)
    assert row.states == {"done": 2, "error": 1, "running": 1, "waiting": 1}
    assert (row.finished, row.total) == (2, 5)
    assert model.indexed_count() == 6


def test_all_jobs_most_recent_first_like_jobs_list(filled: Maker):
    model = MonitorModel(filled.ws)
    model.refresh()
    assert model.sort == "updated"
    assert names(model) == [short(6, "m.other"), short(5, "m.eval"), short(4, "m.eval"), short(3), short(2), short(1)]
    assert states(model) == ["done", "done", "waiting", "running", "error", "done"]
    assert model.job_row(0).tags == {}


def test_experiment_jobs_in_submission_order_last_first_with_run_tags(filled: Maker):
    EventLog(filled.ws, layout.run_jobs(*RUN)).append(
        JobSubmitted(ts=1.0, task_id="m.train", identifier=f"{ident(1):064x}", tags={"epochs": 3})
    )
    model = MonitorModel(filled.ws, experiment="xp")
    model.refresh()
    assert model.sort == "submitted"
    # submitted again: first now, with the tags of both submissions merged
    assert names(model) == [short(1), short(5, "m.eval"), short(4, "m.eval"), short(3), short(2)]
    assert model.job_row(0).tags == {"model": "bm25", "epochs": 3}


def test_sorts_cycle_and_order_rows(filled: Maker):
    model = MonitorModel(filled.ws, experiment="xp")
    model.refresh()
    assert model.sorts() == ("submitted", "state", "task", "updated")
    assert model.next_sort() == "state"
    assert states(model) == ["running", "error", "waiting", "done", "done"]
    assert model.next_sort() == "task"
    assert names(model) == [short(4, "m.eval"), short(5, "m.eval"), short(1), short(2), short(3)]
    model.next_sort()
    assert model.next_sort() == "submitted"
    with pytest.raises(ValueError):
        model.set_sort("nope")


def test_filter_keeps_matching_rows_and_a_bad_one_changes_nothing(filled: Maker):
    model = MonitorModel(filled.ws)
    model.refresh()
    model.set_filter('model = "bm25" and @state = done')
    assert names(model) == [short(5, "m.eval"), short(1)]
    with pytest.raises(FilterError) as info:
        model.set_filter("@state = ")
    assert info.value.column == 10
    assert model.filter_text == 'model = "bm25" and @state = done' and model.job_count() == 2
    model.set_filter("  ")
    assert model.job_count() == 6


def test_select_moves_between_all_jobs_and_an_experiment(filled: Maker):
    model = MonitorModel(filled.ws)
    model.refresh()
    model.select("xp")
    assert model.job_count() == 5 and model.sort == "submitted"
    model.select(None)
    assert model.job_count() == 6 and model.sort == "updated"


def test_unknown_experiment_is_a_problem_not_an_error(filled: Maker):
    model = MonitorModel(filled.ws, experiment="nope")
    model.refresh()
    assert model.job_count() == 0
    assert model.problems == ["no experiment 'nope' in the workspace"]


# --- incremental refreshes -----------------------------------------------------------


def test_state_change_moves_the_row_reading_only_the_appended_lines(filled: Maker):
    ws = CountingWorkspace(str(filled.root))
    model = MonitorModel(ws)
    model.refresh()
    index_size = ws.size(layout.JOB_INDEX)
    assert ws.read[layout.JOB_INDEX] == index_size
    filled.store.record_state("m.train", f"{ident(2):064x}", "running")
    appended = ws.size(layout.JOB_INDEX) - index_size
    ws.read.clear()
    assert model.refresh()
    assert names(model)[0] == short(2) and states(model)[0] == "running"
    # the new line, plus the last line already folded (to check the log was not rebuilt)
    assert ws.read[layout.JOB_INDEX] < 2 * appended + 200
    assert ws.read[layout.run_jobs(*RUN)] == 0


def test_refresh_without_change_reads_no_byte(filled: Maker):
    ws = CountingWorkspace(str(filled.root))
    model = MonitorModel(ws)
    model.refresh()
    names(model)  # the rows are drawn: their events are followed
    model.refresh()
    ws.read.clear()
    assert not model.refresh()
    assert not model.refresh()
    assert sum(ws.read.values()) == 0


def test_new_submission_of_the_run_appears(filled: Maker):
    model = MonitorModel(filled.ws, experiment="xp")
    model.refresh()
    filled.job("m.eval", ident(7), "waiting", tags={"model": "x"}, experiment=RUN)
    assert model.refresh()
    assert names(model)[0] == short(7, "m.eval")
    assert model.experiments()[0].states["waiting"] == 2


def test_submitted_job_without_index_entry_shows_unscheduled(filled: Maker):
    model = MonitorModel(filled.ws, experiment="xp")
    model.refresh()
    filled.job("m.eval", ident(8), None, experiment=RUN)  # params.json and the run line only
    model.refresh()
    assert model.job_row(0).name == short(8, "m.eval") and model.job_row(0).state == "unscheduled"


def test_incremental_rows_equal_a_full_sort(filled: Maker):
    model = MonitorModel(filled.ws)
    model.refresh()
    model.set_filter("@state != waiting")
    for n, state in [(1, "running"), (4, "running"), (6, "waiting"), (2, "done"), (4, "done"), (6, "error")]:
        task = {4: "m.eval", 6: "m.other"}.get(n, "m.train")
        filled.store.record_state(task, f"{ident(n):064x}", state)
        model.refresh()
        fresh = MonitorModel(filled.ws)
        fresh.refresh()
        fresh.set_filter("@state != waiting")
        assert names(model) == names(fresh) and states(model) == states(fresh)


def test_cleaned_job_leaves_the_rows(filled: Maker):
    from xpm import control

    model = MonitorModel(filled.ws)
    model.refresh()
    assert control.clean(filled.store, ("m.other", f"{ident(6):064x}")).result == "cleaned"
    model.refresh()
    assert short(6, "m.other") not in names(model)


def test_rebuilt_index_is_folded_again(filled: Maker):
    model = MonitorModel(filled.ws)
    model.refresh()
    jobs = list(JobIndex(filled.ws).load(full=True).jobs.values())
    JobIndex(filled.ws).rewrite([j._replace(state="done", updated_at=j.updated_at + 100) for j in jobs])
    assert model.refresh()
    assert set(states(model)) == {"done"} and model.job_count() == 6


def test_counts_follow_each_change_as_a_recount_would(filled: Maker):
    """The runs' counts are moved job by job as the index changes (no recount): after each change of
    state, removal, return of a job and new submission, they equal a fresh model's."""
    import random

    model = MonitorModel(filled.ws)
    model.refresh()
    model.experiments()
    index = JobIndex(filled.ws)
    pick = random.Random(20)
    jobs = [("m.train", ident(1)), ("m.train", ident(2)), ("m.train", ident(3)), ("m.eval", ident(4)),
            ("m.eval", ident(5)), ("m.other", ident(6))]
    for step in range(40):
        task_id, number = pick.choice(jobs)
        identifier = f"{number:064x}"
        if step % 7 == 6:
            index.log.append(IndexRemoved(ts=2e9 + step, task_id=task_id, identifier=identifier))
        elif step % 11 == 10:
            filled.job("m.train", ident(20 + step), "waiting", experiment=RUN)
        else:
            state = pick.choice(["waiting", "running", "done", "error"])
            index.log.append(IndexEntry(ts=2e9 + step, task_id=task_id, identifier=identifier, state=state))
        model.refresh()
        fresh = MonitorModel(filled.ws)
        fresh.refresh()
        assert [row.states for row in model.experiments()] == [row.states for row in fresh.experiments()], step
        assert model.run_rows("xp") == fresh.run_rows("xp"), step


def test_new_run_of_the_experiment_replaces_the_old_one(filled: Maker):
    model = MonitorModel(filled.ws, experiment="xp")
    model.refresh()
    run2 = ("xp", filled.run("xp", "20250102_000000", host="node2"))
    filled.job("m.train", ident(9), "waiting", experiment=run2)
    assert model.refresh()
    assert names(model) == [short(9)]
    assert model.experiments()[0].hostname == "node2"


# --- progress and times ------------------------------------------------------------------


def test_progress_and_times_of_drawn_rows_come_from_events(filled: Maker):
    key = ("m.train", f"{ident(3):064x}")
    filled.store.progress(*key, 0.25, desc="epoch 1")
    filled.store.progress(*key, 0.9, level=1)  # a nested level: not the job's progress
    model = MonitorModel(filled.ws)
    model.refresh()
    position = model.job_position(key)
    assert model.job_row(position).progress is None  # not read before it is drawn
    model.refresh()
    row = model.job_row(position)
    assert (row.progress, row.progress_desc) == (0.25, "epoch 1")
    assert row.started_at is not None and row.ended_at is None
    assert row.duration(row.started_at + 5) == 5
    filled.store.progress(*key, 0.5)
    model.refresh()
    assert model.job_row(model.job_position(key)).progress == 0.5
    filled.store.record_state(*key, "done")
    model.refresh()
    row = model.job_row(model.job_position(key))
    assert row.ended_at is not None and row.state == "done"


def test_events_of_rows_not_drawn_are_not_read(maker: Maker):
    maker.run(*RUN)
    for i in range(50):
        maker.job("m.train", ident(i), "running", experiment=RUN)
    ws = CountingWorkspace(str(maker.root))
    model = MonitorModel(ws)
    model.refresh()
    for i in range(10):
        model.job_row(i)
    model.refresh()
    events = [rel for rel in ws.read if rel.endswith("events.jsonl")]
    assert len(events) == 10


def test_torn_last_line_of_events_is_read_once_complete(filled: Maker):
    key = ("m.train", f"{ident(3):064x}")
    rel = layout.job_events(*key)
    model = MonitorModel(filled.ws)
    model.refresh()
    model.job_row(model.job_position(key))
    line = codec.encode_line(JobProgress(ts=1.0, value=0.5))
    filled.ws.append(rel, line[:20])
    model.refresh()
    assert model.job_row(model.job_position(key)).progress is None and model.problems == []
    filled.ws.append(rel, line[20:])
    model.refresh()
    assert model.job_row(model.job_position(key)).progress == 0.5


def test_torn_last_line_of_index_is_skipped_until_complete(filled: Maker):
    model = MonitorModel(filled.ws)
    model.refresh()
    before = names(model)
    filled.ws.append(layout.JOB_INDEX, b'["1234abcd",{"kind":"index","ts":')
    model.refresh()
    assert names(model) == before and model.problems == []


# --- damage --------------------------------------------------------------------------


def test_damaged_index_line_is_a_problem_and_the_rest_is_shown(filled: Maker):
    model = MonitorModel(filled.ws)
    model.refresh()
    filled.ws.append(layout.JOB_INDEX, b"garbage\n")
    filled.job("m.train", ident(10), "waiting")
    model.refresh()
    assert names(model)[0] == short(10)
    [problem] = model.problems
    assert "index/jobs.jsonl: 1 damaged line(s) skipped" in problem and "experiments sync" in problem


def test_damaged_run_log_and_event_log_are_problems(filled: Maker):
    filled.ws.append(layout.run_jobs(*RUN), b"not json\n")
    key = ("m.train", f"{ident(3):064x}")
    filled.ws.append(layout.job_events(*key), b'["00000000",{}]\n')
    model = MonitorModel(filled.ws)
    model.refresh()
    model.job_row(model.job_position(key))
    model.refresh()
    assert any("jobs.jsonl: 1 damaged line(s) skipped" in p for p in model.problems)
    assert any("events.jsonl: 1 damaged line(s) skipped" in p for p in model.problems)
    assert model.job_count() == 6


def test_missing_index_is_a_problem(filled: Maker):
    filled.ws.remove(layout.JOB_INDEX)
    model = MonitorModel(filled.ws)
    model.refresh()
    assert model.job_count() == 0
    assert "is missing or empty" in model.problems[0]
    filled.job("m.train", ident(11), "waiting")
    model.refresh()
    assert model.job_count() == 1 and model.problems == []


def test_unreadable_files_never_raise_out_of_refresh(filled: Maker, monkeypatch: pytest.MonkeyPatch):
    model = MonitorModel(filled.ws)
    model.refresh()

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise OSError("connection lost")

    monkeypatch.setattr(filled.ws, "size", broken)
    model.refresh()
    assert any("connection lost" in p for p in model.problems)
    monkeypatch.undo()
    model.refresh()
    assert model.problems == [] and model.job_count() == 6


def test_damaged_state_record_is_shown_as_a_problem(filled: Maker):
    key = ("m.train", f"{ident(1):064x}")
    filled.ws.write_atomic(layout.job_state(*key), b'{"version": 1, "state":')
    model = MonitorModel(filled.ws)
    model.refresh()
    detail = model.detail(key)
    assert detail.state is None
    assert len(detail.problems) == 1 and "state.json" in detail.problems[0]
    assert any("state.json" in p for p in model.problems)


def test_damaged_params_is_shown_as_a_problem(filled: Maker):
    key = ("m.train", f"{ident(1):064x}")
    filled.ws.write_atomic(layout.job_params(*key), b"{nope")
    model = MonitorModel(filled.ws)
    model.refresh()
    detail = model.detail(key)
    assert detail.params == [] and "params.json" in detail.problems[0]
    assert detail.state is not None and detail.state.state == "done"


# --- job detail ----------------------------------------------------------------------


PARAMS = b"""{"version": 1, "xpm": "t", "objects": [
 {"id": 2, "type": "m:Model", "typeid": "m.model", "identifier": "%s", "fields": {"hidden": 32, "name": "bm25"}},
 {"id": 1, "type": "m:Train", "typeid": "m.train", "identifier": "%s",
  "fields": {"model": {"$": "config", "id": 2}, "lr": 0.1, "layers": [1, 2],
             "out": {"$": "path", "value": "model.pt", "base": "job"}}},
 {"id": 0, "type": "m:Eval", "typeid": "m.eval", "identifier": "%s",
  "fields": {"trained": {"$": "config", "id": 1}, "split": {"$": "tuple", "items": ["a", "b"]}}}],
 "root": {"$": "config", "id": 0}}"""


def test_detail_shows_parameters_dependencies_folder_and_state(filled: Maker):
    train = ("m.train", f"{ident(1):064x}")
    evaluate = ("m.eval", f"{ident(12):064x}")
    filled.store.write_params(*evaluate, PARAMS % (b"c" * 64, train[1].encode(), evaluate[1].encode()))
    filled.store.record_state(*evaluate, "waiting")
    model = MonitorModel(filled.ws)
    model.refresh()
    detail = model.detail(evaluate)
    assert detail.params == [
        "trained = <m.train>",
        "trained.model = <m.model>",
        "trained.model.hidden = 32",
        'trained.model.name = "bm25"',
        "trained.lr = 0.1",
        "trained.layers = [1, 2]",
        "trained.out = model.pt",
        'split = ("a", "b")',
    ]
    assert detail.dependencies == [(short(1), "done")]
    assert detail.folder == str(filled.root / layout.job_dir(*evaluate))
    assert detail.state is not None and detail.state.state == "waiting" and detail.problems == []
    assert model.job_path(evaluate) == detail.folder


def test_detail_is_read_again_only_when_the_job_changed(filled: Maker):
    ws = CountingWorkspace(str(filled.root))
    key = ("m.train", f"{ident(2):064x}")
    model = MonitorModel(ws)
    model.refresh()
    assert model.detail(key).state.state == "error"  # type: ignore[union-attr]
    ws.read.clear()
    model.detail(key)
    assert ws.read[layout.job_state(*key)] == 0
    filled.store.record_state(*key, "running")
    model.refresh()
    assert model.detail(key).state.state == "running"  # type: ignore[union-attr]
    assert ws.read[layout.job_params(*key)] == 0  # written once: read once


# --- logs -----------------------------------------------------------------------------


def test_log_follower_returns_new_text_only(filled: Maker):
    key = ("m.train", f"{ident(3):064x}")
    follower = MonitorModel(filled.ws).log(key)
    assert follower.read() == "" and follower.offset is None  # no log yet
    filled.ws.append(layout.job_stderr(*key), "epoch 1 ✓\n".encode())
    assert follower.read() == "epoch 1 ✓\n"
    assert follower.read() == ""
    filled.ws.append(layout.job_stderr(*key), b"epoch 2\npart")
    assert follower.read() == "epoch 2\npart"
    filled.ws.append(layout.job_stderr(*key), "ial \xe2".encode("latin-1"))  # half of a UTF-8 character
    assert follower.read() == "ial "
    filled.ws.append(layout.job_stderr(*key), b"\x9c\x93\n")
    assert follower.read() == "✓\n"


def test_log_follower_starts_with_the_tail_of_a_big_log(filled: Maker):
    rel = layout.job_stdout("m.train", f"{ident(3):064x}")
    lines = [f"line {i:07d}\n" for i in range(20_000)]  # 260 kB
    filled.ws.append(rel, "".join(lines).encode())
    follower = LogFollower(filled.ws, rel)
    text = follower.read()
    assert len(text) <= TAIL_BYTES and follower.skipped
    assert text.endswith(lines[-1]) and text.startswith("line ")  # from a line start
    assert text.splitlines()[0] in [line.rstrip("\n") for line in lines]
    filled.ws.append(rel, b"new\n")
    assert follower.read() == "new\n" and not follower.skipped


def test_log_follower_reads_a_new_shorter_log_from_its_start(filled: Maker):
    rel = layout.job_stderr("m.train", f"{ident(3):064x}")
    filled.ws.append(rel, b"first attempt, a long line\n")
    follower = LogFollower(filled.ws, rel)
    follower.read()
    filled.ws.write_atomic(rel, b"second\n")
    assert follower.read() == "second\n"


# --- kill -----------------------------------------------------------------------------


def test_kill_cancels_a_waiting_job(filled: Maker):
    key = ("m.eval", f"{ident(4):064x}")
    model = MonitorModel(filled.ws)
    model.refresh()
    outcome = model.kill(key, grace=1.0)
    assert (outcome.key, outcome.result) == (key, "cancelled")
    model.refresh()
    assert model.job_state(key) == "error"
    assert model.kill(key, grace=1.0).result == "skipped"


def test_kill_stops_a_running_process(filled: Maker):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        key = filled.job("m.train", ident(13), "running", process=local(proc.pid))
        model = MonitorModel(filled.ws)
        model.refresh()
        outcome = model.kill(key, grace=2.0)
        assert outcome.result == "killed"
        assert proc.wait(timeout=5) != 0
        model.refresh()
        assert model.job_state(key) == "error"
    finally:
        if proc.poll() is None:
            proc.kill()


# --- many jobs ----------------------------------------------------------------------------


def big_workspace(root: Path, n: int) -> Workspace:
    """A workspace whose index (rebuilt, with its snapshot) has ``n`` jobs, and no job folder."""
    ws = Workspace.open(root, create=True)
    states_ = ("done", "running", "error", "waiting")
    JobIndex(ws).rewrite(
        IndexedJob(f"big.task{i % 7}", f"{i:064x}", states_[i % 4], None, {"lr": i % 10}, 1_000.0 + i)
        for i in range(n)
    )
    return ws


def test_ten_thousand_jobs_are_rows_without_reading_their_folders(tmp_path: Path):
    ws = big_workspace(tmp_path / "ws", 10_000)
    counting = CountingWorkspace(ws.location)
    model = MonitorModel(counting)
    start = time.perf_counter()
    model.refresh()
    assert model.job_count() == 10_000
    first_page = [model.job_row(i) for i in range(30)]
    assert [r.key[1] for r in first_page[:2]] == [f"{9_999:064x}", f"{9_998:064x}"]  # most recent first
    assert set(counting.read) <= {layout.JOB_INDEX, layout.JOB_INDEX_SNAPSHOT}
    last = model.job_row(model.job_count() - 1)
    assert last.key[1] == f"{0:064x}"
    model.set_filter('@state = running and lr = 3')
    assert model.job_count() == 500
    assert all(model.job_row(i).state == "running" for i in range(0, 500, 25))
    model.set_sort("task")
    keys = [model.job_key(i) for i in range(model.job_count())]
    assert keys == sorted(keys)
    assert time.perf_counter() - start < 30  # not a benchmark: only that nothing is quadratic
    # an append to the big index: one row moves, the index is not read again
    counting.read.clear()
    key = ("big.task3", f"{3:064x}")  # waiting: filtered out until it runs
    assert model.job_position(key) is None
    JobIndex(ws).append(IndexEntry(ts=5e9, task_id=key[0], identifier=key[1], state="running"))
    assert model.refresh()
    assert model.job_count() == 501 and model.job_position(key) is not None
    assert model.job_row(model.job_position(key)).tags == {"lr": 3}
    assert counting.read[layout.JOB_INDEX] < 1_000
