"""serialize/deserialize (with init tasks), ObjectStore, SerializationContext, partial loading, older files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xpm import Config, LightweightTask, Param, Task, field, identifier
from xpm.config.datapath import DataPath, SerializationContext, SerializedPath
from xpm.config.serializers import PathSerializationLWTask, SerializationLWTask
from xpm.errors import ConfigError, SerializationError
from xpm.serialize import ObjectStore, deserialize, dumps, instances, load, loads, save, serialize


class Network(Config):
    layers: Param[int]

    def __post_init__(self) -> None:
        self.state: str | None = None


class Pair(Config):
    left: Param[Network]
    right: Param[Network]


class LoadState(PathSerializationLWTask):
    """Reads the state of ``value`` from ``path/state.txt``."""

    def execute(self) -> None:
        self.value.state = (self.path / "state.txt").read_text()
        self.register(self.value)


class Scale(SerializationLWTask):
    factor: Param[int] = field(default=2)

    def execute(self) -> None:
        self.value.state = (self.value.state or "") + f"x{self.factor}"


class Train(Task):
    layers: Param[int]

    def execute(self) -> None:
        pass

    def task_outputs(self, dep):  # type: ignore[no-untyped-def]
        return dep(Network.C(layers=self.layers))


def state_folder(tmp_path: Path, text: str = "trained") -> Path:
    folder = tmp_path / "state"
    folder.mkdir()
    (folder / "state.txt").write_text(text)
    return folder


def test_the_serializer_tasks_are_lightweight_tasks_holding_a_configuration():
    args = PathSerializationLWTask.__xpmtype__.arguments
    assert list(args) == ["value", "path"]
    assert args["path"].is_data and not args["value"].is_meta
    assert issubclass(SerializationLWTask, LightweightTask)
    assert "registered" not in args  # an attribute of the objects, not a parameter


def test_serialize_saves_the_configuration_with_its_init_tasks(tmp_path):
    net = Network.C(layers=3)
    path = serialize(net, tmp_path / "saved", init_tasks=[LoadState.C(value=net, path=state_folder(tmp_path))])
    assert path == tmp_path / "saved" / "xpm.json"
    assert (tmp_path / "saved" / "path" / "state.txt").read_text() == "trained"
    back, init_tasks = deserialize(tmp_path / "saved")
    assert identifier(back) == identifier(net)
    assert [type(t) for t in init_tasks] == [LoadState.XPMConfig]
    assert init_tasks[0].value is back, "the init task holds the loaded configuration itself"
    assert init_tasks[0].path == tmp_path / "saved" / "path"


def test_deserialize_as_instance_runs_the_init_tasks_on_the_object(tmp_path):
    net = Network.C(layers=3)
    tasks = [LoadState.C(value=net, path=state_folder(tmp_path)), Scale.C(value=net, factor=3)]
    serialize(net, tmp_path / "saved", init_tasks=tasks)
    obj = deserialize(tmp_path / "saved", as_instance=True)
    assert type(obj) is Network and obj.layers == 3
    assert obj.state == "trainedx3"


def test_init_task_objects_register_what_uses_them(tmp_path):
    net = Network.C(layers=1)
    loader = LoadState.C(value=net, path=state_folder(tmp_path))
    objects = ObjectStore()
    built = instances([loader, net], objects)
    assert built[0].registered == []
    built[0].execute()
    assert built[0].registered == [built[1]] and built[1].state == "trained"


def test_deserialize_refuses_a_folder_saved_without_init_tasks(tmp_path):
    save(Network.C(layers=1), tmp_path / "plain")
    with pytest.raises(SerializationError, match=r"xpm.json was not written by serialize\(\)"):
        deserialize(tmp_path / "plain")


def test_serialize_takes_only_lightweight_tasks(tmp_path):
    with pytest.raises(ConfigError, match="an init task must be a LightweightTask"):
        serialize(Network.C(layers=1), tmp_path / "saved", init_tasks=[Network.C(layers=2)])


def test_another_definition_file_name(tmp_path):
    serialize(Network.C(layers=2), tmp_path / "saved", definition_filename="definition.json")
    assert (tmp_path / "saved" / "definition.json").exists()
    back, init_tasks = deserialize(tmp_path / "saved", definition_filename="definition.json")
    assert back.layers == 2 and init_tasks == []


def test_a_function_can_stand_for_the_saved_folder(tmp_path):
    """deserialize(loader): the function maps names inside the saved folder to local files (a download)."""
    net = Network.C(layers=4)
    serialize(net, tmp_path / "remote", init_tasks=[LoadState.C(value=net, path=state_folder(tmp_path, "far"))])
    asked: list[str] = []

    def fetch(name: str) -> Path:
        asked.append(name)
        return tmp_path / "remote" / name

    obj = deserialize(fetch, as_instance=True)
    assert obj.state == "far"
    assert asked == ["xpm.json", "path"]


def test_object_store_builds_a_shared_configuration_once(tmp_path):
    net = Network.C(layers=2)
    save({"pair": Pair.C(left=net, right=net), "alone": net}, tmp_path / "saved")
    built = load(tmp_path / "saved", as_instance=True)
    assert type(built["alone"]) is Network
    assert built["pair"].left is built["pair"].right is built["alone"]

    objects = ObjectStore()
    first = instances(net, objects)
    again = instances(Pair.C(left=net, right=Network.C(layers=5)), objects)
    assert again.left is first and again.right is not first
    assert objects.retrieve(id(net)) is first and objects.is_constructed(id(net))
    assert objects.retrieve(id(object())) is None


def test_serialization_context_names_and_copies(tmp_path):
    source = tmp_path / "w.bin"
    source.write_bytes(b"w")
    context = SerializationContext(save_directory=tmp_path / "out")
    assert context.depth == 0
    with context.push("model") as where:
        assert where == ["model"] and context.depth == 1
        copied = context.serialize([*context.var_path, "weights"], source, Network.C(layers=1))
    assert context.var_path == []
    assert isinstance(copied, SerializedPath) and copied.path.as_posix() == "model/weights" and not copied.is_folder
    assert (tmp_path / "out" / "model" / "weights").read_bytes() == b"w"
    again = context.serialize(["model", "weights"], source, Network.C(layers=1))
    assert again.path.as_posix() == "model/weights.1"
    inside = context.serialize(["model"], source, Network.C(layers=1))
    assert inside.path.as_posix() == "model.1", "a name that holds another copy is taken too"


def test_serialization_context_without_folder_copies_nothing(tmp_path):
    source = tmp_path / "w.bin"
    source.write_bytes(b"w")
    copied = SerializationContext().serialize(["weights"], source, Network.C(layers=1))
    assert copied.path == source
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.bin"]


class Holds(Config):
    network: Param[Network]
    data: DataPath


def test_partial_loading_leaves_out_the_producing_tasks(tmp_path):
    output = Train.C(layers=6).__xpm_outputs__()
    weights = tmp_path / "w"
    weights.write_text("w")
    path = save(Holds.C(network=output, data=weights), tmp_path / "saved")
    content = json.loads(path.read_text())
    producer = next(o for o in content["objects"] if o["type"].endswith(":Train"))
    producer["type"] = "tests.unit.gone:Train"  # the training code is gone
    path.write_text(json.dumps(content))
    with pytest.raises(SerializationError, match="cannot import tests.unit.gone:Train"):
        load(tmp_path / "saved")
    back = load(tmp_path / "saved", partial_loading=True)
    assert back.network.layers == 6 and back.network.__xpm__.task is None
    assert back.data.read_text() == "w"
    obj = load(tmp_path / "saved", as_instance=True)  # partial by default for objects
    assert obj.network.layers == 6


def test_deserialize_as_instance_is_partial_by_default(tmp_path):
    output = Train.C(layers=2).__xpm_outputs__()
    path = serialize(output, tmp_path / "saved", init_tasks=[Scale.C(value=output)])
    content = json.loads(path.read_text())
    next(o for o in content["objects"] if o["type"].endswith(":Train"))["type"] = "tests.unit.gone:Train"
    path.write_text(json.dumps(content))
    with pytest.raises(SerializationError, match="cannot import tests.unit.gone:Train"):
        deserialize(tmp_path / "saved")
    assert deserialize(tmp_path / "saved", as_instance=True).state == "x2"


def test_loaded_with_the_producing_task_by_default(tmp_path):
    output = Train.C(layers=6).__xpm_outputs__()
    save(output, tmp_path / "saved")
    back = load(tmp_path / "saved")
    assert isinstance(back.__xpm__.task, Train)
    assert identifier(back) == identifier(output)


#: An xpm.json as xpm wrote it before data paths were copied (format version 1)
OLDER_FILE = """{
  "version": 1,
  "xpm": "0.1.0",
  "objects": [
    {"id": 1, "type": "tests.unit.test_serialize_compat:Network", "typeid": "tests.unit.test_serialize_compat.network",
     "identifier": "%s", "fields": {"layers": 3}},
    {"id": 0, "type": "tests.unit.test_serialize_compat:Holds", "typeid": "tests.unit.test_serialize_compat.holds",
     "identifier": "%s", "fields": {"network": {"$": "config", "id": 1}, "data": {"$": "path", "value": "/data/w"}}}
  ],
  "root": [{"$": "config", "id": 0}, {"$": "tuple", "items": [1, {"$": "path", "value": "/x"}]}]
}
"""


def test_files_written_before_data_paths_still_load(tmp_path):
    holds = Holds.C(network=Network.C(layers=3), data=Path("/data/w"))
    (tmp_path / "xpm.json").write_text(OLDER_FILE % (identifier(holds.network), identifier(holds)))
    back, extra = load(tmp_path)
    assert back.data == Path("/data/w") and back.network.layers == 3
    assert extra == (1, Path("/x"))
    assert identifier(back) == identifier(holds)


def test_data_values_are_a_new_kind_that_plain_paths_never_use(tmp_path):
    """The only change to the format: {"$": "data"} values, written by save() for data paths."""
    weights = tmp_path / "w"
    weights.write_text("w")
    holds = Holds.C(network=Network.C(layers=1), data=weights)
    assert json.loads(dumps(holds))["objects"][-1]["fields"]["data"] == {"$": "path", "value": str(weights)}
    saved = json.loads(save(holds, tmp_path / "saved").read_text())
    assert saved["objects"][-1]["fields"]["data"] == {"$": "data", "value": "data"}
    assert loads(json.dumps(saved).encode(), folder=tmp_path / "saved").data == tmp_path / "saved" / "data"
