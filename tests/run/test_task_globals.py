"""What a running task sees of its job: ``Env.instance()``, progress bars, and ``@cache`` files.

The tasks run in real job processes (they import this module); the progress bars are
also run here, in this process, with the job context the job program installs.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import time
from pathlib import Path
from typing import Iterator, Optional

import pytest

from xpm import Config, Meta, Param, Task, experiment, field, layout
from xpm.config.annotations import cache
from xpm.context import JobContext, enter_job
from xpm.errors import XpmError
from xpm.notifications import PlainProgressBar, progress
from xpm.store.log import EventLog
from xpm.taskglobals import Env, LauncherInformation
from xpm.workspace import Workspace

#: What Corpus.vocabulary computed in this process (a cached call computes nothing)
COMPUTED: list[str] = []


class Corpus(Config):
    __xpmid__ = "test.taskglobals.corpus"
    source: Param[str]
    #: each computation appends a line here (a Meta: not in the identifier)
    log: Meta[Optional[Path]] = field(default=None)
    slow: Meta[float] = field(default=0.0)

    @cache("vocabulary.txt")
    def vocabulary(self, path: Path) -> str:
        if not path.exists():
            COMPUTED.append(self.source)
            if self.log is not None:
                with open(self.log, "a") as f:
                    f.write(f"{os.getpid()}\n")
            time.sleep(self.slow)
            path.write_text(f"words of {self.source}, computed by {os.getpid()}")
        return path.read_text()


class Globals(Task):
    """Counts with a progress bar, uses a cached file, and writes what it saw of its job."""

    __xpmid__ = "test.taskglobals.globals"
    n: Param[int]

    def execute(self) -> None:
        from xpm.notifications import tqdm

        for _ in tqdm(range(self.n), desc="counting"):
            time.sleep(0.001)
        env = Env.instance()
        corpus = Corpus.C(source="job")
        seen = {
            "taskpath": str(env.taskpath),
            "wspath": str(env.wspath),
            "xpm_path": str(env.xpm_path),
            "remaining_time": env.launcher_info.remaining_time() if env.launcher_info else "missing",
            "current_task_is_self": env.current_task is self,
            "slave": env.slave,
            "vocabulary": [corpus.vocabulary(), corpus.vocabulary()],
            "computed": COMPUTED,
            "bar": tqdm.__name__,
        }
        (env.taskpath / "seen.json").write_text(json.dumps(seen))


class UseCorpus(Task):
    """Calls a cached method of one of its parameters, as built in the job."""

    __xpmid__ = "test.taskglobals.usecorpus"
    corpus: Param[Corpus]
    key: Param[int] = field(default=0)

    def execute(self) -> None:
        print(self.corpus.vocabulary())


class BuildCorpus(Task):
    """Makes a configuration in the job and calls its cached method."""

    __xpmid__ = "test.taskglobals.buildcorpus"
    key: Param[int]
    log: Meta[Path]

    def execute(self) -> None:
        print(Corpus.C(source="shared", log=self.log, slow=0.5).vocabulary())


def cache_file(ws: Path, corpus: Corpus, name: str = "vocabulary.txt") -> Path:
    return ws / "config" / "test.taskglobals.corpus" / corpus.__identifier__().all.hex() / name


def progress_events(ws: Path, job) -> list[tuple[float, int, Optional[str]]]:  # type: ignore[no-untyped-def]
    events = EventLog(Workspace.open(ws), layout.job_events(job.task_id, job.identifier)).read().events
    return [(e.value, e.level, e.desc) for e in events if e.__struct_config__.tag == "progress"]


# --- in a job process -----------------------------------------------------------------------------


def test_a_task_sees_its_job_and_its_progress_bar_is_recorded(ws: Path) -> None:
    COMPUTED.clear()
    with experiment(ws, "globals"):
        task = Globals.C(n=400).submit()
    seen = json.loads(Path(task.jobpath, "seen.json").read_text())
    jobpath = Path(task.jobpath).resolve()
    assert seen["taskpath"] == str(jobpath)
    assert seen["wspath"] == str(ws.resolve())
    assert seen["xpm_path"] == str(jobpath / ".xpm") and (jobpath / ".xpm").is_dir()
    assert seen["remaining_time"] is None, "a local job has no time limit"
    assert seen["current_task_is_self"] is True
    assert seen["slave"] is False
    assert seen["bar"] == ("tqdm" if importlib.util.find_spec("tqdm") else "PlainProgressBar")

    events = progress_events(ws, task.job)
    assert events[0] == (0.0, 0, "counting")
    assert events[-1] == (1.0, 0, "counting")
    values = [value for value, _, _ in events]
    assert values == sorted(values)
    assert 2 <= len(events) <= 102, f"{len(events)} progress events for 400 items: reports are throttled"
    assert len(set(events)) == len(events), "no report twice"

    # The cached file of a configuration made in the job: computed once, in the job's workspace.
    corpus = Corpus.C(source="job")
    path = cache_file(ws, corpus)
    assert seen["vocabulary"] == [path.read_text()] * 2
    assert seen["computed"] == ["job"]
    assert Path(str(path) + ".lock").exists()
    # ... and served from that file to the experiment process afterwards.
    with experiment(ws, "globals-after"):
        assert corpus.vocabulary() == path.read_text()
    assert COMPUTED == []


def test_two_jobs_compute_a_cached_file_once(ws: Path, tmp_path: Path) -> None:
    log = tmp_path / "computations"
    with experiment(ws, "cache-race", max_jobs=2):
        one = BuildCorpus.C(key=1, log=log).submit()
        two = BuildCorpus.C(key=2, log=log).submit()
    assert len(log.read_text().splitlines()) == 1, "the lock makes the second job wait, then read the file"
    assert one.stdout().read_text() == two.stdout().read_text()
    assert cache_file(ws, Corpus.C(source="shared")).read_text() + "\n" == one.stdout().read_text()


def test_a_cached_method_of_a_parameter_in_the_job(ws: Path) -> None:
    with experiment(ws, "cache-param"):
        corpus = Corpus.C(source="param")
        task = UseCorpus.C(corpus=corpus).submit()
    assert task.stdout().read_text() == cache_file(ws, corpus).read_text() + "\n"
    assert cache_file(ws, corpus).read_text().startswith("words of param, computed by ")


# --- in an experiment -----------------------------------------------------------------------------


def test_a_cached_method_in_an_experiment_computes_once(ws: Path) -> None:
    COMPUTED.clear()
    with experiment(ws, "cache"):
        corpus = Corpus.C(source="xp")
        first = corpus.vocabulary()
        assert corpus.vocabulary() == first
        other = Corpus.C(source="other")
        assert other.vocabulary() != first
    assert COMPUTED == ["xp", "other"]
    assert cache_file(ws, corpus).read_text() == first == f"words of xp, computed by {os.getpid()}"
    assert cache_file(ws, corpus).parent != cache_file(ws, other).parent
    with experiment(ws, "cache"):
        assert Corpus.C(source="xp", slow=1.0).vocabulary() == first, "a Meta does not change the file"
    assert COMPUTED == ["xp", "other"]


def test_outside_a_job_env_knows_nothing() -> None:
    env = Env.instance()
    assert env is Env.instance()
    assert (env.taskpath, env.wspath, env.launcher_info, env.current_task, env.slave) == (None, None, None, None, False)
    assert LauncherInformation().remaining_time() is None
    with pytest.raises(XpmError, match="only known in a job process"):
        env.xpm_path


# --- progress bars, with the job context of this process --------------------------------------------


@pytest.fixture
def recorded() -> Iterator[list[tuple[float, int, Optional[str]]]]:
    """Makes this process a job whose progress events are kept in a list."""
    events: list[tuple[float, int, Optional[str]]] = []
    enter_job(JobContext(lambda value, level, desc: events.append((value, level, desc))))
    try:
        yield events
    finally:
        enter_job(None)


def bar_classes() -> list[type]:
    classes: list[type] = [PlainProgressBar]
    if importlib.util.find_spec("tqdm") is not None:
        from xpm.notifications import tqdm

        classes.append(tqdm)
    return classes


def test_the_bar_is_tqdms_when_installed() -> None:
    from xpm.notifications import tqdm

    if importlib.util.find_spec("tqdm") is None:
        assert tqdm is PlainProgressBar
    else:
        import tqdm as package

        assert issubclass(tqdm, package.tqdm) and tqdm.__module__ == "xpm.notifications"


@pytest.mark.parametrize("bar", bar_classes(), ids=lambda cls: cls.__name__)
def test_a_bar_reports_its_progress_throttled(bar: type, recorded: list) -> None:
    out = io.StringIO()
    items = list(bar(range(1000), desc="items", file=out, mininterval=0))
    assert items == list(range(1000))
    assert recorded[0] == (0.0, 0, "items") and recorded[-1] == (1.0, 0, "items")
    assert len(recorded) <= 102, "at most one report per 1% (and the end)"
    assert out.getvalue(), "the bar printed something"


@pytest.mark.parametrize("bar", bar_classes(), ids=lambda cls: cls.__name__)
def test_nested_bars_report_at_their_levels(bar: type, recorded: list) -> None:
    out = io.StringIO()
    for _ in bar(range(2), desc="outer", file=out):
        for _ in bar(range(4), desc="inner", file=out, leave=False):
            pass
    assert {(level, desc) for _, level, desc in recorded} == {(0, "outer"), (1, "inner")}
    assert recorded[-1] == (1.0, 0, "outer")


@pytest.mark.parametrize("bar", bar_classes(), ids=lambda cls: cls.__name__)
def test_a_bar_updated_by_hand(bar: type, recorded: list) -> None:
    with bar(total=10, desc="bytes", file=io.StringIO()) as pbar:
        pbar.update(5)
        pbar.set_description("more bytes")
        pbar.update(5)
    assert recorded == [(0.0, 0, "bytes"), (0.5, 0, "bytes"), (1.0, 0, "more bytes")]


@pytest.mark.parametrize("bar", bar_classes(), ids=lambda cls: cls.__name__)
def test_what_a_bar_does_not_report(bar: type, recorded: list, monkeypatch: pytest.MonkeyPatch) -> None:
    list(bar(iter(range(5)), file=io.StringIO()))  # no total: no fraction to report
    list(bar(range(5), disable=True))
    assert recorded == []
    monkeypatch.setattr(Env.instance(), "slave", True)
    list(bar(range(5), file=io.StringIO()))
    progress(0.5)
    assert recorded == [], "the helper processes of a task report nothing"


def test_the_plain_bar_prints_one_line_at_the_end(recorded: list) -> None:
    out = io.StringIO()
    with PlainProgressBar(total=3, desc="steps", file=out, unit="step", dynamic_ncols=True) as pbar:
        pbar.update()
        pbar.set_postfix(loss=0.5)
        assert out.getvalue() == ""
        pbar.update(2)
    assert out.getvalue() == "steps: 3/3, loss=0.5\n"
    quiet = io.StringIO()
    list(PlainProgressBar([1, 2], file=quiet, leave=False))
    assert quiet.getvalue() == ""
    assert len(PlainProgressBar([1, 2, 3])) == 3
