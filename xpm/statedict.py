"""``state_dict`` / ``from_state_dict``: a configuration as a JSON-ready dict, and back.

The dict is the document :func:`xpm.serialize.save` writes (``spec/params.md``),
decoded: it can go inside a larger JSON file (a checkpoint's metadata, say) and
come back as the same configuration, with the same identifier.
"""

from __future__ import annotations

from typing import Any

import msgspec

from xpm.config.datapath import SerializationContext
from xpm.serialize import FolderOrLoader, ObjectStore, dumps, instances, loads

__all__ = ["state_dict", "from_state_dict"]


def state_dict(context: SerializationContext | None, obj: Any) -> dict[str, Any]:
    """The JSON-ready dict of ``obj`` (a configuration, or lists/dicts/tuples of them).

    With a ``context`` whose ``save_directory`` is set, the content of ``DataPath``
    values is copied there, as :func:`xpm.serialize.save` does.
    """
    document = msgspec.json.decode(dumps(obj, context=context))
    if not isinstance(document, dict):  # pragma: no cover - dumps always writes an object
        raise TypeError("state_dict(): the document is not an object")
    return document


def from_state_dict(
    state: dict[str, Any],
    path: FolderOrLoader | None = None,
    *,
    as_instance: bool = False,
    partial_loading: bool | None = None,
) -> Any:
    """The configuration (or, with ``as_instance``, the object) a :func:`state_dict` describes.

    Args:
        state: what :func:`state_dict` returned (possibly read back from JSON).
        path: the folder the copied data is in (or a function giving the local
            path of a name relative to it).
        as_instance: build the objects (``instance()``).
        partial_loading: leave out the producing tasks; by default, only with ``as_instance``.
    """
    partial = as_instance if partial_loading is None else partial_loading
    value = loads(msgspec.json.encode(state), source="state_dict", folder=path, partial_loading=partial)
    return instances(value, ObjectStore()) if as_instance else value
