"""What a run records about itself when it starts: its spec (``spec.json``).

A run is like a commit: it keeps the merged configuration it was given (as
``run-experiment --show`` prints it, with the ``-c`` overrides), the content of its
source files (the YAML files, the experiment's Python file and the modules
imported from the experiment's folders, as blobs stored once per content), and
the git state of every repository its code comes from: the experiment's folders
and the packages installed in editable mode (commit, branch, dirtiness, and the
uncommitted patch as a blob). The packages and Python version are in the run's
``environment.json``; the jobs it submitted in its ``jobs.jsonl``.

Nothing here fails a run: what cannot be read (git missing, a folder outside
git, an unreadable file) is left out, said once on stderr, and listed in the
spec's ``problems``.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import unquote, urlparse

from xpm.gitinfo import GitMissing, GitProblem, GitState, git_state
from xpm.schema import RECORD_VERSION, RepositoryRecord, RunSpec, SourceFile
from xpm.store.blobs import BlobStore
from xpm.store.runs import RunStore
from xpm.workspace import Workspace

__all__ = ["RunInputs", "record", "capture", "source_files", "editable_folders", "MAX_SOURCES", "MAX_SOURCE_SIZE"]

#: At most this many source files per run (an experiment folder that is a whole home directory...)
MAX_SOURCES = 200
#: Larger files are not sources (data files imported by accident)
MAX_SOURCE_SIZE = 1 << 20

#: Whether "git is not installed" was said already (once per process)
_said_git_missing = False


@dataclass
class RunInputs:
    """What the caller knows of a run's spec before it starts.

    Attributes:
        configuration: the merged configuration (JSON values), None for a Python experiment.
        overrides: the ``-c key=value`` strings, in order.
        files: files that are sources whatever their location (the YAML files, the experiment file).
        folders: the experiment's code folders: the modules imported from them are sources,
            and their git repositories are recorded.
    """

    configuration: Any = None
    overrides: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    folders: list[Path] = field(default_factory=list)

    @classmethod
    def of_script(cls, project: str | os.PathLike[str] | None) -> RunInputs:
        """The inputs of an experiment run from Python: the main script, and the project folder."""
        main = getattr(sys.modules.get("__main__"), "__file__", None)
        files = [Path(os.path.abspath(main))] if main and main.endswith(".py") else []
        return cls(files=files, folders=[Path(os.path.abspath(project))] if project is not None else [])

    @classmethod
    def of_yaml(cls, merged: Any, file: Path | None, folders: Iterable[Path], overrides: Iterable[str]) -> RunInputs:
        """The inputs of ``run-experiment``: ``merged`` (a ``MergedConfig``: its data and the YAML files
        that gave it), the experiment's Python ``file`` (None: a module), the folders of its code."""
        yaml_files = [Path(merged.main), *merged.yaml_origins.values()]
        files = [Path(os.path.abspath(path)) for path in dict.fromkeys(yaml_files)]
        code = [Path(os.path.abspath(folder)) for folder in folders]
        if file is not None:
            files.append(Path(os.path.abspath(file)))
            code.append(Path(os.path.abspath(file)).parent)
        return cls(configuration=cls.show(merged.data), overrides=list(overrides), files=files,
                   folders=list(dict.fromkeys(code)))

    @staticmethod
    def show(data: Any) -> Any:
        """``data`` as ``run-experiment --show`` prints it (values JSON cannot hold become strings)."""
        return json.loads(json.dumps(data, default=str))


def _interpreter_prefixes() -> list[str]:
    return sorted({os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)})


def _under(path: str, folders: Iterable[str]) -> bool:
    return any(path == folder or path.startswith(folder.rstrip(os.sep) + os.sep) for folder in folders)


def source_files(inputs: RunInputs) -> list[Path]:
    """The files a run records: ``inputs.files``, then the modules imported from its folders (sorted).

    Files of the interpreter (standard library, site-packages) are never sources,
    even in a code folder that holds a virtual environment.
    """
    prefixes = _interpreter_prefixes()
    folders = [os.path.realpath(folder) for folder in inputs.folders]
    found: dict[str, None] = {}
    for file in inputs.files:
        path = os.path.realpath(file)
        if not _under(path, prefixes):
            found[path] = None
    modules = []
    for module in list(sys.modules.values()):
        name = getattr(module, "__file__", None)
        if not isinstance(name, str) or not name.endswith(".py"):
            continue
        path = os.path.realpath(name)
        if path not in found and _under(path, folders) and not _under(path, prefixes):
            modules.append(path)
    found.update((path, None) for path in sorted(set(modules)))
    return [Path(path) for path in found]


def editable_folders() -> list[Path]:
    """The folders of the packages installed in editable mode (``pip install -e``): their code is the run's.

    Reads the ``direct_url.json`` of the ``*.dist-info`` folders of ``sys.path`` (what
    ``importlib.metadata`` would read, without building a distribution object for each package).
    """
    folders: list[Path] = []
    for entry in dict.fromkeys(sys.path):
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if not name.endswith(".dist-info"):
                continue
            try:
                with open(os.path.join(entry or ".", name, "direct_url.json"), encoding="utf-8") as file:
                    url = json.load(file)
            except (OSError, ValueError):
                continue
            if isinstance(url, dict) and (url.get("dir_info") or {}).get("editable") \
                    and str(url.get("url", "")).startswith("file://"):
                folder = Path(unquote(urlparse(url["url"]).path))
                if folder not in folders:
                    folders.append(folder)
    return folders


def _say(line: str) -> None:
    print(f"xpm: {line}", file=sys.stderr, flush=True)


def record(runs: RunStore, experiment_id: str, run_id: str, inputs: RunInputs,
           known: dict[str, GitState] | None = None) -> RunSpec:
    """Captures a run's spec and writes it, under the blobs lock: the blobs it names cannot be removed
    (as unreferenced) between their storing and the writing of the spec. ``known``: the git states
    already asked at this run's start (see :func:`xpm.gitinfo.git_state`)."""
    with BlobStore(runs.workspace).lock():
        spec = capture(runs.workspace, inputs, known=known)
        runs.write_spec(experiment_id, run_id, spec)
    return spec


def capture(workspace: Workspace, inputs: RunInputs, *, say: Callable[[str], None] = _say,
            known: dict[str, GitState] | None = None) -> RunSpec:
    """Stores the sources and patches of a run as blobs of ``workspace``; returns the run's spec.

    ``say`` hears what could not be recorded (it is in the spec's ``problems`` too); ``known`` holds
    the git states already asked (see :func:`xpm.gitinfo.git_state`).
    """
    global _said_git_missing
    blobs = BlobStore(workspace)
    problems: list[str] = []

    def problem(line: str, *, quiet: bool = False) -> None:
        problems.append(line)
        if not quiet:
            say(line)

    sources = []
    files = source_files(inputs)
    if len(files) > MAX_SOURCES:
        problem(f"{len(files)} source files: only the first {MAX_SOURCES} are recorded")
        files = files[:MAX_SOURCES]
    for path in files:
        try:
            if path.stat().st_size > MAX_SOURCE_SIZE:
                problem(f"{path}: larger than {MAX_SOURCE_SIZE >> 20} MiB, not recorded as a source")
                continue
            data = path.read_bytes()
        except OSError as exc:
            problem(f"{path}: not recorded ({exc.strerror or exc})")
            continue
        sources.append(SourceFile(path=str(path), digest=blobs.put(data), size=len(data)))

    repositories: list[RepositoryRecord] = []
    prefixes = _interpreter_prefixes()
    candidates = [*inputs.folders, *(file.parent for file in files), *editable_folders()]
    seen: set[str] = set()
    for folder in candidates:
        where = os.path.realpath(folder)
        if where in seen or _under(where, prefixes) or _under(where, [r.path for r in repositories]):
            continue
        seen.add(where)
        if not os.path.isdir(where):
            continue
        try:
            found = git_state(where, known=known)
        except GitMissing as exc:
            problem(str(exc), quiet=_said_git_missing)
            _said_git_missing = True
            break  # no other folder can tell more
        except GitProblem as exc:
            problem(str(exc))
            continue
        if any(r.path == found.top for r in repositories):
            continue
        repositories.append(RepositoryRecord(
            path=found.top,
            commit=found.commit,
            dirty=found.dirty,
            branch=found.branch,
            patch=blobs.put(found.patch) if found.patch else None,
            untracked=found.untracked,
        ))
    return RunSpec(
        version=RECORD_VERSION,
        configuration=inputs.configuration,
        overrides=list(inputs.overrides),
        sources=sources,
        repositories=repositories,
        problems=problems,
    )
