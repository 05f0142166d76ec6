"""Reading and merging the YAML files of an experiment.

The merged configuration of ``run-experiment`` comes from, in this order (each one
merged over the previous ones):

1. the ``--pre-yaml`` files, in order;
2. the main YAML file, after the files its ``imports:`` (or ``parent:``) name,
   recursively, each relative to the file that names it (the importing file wins);
3. the ``--post-yaml`` files, in order;
4. the ``-c key.sub=value`` overrides (their values stay strings: validation
   coerces them to the declared types).

Mappings merge key by key; any other value, lists included, is replaced whole.

The result remembers where every value came from, so that an error can say which
file (or which ``-c``) set a bad value, and so that relative paths (``file``,
``pre_experiment``, ``module``) are taken relative to the YAML file that gave them.

Nothing here imports user code: :mod:`xpm.experiments.loader` does that.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from xpm.errors import FileProblem
from xpm.experiments.convert import show_value
from xpm.yamlfile import load_yaml, yaml_problem

__all__ = [
    "ExperimentConfigError",
    "MergedConfig",
    "find_yaml",
    "load_configuration",
    "parse_override",
    "read_yaml",
]

#: A key path in the configuration: ("model", "layers")
KeyPath = tuple[str, ...]


class ExperimentConfigError(FileProblem):
    """The experiment's configuration is invalid, or the experiment cannot be loaded.

    The message is one line, ``<file>: <key>: <problem>`` (parts that do not apply
    are left out), for example ``experiment.yaml: epochs: expected int, got 'ten'``.

    Attributes:
        path: the YAML file concerned (the main one for validation errors), or None.
        key: the key path (``model.layers``, ``lrs[1]``), or "".
        problem: the description of the problem alone.
    """



def join_key(path: Iterable[Any]) -> str:
    """``("model", "layers")`` → ``model.layers`` (how keys are named in messages)."""
    return ".".join(str(part) for part in path)


@dataclass
class MergedConfig:
    """The merged configuration, and where each of its values came from.

    Attributes:
        data: the merged mapping (what validation gets).
        main: the main YAML file, as the user named it (errors name it).
        origins: for a key path, what set it last: a YAML file path, or a
            command-line override such as ``-c epochs=3``. A key not listed takes the
            origin of its closest listed parent.
        yaml_origins: for a key path, the YAML file that gave it, when one did
            (``-c`` values are relative to the main file).
        python_path: the ``pythonpath`` folders of every YAML file read, made
            absolute, in reading order and without repeats. Unlike other lists, these
            add up: a base file's folders stay on the path when a later file adds its own.
    """

    data: dict[str, Any]
    main: Path
    origins: dict[KeyPath, str] = field(default_factory=dict)
    yaml_origins: dict[KeyPath, Path] = field(default_factory=dict)
    python_path: list[Path] = field(default_factory=list)

    def origin(self, path: Iterable[str]) -> str | None:
        """What set the value at ``path``: its closest parent that was set, else the
        first of its children that was (``-c a.b=1`` sets ``a.b``, and so ``a``)."""
        wanted = key = tuple(path)
        while key:
            if key in self.origins:
                return self.origins[key]
            key = key[:-1]
        for key, origin in self.origins.items():
            if wanted and key[: len(wanted)] == wanted:
                return origin
        return None

    def base_dir(self, key: str) -> Path:
        """The folder a relative path given by the top-level ``key`` is relative to:
        that of the YAML file that gave it (the main file's for a ``-c`` override or
        a default)."""
        source = self.yaml_origins.get((key,), self.main)
        return source.absolute().parent

    def fail(
        self, path: Iterable[Any], problem: str, *, origin_path: Iterable[Any] | None = None
    ) -> ExperimentConfigError:
        """An error about the value at ``path``, naming the main file and, when the
        value came from elsewhere, where it came from.

        Args:
            path: the key path the message names.
            problem: what is wrong.
            origin_path: the key path whose origin is told, when it is not ``path``
                (an unknown key is named by its mapping, but came with its own value).
        """
        parts = [str(part) for part in path]
        origin = self.origin(str(part) for part in (origin_path if origin_path is not None else parts))
        if origin is not None and origin != str(self.main):
            # Files are "set in", command-line overrides "set by" ("-c ...", "--file").
            problem += f" (set by {origin})" if origin.startswith("-") else f" (set in {origin})"
        # msgspec spells list indexes "lrs[1]": keep them glued to their key.
        return ExperimentConfigError(problem, path=self.main, key=join_key(parts).replace(".[", "["))

    def set(self, path: KeyPath, value: Any, origin: str) -> None:
        """Sets one value (command-line overrides), creating the mappings on the way."""
        target = self.data
        for depth, part in enumerate(path[:-1]):
            child = target.get(part)
            if not isinstance(child, dict):
                # A scalar on the way is replaced: the override says this is a mapping.
                child = target[part] = {}
                self._forget(path[: depth + 1])
            target = child
        target[path[-1]] = value
        self._forget(path)
        self.origins[path] = origin

    def _forget(self, path: KeyPath) -> None:
        """Drops the origins at and below ``path`` (a new value replaces them)."""
        for table in (self.origins, self.yaml_origins):
            for key in [key for key in table if key[: len(path)] == path]:
                del table[key]

    def merge(self, update: dict[str, Any], origin: Path, shown: str) -> None:
        """Merges one YAML file's mapping over the data, recording origins."""
        self._merge_into(self.data, update, (), origin, shown)

    def _merge_into(
        self, target: dict[str, Any], update: dict[str, Any], prefix: KeyPath, origin: Path, shown: str
    ) -> None:
        for key, value in update.items():
            path = (*prefix, str(key))
            if isinstance(value, dict) and isinstance(target.get(key), dict):
                self._merge_into(target[key], value, path, origin, shown)
                continue
            target[key] = _copy(value)
            self._forget(path)
            self.origins[path] = shown
            self.yaml_origins[path] = origin


def _copy(value: Any) -> Any:
    """A copy of the nested mappings and lists, so that merging never aliases a file's data."""
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


def find_yaml(name: str | Path, base: Path | None = None) -> Path:
    """The YAML file ``name`` designates; the ``.yaml`` suffix may be left out.

    Args:
        name: the file as written (on the command line or in ``imports``).
        base: the folder a relative name is relative to (default: the current one).

    Raises:
        ExperimentConfigError: neither the name nor the name with ``.yaml`` is a file.
    """
    path = Path(name).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    if path.is_file():
        return path
    tried = [str(path)]
    if path.suffix != ".yaml":
        with_suffix = path.with_name(path.name + ".yaml")
        if with_suffix.is_file():
            return with_suffix
        tried.append(str(with_suffix))
    if path.is_dir():
        raise ExperimentConfigError("is a folder, not a YAML file", path=path)
    raise ExperimentConfigError(f"no such file (tried {' and '.join(tried)})", path=path)


def read_yaml(path: Path) -> dict[str, Any]:
    """Reads one YAML file, which must hold a mapping (an empty file is an empty one).

    Raises:
        ExperimentConfigError: the file cannot be read, is not valid YAML (the
            message gives the line and column), or does not hold a mapping.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ExperimentConfigError(f"cannot read the file ({reason})", path=path) from exc
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        raise ExperimentConfigError(yaml_problem(exc, text), path=path) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ExperimentConfigError(f"expected a mapping at the top level, got {show_value(data)}", path=path)
    return data


def parse_override(text: str) -> tuple[KeyPath, str]:
    """Reads a ``-c key.sub=value`` override: the key path and the value (a string).

    Raises:
        ExperimentConfigError: there is no ``=``, or the key has an empty part.
    """
    key, sep, value = text.partition("=")
    if not sep:
        raise ExperimentConfigError(f"-c {text}: expected key=value (for example -c epochs=10)")
    parts = tuple(part.strip() for part in key.split("."))
    if not all(parts):
        raise ExperimentConfigError(f"-c {text}: the key {key.strip()!r} has an empty part")
    return parts, value


class _Reader:
    """Reads YAML files with their imports, detecting import cycles."""

    def __init__(self, merged: MergedConfig):
        self.merged = merged

    def load(self, path: Path, stack: tuple[Path, ...] = (), *, keep_imports: bool = False) -> None:
        """Merges ``path`` over the data, after the files it imports.

        Args:
            path: the YAML file (it exists).
            stack: the files importing this one, outermost first (to find cycles).
            keep_imports: keep the ``imports``/``parent`` keys in the data (the main
                file's are its configuration's; imported files' are consumed here).
        """
        chain = (*stack, path.resolve())
        data = read_yaml(path)
        for parent_path in self.imports(data, path):
            real = parent_path.resolve()
            if real in chain:
                cycle = " -> ".join(str(item) for item in (*chain[chain.index(real) :], real))
                key = "parent" if "parent" in data else "imports"
                raise ExperimentConfigError(f"import cycle: {cycle}", path=path, key=key)
            self.load(parent_path, chain)
        self.add_python_path(data, path)
        if not keep_imports:
            data = {key: value for key, value in data.items() if key not in ("imports", "parent")}
        self.merged.merge(data, path, str(path))

    @staticmethod
    def imports(data: dict[str, Any], path: Path) -> list[Path]:
        """The files a YAML file imports, found relative to it."""
        imports = data.get("imports")
        parent = data.get("parent")
        if imports is not None and parent is not None:
            raise ExperimentConfigError(
                "give either imports (a list of files) or parent (the older single-file form), not both",
                path=path,
                key="imports",
            )
        if parent is not None:
            if not isinstance(parent, str):
                raise ExperimentConfigError(f"expected a file name, got {show_value(parent)}", path=path, key="parent")
            names: list[Any] = [parent]
            key = "parent"
        else:
            if imports is None:
                return []
            if not isinstance(imports, list):
                raise ExperimentConfigError(
                    f"expected a list of file names, got {show_value(imports)}", path=path, key="imports"
                )
            names, key = imports, "imports"
        found = []
        for index, name in enumerate(names):
            where = key if key == "parent" else f"imports[{index}]"
            if not isinstance(name, str) or not name:
                raise ExperimentConfigError(f"expected a file name, got {show_value(name)}", path=path, key=where)
            try:
                found.append(find_yaml(name, path.parent))
            except ExperimentConfigError as exc:
                raise ExperimentConfigError(f"{exc.path}: {exc.problem}", path=path, key=where) from None
        return found

    def add_python_path(self, data: dict[str, Any], path: Path) -> None:
        """Records the file's ``pythonpath`` folders, made absolute relative to it."""
        entries = data.get("pythonpath")
        if entries is None:
            return
        if not isinstance(entries, list) or not all(isinstance(item, str) for item in entries):
            raise ExperimentConfigError(
                f"expected a list of folders, got {show_value(entries)}", path=path, key="pythonpath"
            )
        for entry in entries:
            folder = Path(entry).expanduser()
            # abspath folds "." and ".." but keeps symbolic links: the folder stays
            # the one the user wrote, recognisable in sys.path.
            folder = Path(os.path.abspath(folder if folder.is_absolute() else path.parent / folder))
            if folder not in self.merged.python_path:
                self.merged.python_path.append(folder)


def load_configuration(
    main: str | Path,
    *,
    pre_yaml: Iterable[str | Path] = (),
    post_yaml: Iterable[str | Path] = (),
    overrides: Iterable[str] = (),
) -> MergedConfig:
    """Reads and merges an experiment's YAML files and ``-c`` overrides.

    Args:
        main: the main YAML file (``.yaml`` may be left out).
        pre_yaml: files merged before the main one (``--pre-yaml``).
        post_yaml: files merged after the main one (``--post-yaml``).
        overrides: ``key.sub=value`` strings (``-c``), applied last.

    Raises:
        ExperimentConfigError: a file is missing, unreadable, not valid YAML or not
            a mapping; an import is missing or makes a cycle; an override has no ``=``.
    """
    # Overrides are checked first: a typo on the command line is reported before
    # any file is read.
    parsed = [(parse_override(text), text) for text in overrides]
    main_path = find_yaml(main)
    merged = MergedConfig(data={}, main=main_path)
    reader = _Reader(merged)
    for name in pre_yaml:
        reader.load(find_yaml(name))
    reader.load(main_path, keep_imports=True)
    for name in post_yaml:
        reader.load(find_yaml(name))
    for (key, value), text in parsed:
        merged.set(key, value, f"-c {text}")
    return merged
