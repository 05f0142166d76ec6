"""Where a workspace is: a local folder, or a folder on an SSH host (``ssh://user@host:port/path``).

Settings, ``--workdir`` and experiments name workspaces with the text
:func:`parse_location` reads; :class:`WorkspaceLocation` is the result, compared with
:meth:`WorkspaceLocation.same_place`. Both are re-exported by :mod:`xpm.settings`.
"""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path
from urllib.parse import urlsplit

import msgspec

__all__ = ["WorkspaceLocation", "is_url", "parse_location"]

# A scheme followed by "//" marks a URL; anything else is a local path (this keeps
# Windows drive letters such as C:\ on the local side).
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


def is_url(text: str) -> bool:
    """Whether ``text`` is a URL (``ssh://...``) rather than a local path."""
    return _URL.match(text) is not None


class WorkspaceLocation(msgspec.Struct, frozen=True):
    """Where a workspace is: a local folder, or a folder on an SSH host.

    A frozen value (equal and hashable by its fields). A msgspec Struct rather
    than a dataclass: making a dataclass costs every command's start-up 0.5 ms.

    Attributes:
        kind: "local" or "ssh".
        path: the absolute, normalised path (on the SSH host for "ssh").
        host: the SSH host (lower case), None when local.
        user: the SSH user, None when local or not given (ssh then decides).
        port: the SSH port, None when local or not given (then ``~/.ssh/config``'s
            ``Port`` for that host, else 22).
    """

    kind: str
    path: str
    host: str | None = None
    user: str | None = None
    port: int | None = None

    @property
    def is_local(self) -> bool:
        return self.kind == "local"

    def __str__(self) -> str:
        if self.kind == "local":
            return self.path
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port is not None else ""
        return f"ssh://{user}{host}{port}{self.path}"

    def same_place(self, other: WorkspaceLocation) -> bool:
        """Whether two locations designate the same folder.

        Local paths are also compared once symbolic links are resolved, so that
        ``--workdir`` through a link still finds the configured workspace.
        """
        if self == other:
            return True
        if self.kind == other.kind == "local":
            return os.path.realpath(self.path) == os.path.realpath(other.path)
        return False


def parse_location(text: str, base: Path | None = None) -> WorkspaceLocation:
    """Parses a workspace path: a local path or ``ssh://user@host:port/absolute/path``.

    Args:
        text: the path as written. ``~`` is expanded in local paths.
        base: the folder relative local paths are relative to (default: the
            current directory).

    Raises:
        ValueError: the text is neither a local path nor an SSH URL, with a message
            saying what is wrong.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{text!r} is empty; expected a local path or ssh://user@host:port/path")
    if not is_url(text):
        path = Path(text).expanduser()
        if not path.is_absolute():
            path = (base if base is not None else Path.cwd()) / path
        # abspath normalises "." and ".." without resolving symbolic links: the path
        # stays the one the user wrote, which is what they will recognise in messages.
        return WorkspaceLocation(kind="local", path=os.path.abspath(path))

    expected = "neither a local path nor ssh://user@host:port/path"
    parts = urlsplit(text)
    if parts.scheme.lower() != "ssh":
        raise ValueError(f"{text!r} is {expected}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{text!r} has an invalid port; expected ssh://user@host:port/path") from None
    if not parts.hostname:
        raise ValueError(f"{text!r} has no host; expected ssh://user@host:port/path")
    if parts.password is not None:
        # A password in a settings file would be stored in clear; ssh keys or the
        # ssh agent are the way to authenticate.
        raise ValueError(f"{text!r} contains a password; use an SSH key or agent instead")
    if parts.query or parts.fragment:
        raise ValueError(f"{text!r} has a query or fragment; expected ssh://user@host:port/path")
    if not parts.path:
        raise ValueError(f"{text!r} has no path; expected ssh://user@host:port/absolute/path")
    return WorkspaceLocation(
        kind="ssh",
        # normpath keeps a leading "//" (POSIX leaves its meaning open); on the hosts
        # we reach it means "/", and one spelling per place keeps comparisons simple.
        path=posixpath.normpath("/" + parts.path.lstrip("/")),
        host=parts.hostname,
        user=parts.username or None,
        # No port given: ssh's configuration decides (~/.ssh/config), as for the ssh command.
        port=port,
    )
