"""``experimaestro.huggingface.ExperimaestroHFHub`` through the drop-in, as libraries subclass it.

The ``huggingface_hub`` package is not one of xpm's dependencies: a small stand-in
for it (the mixin's ``save_pretrained``/``from_pretrained`` and the two download
functions, reading a folder that plays the Hub) sits at the seam; what is
checked is xpm's side, saving a configuration with its data and loading it back
from a local folder and from "the Hub".
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.compat.conftest import check, python

STAND_IN = '''
import shutil
from pathlib import Path

HUB = Path(__file__).parent / "hub"  # repo_id -> HUB / repo_id


class ModelHubMixin:
    def save_pretrained(self, save_directory):
        Path(save_directory).mkdir(parents=True, exist_ok=True)
        self._save_pretrained(Path(save_directory))

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        return cls._from_pretrained(model_id=str(pretrained_model_name_or_path), **kwargs)


def _cache(repo_id, cache_dir):
    return Path(cache_dir or HUB.parent / "cache") / repo_id


def hf_hub_download(repo_id, filename, cache_dir=None, **kwargs):
    source = HUB / repo_id / filename
    if not source.is_file():
        raise FileNotFoundError(filename)
    target = _cache(repo_id, cache_dir) / filename
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, target)
    return str(target)


def snapshot_download(repo_id, allow_patterns, cache_dir=None, **kwargs):
    prefix = allow_patterns.removesuffix("/**")
    shutil.copytree(HUB / repo_id / prefix, _cache(repo_id, cache_dir) / prefix, dirs_exist_ok=True)
    return str(_cache(repo_id, cache_dir))
'''

LIBRARY = '''
from pathlib import Path
from experimaestro import Config, Param, DataPath, field
from experimaestro.huggingface import ExperimaestroHFHub


class Encoder(Config):
    dim: Param[int]
    weights: DataPath
    vocab: DataPath


class EncoderHub(ExperimaestroHFHub):
    pass
'''


def test_a_configuration_with_its_data_goes_to_the_hub_and_back(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "huggingface_hub").mkdir(parents=True)
    (site / "huggingface_hub" / "__init__.py").write_text(STAND_IN)
    (site / "library.py").write_text(LIBRARY)
    data = tmp_path / "data"
    (data / "vocab").mkdir(parents=True)
    (data / "weights.bin").write_bytes(b"\x00\x01weights")
    (data / "vocab" / "words.txt").write_text("a\nb\n")
    out = check(python(f"""
        import json, shutil
        from pathlib import Path
        import xpm.compat
        xpm.compat.install()
        from library import Encoder, EncoderHub
        from huggingface_hub import HUB

        data = Path({str(data)!r})
        encoder = Encoder.C(dim=8, weights=data / "weights.bin", vocab=data / "vocab")
        saved = Path({str(tmp_path / "saved")!r})
        EncoderHub(encoder).save_pretrained(saved)
        shutil.copytree(saved, HUB / "team/encoder")  # what push_to_hub uploads

        local = EncoderHub.from_pretrained(saved)
        remote = EncoderHub.from_pretrained("team/encoder")
        built = EncoderHub.from_pretrained("team/encoder", as_instance=True)
        print(json.dumps({{
            "local": [local.dim, local.weights.read_bytes().hex(), (local.vocab / "words.txt").read_text()],
            "remote": [remote.dim, remote.weights.read_bytes().hex(), (remote.vocab / "words.txt").read_text()],
            "remote_from_cache": str(remote.weights).startswith(str(HUB.parent / "cache")),
            "same_identifier": str(local.__xpm__.identifier) == str(remote.__xpm__.identifier)
                               == str(encoder.__xpm__.identifier),
            "instance": [type(built).__name__, built.dim],
        }}))
    """, cwd=tmp_path, env={"PYTHONPATH": str(site)}))
    result = json.loads(out)
    expected = [8, b"\x00\x01weights".hex(), "a\nb\n"]
    assert result["local"] == expected and result["remote"] == expected
    assert result["remote_from_cache"] and result["same_identifier"]
    assert result["instance"] == ["Encoder", 8]


def test_without_the_hub_package_the_import_says_what_is_missing(tmp_path: Path) -> None:
    done = python(
        "import xpm.compat\nxpm.compat.install()\nfrom experimaestro.huggingface import ExperimaestroHFHub\n",
        cwd=tmp_path,
        env={"PYTHONNOUSERSITE": "1"},
    )
    import importlib.util

    if importlib.util.find_spec("huggingface_hub") is None:
        assert done.returncode == 1 and "needs the huggingface_hub package" in done.stderr
    else:
        assert done.returncode == 0
