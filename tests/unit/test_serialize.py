"""params.json / xpm.json: round trips keep identifiers; bad files give clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import xpm
from xpm import identifier
from xpm.errors import FormatVersionError, SerializationError
from xpm.serialize import dumps, loads
from tests.helpers import make_module
from tests.unit.configs import (
    AnyValue,
    Color,
    Consumer,
    Everything,
    Init,
    Model,
    Node,
    Producer,
    Train,
)


def roundtrip(value, **kw):
    return loads(dumps(value, **kw), **kw)


def test_nested_tree_keeps_identifiers_tags_and_values():
    m = Model.C(hidden=xpm.tag(10))
    e = Everything.C(
        i=-(2**70),
        f=float("inf"),
        s="é\n",
        b=True,
        e=Color.GREEN,
        li=[1],
        d={"x": float("nan")},
        st={"b", "a"},
        t2=(1, "a"),
        tv=(),
        o=None,
        u=3,
        a={1: (2, [3.5, None]), "k": frozenset({1})},
        m=m,
    )
    back = roundtrip(e)
    assert identifier(back) == identifier(e)
    assert back.i == -(2**70) and back.f == float("inf") and back.s == "é\n"
    assert back.e is Color.GREEN and back.st == {"a", "b"} and back.t2 == (1, "a")
    assert back.a == {1: (2, [3.5, None]), "k": {1}}
    assert back.tags() == {"hidden": 10}
    assert back.__xpm__.sealed


def test_lists_and_dicts_of_configs_with_shared_references():
    m = Model.C(hidden=1)
    value = {"a": [m, m], "b": (Train.C(model=m, lr=0.5),)}
    back = roundtrip(value)
    assert back["a"][0] is back["a"][1] is back["b"][0].model
    assert identifier(back["b"][0]) == identifier(value["b"][0])


def test_cycles_round_trip():
    a, b = Node.C(name="a"), Node.C(name="b")
    a.next, b.next = b, a
    back = roundtrip(a)
    assert back.next.next is back
    assert identifier(back) == identifier(a)


def test_task_outputs_and_init_tasks_round_trip():
    producer = Producer.C(x=3)
    out = producer.__xpm_outputs__()
    consumer = Consumer.C(inp=out)
    consumer.__xpm__.init_tasks = [Init.C(v=1), Init.C(v=2)]
    back = roundtrip(consumer)
    assert isinstance(back.inp.__xpm__.task, Producer)
    assert [t.v for t in back.__xpm__.init_tasks] == [1, 2]
    assert identifier(back) == identifier(consumer)
    assert identifier(back.inp) == identifier(out)


def test_stop_tags_round_trip():
    module = make_module(
        "xpm_ser_tags",
        "from xpm import Config, Param\nclass P(Config):\n    a: Param[Config]\n    b: Param[Config]\n",
    )
    pair = module.P.C(a=Model.C(hidden=xpm.tag(1)), b=xpm.stop_tags(Model.C(hidden=xpm.tag(2))))
    assert roundtrip(pair).tags() == {"hidden": 1}


def test_from_task_dir_resolves_job_relative_paths(tmp_path):
    job = tmp_path / "jobs" / "train" / "abc"
    job.mkdir(parents=True)
    task = Train.C(model=Model.C(hidden=2), lr=0.1)
    task.__xpm__.generate_paths(job)
    (job / "params.json").write_bytes(dumps(task, jobpath=job))
    record = json.loads((job / "params.json").read_text())
    assert record["objects"][-1]["fields"]["out"] == {"$": "path", "value": "model.txt", "base": "job"}
    moved = tmp_path / "moved"
    job.rename(moved)
    back = xpm.from_task_dir(moved)
    assert back.out == moved / "model.txt"
    assert identifier(back) == identifier(task)
    obj = xpm.from_task_dir(moved, as_instance=True)
    assert type(obj) is Train and obj.model.hidden == 2


def test_save_and_load_a_folder(tmp_path):
    value = [Model.C(hidden=1), {"t": Train.C(model=Model.C(hidden=2), lr=1)}]
    path = xpm.save(value, tmp_path / "new" / "folder")
    assert path == tmp_path / "new" / "folder" / "xpm.json"
    back = xpm.load(tmp_path / "new" / "folder")
    assert [identifier(back[0]), identifier(back[1]["t"])] == [identifier(value[0]), identifier(value[1]["t"])]
    assert not list(path.parent.glob(".*.tmp"))  # the atomic write left no temporary file


def test_params_file_format_is_stable(snapshot):
    task = Train.C(model=Model.C(hidden=xpm.tag(4)), lr=0.25, color=Color.GREEN)
    text = dumps(task).decode().replace(xpm.__version__, "<version>")
    assert text == snapshot


def test_newer_format_version_is_refused(tmp_path):
    data = json.loads(dumps(Model.C(hidden=1)))
    data["version"] = 99
    (tmp_path / "params.json").write_text(json.dumps(data))
    with pytest.raises(FormatVersionError) as info:
        xpm.from_task_dir(tmp_path)
    text = str(info.value)
    assert text.startswith(f"{tmp_path / 'params.json'}: format version 99 is newer than the version 1")
    assert "upgrade xpm" in text
    assert info.value.found == 99 and info.value.supported == 1


@pytest.mark.parametrize(
    "content, message",
    [
        (b"{not json", "not a valid xpm parameters file"),
        (b'{"version": 1}', "not a valid xpm parameters file"),
        (b"[]", "not a valid xpm parameters file"),
    ],
)
def test_malformed_files(tmp_path, content, message):
    (tmp_path / "params.json").write_bytes(content)
    with pytest.raises(SerializationError, match=message):
        xpm.from_task_dir(tmp_path)


def test_missing_file(tmp_path):
    with pytest.raises(SerializationError, match="params.json: no such file"):
        xpm.from_task_dir(tmp_path)


def _edit(data: bytes, fn) -> bytes:
    content = json.loads(data)
    fn(content)
    return json.dumps(content).encode()


def test_class_that_cannot_be_imported():
    data = _edit(dumps(Model.C(hidden=1)), lambda c: c["objects"][0].update(type="no_such_module:Model"))
    with pytest.raises(SerializationError, match=r"cannot import no_such_module:Model \(ModuleNotFoundError"):
        loads(data)


def test_parameter_removed_from_the_class():
    data = _edit(dumps(Model.C(hidden=1)), lambda c: c["objects"][0]["fields"].update(width=3))
    with pytest.raises(SerializationError, match="tests.unit.configs:Model has no parameter 'width' any more"):
        loads(data)


def test_value_that_no_longer_fits():
    data = _edit(dumps(Model.C(hidden=1)), lambda c: c["objects"][0]["fields"].update(hidden="x"))
    with pytest.raises(SerializationError, match="Model.hidden: expected int, got str"):
        loads(data)


def test_unknown_value_kind():
    data = _edit(dumps(AnyValue.C(value=1)), lambda c: c["objects"][0]["fields"].update(value={"$": "blob"}))
    with pytest.raises(SerializationError, match="unknown value kind 'blob'"):
        loads(data)


def test_unsaveable_value():
    with pytest.raises(SerializationError, match="a value of type object cannot be saved"):
        dumps(AnyValue.C(value=object()))


def test_job_relative_path_without_job_folder():
    task = Train.C(model=Model.C(hidden=2), lr=0.1)
    task.__xpm__.generate_paths(Path("/j"))
    with pytest.raises(SerializationError, match="a job-relative path, but no job folder was given"):
        loads(dumps(task, jobpath=Path("/j")))
