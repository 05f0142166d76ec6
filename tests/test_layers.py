"""Every import points down: the floors of ``xpm/`` (docs/architecture.md), read with ``ast``.

Each module of the package sits on a floor; a module imports only from floors
below its own, or from its own floor. Imports inside functions count, and so do
module names written as strings (the fork server's preload list, the process
handlers, the lazy names of the package face). The few imports that point up are
listed by name below, each with its reason.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Iterator, NamedTuple

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "xpm"

#: The floors, bottom to top: module name (or package prefix ending in ".") -> floor.
#: Sub-floors (3.0 ... 3.4) order the configuration layer, whose inner imports point
#: both ways by nature (a class needs its value types, a value type recognises classes).
FLOORS: dict[str, float] = {
    # 1: vocabulary: errors, records, names, this host's processes, local atomic writes
    "xpm._version": 1,
    "xpm.errors": 1,
    "xpm.schema": 1,
    "xpm.layout": 1,
    "xpm.fsutil": 1,
    "xpm.process": 1,
    "xpm.imports": 1,
    "xpm.docsloader": 1,
    "xpm.launchers.slurm_options": 1,
    "xpm.location": 1,
    # 2: rules (state, filter), encodings, settings and the running contexts
    "xpm.codec": 2,
    "xpm.filter": 2,
    "xpm.runmode": 2,
    "xpm.environment": 2,
    "xpm.settings": 2,
    "xpm.yamlfile": 2,
    "xpm.state": 2,
    "xpm.context": 2,
    "xpm.taskglobals": 2,
    "xpm.taskoutputs": 2,
    "xpm.notifications": 2,
    "xpm.gitinfo": 2,
    "xpm.notify": 2,
    # 3: configurations and their identity
    "xpm.config.fields": 3.0,
    "xpm.config.docs": 3.0,
    "xpm.config.partial": 3.0,
    "xpm.config.contexts": 3.0,
    "xpm.config.types": 3.1,
    "xpm.config.datapath": 3.1,
    "xpm.config.checkers": 3.1,
    "xpm.config.classinfo": 3.2,
    "xpm.config.base": 3.3,
    "xpm.config.info": 3.3,
    "xpm.config.operations": 3.3,
    "xpm.config.hooks": 3.3,
    "xpm.config.deprecate": 3.3,
    "xpm.config.serializers": 3.3,
    "xpm.config.annotations": 3.4,
    "xpm.config": 3.3,
    "xpm.ids": 3.4,
    "xpm.ids_codegen": 3.4,
    "xpm.serialize": 3.4,
    "xpm.statedict": 3.4,
    "xpm.runinfo": 3.4,
    "xpm.paramdiff": 3.4,
    # 4: the filesystem
    "xpm.locks": 4,
    "xpm.workspace": 4,
    "xpm.sshworkspace": 4,
    "xpm.rsync": 4.5,
    # 5: records, one noun each, over a workspace
    "xpm.store": 5,
    "xpm.store.": 5,
    # 6: starting and stopping processes (no store, no scheduler, no job program)
    "xpm.launchers": 6,
    "xpm.launchers.": 6,
    # 7: the job side, started by module name
    "xpm.runner": 7,
    "xpm.runner.": 7,
    # 8: deciding
    "xpm.scheduler": 8,
    "xpm.scheduler.": 8,
    "xpm.submission": 8,
    # 9: porcelain: the experiment, reading, acting, repairing
    "xpm.runs": 9,
    "xpm.runbookkeeping": 9,
    "xpm.query": 9,
    "xpm.control": 9,
    "xpm.maintenance": 9,
    "xpm.copyjobs": 9,
    "xpm.copying": 9,
    "xpm.copying_rsync": 9,
    "xpm.history": 9,
    "xpm.runspec": 9,
    "xpm.rundiff": 9,
    "xpm.submitting": 9,
    "xpm.experiments": 9,
    "xpm.experiments.": 9,
    "xpm.dynamic": 9,
    "xpm.refactor": 9,
    "xpm.checkdoc": 9,
    "xpm.skill": 9,
    # 10: shells, and the package face (its lazy names reach every floor)
    "xpm": 10,
    "xpm.__main__": 10,
    "xpm.cli": 10,
    "xpm.cli.": 10,
    "xpm.compat": 10,
    "xpm.compat.": 10,
    "xpm.monitor": 10,
    "xpm.monitor.": 10,
    "xpm.monitor.onejob": 10,
    "xpm.web": 10,
    "xpm.web.": 10,
}

#: The imports that point up, by (importer, imported), with their reason
ALLOWED_UP: dict[tuple[str, str], str] = {
    ("xpm.config.base", "xpm.ids"): (
        "the lazy identity hook: ConfigMixin.__identifier__ and config_digest look up xpm.ids.digest on first "
        "use; xpm.ids reads ConfigInfo, ClassInfo and Argument of the configuration layer"
    ),
    ("xpm.config.info", "xpm.ids"): (
        "the folder of a partial's generated path is named by its partial identifier (xpm.ids), looked up "
        "when paths are generated, not at import"
    ),
    ("xpm.config.classinfo", "xpm.config.base"): (
        "config-internal: a class's value types recognise configuration classes (ConfigMixin), on use"
    ),
    ("xpm.config.types", "xpm.config.base"): (
        "config-internal: a configuration value type checks values against Config/ConfigMixin, on use"
    ),
    ("xpm.runner.forkserver", "xpm.__main__"): (
        "a name, not an import: the fork server finds the spec of xpm.__main__ (without running it) so that "
        "a forked job's __main__ is that of `python -m xpm run`"
    ),
    ("xpm.runs", "xpm.web.serve"): (
        "experiment(port=...) serves the web monitor (a shell over the monitor's model) for the time of the "
        "run, on use: the reference's keyword, so the experiment starts it"
    ),
    ("xpm.settings", "xpm.launchers.slurm"): (
        "WorkspaceSettings.make_launcher, a convenience for user code, on use; xpm itself builds the "
        "workspace's launcher with xpm.launchers.slurm.launcher_from_settings"
    ),
}

#: A string that may name a module of the package (``xpm.a.b``, or ``xpm.a.b:attribute``)
MODULE_STRING = re.compile(r"^xpm(?:\.[A-Za-z_][A-Za-z0-9_]*)+(?::[A-Za-z_][A-Za-z0-9_]*)?$")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def floor(module: str) -> float:
    """The floor of a module: its own entry, else the longest package prefix that holds it."""
    if module in FLOORS:
        return FLOORS[module]
    prefixes = [p for p in FLOORS if p.endswith(".") and module.startswith(p)]
    if not prefixes:
        raise KeyError(f"{module} has no floor: add it to FLOORS in tests/test_layers.py")
    return FLOORS[max(prefixes, key=len)]


def resolve(module: str) -> str | None:
    """The module of the package that an imported name designates (None: not one of ours)."""
    while module:
        if module in MODULES:
            return module
        module = module.rpartition(".")[0]
    return None


class Import(NamedTuple):
    importer: str
    imported: str
    line: int
    how: str


def imports_of(module: str, path: Path) -> Iterator[Import]:
    """Every import of a package module by ``module``: statements anywhere, and module names in strings."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    is_package = path.name == "__init__.py"
    not_imports: set[int] = set()
    for node in ast.walk(tree):
        # ``[python, "-m", "xpm.runner.forkserver", ...]`` starts a program: not an import.
        if isinstance(node, (ast.List, ast.Tuple)):
            for before, item in zip(node.elts, node.elts[1:]):
                if isinstance(before, ast.Constant) and before.value == "-m":
                    not_imports.add(id(item))
        # ``logging.getLogger("xpm.scheduler")`` names a logger.
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "getLogger":
            not_imports.update(id(arg) for arg in node.args)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = resolve(alias.name)
                if target:
                    yield Import(module, target, node.lineno, "import")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module if is_package else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            if not source.startswith("xpm"):
                continue
            for alias in node.names:
                # ``from xpm import layout`` imports the module xpm.layout, not the package face.
                target = resolve(f"{source}.{alias.name}") if f"{source}.{alias.name}" in MODULES else resolve(source)
                if target:
                    yield Import(module, target, node.lineno, "from-import")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_STRING.match(node.value):
            if id(node) in not_imports:
                continue
            named = node.value.partition(":")[0]
            if named in MODULES:
                yield Import(module, named, node.lineno, "string")


ALL_IMPORTS = [imp for module, path in MODULES.items() for imp in imports_of(module, path)]


def test_every_module_has_a_floor():
    assert [m for m in MODULES if not _has_floor(m)] == []


def _has_floor(module: str) -> bool:
    try:
        floor(module)
    except KeyError:
        return False
    return True


def test_no_import_points_up():
    up = [
        f"{imp.importer} (floor {floor(imp.importer)}) -> {imp.imported} (floor {floor(imp.imported)}), "
        f"line {imp.line} ({imp.how})"
        for imp in ALL_IMPORTS
        if floor(imp.imported) > floor(imp.importer) and (imp.importer, imp.imported) not in ALLOWED_UP
    ]
    assert up == []


@pytest.mark.parametrize("pair", sorted(ALLOWED_UP))
def test_each_allowed_exception_is_still_needed(pair: tuple[str, str]):
    """An exception that no import uses any more must leave the list."""
    importer, imported = pair
    assert floor(imported) > floor(importer)
    assert any((imp.importer, imp.imported) == pair for imp in ALL_IMPORTS)


def test_the_string_names_are_read():
    """The module names written as strings are checked too (else a move could hide an import)."""
    strings = {(imp.importer, imp.imported) for imp in ALL_IMPORTS if imp.how == "string"}
    assert ("xpm.runner.forkserver", "xpm.runner.job") in strings  # the fork server's preload list
    assert ("xpm.launchers", "xpm.launchers.local") in strings  # the process handlers
    assert ("xpm", "xpm.runs") in strings  # the lazy names of the package face


def test_the_job_side_is_started_by_name_only():
    """Nothing imports the job program but itself and ``python -m xpm``: launchers start it as a
    program, and the scheduler, the experiment and the shells never load it."""
    job_side = {m for m in MODULES if floor(m) == FLOORS["xpm.runner"]}
    assert job_side
    importers = {imp.importer for imp in ALL_IMPORTS if imp.imported in job_side} - job_side
    assert importers == {"xpm.__main__"}


def test_the_store_imports_no_launcher_and_nothing_below_the_shells_imports_click_or_urwid():
    for module, path in MODULES.items():
        if floor(module) >= FLOORS["xpm.cli"]:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {
            alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        }
        names |= {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not names & {"click", "urwid"}, module


#: Strings equal to a job state or failure reason that mean something else, by (module, word)
NOT_JOB_STATES: dict[tuple[str, str], str] = {
    ("xpm.control", "failed"): "an action's outcome (Outcome.result), not a job state",
    ("xpm.control", "cancelled"): "an action's outcome (Outcome.result): a job cancelled before it started",
    ("xpm.monitor.app", "error"): "the key of the error in a background call's result",
    ("xpm.scheduler.report", "failed"): "the word the progress line shows for jobs in error",
    ("xpm.scheduler.options", "error"): "a dirty_git action (DirtyGitAction.ERROR), not a job state",
    ("xpm.workspace", "memory"): "fsspec's memory filesystem",
}


def test_no_job_state_string_outside_state_and_schema():
    """Job states and failure reasons are spelled in xpm/state.py and xpm/schema.py only;
    everything else names them (``state.DONE``...), so that a rule is found by its name."""
    from xpm.schema import FAILURE_REASONS, JOB_STATES

    words = set(JOB_STATES) | set(FAILURE_REASONS)
    found = []
    for module, path in MODULES.items():
        if module in ("xpm.state", "xpm.schema"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and node.value in words
                and id(node) not in docstrings
                and (module, node.value) not in NOT_JOB_STATES
            ):
                found.append(f"{module}:{node.lineno}: {node.value!r}")
    assert found == []


@pytest.mark.parametrize("pair", sorted(NOT_JOB_STATES))
def test_each_other_meaning_is_still_there(pair: tuple[str, str]):
    module, word = pair
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    assert any(isinstance(node, ast.Constant) and node.value == word for node in ast.walk(tree))
