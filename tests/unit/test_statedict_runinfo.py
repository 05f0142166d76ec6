"""``state_dict``/``from_state_dict`` and ``load_xp_info`` (issue 16, item 4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import xpm
from xpm import Config, DataPath, Param, Task, experiment
from xpm.errors import SerializationError
from xpm.runinfo import ExperimentInfo, load_xp_info
from xpm.serialize import SerializationContext
from xpm.statedict import from_state_dict, state_dict


class Encoder(Config):
    __xpmid__ = "tests.statedict.encoder"
    dim: Param[int]


class Ranker(Config):
    __xpmid__ = "tests.statedict.ranker"
    encoder: Param[Encoder]
    weights: DataPath


class Learn(Task):
    __xpmid__ = "tests.statedict.learn"
    encoder: Param[Encoder]
    lr: Param[float]

    def execute(self) -> None:
        pass


def test_a_state_dict_goes_through_json_and_back(tmp_path: Path) -> None:
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"w")
    ranker = Ranker.C(encoder=Encoder.C(dim=3), weights=weights)
    saved = tmp_path / "saved"
    state = state_dict(SerializationContext(save_directory=saved), ranker)
    text = json.dumps({"epoch": 3, "model": state})  # inside a larger JSON document
    back = from_state_dict(json.loads(text)["model"], saved)
    assert xpm.identifier(back) == xpm.identifier(ranker) and back.encoder.dim == 3
    assert back.weights.read_bytes() == b"w" and back.weights.parent == saved
    built = from_state_dict(state, saved, as_instance=True)
    assert type(built) is Ranker and built.encoder.dim == 3


def test_load_xp_info_gives_the_configurations_a_run_submitted(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    with experiment(ws, "info") as xp:
        a = Learn.C(encoder=Encoder.C(dim=1), lr=0.1).submit()
        b = Learn.C(encoder=Encoder.C(dim=2), lr=0.1).submit()
        run = Path(xp.workdir)
    info = load_xp_info(run)
    assert isinstance(info, ExperimentInfo) and info.actions == {}
    assert set(info.jobs) == {xpm.identifier(a), xpm.identifier(b)}
    assert info.jobs[xpm.identifier(b)].encoder.dim == 2
    with pytest.raises(SerializationError):
        load_xp_info(tmp_path / "nowhere")
