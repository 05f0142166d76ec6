"""Persisted records: msgspec Structs, each top-level record with a ``version``.

Schema evolution (see ``spec/``): a new field always has a default and a type
never changes; readers accept unknown fields (an older xpm reads what a newer one
wrote when the version did not change), and refuse a newer ``version``.
"""

from __future__ import annotations

from typing import Any

import msgspec

#: Version of the params.json / xpm.json format written by this xpm
PARAMS_VERSION = 1


class ObjectRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One configuration of a saved tree.

    ``fields`` hold encoded values (``spec/params.md``): JSON scalars and lists as
    themselves, other kinds as objects with a ``"$"`` kind key.
    """

    id: int
    #: where the class is imported from: ``module:qualname``
    type: str
    #: the xpm type id (lower-cased ``module.qualname`` or ``__xpmid__``)
    typeid: str
    #: the identifier of the configuration when it was written
    identifier: str
    fields: dict[str, Any] = {}
    #: id of the task whose output this configuration is
    task: int | None = None
    init_tasks: list[int] = []
    #: tags set on this configuration itself (not gathered from sub-configurations)
    tags: dict[str, Any] = {}
    stop_tags: bool = False


class ParamsFile(msgspec.Struct, kw_only=True):
    """A saved tree of configurations: ``params.json`` in a job folder, ``xpm.json`` from ``save``."""

    version: int
    #: the version of xpm that wrote the file
    xpm: str
    #: every configuration of the tree, each listed before the ones that hold it
    #: (except along a cycle)
    objects: list[ObjectRecord]
    #: the saved value: a configuration reference, or a list/dict of values
    root: Any


class VersionView(msgspec.Struct):
    """Reads only the version of a record, to refuse newer formats before decoding them."""

    version: int
