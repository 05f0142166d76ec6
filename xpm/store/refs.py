"""Refs: small named pointers (for instance the current run of an experiment).

A ref changes only by compare-and-swap under its lock, so two processes updating
it at once can never both win: the loser gets ``False`` and re-reads.
"""

from __future__ import annotations

import os
import time
from typing import Any

from xpm import codec, layout
from xpm.process import hostname
from xpm.schema import RECORD_VERSION, RefRecord
from xpm.workspace import Workspace

#: How long a compare-and-swap waits for the ref's lock
LOCK_TIMEOUT = 30.0


class RefStore:
    """The refs of a workspace, with git's vocabulary: ``set_if_equals``, ``add_if_new``, ``set``."""

    def __init__(self, workspace: Workspace):
        self.workspace = workspace

    def get(self, name: str) -> RefRecord | None:
        """The ref ``name``, or None when it does not exist."""
        rel = layout.ref(name)
        data = self.workspace.read_optional(rel)
        if data is None:
            return None
        return codec.decode_record(data, RefRecord, self.workspace.describe(rel))

    def value(self, name: str) -> str | None:
        ref = self.get(name)
        return None if ref is None else ref.value

    def _lock(self, name: str) -> Any:
        return self.workspace.lock(layout.lock(f"{layout.REFS}/{name}"), timeout=LOCK_TIMEOUT)

    def _write(self, name: str, value: str) -> None:
        record = RefRecord(
            version=RECORD_VERSION, value=value, updated_at=time.time(), host=hostname(), pid=os.getpid()
        )
        self.workspace.write_atomic(layout.ref(name), codec.encode(record))

    def set_if_equals(self, name: str, old: str | None, new: str) -> bool:
        """Sets the ref to ``new`` if its value is ``old`` (None: if it does not exist).

        Returns:
            Whether the ref was changed; False means another writer changed it first.
        """
        with self._lock(name):
            # Read again while holding the lock: the caller's value may be stale.
            if self.value(name) != old:
                return False
            self._write(name, new)
            return True

    def add_if_new(self, name: str, value: str) -> bool:
        """Creates the ref with ``value`` if it does not exist; whether it did."""
        return self.set_if_equals(name, None, value)

    def set(self, name: str, value: str) -> None:
        """Sets the ref to ``value`` whatever it was (under its lock, as every change)."""
        with self._lock(name):
            self._write(name, value)

    def remove_if_equals(self, name: str, old: str) -> bool:
        """Removes the ref if its value is ``old``."""
        with self._lock(name):
            if self.value(name) != old:
                return False
            self.workspace.remove(layout.ref(name), missing_ok=True)
            return True

    def names(self, prefix: str = "") -> list[str]:
        """The names of the refs under ``prefix`` (for instance ``experiments``)."""
        names: list[str] = []

        def walk(rel: str, name: str) -> None:
            for entry in self.workspace.listdir(rel):
                child = f"{rel}/{entry}"
                if entry.endswith(".json") and not self.workspace.isdir(child):
                    names.append(f"{name}/{entry[:-5]}" if name else entry[:-5])
                elif self.workspace.isdir(child):
                    walk(child, f"{name}/{entry}" if name else entry)

        base = f"{layout.REFS}/{prefix}" if prefix else layout.REFS
        walk(base, prefix)
        return sorted(names)
