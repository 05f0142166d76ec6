"""The agent skill shipped with xpm, and where it is installed.

The skill is a folder (``SKILL.md``, its front matter giving ``name`` and
``description``) that coding assistants read to learn how xpm is used. It ships in
this package; installing it copies it into a tool's skills folder, e.g.
``~/.claude/skills/xpm/``. A tool is *detected* when its home folder exists
(``~/.claude``); an installed copy is *current* when its content hash is that of
the shipped skill. Installing again updates it; files of the folder that the skill
does not ship are left alone.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

from xpm.errors import XpmError

if TYPE_CHECKING:
    from importlib.abc import Traversable

__all__ = ["SKILL_NAME", "TARGETS", "TargetStatus", "UnknownTarget", "install", "skill_files", "status"]

#: The folder name of the skill (the ``name`` of its front matter)
SKILL_NAME = "xpm"

#: Targets: name -> (the tool's home folder under ``~``, what it is)
TARGETS: dict[str, tuple[str, str]] = {
    "agents": (".agents", "the cross-tool skills folder (default)"),
    "claude": (".claude", "Claude Code"),
    "cursor": (".cursor", "Cursor"),
}


class UnknownTarget(XpmError, ValueError):
    """A target name that is not one of :data:`TARGETS`."""

    exit_code = 2

    def __init__(self, target: str):
        self.target = target
        super().__init__(f"unknown skill target {target!r} (targets: {', '.join(TARGETS)})")


@dataclass(frozen=True)
class TargetStatus:
    """Where a target keeps the skill, and what is there now."""

    target: str
    description: str
    #: the skill's folder for this target (``~/.claude/skills/xpm``)
    folder: str
    #: whether the tool's home folder exists
    detected: bool
    installed: bool
    #: whether the installed files are those shipped with this version
    current: bool


def skill_files() -> dict[str, bytes]:
    """The files of the shipped skill, by path relative to the skill's folder (Python files excluded)."""
    found: dict[str, bytes] = {}

    def walk(folder: Traversable, prefix: str) -> None:
        for entry in folder.iterdir():
            if entry.is_dir():
                if entry.name != "__pycache__":
                    walk(entry, f"{prefix}{entry.name}/")
            elif not entry.name.endswith((".py", ".pyc")):
                found[prefix + entry.name] = entry.read_bytes()

    walk(resources.files(__name__), "")
    return dict(sorted(found.items()))


def _digest(files: dict[str, bytes]) -> str:
    """One hash over the names and contents of a set of files."""
    hasher = hashlib.sha256()
    for name, data in sorted(files.items()):
        hasher.update(f"{name}\0{len(data)}\0".encode())
        hasher.update(data)
    return hasher.hexdigest()


def _folders(target: str) -> tuple[str, str]:
    """The tool's home folder and the skill's folder for ``target`` (under the current home)."""
    if target not in TARGETS:
        raise UnknownTarget(target)
    home = os.path.join(os.path.expanduser("~"), TARGETS[target][0])
    return home, os.path.join(home, "skills", SKILL_NAME)


def status(target: str) -> TargetStatus:
    """What ``target`` holds now.

    Raises:
        UnknownTarget: ``target`` is not one of :data:`TARGETS`.
    """
    home, folder = _folders(target)
    shipped = skill_files()
    present: dict[str, bytes] = {}
    for name in shipped:
        try:
            with open(os.path.join(folder, name), "rb") as stream:
                present[name] = stream.read()
        except (FileNotFoundError, NotADirectoryError):
            pass
    installed = "SKILL.md" in present
    current = installed and present.keys() == shipped.keys() and _digest(present) == _digest(shipped)
    return TargetStatus(target, TARGETS[target][1], folder, os.path.isdir(home), installed, current)


def install(target: str) -> tuple[str, bool]:
    """Installs (or updates) the skill for ``target``; returns its folder and whether anything changed.

    Each file is written atomically, so a tool never reads half a file.

    Raises:
        UnknownTarget: ``target`` is not one of :data:`TARGETS`.
    """
    from xpm.fsutil import write_local_atomic

    before = status(target)
    if before.current:
        return before.folder, False
    for name, data in skill_files().items():
        path = os.path.join(before.folder, *name.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_local_atomic(path, data)
    return before.folder, True
