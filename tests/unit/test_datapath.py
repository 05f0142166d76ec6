"""DataPath: saving a configuration copies the data its paths point to; loading points at the copies."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

import xpm
from xpm import Config, Meta, Param, Task, field, identifier
from xpm.config.datapath import DataPath, OptionalDataPath, SerializationContext
from xpm.errors import SerializationError
from xpm.serialize import dumps, loads


class Encoder(Config):
    weights: DataPath
    size: Param[int] = field(default=1)


class Model(Config):
    encoder: Param[Encoder]
    heads: Param[list[Encoder]] = field(default_factory=list)
    vocabulary: OptionalDataPath = field(default=None)


class Holder(Config):
    encoders: Param[dict[str, Encoder]]


class Evaluate(Task):
    model: Param[Model]
    log: Meta[Path]

    def execute(self) -> None:
        pass


class Custom(Config):
    """Chooses its copies itself: the folder ``checkpoint`` is saved as ``best`` (its last file only)."""

    checkpoint: DataPath

    def __xpm_serialize__(self, context: SerializationContext) -> dict[str, Any]:
        return {"checkpoint": context.serialize([*context.var_path, "best"], self.checkpoint / "last.pt", self)}


def data(tmp_path: Path) -> tuple[Path, Path]:
    """A weights file and a vocabulary folder, outside the saved folder."""
    source = tmp_path / "source"
    (source / "vocab" / "sub").mkdir(parents=True)
    (source / "weights.bin").write_bytes(b"\x00\x01weights")
    (source / "vocab" / "words.txt").write_text("a\nb\n")
    (source / "vocab" / "sub" / "more.txt").write_text("c\n")
    return source / "weights.bin", source / "vocab"


def test_data_path_is_a_meta_argument_marked_as_data():
    arg = Encoder.__xpmtype__.arguments["weights"]
    assert arg.is_data and arg.is_meta and not arg.hashed
    assert not Encoder.__xpmtype__.arguments["size"].is_data
    optional = Model.__xpmtype__.arguments["vocabulary"]
    assert optional.is_data and optional.optional


def test_save_copies_files_and_folders_and_load_points_at_the_copies(tmp_path):
    weights, vocab = data(tmp_path)
    model = Model.C(encoder=Encoder.C(weights=weights), vocabulary=vocab)
    xpm.save(model, tmp_path / "saved")
    # The original data goes away: the saved folder holds its own copy.
    shutil.rmtree(tmp_path / "source")
    back = xpm.load(tmp_path / "saved")
    assert back.encoder.weights == tmp_path / "saved" / "encoder" / "weights"
    assert back.encoder.weights.read_bytes() == b"\x00\x01weights"
    assert back.vocabulary == tmp_path / "saved" / "vocabulary"
    assert (back.vocabulary / "words.txt").read_text() == "a\nb\n"
    assert (back.vocabulary / "sub" / "more.txt").read_text() == "c\n"


def test_the_saved_folder_can_move(tmp_path):
    weights, _ = data(tmp_path)
    xpm.save(Encoder.C(weights=weights), tmp_path / "saved")
    (tmp_path / "saved").rename(tmp_path / "moved")
    back = xpm.load(tmp_path / "moved")
    assert back.weights == tmp_path / "moved" / "weights"
    assert back.weights.read_bytes() == b"\x00\x01weights"


def test_a_relative_folder_loads_as_absolute_paths(tmp_path, monkeypatch):
    weights, _ = data(tmp_path)
    monkeypatch.chdir(tmp_path)
    xpm.save(Encoder.C(weights=weights), "saved")
    back = xpm.load("saved")
    assert back.weights.is_absolute() and back.weights == tmp_path / "saved" / "weights"


def test_copies_are_recorded_relative_to_the_saved_folder(tmp_path):
    weights, vocab = data(tmp_path)
    other = tmp_path / "other.bin"
    other.write_bytes(b"other")
    model = Model.C(encoder=Encoder.C(weights=weights), heads=[Encoder.C(weights=other, size=2)])
    path = xpm.save(model, tmp_path / "saved")
    records = {o["id"]: o for o in json.loads(path.read_text())["objects"]}
    fields = [r["fields"] for r in records.values() if r["type"].endswith(":Encoder")]
    assert {"$": "data", "value": "encoder/weights"} in [f["weights"] for f in fields]
    assert {"$": "data", "value": "heads/0/weights"} in [f["weights"] for f in fields]
    assert (tmp_path / "saved" / "heads" / "0" / "weights").read_bytes() == b"other"


def test_a_shared_sub_configuration_is_copied_once(tmp_path):
    weights, _ = data(tmp_path)
    shared = Encoder.C(weights=weights)
    model = Model.C(encoder=shared, heads=[shared, shared])
    xpm.save(model, tmp_path / "saved")
    saved = sorted(p.relative_to(tmp_path / "saved").as_posix() for p in (tmp_path / "saved").rglob("*"))
    assert saved == ["encoder", "encoder/weights", "xpm.json"]
    back = xpm.load(tmp_path / "saved")
    assert back.encoder is back.heads[0] is back.heads[1]


def test_the_same_name_twice_at_the_top_gets_a_suffix(tmp_path):
    weights, _ = data(tmp_path)
    other = tmp_path / "other.bin"
    other.write_bytes(b"other")
    first, second = Encoder.C(weights=weights), Encoder.C(weights=other)
    xpm.save([first, second], tmp_path / "saved")
    back = xpm.load(tmp_path / "saved")
    assert [p.name for p in (back[0].weights, back[1].weights)] == ["weights", "weights.1"]
    assert back[1].weights.read_bytes() == b"other"


def test_optional_data_path_left_none_copies_nothing(tmp_path):
    weights, _ = data(tmp_path)
    model = Model.C(encoder=Encoder.C(weights=weights))
    assert model.vocabulary is None
    path = xpm.save(model, tmp_path / "saved")
    assert not (tmp_path / "saved" / "vocabulary").exists()
    root = json.loads(path.read_text())["objects"][-1]
    assert "vocabulary" not in root["fields"]
    assert xpm.load(tmp_path / "saved").vocabulary is None
    explicit = Model.C(encoder=Encoder.C(weights=weights), vocabulary=None)
    xpm.save(explicit, tmp_path / "explicit")
    assert xpm.load(tmp_path / "explicit").vocabulary is None


def test_data_paths_never_enter_identifiers(tmp_path):
    weights, vocab = data(tmp_path)
    a = Model.C(encoder=Encoder.C(weights=weights), vocabulary=vocab)
    b = Model.C(encoder=Encoder.C(weights=tmp_path / "elsewhere"), vocabulary=None)
    assert identifier(a) == identifier(b)
    assert identifier(a) != identifier(Model.C(encoder=Encoder.C(weights=weights, size=2)))
    xpm.save(a, tmp_path / "saved")
    back = xpm.load(tmp_path / "saved")
    assert back.encoder.weights != weights
    assert identifier(back) == identifier(a)


def test_saving_again_replaces_the_copies(tmp_path):
    weights, vocab = data(tmp_path)
    xpm.save(Model.C(encoder=Encoder.C(weights=weights), vocabulary=vocab), tmp_path / "saved")
    (vocab / "words.txt").unlink()
    (vocab / "new.txt").write_text("new")
    xpm.save(Model.C(encoder=Encoder.C(weights=weights), vocabulary=vocab), tmp_path / "saved")
    assert sorted(p.name for p in (tmp_path / "saved" / "vocabulary").iterdir()) == ["new.txt", "sub"]


def test_saving_where_the_data_already_is_keeps_it(tmp_path):
    folder = tmp_path / "saved"
    folder.mkdir()
    (folder / "weights").write_bytes(b"in place")
    xpm.save(Encoder.C(weights=folder / "weights"), folder)
    assert xpm.load(folder).weights.read_bytes() == b"in place"


def test_a_missing_data_path_is_an_error_naming_the_class(tmp_path):
    with pytest.raises(SerializationError, match=r"Encoder: the data path .*missing\.bin does not exist"):
        xpm.save(Encoder.C(weights=tmp_path / "missing.bin"), tmp_path / "saved")
    assert not (tmp_path / "saved" / "xpm.json").exists()


def test_a_folder_cannot_be_saved_into_itself(tmp_path):
    _, vocab = data(tmp_path)
    with pytest.raises(SerializationError, match="into itself"):
        xpm.save(Model.C(encoder=Encoder.C(weights=vocab)), vocab / "saved")


def test_a_dict_key_that_cannot_name_a_file_is_refused(tmp_path):
    weights, _ = data(tmp_path)
    with pytest.raises(SerializationError, match=r"Encoder: a data path sits under '\.\.'"):
        xpm.save(Holder.C(encoders={"..": Encoder.C(weights=weights)}), tmp_path / "saved")


def test_dict_keys_name_the_copies(tmp_path):
    weights, _ = data(tmp_path)
    xpm.save(Holder.C(encoders={"fr": Encoder.C(weights=weights)}), tmp_path / "saved")
    assert xpm.load(tmp_path / "saved").encoders["fr"].weights == tmp_path / "saved" / "encoders" / "fr" / "weights"


def test_job_parameters_keep_the_path_itself(tmp_path):
    """params.json (a submitted task's parameters) records data paths as paths: nothing is copied."""
    weights, _ = data(tmp_path)
    task = Evaluate.C(model=Model.C(encoder=Encoder.C(weights=weights)), log=tmp_path / "log")
    text = dumps(task, jobpath=tmp_path / "job")
    records = json.loads(text)["objects"]
    encoder = next(r for r in records if r["type"].endswith(":Encoder"))
    assert encoder["fields"]["weights"] == {"$": "path", "value": str(weights)}
    assert loads(text, jobpath=tmp_path / "job").model.encoder.weights == weights


def test_a_class_can_choose_its_copies(tmp_path):
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    (checkpoint / "last.pt").write_bytes(b"last")
    (checkpoint / "first.pt").write_bytes(b"first")
    xpm.save(Custom.C(checkpoint=checkpoint), tmp_path / "saved")
    back = xpm.load(tmp_path / "saved")
    assert back.checkpoint == tmp_path / "saved" / "best"
    assert back.checkpoint.read_bytes() == b"last"


def test_a_copy_for_something_that_is_not_a_parameter_is_an_error(tmp_path):
    class Extra(Encoder):
        __xpmid__ = "test.datapath.extra"

        def __xpm_serialize__(self, context: SerializationContext) -> dict[str, Any]:
            return {"other": context.serialize(["other"], self.weights, self)}

    weights, _ = data(tmp_path)
    with pytest.raises(SerializationError, match=r"Extra.__xpm_serialize__ gave 'other', which are not parameters"):
        xpm.save(Extra.C(weights=weights), tmp_path / "saved")


def test_a_saved_data_path_needs_its_folder(tmp_path):
    weights, _ = data(tmp_path)
    path = xpm.save(Encoder.C(weights=weights), tmp_path / "saved")
    with pytest.raises(SerializationError, match="a data path saved with its folder, but no folder was given"):
        loads(path.read_bytes())
