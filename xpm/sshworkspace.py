"""SSH workspaces: files over SFTP (fsspec ``ssh``), and a shell kept open on the host.

An :class:`SSHWorkspace` is an fsspec workspace whose host also runs the small
commands xpm needs there (:class:`HostSession`): the host's own ``flock`` on a
job's lock file, so that commands from elsewhere and the jobs on the host exclude
each other, and the checks and signals that stop a job's process on the host.
"""

from __future__ import annotations

from typing import Any

from xpm.locks import HOST_SESSION_FUNCTIONS, HostFileLock, Lock
from xpm.workspace import FsspecWorkspace, HostCommandError, Workspace, WorkspaceNotFound

__all__ = ["SSHWorkspace", "HostSession", "HostProcess", "open_ssh"]

def open_ssh(url: str, storage_options: dict[str, Any]) -> Workspace:
    """Opens the workspace at ``ssh://user@host:port/path`` (see :meth:`Workspace.open`)."""
    from urllib.parse import urlsplit

    import fsspec

    parts = urlsplit(url)
    if not parts.hostname or not parts.path.startswith("/"):
        raise WorkspaceNotFound(url, "expected ssh://[user@]host[:port]/absolute/path")
    options = dict(storage_options)
    # As the ssh command: the host key is checked (~/.ssh/known_hosts, or the config's
    # UserKnownHostsFile), and ~/.ssh/config gives what the URL does not (HostName, Port,
    # User, IdentityFile, ProxyJump). sshfs itself would turn the check off.
    options.setdefault("known_hosts", ())
    if parts.username:
        options["username"] = parts.username
    if parts.port is not None:
        options["port"] = parts.port
    import asyncssh

    try:
        fs = fsspec.filesystem("ssh", host=parts.hostname, **options)
    except asyncssh.HostKeyNotVerifiable as exc:
        where = f"-p {parts.port} {parts.hostname}" if parts.port else parts.hostname
        raise WorkspaceNotFound(
            url,
            f"the SSH host key of {parts.hostname} is not known or does not match ({exc.reason}): check it, then "
            f"add it with `ssh-keyscan {where} >> ~/.ssh/known_hosts` (or connect once with ssh); "
            "`known_hosts: false` in the workspace's settings turns the check off",
        ) from None
    except (OSError, asyncssh.Error) as exc:
        raise WorkspaceNotFound(url, f"cannot connect ({exc})") from None
    return SSHWorkspace(url, fs, parts.path, parts.hostname)


class HostProcess:
    """A shell command running on the host of an SSH workspace (see :meth:`SSHWorkspace.start`)."""

    def __init__(self, workspace: SSHWorkspace, process: Any):
        self.workspace = workspace
        self.process = process

    def readline(self) -> str:
        """The next line of its output ("" at its end)."""
        return str(self.workspace._sync(self.process.stdout.readline))

    def read(self) -> str:
        """The rest of its output."""
        return str(self.workspace._sync(self.process.stdout.read))

    def errors(self) -> str:
        """Its error output (after its end)."""
        return str(self.workspace._sync(self.process.stderr.read))

    def close(self) -> int | None:
        """Closes its input (the command sees its end) and waits for it to end: its exit status."""

        async def close() -> Any:
            self.process.stdin.write_eof()
            return await self.process.wait(check=False)

        try:
            return self.workspace._sync(close).exit_status  # type: ignore[no-any-return]
        except Exception:  # noqa: BLE001 - the connection is gone: so is the command (sshd ends it)
            return None


class HostSession:
    """One shell kept on the host of an SSH workspace for its connection's life: a command sent to it
    costs a round trip, instead of a new SSH session and the start of the user's login shell (which
    may take a tenth of a second, with a heavy ``.bashrc``). One caller at a time: others, and a lock
    that must wait, use commands of their own."""

    #: The descriptors of the shell that hold locks (a POSIX shell names 3 to 9)
    FDS = range(3, 10)

    def __init__(self, workspace: SSHWorkspace):
        import threading
        import uuid

        self.workspace = workspace
        self.mutex = threading.Lock()
        self.mark = f"__xpm_{uuid.uuid4().hex}__"
        self.free = list(reversed(self.FDS))
        self.broken = False
        self.process = workspace.start("exec sh -s")
        status, found = self.request(HOST_SESSION_FUNCTIONS + "command -v timeout")
        self.timeout_command = status == 0 and bool(found.strip())

    def request(self, code: str, timeout: float | None = None) -> tuple[int, str]:
        """Runs shell ``code`` in the session (the caller holds :attr:`mutex`): its status and output."""
        mark = self.mark

        async def request() -> tuple[int, str]:
            self.process.process.stdin.write(f"{code}\nprintf '\\n%s %d\\n' {mark} \"$?\"\n")
            lines: list[str] = []
            while True:
                line = await self.process.process.stdout.readline()
                if not line:
                    raise HostCommandError(f"{self.workspace.host}: the shell on the host ended")
                if line.startswith(mark):
                    text = "".join(lines)
                    # The mark comes after a newline of its own.
                    return int(line.split()[1]), text[:-1] if text.endswith("\n") else text
                lines.append(line)

        if self.broken:
            raise HostCommandError(f"{self.workspace.host}: the shell on the host ended")
        try:
            return self.workspace._sync(request, timeout=timeout)  # type: ignore[no-any-return]
        except BaseException:
            # Out of step with its output (or gone): never used again. Its input ends, so the
            # shell ends after its current command, and its locks with it.
            self.broken = True
            stdin = self.process.process.stdin
            if not stdin.is_closing():
                self.workspace.fs.loop.call_soon_threadsafe(stdin.write_eof)
            raise

    def try_lock(self, path: str, owner: str) -> tuple[int, str, str] | None:
        """Tries a lock once: (descriptor, "locked"/"busy"/"folder", owner record), or None when
        the session is busy, out of descriptors, or broken."""
        import shlex

        if not self.mutex.acquire(blocking=False):
            return None
        try:
            if not self.free:
                return None
            fd = self.free.pop()
            status, out = self.request(f"xpm_try_lock {fd} {shlex.quote(path)} {shlex.quote(owner)}", 60)
            answer, _, rest = out.partition("\n")
            if status != 0 or answer != "locked":
                self.free.append(fd)
            return (fd, answer, rest) if status == 0 else None
        except Exception:  # noqa: BLE001 - a broken session: the caller locks without it
            return None
        finally:
            self.mutex.release()

    def unlock(self, fd: int) -> None:
        with self.mutex:
            try:
                self.request(f"exec {fd}>&-", 60)
            except Exception:  # noqa: BLE001 - the session is gone, and its locks with it
                return
            self.free.append(fd)

    def run(self, command: str, timeout: float) -> tuple[int, str] | None:
        """Runs a command (a child of the session's shell), or None when the session is busy."""
        if not self.mutex.acquire(blocking=False):
            return None
        try:
            limit = f"timeout {int(timeout)} " if self.timeout_command else ""
            return self.request(f"{limit}{command} </dev/null 2>/dev/null", timeout + 10)
        except Exception:  # noqa: BLE001 - a broken session: the caller runs the command by itself
            return None
        finally:
            self.mutex.release()


class SSHWorkspace(FsspecWorkspace):
    """A workspace on a host reached over SSH: files over SFTP, and commands on the host.

    Commands on the host are what SFTP cannot do: taking the same OS locks as the
    processes of that host (:class:`xpm.locks.HostFileLock`), and telling whether a
    job's process runs there, or stopping it.
    """

    def __init__(self, location: str, fs: Any, root: str, host: str):
        super().__init__(location, fs, root)
        self.host = host
        self._hostname: str | None = None
        self._session: HostSession | None = None
        self._session_tried = False

    def session(self) -> HostSession | None:
        """The shell session on the host (made on first use); None when the host runs no commands."""
        if not self._session_tried:
            self._session_tried = True
            try:
                self._session = HostSession(self)
            except Exception:  # noqa: BLE001 - no session: each command opens its own
                self._session = None
        return self._session

    def lock(self, rel: str, timeout: float | None = None) -> Lock:
        return HostFileLock(self, rel, timeout)

    def host_path(self, rel: str) -> str:
        """The path of ``rel`` on the host."""
        return self._p(rel)

    def _sync(self, fn: Any, *args: Any, timeout: float | None = None) -> Any:
        from fsspec.asyn import sync

        return sync(self.fs.loop, fn, *args, timeout=timeout)

    @staticmethod
    def _command(script: str, args: tuple[str, ...]) -> str:
        import shlex

        # Through sh whatever the user's login shell (csh, fish...): the script is POSIX sh.
        return " ".join(shlex.quote(word) for word in ("sh", "-c", script, "sh", *args))

    def run(self, script: str, *args: str, timeout: float = 60.0) -> tuple[int, str, str]:
        """Runs a POSIX shell ``script`` (with ``args`` as $1, $2...) on the host:
        its exit status, output and error output (empty when it ran in the :meth:`session`).

        Raises:
            HostCommandError: the server runs no commands (an SFTP-only account), or did not answer.
        """
        import asyncssh

        session = self.session()
        done_there = session.run(self._command(script, args), timeout) if session is not None else None
        if done_there is not None:
            return done_there[0], done_there[1], ""

        async def run() -> Any:
            return await self.fs.client.run(self._command(script, args), check=False, timeout=timeout)

        try:
            done = self._sync(run)
        except (OSError, asyncssh.Error) as exc:
            raise HostCommandError(f"{self.host}: cannot run a command over SSH ({exc})") from None
        status = done.exit_status if done.exit_status is not None else 255
        return status, str(done.stdout or ""), str(done.stderr or "")

    def start(self, script: str, *args: str) -> HostProcess:
        """Starts a POSIX shell ``script`` on the host; it runs until :meth:`HostProcess.close`
        (or until the connection ends)."""
        import asyncssh

        async def start() -> Any:
            return await self.fs.client.create_process(self._command(script, args))

        try:
            return HostProcess(self, self._sync(start))
        except (OSError, asyncssh.Error) as exc:
            raise HostCommandError(f"{self.host}: cannot run a command over SSH ({exc})") from None

    def hostname(self) -> str:
        """The host's own name (what its processes record as their ``host``)."""
        if self._hostname is None:
            status, out, err = self.run("uname -n")
            if status != 0 or not out.strip():
                raise HostCommandError(f"{self.host}: cannot read the host name ({err.strip() or status})")
            self._hostname = out.strip()
        return self._hostname

