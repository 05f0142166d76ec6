"""Creating job folders: one mkdir for a new job, its params.json written once and atomically;
and the walks over a task's configurations that planning a job runs."""

from __future__ import annotations

import gc
import re
import uuid
from pathlib import Path
from typing import Any, Optional

import pytest

from xpm import Config, Meta, Param, Task, field, tag
from xpm.config.fields import PathGenerator
from xpm.store.jobs import JobStore
from xpm.submission import plan
from xpm.workspace import Workspace

IDENTIFIER = "ab" * 32


@pytest.fixture(params=["local", "memory"])
def workspace(request: pytest.FixtureRequest, tmp_path: Path) -> Workspace:
    if request.param == "local":
        return Workspace.open(tmp_path / "ws", create=True)
    return Workspace.open(f"memory://ws-{uuid.uuid4().hex}", create=True)


def test_create_dir_says_whether_it_made_the_folder(workspace: Workspace) -> None:
    assert workspace.create_dir("a/b/c"), "missing parents are made too"
    assert workspace.isdir("a/b/c")
    assert not workspace.create_dir("a/b/c")
    assert workspace.create_dir("a/b/d")


def test_a_new_job_folder_is_created_with_its_params(workspace: Workspace) -> None:
    store = JobStore(workspace)
    assert store.create("t.task", IDENTIFIER, b"{}\n") is True
    assert workspace.read_bytes(f"jobs/t.task/{IDENTIFIER}/params.json") == b"{}\n"
    assert workspace.listdir(f"jobs/t.task/{IDENTIFIER}") == ["params.json"], "no temporary file is left"
    # Written once: a job folder is content-addressed.
    assert store.create("t.task", IDENTIFIER, b"other") is None
    assert workspace.read_bytes(f"jobs/t.task/{IDENTIFIER}/params.json") == b"{}\n"
    assert store.write_params("t.task", IDENTIFIER, b"other") is False


def test_params_go_in_an_existing_folder_without_them(workspace: Workspace) -> None:
    # For instance a folder that a job lock recreated after the job was deleted.
    workspace.makedirs(f"jobs/t.task/{IDENTIFIER}/.xpm")
    store = JobStore(workspace)
    assert store.create("t.task", IDENTIFIER, b"{}\n") is False
    assert workspace.read_bytes(f"jobs/t.task/{IDENTIFIER}/params.json") == b"{}\n"


def test_temporary_names_are_unique_and_follow_the_pattern(tmp_path: Path) -> None:
    from xpm.fsutil import tmp_name as _tmp_name

    names = {_tmp_name("jobs/t/x/params.json") for _ in range(1000)}
    assert len(names) == 1000
    for name in names:
        assert re.fullmatch(r"jobs/t/x/\.params\.json\.[^/]+\.\d+\.[0-9a-f]{8}\.tmp", name), name
    assert re.fullmatch(r"\.params\.json\.[^/]+\.\d+\.[0-9a-f]{8}\.tmp", _tmp_name("params.json"))


# --- the walks of planning ------------------------------------------------------------


class Leaf(Config):
    __xpmid__ = "test.creation.leaf"
    x: Param[int]


class Holder(Task):
    __xpmid__ = "test.creation.holder"
    n: Param[int]
    one: Param[Optional[Leaf]] = field(default=None)
    many: Param[list[Leaf]] = field(default_factory=list)
    named: Param[dict[str, Leaf]] = field(default_factory=dict)
    anything: Param[Any] = field(default=0)
    made: Meta[Any] = field(default_factory=lambda: Leaf.C(x=99))
    out: Meta[Path] = field(default_factory=PathGenerator("out.txt"))

    def execute(self) -> None:
        pass


def test_children_are_found_in_every_kind_of_parameter() -> None:
    a, b, c, d = (Leaf.C(x=i) for i in range(4))
    holder = Holder.C(n=1, one=a, many=[b], named={"k": c}, anything=(d,))
    holder.__xpm__.seal()
    xs = [sub.x for sub in holder.__xpm__.children()]
    assert xs == [0, 1, 2, 3, 99], "declaration order; a Meta default factory's result too"
    assert Holder.__xpmtype__.config_arguments == ("one", "many", "named", "anything", "made")
    assert Leaf.__xpmtype__.config_arguments == ()


def test_plan_resolves_paths_gathers_tags_and_leaves_no_garbage(tmp_path: Path) -> None:
    holder = Holder.C(n=tag(1), one=Leaf.C(x=tag(5)), many=[Leaf.C(x=2)])
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        planned = plan(holder, lambda task_id, identifier: tmp_path / task_id / identifier, max_retries=0)
        # The walks are functions, not recursive closures: nothing is left for the collector.
        assert gc.collect() == 0
    finally:
        if enabled:
            gc.enable()
    assert holder.out == planned.jobpath / "out.txt"
    assert planned.tags == {"x": 5, "n": 1}
    assert b'"base": "job"' in planned.params
