"""The state of the git repository holding a folder: commit, branch, dirtiness, uncommitted patch.

Asks the ``git`` program (three commands at most: ``rev-parse``, ``status``, and
``diff`` only when the tree is dirty). A folder outside git, a repository without
a commit, or a machine without git are errors that carry data: a run records
what it can and says why the rest is missing; it never fails for them.
"""

from __future__ import annotations

import os
import subprocess
from typing import NamedTuple

from xpm.errors import XpmError

__all__ = ["GitState", "GitProblem", "GitMissing", "NotInGit", "git_state"]

#: Seconds a git command may take (a huge repository on a slow disk)
TIMEOUT = 30.0


class GitProblem(XpmError):
    """Why the git state of a folder is not known."""

    def __init__(self, folder: str, reason: str):
        self.folder = folder
        self.reason = reason
        super().__init__(f"{folder}: {reason}")


class GitMissing(GitProblem):
    """The ``git`` program is not installed (or cannot run)."""


class NotInGit(GitProblem):
    """The folder is in no git repository, or its repository has no commit yet."""


class GitState(NamedTuple):
    """A repository as a run found it."""

    #: the top folder of the repository
    top: str
    #: the full hash of HEAD
    commit: str
    #: the checked-out branch, or None on a detached HEAD
    branch: str | None
    #: whether tracked files have uncommitted changes
    dirty: bool
    #: ``git diff HEAD --binary`` (empty when clean): what to apply on ``commit`` to get the tree
    patch: bytes
    #: how many untracked files the tree has (``git status``; ignored files do not count)
    untracked: int


def _git(folder: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", "-C", folder, *args], capture_output=True, timeout=TIMEOUT, check=False,
            # A repository's own configuration must not make git wait for a password or a pager.
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat", "LC_ALL": "C"},
        )
    except FileNotFoundError:
        raise GitMissing(folder, "git is not installed: the code version is not recorded") from None
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GitProblem(folder, f"git failed ({exc})") from None


def git_state(folder: str | os.PathLike[str], *, with_patch: bool = True,
              known: dict[str, GitState] | None = None) -> GitState:
    """The state of the repository holding ``folder`` (without ``with_patch``, its ``patch`` is left empty:
    the uncommitted changes are only said to exist).

    ``known`` holds the states already asked during one operation (a run's start asks
    for ``environment.json``, then for ``spec.json``), by real path of the folder: a
    folder met again is not asked again. What it keeps has its patch, for any later caller.

    Raises:
        GitMissing: git is not installed.
        NotInGit: ``folder`` is in no repository, or the repository has no commit.
        GitProblem: a git command failed otherwise.
    """
    where = os.fspath(folder)
    if known is not None:
        key = os.path.realpath(where)
        state = known.get(key)
        if state is None:
            state = known[key] = git_state(where)
        return state if with_patch else state._replace(patch=b"")
    # One call for the top folder, the commit and the branch ("HEAD" when detached).
    found = _git(where, "rev-parse", "--show-toplevel", "HEAD", "--abbrev-ref", "HEAD")
    if found.returncode != 0:
        message = found.stderr.decode(errors="replace").strip()
        if "not a git repository" in message:
            raise NotInGit(where, "not in a git repository: no commit is recorded for it")
        if "unknown revision" in message or "ambiguous argument 'HEAD'" in message:
            raise NotInGit(where, "its git repository has no commit yet: no commit is recorded for it")
        lines = message.splitlines()
        raise GitProblem(where, lines[0] if lines else f"git rev-parse exited with {found.returncode}")
    lines = found.stdout.decode(errors="replace").splitlines()
    if len(lines) < 3:
        raise GitProblem(where, f"unexpected output of git rev-parse: {lines!r}")
    top, commit, branch = lines[0], lines[1], lines[2]
    status = _git(top, "status", "--porcelain", "-z")
    if status.returncode != 0:
        raise GitProblem(where, status.stderr.decode(errors="replace").strip() or "git status failed")
    entries = [entry for entry in status.stdout.split(b"\0") if entry]
    untracked = sum(1 for entry in entries if entry.startswith(b"??"))
    # Renames take two NUL-separated names: counting entries overcounts, but any entry
    # that is not "??" means a tracked change, which is all "dirty" says.
    dirty = len(entries) > untracked
    patch = b""
    if dirty and with_patch:
        diff = _git(top, "diff", "HEAD", "--binary", "--no-color", "--no-ext-diff")
        if diff.returncode != 0:
            raise GitProblem(where, diff.stderr.decode(errors="replace").strip() or "git diff failed")
        patch = diff.stdout
    return GitState(top, commit, None if branch == "HEAD" else branch, dirty, patch, untracked)
