"""``ExperimaestroHFHub``: configurations (with their data) pushed to and pulled from the Hugging Face Hub.

Libraries built on experimaestro (PyTorch helpers, information-retrieval models)
subclass it. It needs the ``huggingface_hub`` package, which xpm does not
install: importing this module without it raises ``ImportError`` saying so.

What goes to the Hub is what :func:`xpm.serialize.serialize` writes (``xpm.json``
and the data files); a folder saved by experimaestro itself cannot be read.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

try:
    from huggingface_hub import ModelHubMixin, hf_hub_download, snapshot_download  # type: ignore[import-not-found]
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "ExperimaestroHFHub needs the huggingface_hub package: pip install huggingface_hub"
    ) from exc

from xpm.layout import SAVED_FILE

__all__ = ["ExperimaestroHFHub"]


class ExperimaestroHFHub(ModelHubMixin):  # type: ignore[misc]
    """A configuration as a Hub model: ``save_pretrained``/``push_to_hub``, ``from_pretrained``.

    Subclasses may change ``definition_filename`` (the name of the definition file).
    """

    #: the file that holds the configuration (and its init tasks)
    definition_filename: str = SAVED_FILE

    def __init__(self, config: Any):
        # The parameter must be named `config`: the Hub mixin looks for that name.
        self.config = config

    def _save_pretrained(self, save_directory: str | Path) -> None:
        from xpm.serialize import serialize

        serialize(self.config, Path(save_directory), definition_filename=self.definition_filename)

    @classmethod
    def _from_pretrained(  # type: ignore[override]
        cls,
        model_id: str,
        revision: str | None = None,
        cache_dir: str | Path | None = None,
        force_download: bool = False,
        proxies: dict[str, str] | None = None,
        resume_download: bool | None = None,
        local_files_only: bool = False,
        token: str | bool | None = None,
        *,
        as_instance: bool = False,
        **model_kwargs: Any,
    ) -> Any:
        from xpm.serialize import deserialize

        if os.path.isdir(model_id):
            source: Any = Path(model_id)
        else:
            options = {
                "repo_id": model_id,
                "revision": revision,
                "cache_dir": cache_dir,
                "proxies": proxies,
                "token": token,
                "local_files_only": local_files_only,
            }

            def source(name: str) -> Path:
                # A file, or else a folder (a DataPath that is a folder): its files come in one snapshot.
                try:
                    return Path(hf_hub_download(filename=str(name), force_download=force_download, **options))
                except Exception as first:
                    folder = Path(snapshot_download(allow_patterns=f"{name}/**", **options)) / name
                    if folder.is_dir():
                        return folder
                    raise first

        result = deserialize(source, as_instance, partial_loading=True, definition_filename=cls.definition_filename)
        return result if as_instance else result[0]
