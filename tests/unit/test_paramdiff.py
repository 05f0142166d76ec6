"""Differences between two params.json files, read without importing their classes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest

from xpm.errors import FormatVersionError, SerializationError
from xpm.paramdiff import SAME_VALUES_NOTE, Difference, difference, format_difference
from xpm.serialize import dumps
from tests.unit.configs import (
    AnyValue,
    BigModel,
    Color,
    Consumer,
    Init,
    Model,
    Node,
    Out,
    Producer,
    Train,
    WithPaths,
)

MODEL = "<tests.unit.configs.model>"
TRAIN = "tests.unit.configs.train"


def lines(left: Any, right: Any) -> list[str]:
    """The formatted differences between the params.json of two configurations."""
    return [format_difference(d) for d in difference(dumps(left), dumps(right), "a.json", "b.json")]


def edit(data: bytes, fn: Callable[[dict[str, Any]], None]) -> bytes:
    content = json.loads(data)
    fn(content)
    return json.dumps(content).encode()


def by_type(content: dict[str, Any], typeid: str) -> dict[str, Any]:
    """The object of a given type id in a decoded params.json (the test trees have one)."""
    (record,) = [o for o in content["objects"] if o["typeid"] == typeid]
    return record


def train(hidden: int = 64, **kw: Any) -> Any:
    return Train.C(model=Model.C(hidden=hidden), **{"lr": 0.001, **kw})


def test_identical_files_have_no_difference():
    assert difference(dumps(train()), dumps(train()), "a", "b") == []


def test_scalar_change():
    assert lines(train(), train(lr=0.01)) == ["lr: 0.001 -> 0.01"]


def test_nested_configuration_change():
    assert difference(dumps(train(64)), dumps(train(128)), "a", "b") == [Difference("model.hidden", "64", "128")]


def test_several_differences_come_in_field_order():
    assert lines(train(64, color=Color.RED), train(128, lr=0.5, color=Color.GREEN, epochs=4)) == [
        "color: Color.RED -> Color.GREEN",
        "epochs: 3 -> 4",
        "lr: 0.001 -> 0.5",
        "model.hidden: 64 -> 128",
    ]


def test_type_change_is_one_difference():
    left = train()
    right = Train.C(model=BigModel.C(hidden=64, layers=3), lr=0.001)
    assert lines(left, right) == [f"model: {MODEL} -> <tests.unit.configs.bigmodel>"]


def test_type_change_of_the_root():
    assert lines(Model.C(hidden=1), BigModel.C(hidden=1)) == [
        f"@type: {MODEL} -> <tests.unit.configs.bigmodel>"
    ]


def test_list_length_change():
    assert lines(AnyValue.C(value=[1, 2, 3]), AnyValue.C(value=[1, 5])) == [
        "value[1]: 2 -> 5",
        "value[2]: 3 -> (not set)",
    ]
    assert lines(AnyValue.C(value=[]), AnyValue.C(value=[[1, "x"]])) == ['value[0]: (not set) -> [1, "x"]']


def test_dict_keys_match_by_value_in_the_first_file_order():
    left = AnyValue.C(value={"wd": 0, "lr": 0.1, 3: None})
    right = AnyValue.C(value={"momentum": 0.9, "lr": 0.2, 3: None})
    assert lines(left, right) == [
        'value["wd"]: 0 -> (not set)',
        'value["lr"]: 0.1 -> 0.2',
        'value["momentum"]: (not set) -> 0.9',
    ]


def test_kinds_never_mix():
    assert lines(AnyValue.C(value=1), AnyValue.C(value=1.0)) == ["value: 1 -> 1.0"]
    assert lines(AnyValue.C(value=1), AnyValue.C(value=True)) == ["value: 1 -> true"]
    assert lines(AnyValue.C(value=[1, 2]), AnyValue.C(value=(1, 2))) == ["value: [1, 2] -> (1, 2)"]
    assert lines(AnyValue.C(value="1"), AnyValue.C(value=None)) == ['value: "1" -> null']


def test_compact_display_of_encoded_kinds():
    assert lines(AnyValue.C(value={1, 2}), AnyValue.C(value={1, 3})) == ["value: {1, 2} -> {1, 3}"]
    assert lines(AnyValue.C(value=set()), AnyValue.C(value=(7,))) == ["value: set() -> (7,)"]
    assert lines(AnyValue.C(value=float("inf")), AnyValue.C(value=float("nan"))) == ["value: inf -> nan"]
    assert lines(AnyValue.C(value=[Color.RED]), AnyValue.C(value=[Color.GREEN])) == [
        "value[0]: Color.RED -> Color.GREEN"
    ]
    assert lines(AnyValue.C(value=(1, {"a": 2})), AnyValue.C(value=(1, {"a": "2\n"}))) == [
        'value[1]["a"]: 2 -> "2\\n"'
    ]


def test_sets_compare_as_sets():
    assert difference(dumps(AnyValue.C(value={"b", "a"})), dumps(AnyValue.C(value={"a", "b"})), "a", "b") == []


def test_paths_show_when_the_configuration_differs():
    # Paths never enter identifiers: alone, they make no difference.
    assert lines(WithPaths.C(a=1, p=Path("/data/a")), WithPaths.C(a=1, p=Path("/data/b"))) == []
    left = WithPaths.C(a=1, p=Path("/data/a"))
    right = WithPaths.C(a=2, p=Path("/data/b"), po=Path("/x"), ps=[Path("/y")])
    assert lines(left, right) == [
        "a: 1 -> 2",
        "p: /data/a -> /data/b",
        "po: (not set) -> /x",
        "ps[0]: (not set) -> /y",
    ]


def test_generated_paths_of_two_job_folders_are_equal(tmp_path):
    files = []
    for lr, folder in ((0.1, "job1"), (0.2, "job2")):
        task = train(lr=lr)
        task.__xpm__.generate_paths(tmp_path / folder)
        files.append(dumps(task, jobpath=tmp_path / folder))
    assert [format_difference(d) for d in difference(*files, "a", "b")] == ["lr: 0.1 -> 0.2"]


def test_kinds_that_display_alike_show_their_encoding():
    data = dumps(WithPaths.C(a=1, p=Path("model.txt")))
    left = edit(data, lambda c: c["objects"][0].update(identifier="1" * 64))
    right = edit(data, lambda c: c["objects"][0]["fields"].update(p={"$": "generated", "value": "model.txt"}))
    assert [format_difference(d) for d in difference(left, right, "a", "b")] == [
        'p: {"$":"path","value":"model.txt"} -> {"$":"generated","value":"model.txt"}'
    ]


def test_producer_task_of_an_output():
    left = Consumer.C(inp=Producer.C(x=1).__xpm_outputs__())
    right = Consumer.C(inp=Producer.C(x=2).__xpm_outputs__())
    assert lines(left, right) == ["inp.@task.x: 1 -> 2", "inp.step: 1 -> 2"]


def test_output_against_the_same_values_built_by_hand():
    output = Producer.C(x=1).__xpm_outputs__()
    plain = Out.C(step=1, path=Path("/tmp/out"))
    assert lines(Consumer.C(inp=plain), Consumer.C(inp=output)) == [
        "inp.@task: (not set) -> <tests.unit.configs.producer>"
    ]


def test_init_tasks():
    left, right = train(), train()
    left.__xpm__.init_tasks = [Init.C(v=1)]
    right.__xpm__.init_tasks = [Init.C(v=2), Init.C(v=3)]
    assert lines(left, right) == [
        "@init_tasks[0].v: 1 -> 2",
        "@init_tasks[1]: (not set) -> <tests.unit.configs.init>",
    ]


def test_equal_identifiers_stop_the_walk():
    # Meta values do not enter identifiers: configurations that differ only there are equal.
    left = Consumer.C(inp=Out.C(step=1, path=Path("/a")))
    right = Consumer.C(inp=Out.C(step=1, path=Path("/b")))
    assert lines(left, right) == []


def test_shared_configuration_shows_at_each_place():
    m1, m2 = Model.C(hidden=1), Model.C(hidden=2)
    assert lines(AnyValue.C(value=[m1, {"k": m1}]), AnyValue.C(value=[m2, {"k": m2}])) == [
        "value[0].hidden: 1 -> 2",
        'value[1]["k"].hidden: 1 -> 2',
    ]


def cycle(first: str, second: str) -> Any:
    a, b = Node.C(name=first), Node.C(name=second)
    a.next, b.next = b, a
    return a


def test_cycles_end():
    assert lines(cycle("a", "b"), cycle("a", "c")) == ['next.name: "b" -> "c"']
    assert lines(cycle("a", "b"), cycle("z", "b")) == ['name: "a" -> "z"']


def test_same_values_with_different_identifiers_get_a_note():
    # As if the class had changed how its values enter the identifier between two jobs.
    data = dumps(train())
    right = edit(data, lambda c: [o.update(identifier=o["identifier"][::-1]) for o in c["objects"]])
    model = by_type(json.loads(data), "tests.unit.configs.model")["identifier"]
    diffs = difference(data, right, "a", "b")
    assert diffs == [Difference("model.@identifier", model, model[::-1])]
    assert format_difference(diffs[0]) == f"model.@identifier: {model} -> {model[::-1]} ({SAME_VALUES_NOTE})"


def test_classes_are_not_imported():
    def unknown(content: dict[str, Any]) -> None:
        for o in content["objects"]:
            o["type"] = "no_such_module:" + o["type"].partition(":")[2]

    left, right = edit(dumps(train(1)), unknown), edit(dumps(train(2)), unknown)
    assert difference(left, right, "a", "b") == [Difference("model.hidden", "1", "2")]


def test_format_difference():
    assert format_difference(Difference("lr", "0.1", None)) == "lr: 0.1 -> (not set)"
    assert format_difference(Difference("options[\"lr\"]", None, '"x"')) == 'options["lr"]: (not set) -> "x"'


def test_newer_version_is_refused_naming_the_file():
    newer = edit(dumps(train()), lambda c: c.update(version=99))
    with pytest.raises(FormatVersionError) as info:
        difference(dumps(train()), newer, "job1/params.json", "job2/params.json")
    assert str(info.value).startswith("job2/params.json: format version 99 is newer than the version 1")


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda data: b"{not json", "right.json: not a valid xpm parameters file"),
        (lambda data: b'{"version": 1}', "right.json: not a valid xpm parameters file"),
        (
            lambda data: edit(data, lambda c: c.update(root={"$": "config", "id": 99})),
            "right.json: reference to an unknown object 99",
        ),
        (
            # damage where the files do not differ: the whole file is checked
            lambda data: edit(data, lambda c: by_type(c, TRAIN)["fields"].update(lr={"$": "blob"})),
            "right.json: unknown value kind 'blob'",
        ),
        (
            lambda data: edit(data, lambda c: c["objects"].append(c["objects"][0])),
            "right.json: two objects with the id 1",
        ),
    ],
)
def test_damaged_file_is_refused_naming_the_file(damage, message):
    data = dumps(train())
    with pytest.raises(SerializationError) as info:
        difference(data, damage(data), "left.json", "right.json")
    assert str(info.value).startswith(message)
