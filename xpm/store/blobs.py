"""Content-addressed blobs: files stored once under the SHA-256 of their content.

A run records its source files and the uncommitted patch of its git repositories
as blobs (``blobs/<2 hex>/<62 hex>``), so that a hundred runs of an unchanged
experiment store its files once. A blob is immutable: writing one that exists
writes nothing, so two runs storing the same content at once cannot conflict.
Removing blobs that no run names any more is done under the blobs lock, which a
run also holds from storing its blobs to writing the spec that names them.
"""

from __future__ import annotations

import hashlib
import re

from xpm import layout
from xpm.errors import XpmError
from xpm.locks import Lock
from xpm.workspace import Workspace

__all__ = ["BlobStore", "MissingBlob", "digest_of"]

_DIGEST = re.compile(r"^[0-9a-f]{64}$")
#: How long a run (or a removal of blobs) waits for the blobs lock
LOCK_TIMEOUT = 60.0


class MissingBlob(XpmError):
    """A blob a record names is not in the workspace (or the name is not a digest)."""

    def __init__(self, digest: str, location: str):
        self.digest = digest
        super().__init__(f"no blob {digest[:12]} in the workspace {location}")


def digest_of(data: bytes) -> str:
    """The name of a content: its SHA-256, in hex."""
    return hashlib.sha256(data).hexdigest()


class BlobStore:
    """The blobs of a workspace."""

    def __init__(self, workspace: Workspace):
        self.workspace = workspace

    def put(self, data: bytes) -> str:
        """Stores ``data`` (unless a blob of that content exists); returns its digest."""
        digest = digest_of(data)
        rel = layout.blob(digest)
        ws = self.workspace
        if not ws.exists(rel):
            ws.makedirs(ws.parent(rel))
            ws.write_atomic(rel, data)
        return digest

    def get(self, digest: str) -> bytes:
        """The content of a blob.

        Raises:
            MissingBlob: there is no such blob.
        """
        data = self.workspace.read_optional(layout.blob(digest)) if _DIGEST.match(digest) else None
        if data is None:
            raise MissingBlob(digest, self.workspace.location)
        return data

    def lock(self) -> Lock:
        """The blobs lock (a context manager): see the module's docstring."""
        return self.workspace.lock(layout.blobs_lock(), timeout=LOCK_TIMEOUT)

    def digests(self) -> list[str]:
        """Every blob of the workspace (files whose name is not a digest's are left out)."""
        ws = self.workspace
        found = []
        for head in ws.listdir(layout.BLOBS):
            for tail in ws.listdir(f"{layout.BLOBS}/{head}"):
                if _DIGEST.match(head + tail):
                    found.append(head + tail)
        return found

    def remove(self, digest: str) -> None:
        """Deletes a blob (call it under :meth:`lock`, for a blob that no run names)."""
        if not _DIGEST.match(digest):
            raise MissingBlob(digest, self.workspace.location)
        self.workspace.remove(layout.blob(digest), missing_ok=True)
