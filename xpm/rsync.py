"""rsync between two workspaces: local ones, or a local one and an SSH one (rsync over ssh).

``experiments copy`` (:mod:`xpm.copying`) sends the folders of many jobs in one rsync
(``--files-from``): one ssh connection for a thousand small jobs, rsync's own
pipelining for large files. This module says whether rsync can serve a pair of
workspaces (:func:`route`), opens the ssh connection its rsyncs share while the copy
is planned (:func:`share_connection`), and runs it (:func:`transfer`); it also holds
the shell commands that check and rename the staged jobs on an SSH host. Staging and
the checks themselves stay in :mod:`xpm.copyjobs`.

The ssh command reaches the host as the SSH workspace does (asyncssh): the same user,
port and client keys, the configuration and known hosts of ``$HOME/.ssh`` (the ssh
command reads those of the account's home otherwise), and the host key checked unless
the workspace's options turn the check off (``known_hosts: false`` in its settings).
A workspace option that the ssh command cannot reproduce (a password, keys given as
data) means no rsync. rsync never deletes: no ``--delete``, no ``--remove-source-files``.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from xpm.errors import XpmError

if TYPE_CHECKING:
    from xpm.sshworkspace import SSHWorkspace
    from xpm.workspace import Workspace

__all__ = ["Route", "RsyncError", "SharedConnection", "route", "share_connection", "transfer", "is_temporary",
           "ssh_command"]

#: Seconds allowed to the ssh command that checks for rsync on the host
CHECK_TIMEOUT = 30.0
#: The oldest rsync with ``--info=progress2``
MIN_VERSION = (3, 1)
#: Options of an SSH workspace the ssh command reproduces (any other one: no rsync)
_SSH_OPTIONS = {"host", "username", "port", "known_hosts", "client_keys", "connect_timeout"}
#: asyncssh's default client keys, in ``~/.ssh``
_DEFAULT_KEYS = ("id_ed25519_sk", "id_ecdsa_sk", "id_ed448", "id_ed25519", "id_ecdsa", "id_rsa", "id_dsa")
#: A progress2 line: the bytes so far and a percentage, then (once a file has been sent) ``xfr#N``
_PROGRESS = re.compile(rb"^\s*([\d,]+)\s+\d+%")
_SENT = re.compile(rb"xfr#(\d+)")


class RsyncError(XpmError):
    """rsync failed (its exit status and last error line say why)."""

    def __init__(self, message: str, status: int, unreachable: bool = False):
        self.status = status
        #: the ssh command could not reach the host: nothing was sent
        self.unreachable = unreachable
        super().__init__(message)


@dataclass(frozen=True)
class End:
    """One end of an rsync: a folder on this machine, or on a host through the ssh command."""

    root: str
    #: ``[user@]host`` for a remote end
    host: str | None = None
    ssh: tuple[str, ...] = ()

    def spec(self, rel: str) -> str:
        """rsync's name of the folder ``rel`` under the root (with a trailing slash: its contents)."""
        path = f"{self.root.rstrip('/')}/{rel}/" if rel else f"{self.root.rstrip('/')}/"
        return f"{self.host}:{path}" if self.host else path

    def path(self, rel: str) -> str:
        """The path of ``rel`` on its own machine."""
        return f"{self.root.rstrip('/')}/{rel}" if rel else self.root


@dataclass(frozen=True)
class Route:
    """How rsync copies from one workspace to the other (see :func:`route`), and the ssh connection its
    rsyncs share, if any (:func:`share_connection`)."""

    source: End
    destination: End
    shared: SharedConnection | None = field(default=None, compare=False)

    @property
    def ssh(self) -> tuple[str, ...]:
        return self.source.ssh or self.destination.ssh

    def remote_shell(self) -> tuple[str, ...]:
        """The ssh command of an rsync: through the shared connection once it is up (waiting for it a
        little while it is being made); () between local folders."""
        if self.ssh and self.shared is not None and self.shared.ready():
            return self.ssh + self.shared.options
        return self.ssh


class SharedConnection:
    """An ssh connection that the rsyncs of a copy share (OpenSSH's ``ControlMaster``): opened while the
    copy is planned, its handshake does not delay the first rsync. An rsync started before it is ready
    waits for it a little (a new handshake would cost more); if it fails, rsync connects by itself."""

    #: Seconds an rsync waits for the shared connection (about a handshake)
    WAIT = 1.0

    def __init__(self, ssh: tuple[str, ...], host: str):
        # To make from the thread that runs the copy: the kernel ends it when that thread ends (see
        # :func:`_die_with_parent`), which a worker thread would do too soon.
        # ssh makes the socket (private to this user) and removes it when it ends, even when told to by
        # the kernel: nothing is left behind.
        self.socket = os.path.join(tempfile.gettempdir(), f"xpm-ssh-{os.getpid()}-{secrets.token_hex(6)}")
        self.options: tuple[str, ...] = ("-o", f"ControlPath={self.socket}")
        self.process: subprocess.Popen[bytes] | None = None
        try:
            self.process = subprocess.Popen(
                [*ssh, *self.options, "-o", "ControlMaster=yes", "-o", "ControlPersist=no", "-N", host],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                preexec_fn=_die_with_parent())
        except OSError:
            pass

    def ready(self, wait: float = WAIT) -> bool:
        """Whether the connection is up (ssh makes its socket once authenticated), waiting up to ``wait``
        seconds while it is being made."""
        import time

        end = time.monotonic() + wait
        while self.process is not None and self.process.poll() is None:
            if os.path.exists(self.socket):
                return True
            if time.monotonic() >= end:
                return False
            time.sleep(0.005)
        return False

    def close(self) -> None:
        """Ends the connection (once the rsyncs using it are done)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def share_connection(source: Workspace, destination: Workspace) -> SharedConnection | None:
    """Opens the ssh connection that rsyncs between the two workspaces would share, to pass to
    :func:`route` (None: no single SSH end, or no rsync here). To call from the thread that runs the
    copy; :meth:`SharedConnection.close` ends it."""
    if shutil.which("rsync") is None or _die_with_parent() is None:
        return None  # (without the kernel's help, a killed copy would leave the connection open)
    ends = [_end(ws) for ws in (source, destination)]
    remote = [end for end in ends if isinstance(end, End) and end.host]
    if len(remote) != 1 or any(isinstance(end, str) for end in ends):
        return None
    return SharedConnection(remote[0].ssh, str(remote[0].host))


def route(source: Workspace, destination: Workspace, shared: SharedConnection | None = None) -> Route | str:
    """How rsync can copy from ``source`` to ``destination``, or why it cannot (a sentence).

    Local↔local and local↔SSH qualify when rsync is installed here and, for an SSH end,
    on its host; SSH↔SSH and in-memory workspaces do not. The route's rsyncs use the ssh
    connection ``shared`` (see :func:`share_connection`) when it is up.
    """
    local = shutil.which("rsync")
    if local is None:
        return "rsync is not installed here"
    version = _version(local)
    if version < MIN_VERSION:
        return f"rsync {'.'.join(map(str, version))} is older than 3.1"
    ends = []
    for ws in (source, destination):
        end = _end(ws)
        if isinstance(end, str):
            return end
        ends.append(end)
    if ends[0].host and ends[1].host:
        return "both workspaces are remote (rsync copies between this machine and one host)"
    from xpm.sshworkspace import SSHWorkspace

    for ws in (source, destination):
        if isinstance(ws, SSHWorkspace):
            reason = _check_host(ws)
            if reason:
                return reason
    return Route(ends[0], ends[1], shared)


def _version(rsync: str) -> tuple[int, ...]:
    try:
        out = subprocess.run([rsync, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return (0,)
    found = re.search(r"version\s+(\d+)\.(\d+)", out)
    return (int(found.group(1)), int(found.group(2))) if found else (0,)


def _end(ws: Workspace) -> End | str:
    local = ws.local_path("")
    if local is not None:
        return End(str(local))
    from xpm.sshworkspace import SSHWorkspace

    if not isinstance(ws, SSHWorkspace):
        return f"{ws.location}: not a local or SSH workspace"
    options = ws.connection_options()
    command = ssh_command(options)
    if isinstance(command, str):
        return f"{ws.location}: {command}"
    user = options.get("username")
    return End(ws.root, f"{user}@{ws.host}" if user else ws.host, tuple(command))


def ssh_command(options: dict[str, Any]) -> list[str] | str:
    """The ssh command (without the host) that connects as an SSH workspace opened with ``options``
    does, or why there is none.

    ``known_hosts``: ``()`` (asyncssh's default: ``~/.ssh/known_hosts``, or the configuration's
    ``UserKnownHostsFile``) checks the host key strictly, as asyncssh does (no new key is
    accepted); a path or list of paths names the files; None turns the check off.
    """
    unknown = set(options) - _SSH_OPTIONS
    if unknown:
        return f"the option(s) {', '.join(sorted(unknown))} cannot be given to the ssh command"
    # BatchMode: never a password prompt (rsync would hang on it). LogLevel: no banner in our errors.
    args = ["ssh", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR"]
    if options.get("port") is not None:
        args += ["-p", str(options["port"])]
    if options.get("username"):
        args += ["-l", str(options["username"])]
    if options.get("connect_timeout"):
        args += ["-o", f"ConnectTimeout={int(float(options['connect_timeout']))}"]
    home = Path(os.path.expanduser("~"))
    config = home / ".ssh" / "config"
    # asyncssh reads $HOME/.ssh; the ssh command, the account's home (from the password database).
    moved = home != _account_home()
    if moved:
        args += ["-F", str(config) if config.is_file() else "/dev/null"]
    keys = options.get("client_keys")
    if keys is not None:
        if isinstance(keys, (str, os.PathLike)):
            keys = [keys]
        if not all(isinstance(key, (str, os.PathLike)) for key in keys):
            return "its client keys are not files"
        for key in keys:
            args += ["-i", os.fspath(key)]
    elif moved:
        args += [arg for name in _DEFAULT_KEYS if (home / ".ssh" / name).is_file()
                 for arg in ("-i", str(home / ".ssh" / name))]
    known = options.get("known_hosts", ())
    if known is None:
        args += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
        return args
    if isinstance(known, (str, os.PathLike)):
        known = [known]
    if known == ():
        if moved and not _configures(config, "userknownhostsfile"):
            args += ["-o", f"UserKnownHostsFile={home / '.ssh' / 'known_hosts'}"]
    elif isinstance(known, (list, tuple)) and all(isinstance(k, (str, os.PathLike)) for k in known):
        args += ["-o", "UserKnownHostsFile=" + " ".join(os.fspath(k) for k in known)]
    else:
        return "its known hosts are not files"
    return args + ["-o", "StrictHostKeyChecking=yes"]


def _account_home() -> Path | None:
    try:
        import pwd

        return Path(pwd.getpwuid(os.getuid()).pw_dir)
    except (ImportError, KeyError):
        return None


def _configures(config: Path, keyword: str) -> bool:
    """Whether an ssh configuration file sets ``keyword`` anywhere (then it is not overridden)."""
    try:
        text = config.read_text(errors="replace")
    except OSError:
        return False
    return any(line.strip().lower().startswith(keyword) for line in text.splitlines())


def _check_host(ws: SSHWorkspace) -> str:
    """Why rsync cannot run on the host of an SSH workspace ("" when it can): one command in the
    workspace's shell on the host. Whether the ssh command reaches the host, the first rsync says
    (:attr:`RsyncError.unreachable`): a second handshake here would cost as much as a small copy."""
    from xpm.workspace import HostCommandError

    try:
        status, out, _ = ws.run("command -v rsync")
    except HostCommandError as exc:
        return str(exc)
    return "" if status == 0 and out.strip() else f"rsync is not installed on {ws.host}"


def transfer(path: Route, src_base: str, dst_base: str, folders: list[str], exclude: list[str],
             progress: Callable[[int, int], None]) -> None:
    """Copies the ``folders`` (paths relative to ``src_base`` of the source), with every file under them
    but symbolic links and those matching a pattern of ``exclude`` (rsync's, anchored at ``src_base``),
    to the same paths under ``dst_base`` of the destination, in one rsync; ``progress(files, bytes)`` is
    told of each advance. A file already there with the same size and time is not sent again (a resumed
    copy).

    rsync writes each file under a temporary name in its folder (:func:`is_temporary`), renamed when
    complete, and removes it when stopped (even by the loss of its connection); a temporary file left by
    a killed host is the caller's to remove. Folders rather than files are listed: with a list of files,
    rsync builds the whole list before sending the first byte; with folders it walks and sends at once.

    Raises:
        RsyncError: rsync failed (a full disk, a lost connection...).
    """
    if not folders:
        return
    with tempfile.NamedTemporaryFile(prefix="xpm-rsync-", suffix=".list") as listing, \
            tempfile.TemporaryFile() as errors:
        # A file rather than stdin: rsync could fill its output pipe before reading a long list.
        listing.write(b"".join(os.fsencode(name) + b"\0" for name in folders))
        listing.flush()
        command = ["rsync", "-a", "-r", "--no-links", "--protect-args", "--from0", f"--files-from={listing.name}",
                   "--info=progress2", *(f"--exclude={pattern}" for pattern in exclude)]
        shell = path.remote_shell()
        if shell:
            command += ["-e", shlex.join(shell)]
        command += [path.source.spec(src_base), path.destination.spec(dst_base)]
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors,
                                   preexec_fn=_die_with_parent())
        assert process.stdout is not None
        try:
            _follow(process.stdout, progress)
            status = process.wait()
        except BaseException:
            process.kill()
            process.wait()
            raise
        if status != 0:
            errors.seek(0)
            text = errors.read().decode(errors="replace")
            lines = [line for line in text.splitlines() if line.strip()]
            detail = next((line for line in lines if not line.startswith("rsync error")), lines[-1] if lines else "")
            # ssh's own failure is 255; rsync says 12 when the connection closed before its first byte
            unreachable = status == 255 or (status == 12 and "(0 bytes received so far)" in text)
            raise RsyncError(f"rsync from {path.source.spec(src_base)} to {path.destination.spec(dst_base)} "
                             f"failed (exit status {status}){': ' + detail.strip() if detail else ''}", status,
                             unreachable)


#: rsync's temporary name of a file being received: ``.<name>.`` and six characters (mkstemp's)
_TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9]{6}$")


def is_temporary(name: str) -> bool:
    """Whether a file name (without its folder) has the shape of rsync's temporary names."""
    return _TEMPORARY.match(name) is not None


def _follow(stream: Any, progress: Callable[[int, int], None]) -> None:
    """Reads rsync's ``--info=progress2`` lines (ended by ``\\r``) and tells ``progress`` the advances."""
    sent_bytes = sent_files = 0
    pending = b""
    while chunk := stream.read1(65536):
        pending += chunk
        *lines, pending = re.split(rb"[\r\n]", pending)
        for line in lines:
            found = _PROGRESS.match(line)
            if not found:
                continue
            size = int(found.group(1).replace(b",", b""))
            sent = _SENT.search(line)
            count = int(sent.group(1)) if sent else sent_files
            if size > sent_bytes or count > sent_files:
                progress(max(0, count - sent_files), max(0, size - sent_bytes))
                sent_bytes, sent_files = max(size, sent_bytes), max(count, sent_files)


def _die_with_parent() -> Callable[[], None] | None:
    """What the rsync child runs before rsync: asks the kernel to end it when this process dies (a copy
    killed mid-way must not go on writing in the staging folder while the same copy, run again, resumes
    there). Resolved here, in the parent: the child of a threaded process must import nothing."""
    import functools
    import signal

    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: rsync ends when its output pipe breaks
        return None
    return functools.partial(prctl, 1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG


# --- checks and renames on the host of an SSH destination, one command each ---------------------

#: Lists the files under the folders $2... of the root $1 (size and path), then the SHA-256 of their params.json
_STAGED = r"""
cd -- "$1" || exit 2; shift
find "$@" -type f -printf '%s %p\n' || exit 3
echo ==
for d do printf '%s\0' "$d/params.json"; done | xargs -0 sha256sum -- 2>/dev/null
exit 0
"""

#: In the root $1: removes the $2 files that follow; then, for each group "into n folder1..folderN", makes the
#: folder "into" and moves the n folders into it (one mv), and names those still where they were because their
#: target existed (status 4: one was not moved otherwise). ``eval`` only expands "${i}": no name is evaluated.
_MOVE = r"""
cd -- "$1" || exit 2; n=$2; shift 2
while [ "$n" -gt 0 ]; do rm -f -- "$1" || exit 3; shift; n=$((n - 1)); done
while [ $# -gt 0 ]; do
  into=$1; n=$2; shift 2
  mkdir -p -- "$into" || exit 3
  list=; i=1
  while [ "$i" -le "$n" ]; do list="$list \"\${$i}\""; i=$((i + 1)); done
  eval "mv -t \"\$into\" -- $list" 2>/dev/null
  i=1
  while [ "$i" -le "$n" ]; do
    eval "d=\${$i}"
    if [ -d "$d" ]; then [ -e "$into/${d##*/}" ] || exit 4; printf '%s\n' "$d"; fi
    i=$((i + 1))
  done
  shift "$n"
done
exit 0
"""


def host_staged(ws: SSHWorkspace, root: str,
                folders: list[str]) -> tuple[dict[str, dict[str, int]], dict[str, str]] | None:
    """The files staged on the host of an SSH workspace ``ws`` under each of ``folders`` (paths relative to
    the folder, and sizes) and the SHA-256 of each folder's ``params.json``, in one command on the host;
    None when the host cannot say (no GNU find, ``sha256sum``): check folder by folder then."""
    from xpm.workspace import HostCommandError

    try:
        status, out, _ = ws.run(_STAGED, root, *folders, timeout=600.0)
    except HostCommandError:
        return None
    if status != 0 or "\n==\n" not in f"\n{out}\n":
        return None
    listing, _, sums = f"\n{out}\n".partition("\n==\n")
    files: dict[str, dict[str, int]] = {folder: {} for folder in folders}
    depths = {folder.count("/") + 1 for folder in folders}
    for line in listing.splitlines():
        size, _, path = line.partition(" ")
        for depth in depths:
            parts = path.split("/", depth)
            folder = "/".join(parts[:depth])
            if folder in files and len(parts) > depth and size.isdigit():
                files[folder][parts[depth]] = int(size)
    hashes: dict[str, str] = {}
    for line in sums.splitlines():
        digest, _, path = line.partition("  ")
        if path.endswith("/params.json"):
            hashes[path[: -len("/params.json")]] = digest
    return files, hashes


def host_move(ws: SSHWorkspace, root: str, moves: dict[str, list[str]],
              remove: Sequence[str] = ()) -> list[str] | None:
    """On the host of the SSH workspace ``ws``, in one command: removes the files ``remove``, then moves the
    folders of each ``moves[into]`` into the folder ``into`` (made if needed), each keeping its name (paths
    relative to ``root``); a folder whose target exists is not moved (a folder with files: rename(2) fails).
    Returns the folders not moved (None: the host could not run the command, or moved only some of them:
    see which are still there)."""
    from xpm.workspace import HostCommandError

    args = [str(len(remove)), *remove]
    for into, folders in moves.items():
        args += [into, str(len(folders)), *folders]
    try:
        status, out, _ = ws.run(_MOVE, root, *args, timeout=600.0)
    except HostCommandError:
        return None
    return out.split() if status == 0 else None


#: In the root $1: removes the files under $3 (rsync's temporary folder, inside $2), then every empty
#: folder of the staging folder $2, bottom up (it too, when empty)
_PRUNE = r"""
cd -- "$1" || exit 2
[ -d "$2" ] || exit 0
[ -d "$3" ] && { find "$3" -type f -exec rm -f -- {} + || exit 3; }
find "$2" -depth -type d -empty -delete 2>/dev/null
exit 0
"""


def host_prune(ws: SSHWorkspace, root: str, staging: str, temp: str) -> bool:
    """On the host of the SSH workspace ``ws``: removes what killed rsyncs left in their temporary folder
    ``temp`` and the empty folders of ``staging`` (relative to ``root``), in one command; whether it could
    (False: do it over SFTP)."""
    from xpm.workspace import HostCommandError

    try:
        status, _, _ = ws.run(_PRUNE, root, staging, temp, timeout=600.0)
    except HostCommandError:
        return False
    return status == 0
