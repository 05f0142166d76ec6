"""User settings (``settings.yaml``) and the choice of a workspace.

The file lives in the configuration directory (``$XDG_CONFIG_HOME/experimaestro``, by default
``~/.config/experimaestro``, unless ``XPM_CONFIG_DIR`` or ``--xpm-config-dir`` says otherwise)
and uses the same keys as experimaestro's, so that one file serves both tools::

    env: {JAVA_HOME: /opt/java}
    history: {max_done: 5, max_failed: 1}
    workspaces:
      - id: main
        path: ~/experiments
        triggers: ["nlp-*"]

Every command picks its workspace with :func:`resolve_workspace`, so that
``--workspace``, ``--workdir``, triggers and defaults mean the same thing everywhere.

PyYAML is imported when a settings file is read, not with this module: a
command given ``--workdir`` with no settings file never loads it.
"""

from __future__ import annotations

import fnmatch
import os
import re
import warnings
from pathlib import Path
from typing import Any

import msgspec
from msgspec import field
from msgspec.structs import replace

from xpm import layout
from xpm.errors import FileProblem
from xpm.location import WorkspaceLocation, parse_location

__all__ = [
    "CONFIG_DIR_ENV",
    "SETTINGS_FILE",
    "HistorySettings",
    "Settings",
    "SettingsError",
    "NoWorkspaceGiven",
    "resolve_workspace_here",
    "WorkspaceLocation",
    "WorkspaceSettings",
    "config_dir",
    "load_settings",
    "parse_location",
    "parse_settings",
    "resolve_workspace",
    "settings_path",
]

#: The settings file name, inside the configuration directory
SETTINGS_FILE = "settings.yaml"
#: The environment variable that overrides the default configuration directory
CONFIG_DIR_ENV = "XPM_CONFIG_DIR"

# Keys experimaestro reads that xpm has no use for: accepted so that a file written
# for experimaestro loads, and ignored (not even interpolated, so that an unset
# variable in a section we never use cannot make the whole file fail).
_IGNORED_KEYS = frozenset({"server", "carbon"})
_TOP_KEYS = ("env", "history", "max_jobs", "notify", "workspaces")
_WORKSPACE_KEYS = ("env", "history", "id", "known_hosts", "launcher", "max_retries", "path", "triggers")
_HISTORY_KEYS = ("max_done", "max_failed")

# ``${oc.env:VAR}`` is the spelling of recent OmegaConf (which experimaestro uses to
# read the file); accepting it too keeps experimaestro files loadable.
_ENV_REF = re.compile(r"\$\{(?:oc\.)?env:([^}]*)\}")


class SettingsError(FileProblem):
    """The settings file is invalid, or no workspace can be chosen.

    The message is one line: ``<file>: <key>: <problem>`` (the file and key parts are
    left out when they do not apply).

    Attributes:
        path: the settings file concerned, or None.
        key: the key path inside the file (``workspaces[1].max_retries``), or the
            command-line option concerned (``--workdir``), or "".
        problem: the description of the problem alone.
    """


class NoWorkspaceGiven(SettingsError):
    """Nothing designates a workspace: no option, and no local workspace in the settings."""


def workspace_in(folder: str | os.PathLike[str]) -> Path | None:
    """The workspace a command may use in ``folder`` when nothing else designates one.

    ``folder`` itself when it is a workspace (it has the workspace marker), else its one
    child folder that is (the demo's ``xpm-workspace``); None when there is none, or
    several (choosing among them would be a guess).
    """
    base = Path(folder)
    if (base / layout.MARKER).is_file():
        return base
    try:
        children = [child for child in base.iterdir() if (child / layout.MARKER).is_file()]
    except OSError:
        return None
    return children[0] if len(children) == 1 else None


def _location(value: WorkspaceLocation | str | os.PathLike[str], where: str) -> WorkspaceLocation:
    """A location given as such, as a path or as an ``ssh://`` URL (a bad one: SettingsError naming ``where``)."""
    if isinstance(value, WorkspaceLocation):
        return value
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{where}: expected a path or a WorkspaceLocation, got {type(value).__name__}")
    try:
        return parse_location(os.fspath(value))
    except ValueError as exc:
        raise SettingsError(str(exc), key=where) from None


class HistorySettings(msgspec.Struct):
    """How many past runs of an experiment to keep when an experiment ends well.

    None (the default) keeps every run: run folders are deleted only when the
    settings ask for it (``history: {max_done: 5, max_failed: 1}``).

    Attributes:
        max_done: runs that completed successfully.
        max_failed: runs that failed (failed runs older than the newest successful
            one are removed first: its success supersedes them).
    """

    max_done: int | None = None
    max_failed: int | None = None

    @property
    def prunes(self) -> bool:
        """Whether these settings ask to delete old runs at all."""
        return self.max_done is not None or self.max_failed is not None


class WorkspaceSettings:
    """One workspace: where it is and what its jobs get.

    ``WorkspaceSettings(id, path)`` (or ``path=``) makes one from a folder, a local
    path or an ``ssh://`` URL (see :func:`parse_location`); ``location=`` takes a
    :class:`WorkspaceLocation`. The other attributes are keywords with their defaults.

    Attributes:
        id: the workspace's name (``--workspace ID``); for a workspace given by
            ``--workdir`` and not in the settings, the canonical form of its location.
        location: where the workspace is; :attr:`path` is its folder.
        env: environment variables for the jobs of this workspace (on top of the
            global ones in :attr:`Settings.env`).
        triggers: fnmatch patterns; an experiment whose id matches one of them uses
            this workspace when no workspace is given.
        max_retries: how many times a failed job is retried.
        history: how many past runs to keep (keys not given for the workspace come
            from the global :attr:`Settings.history`).
    """

    id: str
    location: WorkspaceLocation
    env: dict[str, str]
    triggers: list[str]
    max_retries: int
    history: HistorySettings
    #: the launcher of jobs submitted without one: None (local), or
    #: ``{"slurm": {<#SBATCH options>}, "interval": s, "binpath": dir, "max_jobs": n}``
    launcher: dict[str, Any] | None
    #: whether an SSH workspace's host key is checked (``~/.ssh/known_hosts``, or the
    #: ``UserKnownHostsFile`` of ``~/.ssh/config``); ``known_hosts: false`` turns it off
    known_hosts: bool
    #: the attributes, in the order of the constructor (equality and repr)
    _FIELDS = ("id", "location", "env", "triggers", "max_retries", "history", "launcher", "known_hosts")

    def __init__(
        self,
        id: str,
        location: WorkspaceLocation | str | os.PathLike[str] | None = None,
        env: dict[str, str] | None = None,
        triggers: list[str] | None = None,
        max_retries: int = 3,
        history: HistorySettings | None = None,
        launcher: dict[str, Any] | None = None,
        known_hosts: bool = True,
        *,
        path: str | os.PathLike[str] | None = None,
    ):
        given = location if location is not None else path
        if given is None or (location is not None and path is not None):
            raise TypeError(f"WorkspaceSettings({id!r}): give its path (or location), once")
        self.id = id
        self.location = _location(given, f"WorkspaceSettings({id!r})")
        self.env = dict(env or {})
        self.triggers = list(triggers or [])
        self.max_retries = max_retries
        self.history = history if history is not None else HistorySettings()
        self.launcher = launcher
        self.known_hosts = known_hosts

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self._FIELDS)

    __hash__ = None  # type: ignore[assignment]  # mutable: equal by value, not hashable

    def __repr__(self) -> str:
        values = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._FIELDS)
        return f"WorkspaceSettings({values})"

    @property
    def path(self) -> Path:
        """The workspace's folder (on its SSH host, for an ``ssh://`` workspace); setting it moves the workspace."""
        return Path(self.location.path)

    @path.setter
    def path(self, value: str | os.PathLike[str]) -> None:
        self.location = _location(value, f"WorkspaceSettings({self.id!r}).path")

    def storage_options(self) -> dict[str, Any]:
        """What opening the workspace takes besides its location (:meth:`xpm.workspace.Workspace.open`)."""
        if self.location.is_local or self.known_hosts:
            return {}
        warnings.warn(
            f"workspace {self.id}: the SSH host key of {self.location.host} is not checked (known_hosts: false "
            "in settings.yaml): a machine in the middle would not be noticed",
            stacklevel=2,
        )
        return {"known_hosts": None}

    def make_launcher(self) -> Any:
        """The workspace's default launcher (None: the local one).

        A convenience for user code: the settings are data, and xpm itself builds
        the launcher with :func:`xpm.launchers.slurm.launcher_from_settings`. The
        one import from settings up to a launcher, on use (tests/test_layers.py).
        """
        from xpm.launchers.slurm import launcher_from_settings

        return launcher_from_settings(self.launcher) if self.launcher else None

    def matches(self, experiment_id: str) -> bool:
        """Whether one of the triggers matches the experiment id.

        Matching is case-sensitive on every platform, so that the same settings
        choose the same workspace everywhere.
        """
        return any(fnmatch.fnmatchcase(experiment_id, pattern) for pattern in self.triggers)


class Settings(msgspec.Struct):
    """The content of the settings file.

    Attributes:
        env: environment variables for every job.
        history: the default history settings.
        workspaces: the declared workspaces, in file order.
        path: the file the settings came from; None if there was no file.
        max_jobs: how many local jobs an experiment process runs at once (None:
            as many as the machine has CPUs).
        notify: a shell command run once when an experiment run ends (done or failed).
    """

    env: dict[str, str] = field(default_factory=dict)
    history: HistorySettings = field(default_factory=HistorySettings)
    workspaces: list[WorkspaceSettings] = field(default_factory=list)
    path: Path | None = None
    #: how many local jobs an experiment process runs at once (None: the number of CPUs)
    max_jobs: int | None = None
    #: a shell command run once when an experiment run ends (see ``xpm.notify``), or None
    notify: str | None = None

    def workspace(self, workspace_id: str) -> WorkspaceSettings | None:
        """The workspace with this id, or None."""
        for ws in self.workspaces:
            if ws.id == workspace_id:
                return ws
        return None

    def env_for(self, workspace: WorkspaceSettings) -> dict[str, str]:
        """The environment the jobs of a workspace get: the global ``env`` with the
        workspace's own variables on top (the more specific setting wins)."""
        return {**self.env, **workspace.env}


def config_dir(explicit: str | Path | None = None) -> Path:
    """The configuration directory, as an absolute path.

    ``explicit`` (``--xpm-config-dir``) wins over the ``XPM_CONFIG_DIR`` environment
    variable, which wins over ``$XDG_CONFIG_HOME/experimaestro`` (``~/.config`` when
    ``XDG_CONFIG_HOME`` is unset or empty, as the XDG base directory specification says;
    experimaestro's directory, so that both tools share one settings file).
    """
    if explicit is not None and str(explicit) != "":
        chosen = Path(explicit)
    elif os.environ.get(CONFIG_DIR_ENV):
        chosen = Path(os.environ[CONFIG_DIR_ENV])
    else:
        # The XDG specification: a relative XDG_CONFIG_HOME is invalid and ignored.
        xdg = os.environ.get("XDG_CONFIG_HOME", "")
        chosen = Path(xdg if os.path.isabs(xdg) else "~/.config") / "experimaestro"
    # Absolute so that error messages name the file unambiguously and relative
    # workspace paths do not depend on a later change of directory.
    return Path(os.path.abspath(chosen.expanduser()))


def settings_path(directory: str | Path | None = None) -> Path:
    """The settings file in the configuration directory (it may not exist)."""
    return config_dir(directory) / SETTINGS_FILE


def load_settings(config_dir: str | Path | None = None) -> Settings:
    """Reads and validates the settings file; a missing file gives empty settings.

    Args:
        config_dir: the configuration directory (see :func:`config_dir`).

    Raises:
        SettingsError: the file cannot be read, is not valid YAML, or does not match
            the expected keys and types.
    """
    path = settings_path(config_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Settings()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SettingsError(f"cannot read the file ({reason})", path=path) from exc
    return parse_settings(text, path)


def parse_settings(text: str, path: Path) -> Settings:
    """Validates the text of a settings file; ``path`` names it in errors and is
    the base of relative workspace paths."""
    # Here rather than at the top: PyYAML costs a quarter of the start-up of a
    # command that reads no settings file (`experiments list --workdir W`).
    import yaml

    from xpm.yamlfile import load_yaml, yaml_problem

    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        raise SettingsError(yaml_problem(exc, text), path=path) from exc
    return _Reader(path).settings(data)


def _show(value: Any) -> str:
    """A value as the user would recognise it in their file, kept short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Reader:
    """Validates the parsed YAML, naming the key path of every problem."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, key: str, problem: str) -> SettingsError:
        return SettingsError(problem, path=self.path, key=key)

    def settings(self, data: Any) -> Settings:
        if data is None:  # an empty file
            return Settings(path=self.path)
        top = self.mapping(data, "", _TOP_KEYS, ignored=_IGNORED_KEYS)
        env = self.env(top.get("env"), "env")
        history = self.history(top.get("history"), "history", HistorySettings())
        return Settings(
            env=env,
            history=history,
            workspaces=self.workspaces(top.get("workspaces"), history),
            path=self.path,
            max_jobs=self.positive(top.get("max_jobs"), "max_jobs"),
            notify=self.string(top["notify"], "notify") if top.get("notify") is not None else None,
        )

    def mapping(
        self, value: Any, key: str, known: tuple[str, ...], ignored: frozenset[str] = frozenset()
    ) -> dict[str, Any]:
        """Checks that ``value`` is a mapping with only known keys."""
        if not isinstance(value, dict):
            where = "" if key else " at the top level"
            raise self.fail(key, f"expected a mapping{where}, got {_show(value)}")
        for name in value:
            if name in known or name in ignored:
                continue
            everything = ", ".join(sorted({*known, *ignored}))
            raise self.fail(self.join(key, name), f"unknown key (known keys: {everything})")
        return value

    @staticmethod
    def join(key: str, name: Any) -> str:
        return f"{key}.{name}" if key else str(name)

    def string(self, value: Any, key: str) -> str:
        """A string, with ``${env:VAR}`` references replaced."""
        if not isinstance(value, str):
            raise self.fail(key, f"expected a string, got {_show(value)}")

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1).strip()
            if not name:
                raise self.fail(key, f"{match.group(0)} names no environment variable")
            if name not in os.environ:
                raise self.fail(key, f"the environment variable {name} is not set (used as {match.group(0)})")
            return os.environ[name]

        return _ENV_REF.sub(substitute, value)

    def boolean(self, value: Any, key: str, default: bool) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {_show(value)}")
        return value

    def integer(self, value: Any, key: str, default: Any) -> Any:
        if value is None:
            return default
        # bool is an int subclass: "max_retries: yes" is a mistake, not 1.
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(key, f"expected an integer, got {_show(value)}")
        if value < 0:
            raise self.fail(key, f"expected a non-negative integer, got {value}")
        return value

    def positive(self, value: Any, key: str) -> int | None:
        if value is None:
            return None
        number = self.integer(value, key, 0)
        if number < 1:
            raise self.fail(key, f"expected a positive integer, got {number}")
        return number

    def env(self, value: Any, key: str) -> dict[str, str]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a mapping of variable names to values, got {_show(value)}")
        env: dict[str, str] = {}
        for name, item in value.items():
            if not isinstance(name, str) or not name:
                raise self.fail(key, f"expected variable names, got {_show(name)}")
            # Numbers are accepted as written ("OMP_NUM_THREADS: 4"); booleans and
            # nulls are not, since YAML turns "yes" or "~" into them by surprise.
            if isinstance(item, (int, float)) and not isinstance(item, bool):
                item = str(item)
            env[name] = self.string(item, self.join(key, name))
        return env

    def history(self, value: Any, key: str, default: HistorySettings) -> HistorySettings:
        """History settings; each key not given takes its value from ``default``."""
        if value is None:
            return replace(default)
        data = self.mapping(value, key, _HISTORY_KEYS)
        return HistorySettings(
            max_done=self.integer(data.get("max_done"), self.join(key, "max_done"), default.max_done),
            max_failed=self.integer(data.get("max_failed"), self.join(key, "max_failed"), default.max_failed),
        )

    def workspaces(self, value: Any, history: HistorySettings) -> list[WorkspaceSettings]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail("workspaces", f"expected a list of workspaces, got {_show(value)}")
        result = [self.workspace(item, f"workspaces[{index}]", history) for index, item in enumerate(value)]
        seen: set[str] = set()
        for ws in result:
            if ws.id in seen:
                raise self.fail("workspaces", f"two workspaces have the id {ws.id!r}")
            seen.add(ws.id)
        return result

    def workspace(self, value: Any, key: str, history: HistorySettings) -> WorkspaceSettings:
        data = self.mapping(value, key, _WORKSPACE_KEYS)
        for required in ("id", "path"):
            if required not in data:
                raise self.fail(key, f"missing required key {required!r}")
        ws_id = self.string(data["id"], self.join(key, "id"))
        if not ws_id.strip():
            raise self.fail(self.join(key, "id"), "expected a non-empty string, got ''")
        path_key = self.join(key, "path")
        # Interpolated outside the try: SettingsError is a ValueError too, and must
        # not be wrapped a second time.
        path_text = self.string(data["path"], path_key)
        try:
            # Relative paths are relative to the settings file, not to wherever the
            # command happens to run, so that a workspace is always the same folder.
            location = parse_location(path_text, self.path.parent)
        except ValueError as exc:
            raise self.fail(path_key, str(exc)) from None
        return WorkspaceSettings(
            id=ws_id,
            location=location,
            env=self.env(data.get("env"), self.join(key, "env")),
            triggers=self.triggers(data.get("triggers"), self.join(key, "triggers")),
            max_retries=self.integer(data.get("max_retries"), self.join(key, "max_retries"), 3),
            # A workspace refines the global history settings key by key, so that
            # "history: {max_done: 2}" keeps the global max_failed.
            history=self.history(data.get("history"), self.join(key, "history"), history),
            launcher=self.launcher(data.get("launcher"), self.join(key, "launcher")),
            known_hosts=self.boolean(data.get("known_hosts"), self.join(key, "known_hosts"), True),
        )

    def launcher(self, value: Any, key: str) -> dict[str, Any] | None:
        """``launcher: local`` or ``launcher: {slurm: {partition: gpu, time: "4:00:00"}, interval: 60}``."""
        if value is None or value == "local":
            return None
        if not isinstance(value, dict) or not isinstance(value.get("slurm", {}), dict) or "slurm" not in value:
            raise self.fail(key, f"expected 'local', or a mapping with a 'slurm' mapping, got {_show(value)}")
        from xpm.launchers.slurm_options import settings_problems

        for name, problem in settings_problems(value):
            raise self.fail(self.join(key, name), problem)
        binpath = value.get("binpath")
        return {
            **value,
            "slurm": dict(value["slurm"] or {}),
            "binpath": None if binpath is None else self.string(binpath, self.join(key, "binpath")),
            "max_jobs": self.positive(value.get("max_jobs"), self.join(key, "max_jobs")),
        }

    def triggers(self, value: Any, key: str) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(key, f"expected a list of patterns, got {_show(value)}")
        return [self.string(item, f"{key}[{index}]") for index, item in enumerate(value)]


def resolve_workspace_here(
    *, workspace: str | None, workdir: str | os.PathLike[str] | None, config_dir: str | Path | None,
    here: str | os.PathLike[str],
) -> tuple[WorkspaceSettings, Path | None]:
    """:func:`resolve_workspace`, or, when nothing designates a workspace, the one workspace of the
    folder ``here`` (:func:`workspace_in`); the second item is that folder when it was chosen so
    (the command line says so), else None.

    Raises:
        SettingsError: as :func:`resolve_workspace` (``NoWorkspaceGiven`` when ``here`` holds none either).
    """
    try:
        return resolve_workspace(workspace=workspace, workdir=workdir, config_dir=config_dir), None
    except NoWorkspaceGiven:
        found = workspace_in(here)
        if found is None:
            raise
        return resolve_workspace(workdir=found, config_dir=config_dir), found


def resolve_workspace(
    *,
    workspace: str | None = None,
    workdir: str | os.PathLike[str] | None = None,
    experiment_id: str | None = None,
    settings: Settings | None = None,
    config_dir: str | Path | None = None,
) -> WorkspaceSettings:
    """Chooses the workspace a command works on; every command goes through here.

    In order: ``--workspace ID`` (declared in the settings); ``--workdir PATH`` (a
    path or SSH URL: the declared workspace at that location if there is one, else an
    ad-hoc workspace whose id is the location); the first workspace whose triggers
    match ``experiment_id``; the first local workspace of the settings.

    Args:
        workspace: the ``--workspace`` option.
        workdir: the ``--workdir`` option, a path or an ``ssh://`` URL (relative
            paths are relative to the current directory).
        experiment_id: the experiment being run, for triggers.
        settings: the settings; read from ``config_dir`` when not given.
        config_dir: the configuration directory (``--xpm-config-dir``).

    Raises:
        SettingsError: the settings file is invalid, the workspace id is unknown,
            ``--workspace`` and ``--workdir`` designate different places, the workdir
            is not a valid location, or nothing designates a workspace.
    """
    if settings is None:
        settings = load_settings(config_dir)
    file = settings.path if settings.path is not None else settings_path(config_dir)
    # Saying the file is missing spares the user from looking for a typo in it.
    missing = "" if file.exists() else "the file does not exist"

    chosen: WorkspaceSettings | None = None
    if workspace is not None:
        chosen = settings.workspace(workspace)
        if chosen is None:
            known = ", ".join(ws.id for ws in settings.workspaces)
            listing = f"known ids: {known}" if known else "no workspace is declared"
            if missing:
                listing += f"; {missing}"
            raise SettingsError(
                f"no workspace has the id {workspace!r} (given by --workspace; {listing})",
                path=file,
                key="workspaces",
            )

    if workdir is not None:
        try:
            location = parse_location(os.fspath(workdir))
        except ValueError as exc:
            raise SettingsError(str(exc), key="--workdir") from None
        if chosen is not None:
            if not chosen.location.same_place(location):
                raise SettingsError(
                    f"--workspace {chosen.id} is {chosen.location} but --workdir is {location}; "
                    "give only one of them, or two that designate the same place"
                )
            return chosen
        for ws in settings.workspaces:
            if ws.location.same_place(location):
                return ws
        return WorkspaceSettings(id=str(location), location=location, history=replace(settings.history))

    if chosen is not None:
        return chosen

    if experiment_id is not None:
        for ws in settings.workspaces:
            if ws.matches(experiment_id):
                return ws

    for ws in settings.workspaces:
        if ws.location.is_local:
            return ws

    raise NoWorkspaceGiven(
        "no workspace given: use --workdir PATH or --workspace ID, "
        "or declare a workspace with a local path in this file" + (f" ({missing})" if missing else ""),
        path=file,
    )
