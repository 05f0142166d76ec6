"""Counter tokens: limits on how many jobs run at once, across experiments and processes.

A token is a folder. Each job that holds part of it has a record in
``holders/``; an acquisition happens under the token's lock and succeeds only if
the counts of the live holders plus the request fit in the token's count. A
holder records the job process's pid once it runs, so a token stays held by a
job that outlives its experiment process, and is freed when that process dies.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from xpm import codec, layout
from xpm.errors import XpmError
from xpm.process import alive_here, hostname
from xpm.schema import RECORD_VERSION, TokenHolder
from xpm.workspace import LocalWorkspace

logger = logging.getLogger("xpm.tokens")

#: How long an acquisition waits for the token's lock
LOCK_TIMEOUT = 30.0


@dataclass(frozen=True)
class TokenDependency:
    """A job's need for ``count`` of a token (see :meth:`CounterToken.dependency`)."""

    token: CounterToken
    count: int


class CounterToken:
    """A counting semaphore shared by every process that uses the same folder.

    Args:
        name: the token's name (for messages).
        path: the token's folder (created if needed); processes that give the same
            folder share the token.
        count: how many units the token has; a job takes ``n`` of them. Each
            process checks acquisitions against the count it was given: processes
            that share a token give the same count.
        force: accepted for code written for experimaestro, where it decides whether
            the count replaces one stored in the folder; xpm stores no count.

    Example::

        gpus = CounterToken("gpus", "/tmp/tokens/gpus", 2)
        task.add_dependencies(gpus.dependency(1)).submit()   # or gpus(1, task)
    """

    def __init__(self, name: str, path: str | os.PathLike[str], count: int, force: bool = True):
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise XpmError(f"token {name}: the count must be an integer of at least 1, got {count!r}")
        self.name = name
        self.path = Path(path).expanduser().absolute()
        self.count = count
        self.path.mkdir(parents=True, exist_ok=True)
        self._folder = LocalWorkspace(str(self.path))

    @property
    def total(self) -> int:
        """How many units the token has (its ``count``)."""
        return self.count

    @property
    def available(self) -> int:
        """How many units no live job holds now (a snapshot: other processes may take some at once)."""
        # Under the lock: reading the holders removes those of dead processes, which
        # must not race with a new holder of the same job being written.
        with self._folder.lock(layout.TOKEN_LOCK, timeout=LOCK_TIMEOUT):
            return self.count - sum(holder.count for holder in self.holders())

    def dependency(self, count: int = 1) -> TokenDependency:
        """A dependency that holds ``count`` units while the job runs."""
        if not 1 <= count <= self.count:
            raise XpmError(f"token {self.name}: cannot take {count} of {self.count}")
        return TokenDependency(self, count)

    def __call__(self, count: int, task: object) -> object:
        """Adds a dependency on ``count`` units to a task; returns the task."""
        return task.add_dependencies(self.dependency(count))  # type: ignore[attr-defined]

    def holders(self) -> list[TokenHolder]:
        """The live holders; records of dead processes of this host are removed (with a warning)."""
        folder = self._folder
        live = []
        for entry in folder.listdir(layout.TOKEN_HOLDERS):
            rel = f"{layout.TOKEN_HOLDERS}/{entry}"
            data = folder.read_optional(rel)
            if data is None:
                continue
            try:
                holder = codec.decode_record(data, TokenHolder, folder.describe(rel))
            except XpmError as exc:
                warnings.warn(f"token {self.name}: ignoring {exc}")
                continue
            if alive_here({"type": "local", "host": holder.host, "pid": holder.pid}) is False:
                # Usual when a job just ended and its experiment has not released
                # the token yet; also frees the token of a job whose experiment died.
                logger.info(
                    "token %s: releasing %d held by %s/%s, whose process %d is gone",
                    self.name, holder.count, holder.task_id, holder.identifier, holder.pid,
                )
                folder.remove(rel, missing_ok=True)
                continue
            live.append(holder)
        return live

    def try_acquire(self, task_id: str, identifier: str, count: int) -> bool:
        """Takes ``count`` units for a job if they are free; never waits for them."""
        with self._folder.lock(layout.TOKEN_LOCK, timeout=LOCK_TIMEOUT):
            used = sum(h.count for h in self.holders() if (h.task_id, h.identifier) != (task_id, identifier))
            if used + count > self.count:
                return False
            self._write(task_id, identifier, count, os.getpid())
            return True

    def set_holder(self, task_id: str, identifier: str, count: int, pid: int) -> None:
        """Records the job process as the holder (the token then lives as long as the job)."""
        with self._folder.lock(layout.TOKEN_LOCK, timeout=LOCK_TIMEOUT):
            self._write(task_id, identifier, count, pid)

    def release(self, task_id: str, identifier: str) -> None:
        with self._folder.lock(layout.TOKEN_LOCK, timeout=LOCK_TIMEOUT):
            self._folder.remove(layout.token_holder(task_id, identifier), missing_ok=True)

    def _write(self, task_id: str, identifier: str, count: int, pid: int) -> None:
        holder = TokenHolder(
            version=RECORD_VERSION,
            task_id=task_id,
            identifier=identifier,
            count=count,
            host=hostname(),
            pid=pid,
            acquired_at=time.time(),
        )
        self._folder.write_atomic(layout.token_holder(task_id, identifier), codec.encode(holder))

    def __repr__(self) -> str:
        return f"CounterToken({self.name!r}, {str(self.path)!r}, {self.count})"
