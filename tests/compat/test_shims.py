"""The small helpers of experimaestro that libraries import (xpm/compat/shims.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xpm import Param
from xpm.compat.shims import Action, CLIInteraction, ConfigInformation, JsonSettings, cleanupdir
from xpm.serialize import serialize


class Export(Action):
    __xpmid__ = "tests.shims.export"
    name: Param[str]

    def describe(self) -> str:
        return f"export {self.name}"

    def execute(self, interaction) -> None:
        self.answers = (
            interaction.choice("format", "Format?", ["onnx", "torch"]),
            interaction.checkbox("private", "Private?"),
            interaction.text("repo", "Repository?", default="mine"),
        )


def test_an_action_runs_with_prefilled_answers():
    action = Export.C(name="model").instance()
    assert action.describe() == "export model"
    action.execute(CLIInteraction({"format": "torch", "private": "yes", "repo": "team/model"}))
    assert action.answers == ("torch", True, "team/model")
    with pytest.raises(ValueError, match="format: 'tf' is not one of onnx, torch"):
        action.execute(CLIInteraction({"format": "tf"}))
    with pytest.raises(ValueError, match="private: 'maybe' is not a yes or no"):
        action.execute(CLIInteraction({"format": "onnx", "private": "maybe"}))


def test_an_action_asks_on_the_terminal(monkeypatch):
    answers = iter(["3", "2", "", ""])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(answers))
    action = Export.C(name="m").instance()
    action.execute(CLIInteraction())
    assert action.answers == ("torch", False, "mine")  # "3" is out of range: asked again


def test_cleanupdir_empties_the_folder_it_is_given(tmp_path: Path):
    folder = tmp_path / "ckpt"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a").write_text("a")
    (folder / "b").write_text("b")
    outside = tmp_path / "kept"
    outside.write_text("kept")
    (folder / "link").symlink_to(outside)
    assert cleanupdir(folder) == folder and list(folder.iterdir()) == []
    assert outside.read_text() == "kept"  # a link is removed, never followed
    assert cleanupdir(tmp_path / "new").is_dir()


class _Schema:
    """Stands for a marshmallow schema (the seam): loads/dumps a Prefs."""

    def loads(self, text: str) -> "Prefs":
        prefs = Prefs()
        prefs.colour = json.loads(text)["colour"]
        return prefs

    def dumps(self, prefs: "Prefs") -> str:
        return json.dumps({"colour": prefs.colour})


class Prefs(JsonSettings):
    SCHEMA = _Schema

    def __init__(self) -> None:
        self.colour = "blue"


def test_json_settings_load_defaults_then_what_was_saved(tmp_path: Path):
    path = tmp_path / "conf" / "prefs.json"
    prefs = Prefs.load(path)
    assert prefs.colour == "blue" and prefs.path == path
    prefs.colour = "red"
    prefs.save()
    assert Prefs.load(path).colour == "red"
    assert [p.name for p in path.parent.iterdir()] == ["prefs.json"]  # no temporary file left


def test_config_information_deserialize(tmp_path: Path):
    from tests.unit.test_config_compat import Model

    serialize(Model.C(hidden=4), tmp_path / "saved")
    assert ConfigInformation.deserialize(tmp_path / "saved").hidden == 4
    config, tasks = ConfigInformation.deserialize(tmp_path / "saved", return_tasks=True)
    assert config.hidden == 4 and tasks == []
    assert ConfigInformation.deserialize(tmp_path / "saved", as_instance=True).size == 8
    with pytest.raises(ValueError, match="cannot both be set"):
        ConfigInformation.deserialize(tmp_path / "saved", as_instance=True, return_tasks=True)
