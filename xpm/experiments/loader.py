"""Loading an experiment: its Python code, its ``run`` function, its validated configuration.

The steps, in the order ``run-experiment`` takes them:

1. :func:`apply_options`, then :func:`find_target`: which file or module defines
   ``run`` (nothing is imported yet; ``--show`` prints the data before this step);
2. :func:`load_experiment`: extends ``sys.path``, runs ``pre_experiment``, imports
   the experiment and finds ``run(helper, cfg)`` and its configuration class;
3. :func:`validate`: turns the merged mapping into that class, with one-line errors
   naming the file, the key and the problem.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import importlib
import inspect
import logging
import os
import re
import sys
import traceback
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from xpm.experiments import ConfigurationBase, grid
from xpm.experiments.convert import ConversionError, convert, dec_hook, describe
from xpm.experiments.yamlconfig import ExperimentConfigError, MergedConfig, show_value
from xpm.imports import NotAModule, import_file

__all__ = [
    "LoadedExperiment",
    "Target",
    "apply_options",
    "check_keys",
    "experiment_id",
    "find_run",
    "find_target",
    "load_experiment",
    "validate",
    "validate_attrs",
]

T = TypeVar("T")

logger = logging.getLogger("xpm.experiments")

# Set on the modules this loader imports from a file, so that a later run in the
# same process may replace them (and only them) in sys.modules.
_MARK = "__xpm_experiment_file__"


@dataclass
class Target:
    """Where the ``run`` function is: a Python file or a module.

    Attributes:
        file: the experiment file (absolute, existing), or None.
        module: the dotted module name, or None.
        search_from: for a module, the folder of the YAML file that named it (the
            import falls back on the folders above it).
        key: how messages name the setting (``file``, ``module``, ``--file``...).
    """

    file: Path | None = None
    module: str | None = None
    search_from: Path | None = None
    key: str = "file"

    def __str__(self) -> str:
        return str(self.file) if self.file is not None else str(self.module)


@dataclass
class LoadedExperiment:
    """An imported experiment.

    Attributes:
        run: the ``run(helper, cfg)`` function.
        cls: its configuration class (the annotation of ``cfg``).
        where: the file or module, for messages.
        folders: the folders added to ``sys.path`` for it (jobs need them too).
    """

    run: Callable[[Any, Any], Any]
    cls: type
    where: str
    folders: list[Path]


def apply_options(merged: MergedConfig, file: str | None = None, module: str | None = None) -> None:
    """Records ``--file``/``--module-name`` in the data: either replaces both of the
    YAML's ``file`` and ``module`` keys (so that ``--show`` and ``cfg`` see the choice).

    Raises:
        ExperimentConfigError: both options are given.
    """
    if file is not None and module is not None:
        raise ExperimentConfigError("give either --file or --module-name, not both")
    if module is not None:
        merged.data.pop("file", None)
        merged.set(("module",), module, "--module-name")
    elif file is not None:
        merged.data.pop("module", None)
        merged.set(("file",), file, "--file")


#: A dotted module name: what importlib can import (anything else is refused with its key)
_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


def find_target(merged: MergedConfig, file: str | None = None, module: str | None = None) -> Target:
    """Decides which file or module defines ``run`` (nothing is imported).

    ``file``/``module`` are the ``--file``/``--module-name`` options (see
    :func:`apply_options`); they win over the YAML's keys. A relative ``--file`` is
    relative to the current folder (then to the main YAML's folder, as in
    experimaestro); the YAML's ``file`` is relative to the YAML file that gave it.

    Raises:
        ExperimentConfigError: both ``file`` and ``module`` are given, a value is not
            a string, or the file does not exist.
    """
    if module is not None:
        if not _MODULE_NAME.fullmatch(module.strip()):
            raise ExperimentConfigError(
                f"expected a module name (a.b.c), got {show_value(module)}", key="--module-name"
            )
        return Target(module=module.strip(), search_from=Path.cwd(), key="--module-name")
    if file is not None:
        path = _python_file(Path.cwd(), file) or _python_file(merged.main.absolute().parent, file)
        if path is None:
            raise ExperimentConfigError(f"no such file: {_tried(Path(file))}", key="--file")
        return Target(file=path, key="--file")

    data = merged.data
    given_module = data.get("module")
    if given_module is not None:
        if "file" in data:
            raise merged.fail(["module"], "give either file (a Python file) or module (a module name), not both")
        if not isinstance(given_module, str) or not _MODULE_NAME.fullmatch(given_module.strip()):
            raise merged.fail(["module"], f"expected a module name (a.b.c), got {show_value(given_module)}")
        return Target(module=given_module.strip(), search_from=merged.base_dir("module"), key="module")

    given_file = data.get("file", ConfigurationBase.file)
    if not isinstance(given_file, str) or not given_file:
        raise merged.fail(["file"], f"expected a file name, got {show_value(given_file)}")
    base = merged.base_dir("file")
    path = _python_file(base, given_file)
    if path is None:
        raise merged.fail(["file"], f"no such file: {_tried(base / given_file)}")
    return Target(file=path, key="file")


def _tried(path: Path) -> str:
    """The files looked for, for a message: ``x (nor x.py)``, or ``x.py``."""
    return str(path) if path.suffix == ".py" else f"{path} (nor {path}.py)"


def _python_file(base: Path, name: str) -> Path | None:
    """``base/name``, or ``base/name.py``, if it is a file (made absolute)."""
    path = base / Path(name).expanduser()
    for candidate in (path, path.with_name(path.name + ".py")):
        if candidate.is_file():
            # abspath folds "configs/../lib" but keeps symbolic links, as written.
            return Path(os.path.abspath(candidate))
    return None


def load_experiment(merged: MergedConfig, target: Target) -> LoadedExperiment:
    """Imports the experiment (after ``pythonpath`` and ``pre_experiment``) and finds ``run``.

    Raises:
        ExperimentConfigError: the module cannot be found, ``pre_experiment`` cannot
            be found, or the experiment has no valid ``run`` function.
        Exception: whatever the user's code raises while it is imported.
    """
    folders = list(merged.python_path)
    if target.file is not None:
        # The experiment's folder goes on sys.path so that it can import its
        # neighbours, as when a script runs.
        folders.append(target.file.parent)
    _extend_sys_path(folders)
    _run_pre_experiment(merged)
    if target.file is not None:
        module = _import_file(target.file)
    else:
        module = _import_module(merged, target, folders)
    run, cls = find_run(module, str(target))
    return LoadedExperiment(run=run, cls=cls, where=str(target), folders=folders)


def _extend_sys_path(folders: list[Path]) -> None:
    # Appended, not prepended: a user folder must not shadow installed packages
    # (a local yaml.py would break PyYAML). experimaestro appends too.
    for folder in folders:
        if str(folder) not in sys.path:
            sys.path.append(str(folder))


def _run_pre_experiment(merged: MergedConfig) -> None:
    """Runs ``pre_experiment``: a Python file (``/`` or ``.py``) or a module name.

    Raises:
        ExperimentConfigError: the file or module is not found, or raises: one line
            naming it, the exception and where it was raised (``--debug`` logs the
            traceback), since this set-up code is not the experiment itself.
    """
    value = merged.data.get("pre_experiment")
    if value is None:
        return
    if not isinstance(value, str) or not value.strip():
        raise merged.fail(["pre_experiment"], f"expected a Python file or module name, got {show_value(value)}")
    if "/" in value or value.endswith(".py"):
        path = merged.base_dir("pre_experiment") / Path(value).expanduser()
        if not path.is_file():
            raise merged.fail(["pre_experiment"], f"no such file: {path}")
        import runpy

        try:
            runpy.run_path(str(path), run_name="__xpm_pre_experiment__")
        except Exception as exc:
            raise _pre_experiment_failed(merged, str(path), exc) from exc
        return
    try:
        importlib.import_module(value)
    except ModuleNotFoundError as exc:
        if not _is_missing(exc, value):
            raise _pre_experiment_failed(merged, f"the module {value!r}", exc) from exc
        raise merged.fail(
            ["pre_experiment"],
            f"cannot import the module {value!r} ({exc}); a file is named with a / or a .py suffix",
        ) from None
    except Exception as exc:
        raise _pre_experiment_failed(merged, f"the module {value!r}", exc) from exc


def _pre_experiment_failed(merged: MergedConfig, what: str, exc: Exception) -> ExperimentConfigError:
    """``pre_experiment: <what> failed: <Exception>: <message> (<file>, line <n>)``."""
    logger.debug("pre_experiment %s failed", what, exc_info=exc)
    if isinstance(exc, SyntaxError) and exc.filename:
        filename, line, message = exc.filename, exc.lineno, exc.msg or ""
    else:
        frames = traceback.extract_tb(exc.__traceback__)
        # The line of the pre_experiment file that failed, rather than one deep in a library it called.
        own = [frame for frame in frames if frame.filename == what] or frames
        filename, line = (own[-1].filename, own[-1].lineno) if own else ("", None)
        message = str(exc).splitlines()[0] if str(exc) else ""
    # The file is named when it is not the pre_experiment file itself.
    where = "" if line is None else f" (line {line})" if filename == what else f" ({filename}, line {line})"
    reason = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return merged.fail(["pre_experiment"], f"{what} failed: {reason}{where}")


def _import_file(path: Path) -> types.ModuleType:
    """Imports a Python file under its stem, registered in ``sys.modules``.

    Registered so that the classes it defines can be found again by their module
    name (by the identifier code, or a job process with the folder on its path)
    without running the file a second time.
    """
    name = path.stem
    existing = sys.modules.get(name)
    if existing is not None:
        if getattr(existing, "__file__", None) == str(path) and getattr(existing, _MARK, False):
            return existing
        if not getattr(existing, _MARK, False):
            raise ExperimentConfigError(
                f"the experiment file has the name of an already imported module {name!r} "
                f"({getattr(existing, '__file__', None) or 'built in'}); rename the file",
                path=path,
            )
    try:
        module = import_file(name, path)
    except NotAModule:
        raise ExperimentConfigError("cannot be imported as a Python module", path=path) from None
    setattr(module, _MARK, True)
    return module


def _is_missing(exc: ModuleNotFoundError, name: str) -> bool:
    """Whether the error says ``name`` itself (or a parent package) is missing,
    rather than something the module imports."""
    return exc.name is not None and (name == exc.name or name.startswith(exc.name + "."))


def _import_module(merged: MergedConfig, target: Target, folders: list[Path]) -> types.ModuleType:
    """Imports a module; if it is not found, looks in the folders above the YAML file
    that named it (the layout ``project/configs/x.yaml`` with ``module: project.xp``)."""
    name = str(target.module)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if not _is_missing(exc, name):
            raise  # the module exists; something it imports does not (a user's bug)
        first_error = exc
    top = name.split(".")[0]
    start = target.search_from or merged.main.absolute().parent
    for folder in (start, *start.parents):
        if (folder / top).is_dir() or (folder / f"{top}.py").is_file():
            folders.append(folder)
            _extend_sys_path([folder])
            importlib.invalidate_caches()
            try:
                return importlib.import_module(name)
            except ModuleNotFoundError as exc:
                if not _is_missing(exc, name):
                    raise
                first_error = exc
            break
    problem = f"cannot import the module {name!r} ({first_error}); also looked in {start} and the folders above it"
    if target.key == "module":
        raise merged.fail(["module"], problem)
    raise ExperimentConfigError(problem, key=target.key)


def find_run(module: types.ModuleType, where: str) -> tuple[Callable[[Any, Any], Any], type]:
    """The module's ``run(helper, cfg)`` function and its configuration class.

    The class is the annotation of the second parameter (strings, as written under
    ``from __future__ import annotations``, are resolved); without one it is
    :class:`ConfigurationBase`, which accepts only its own keys.

    Raises:
        ExperimentConfigError: no ``run``, not two parameters, or an annotation
            that is not a ``@configuration`` class deriving from ``ConfigurationBase``.
    """
    run = getattr(module, "run", None)
    if run is None or not callable(run):
        raise ExperimentConfigError(f"{where} defines no run(helper, cfg) function")
    try:
        params = list(inspect.signature(run).parameters.values())
    except (TypeError, ValueError):
        raise ExperimentConfigError(f"{where}: cannot read the parameters of run") from None
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if len(params) != 2 or any(param.kind not in positional for param in params):
        shown = ", ".join(str(param) for param in params)
        raise ExperimentConfigError(f"{where}: run must take exactly two parameters (helper, cfg), not ({shown})")

    annotation = params[1].annotation
    if annotation is inspect.Parameter.empty:
        return run, ConfigurationBase
    if isinstance(annotation, str):
        annotation = _resolve(annotation, run, where)
    if not (isinstance(annotation, type) and issubclass(annotation, ConfigurationBase)):
        raise ExperimentConfigError(
            f"{where}: the second parameter of run must be annotated with a @configuration class "
            f"deriving from ConfigurationBase, not {annotation!r}"
        )
    if not dataclasses.is_dataclass(annotation) or "__dataclass_fields__" not in vars(annotation):
        # A subclass without @configuration would silently lose its own fields.
        raise ExperimentConfigError(f"{where}: {annotation.__qualname__} must be decorated with @configuration")
    return run, annotation


def _resolve(annotation: str, run: Any, where: str) -> Any:
    """Resolves one string annotation in the namespace of ``run``.

    Only this one: the helper's annotation may name a class imported under
    ``TYPE_CHECKING``, which ``typing.get_type_hints(run)`` would fail on.
    """

    def shim() -> None:
        """Carries the one annotation to resolve."""

    shim.__annotations__ = {"cfg": annotation}
    try:
        return typing.get_type_hints(shim, globalns=getattr(run, "__globals__", None))["cfg"]
    except Exception as exc:  # NameError, SyntaxError, AttributeError...
        raise ExperimentConfigError(
            f"{where}: cannot resolve the annotation {annotation!r} of run's second parameter ({exc})"
        ) from None


def _fields(cls: type) -> dict[str, Any]:
    """The init fields of a dataclass and their (resolved) types."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # an unresolvable annotation: msgspec will report it
        hints = {}
    return {f.name: hints.get(f.name, f.type) for f in dataclasses.fields(cls) if f.init}


def check_keys(data: dict[str, Any], cls: type, merged: MergedConfig, prefix: tuple[str, ...] = ()) -> dict[str, Any]:
    """Refuses keys the configuration class does not declare, at any depth, and
    reads the values of ``GridSearch`` fields.

    msgspec ignores unknown keys for dataclasses, and a misspelled key would then
    silently keep its default value.

    Returns:
        The data, where the value of each ``GridSearch[T]`` field is a
        :class:`~xpm.experiments.grid.GenericParams` of values of type ``T``
        (``data`` itself is left as it is).

    Raises:
        ExperimentConfigError: naming the mapping, the unknown key and the known ones,
            or the grid-search value that is wrong.
    """
    fields = _fields(cls)
    checked = {}
    for key, value in data.items():
        if key not in fields:
            known = sorted(fields)
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise merged.fail(
                prefix,
                f"unknown key {str(key)!r} ({hint}known keys: {', '.join(known)})",
                origin_path=(*prefix, str(key)),
            )
        checked[key] = _check_nested(value, fields[key], merged, (*prefix, str(key)))
    return checked


def _check_nested(value: Any, tp: Any, merged: MergedConfig, path: tuple[str, ...]) -> Any:
    """Follows a value into the nested dataclasses its type declares; returns it read."""
    item_type = grid.grid_item_type(tp)
    if item_type is not None and value is not None:
        try:
            return grid.GenericParams.from_any(value, item_type, parts=path)
        except grid.GridSearchError as exc:
            raise merged.fail(exc.parts, exc.problem) from None
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return check_keys(value, tp, merged, path) if isinstance(value, dict) else value
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union or (hasattr(types, "UnionType") and origin is types.UnionType):
        # Only an unambiguous union (Model | None) says which class a mapping is.
        classes = [arg for arg in args if isinstance(arg, type) and dataclasses.is_dataclass(arg)]
        if len(classes) == 1:
            return _check_nested(value, classes[0], merged, path)
    elif origin in (list, set, frozenset, tuple) and isinstance(value, list) and args:
        items = []
        for index, item in enumerate(value):
            item_type = args[0] if origin is not tuple or args[-1] is Ellipsis else args[min(index, len(args) - 1)]
            items.append(_check_nested(item, item_type, merged, (*path, f"[{index}]")))
        return items
    elif origin is dict and isinstance(value, dict) and len(args) == 2:
        return {key: _check_nested(item, args[1], merged, (*path, str(key))) for key, item in value.items()}
    return value


def validate(merged: MergedConfig, cls: type) -> Any:
    """Turns the merged mapping into an instance of the configuration class.

    String values (from ``-c key=value``) are coerced to the declared types
    (``"3"`` to 3, ``"true"`` to True). The values of ``GridSearch`` fields and the
    ``grid_search`` block are checked too (see :mod:`xpm.experiments.grid`).

    Raises:
        ExperimentConfigError: an unknown key, a missing required key, or a value of
            the wrong type, as ``<main file>: <key path>: <problem>``.
    """
    import msgspec

    data = check_keys(merged.data, cls, merged)
    try:
        cfg: Any = msgspec.convert(data, type=cls, strict=False, dec_hook=dec_hook)
    except msgspec.ValidationError as exc:
        raise merged.fail(*describe(str(exc), merged.data)) from None
    except (TypeError, NameError) as exc:  # a declared type msgspec cannot handle or resolve
        raise ExperimentConfigError(
            f"the configuration class {cls.__qualname__} cannot be validated ({exc})", path=merged.main
        ) from None
    try:
        grid.check_grid(cfg)
    except grid.GridSearchError as exc:
        raise merged.fail(exc.parts, exc.problem) from None
    return cfg


def validate_attrs(cls: type[T], data: Any) -> T:
    """A configuration of class ``cls`` from a mapping, checked as ``run-experiment`` checks it.

    Unknown keys are refused, strings are coerced to the declared types, and the
    values of ``GridSearch`` fields are read. ``data`` already of class ``cls`` is
    returned as it is.

    Raises:
        ExperimentConfigError: ``<class>: <key path>: <problem>``.
    """
    if isinstance(data, cls):
        return data
    merged = MergedConfig(data=data, main=Path(getattr(cls, "__qualname__", str(cls))))
    if isinstance(data, dict) and dataclasses.is_dataclass(cls):
        return typing.cast(T, validate(merged, cls))
    try:
        return typing.cast(T, convert(data, cls))
    except ConversionError as exc:
        raise merged.fail(exc.parts, exc.problem) from None


def experiment_id(cfg: Any, now: datetime.datetime | None = None) -> str:
    """The experiment id: ``cfg.id``, with ``-YYYYMMDD-HHMM`` when ``add_timestamp`` is set."""
    if not getattr(cfg, "add_timestamp", False):
        return str(cfg.id)
    moment = now if now is not None else datetime.datetime.now()
    return f"{cfg.id}-{moment:%Y%m%d-%H%M}"
