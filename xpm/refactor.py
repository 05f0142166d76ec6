"""Rewriting bare parameter defaults: ``x: Param[int] = 3`` becomes ``field(default=3, ignore_default=True)``.

A bare default already acts as ``ignore_default=True`` (a value equal to it stays
out of the identifier), and xpm warns about it; the explicit form keeps every
identifier as it is and says so. The rewrite works on the text: :mod:`ast` finds
the annotated assignments of class bodies and the exact span of each default, and
only those spans change, so comments, quotes and layout stay as they were. A
default written over several lines is left for a manual fix (its line is given).
A rewritten file is parsed again before it is written: a file that would not parse
is never written.
"""

from __future__ import annotations

import ast
import difflib
import io
import os
import re
import tokenize
from dataclasses import dataclass, field
from typing import Iterator

from xpm.errors import FileProblem

__all__ = ["Change", "Manual", "Rewrite", "python_files", "read_rewrite", "rewrite_source", "write_rewrite"]

#: The annotations whose defaults are rewritten
KINDS = ("Param", "Meta", "Option")
#: The packages whose ``field`` the rewrite writes (``from xpm import field``, or experimaestro's)
PACKAGES = ("xpm", "experimaestro")
#: The modules that export ``field`` beside the annotations
FIELD_MODULES = frozenset({"xpm", "xpm.config", "experimaestro", "experimaestro.core.arguments"})
#: Folders never searched: caches, virtual environments, dependencies
SKIPPED_FOLDERS = frozenset({"__pycache__", "node_modules", "site-packages"})
#: The name ``field`` is imported under when the file's own ``field`` is another one (dataclasses')
FIELD_ALIAS = "xpm_field"

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


@dataclass(frozen=True)
class Change:
    """One default rewritten: ``owner.name`` at ``line``, ``old`` (the default) became ``new``."""

    line: int
    owner: str
    name: str
    old: str
    new: str


@dataclass(frozen=True)
class Manual:
    """A default written over several lines (from ``line``): to rewrite by hand."""

    line: int
    owner: str
    name: str


@dataclass
class Rewrite:
    """What the rewrite of one file gives: its old and new text, the changes, and what is left by hand."""

    path: str
    old: str
    new: str
    encoding: str = "utf-8"
    changes: list[Change] = field(default_factory=list)
    manual: list[Manual] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.new != self.old

    def diff(self, name: str | None = None) -> str:
        """The unified diff from the old text to the new one (``a/name``, ``b/name`` for a relative name)."""
        name = name if name is not None else self.path
        old, new = (name, name) if os.path.isabs(name) else (f"a/{name}", f"b/{name}")
        lines = difflib.unified_diff(self.old.splitlines(keepends=True), self.new.splitlines(keepends=True), old, new)
        # A last line without a newline would run into the next file's header.
        return "".join(line if line.endswith(("\n", "\r")) else line + "\n\\ No newline at end of file\n"
                       for line in lines)


class _Source:
    """A source text addressed as :mod:`ast` does: 1-based lines, columns in UTF-8 bytes."""

    def __init__(self, text: str):
        self.text = text
        self.lines = _LINE.findall(text)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))

    def offset(self, line: int, col: int) -> int:
        """The index in the text of the byte column ``col`` of ``line``."""
        if line > len(self.lines):
            return len(self.text)
        return self.starts[line - 1] + len(self.lines[line - 1].encode("utf-8")[:col].decode("utf-8"))

    def span(self, node: ast.expr) -> tuple[int, int]:
        assert node.end_lineno is not None and node.end_col_offset is not None
        return self.offset(node.lineno, node.col_offset), self.offset(node.end_lineno, node.end_col_offset)

    def newline(self) -> str:
        for line in self.lines:
            for end in ("\r\n", "\r", "\n"):
                if line.endswith(end):
                    return end
        return "\n"


@dataclass
class _Names:
    """What the module's imports bind: the annotation names, the package modules, and ``field``."""

    kinds: set[str] = field(default_factory=lambda: set(KINDS))
    #: the names bound to modules of xpm or experimaestro (``x`` of ``import xpm as x``) -> the module
    modules: dict[str, str] = field(default_factory=dict)
    #: names bound to the ``field`` of xpm or experimaestro
    fields: set[str] = field(default_factory=set)
    #: whether the module binds ``field`` to something else (dataclasses.field, its own function)
    other_field: bool = False
    star: bool = False
    #: the import that brought a parameter annotation, and its package
    origin: ast.stmt | None = None
    package: str | None = None
    last_import: ast.stmt | None = None

    def field_module(self) -> str | None:
        """A name bound to a module that exports ``field`` (``xpm`` of ``import xpm``), if any."""
        bound = [name for name, module in self.modules.items() if module in FIELD_MODULES]
        return min(bound, key=len) if bound else None


def _ours(module: str | None) -> str | None:
    root = (module or "").split(".")[0]
    return root if root in PACKAGES else None


def _read_names(tree: ast.Module) -> _Names:
    names = _Names()
    for statement in tree.body:
        if isinstance(statement, (ast.Import, ast.ImportFrom)):
            names.last_import = statement
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if package := _ours(alias.name):
                    names.package = names.package or package
                    names.modules[alias.asname or alias.name] = alias.name
                    if not alias.asname:
                        # ``import xpm.config`` binds ``xpm`` too.
                        names.modules[package] = package
        elif isinstance(node, ast.ImportFrom):
            package = _ours(node.module) if not node.level else None
            for alias in node.names:
                bound = alias.asname or alias.name
                if alias.name == "*":
                    names.star = names.star or node.module in FIELD_MODULES
                elif package and alias.name in KINDS:
                    names.kinds.add(bound)
                    if names.origin is None:
                        names.origin, names.package = node, package
                elif package and alias.name == "field":
                    names.fields.add(bound)
                elif bound == "field":
                    names.other_field = True
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == "field":
            names.other_field = True
        elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "field" for t in node.targets):
            names.other_field = True
    return names


def _kind_prefix(annotation: ast.expr, names: _Names) -> str | None:
    """``""`` for ``Param[...]``, ``"xpm."`` for ``xpm.Param[...]``, None for another annotation."""
    if not isinstance(annotation, ast.Subscript):
        return None
    head = annotation.value
    if isinstance(head, ast.Name) and head.id in names.kinds:
        return ""
    if isinstance(head, ast.Attribute) and head.attr in KINDS:
        module = ast.unparse(head.value)
        if names.modules.get(module) in FIELD_MODULES:
            return module + "."
        # ``xpm.config.types.Param``: a module without ``field``; the bare name is imported.
        return "" if module in names.modules else None
    return None


def _is_field_call(value: ast.expr, names: _Names) -> bool:
    if not isinstance(value, ast.Call):
        return False
    func = value.func
    return (isinstance(func, ast.Name) and (func.id == "field" or func.id in names.fields)) or (
        isinstance(func, ast.Attribute) and func.attr == "field"
    )


def _argument(text: str, value: ast.expr) -> str | None:
    """The default's text as a keyword argument: as written, or in parentheses (``1, 2`` or ``y := 3``)."""
    expected = ast.dump(value, include_attributes=False)
    for candidate in (text, f"({text})"):
        try:
            call = ast.parse(f"f(default={candidate})", mode="eval").body
        except SyntaxError:
            continue
        assert isinstance(call, ast.Call)
        if not call.args and len(call.keywords) == 1 and ast.dump(call.keywords[0].value) == expected:
            return candidate
    return None


def _defaults(tree: ast.Module) -> Iterator[tuple[str, ast.AnnAssign]]:
    """The annotated assignments with a value in class bodies, with their class's qualified name."""

    def visit(body: list[ast.stmt], prefix: str) -> Iterator[tuple[str, ast.AnnAssign]]:
        for node in body:
            if isinstance(node, ast.ClassDef):
                owner = prefix + node.name
                for item in node.body:
                    if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name) and item.value:
                        yield owner, item
                yield from visit(node.body, owner + ".")
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield from visit(node.body, prefix + node.name + ".<locals>.")
            elif isinstance(node, (ast.If, ast.Try, ast.With, ast.For, ast.While)):
                for block in (node.body, getattr(node, "orelse", []), getattr(node, "finalbody", [])):
                    yield from visit(block, prefix)
                for handler in getattr(node, "handlers", []):
                    yield from visit(handler.body, prefix)

    yield from visit(tree.body, "")


def rewrite_source(text: str, path: str = "<string>") -> Rewrite:
    """Rewrites the bare defaults of ``Param``, ``Meta`` and ``Option`` annotations in a module's text.

    ``None`` defaults are left alone (they mean "optional", without a default), and
    so are defaults already written with ``field(...)``. ``field`` is imported when
    the module does not have it, next to the import of the annotations.

    Raises:
        FileProblem: the text does not parse as Python.
    """
    try:
        tree = ast.parse(text, path)
    except (SyntaxError, ValueError) as exc:
        line = f"line {exc.lineno}: " if isinstance(exc, SyntaxError) and exc.lineno else ""
        msg = exc.msg if isinstance(exc, SyntaxError) else str(exc)
        raise FileProblem(f"{line}not valid Python ({msg}); left unchanged", path=path) from None
    source = _Source(text)
    names = _read_names(tree)
    if names.fields:
        need_import, field_name = False, min(names.fields)
    elif names.other_field:
        # ``field`` is another one (dataclasses'): reach xpm's through its module, or an alias.
        module = names.field_module()
        need_import, field_name = module is None, f"{module}.field" if module else FIELD_ALIAS
    else:
        need_import, field_name = not names.star, "field"

    result = Rewrite(path, text, text)
    edits: list[tuple[int, int, str]] = []
    bare = False
    for owner, node in _defaults(tree):
        prefix = _kind_prefix(node.annotation, names)
        value = node.value
        assert value is not None
        if prefix is None or _is_field_call(value, names):
            continue
        if isinstance(value, ast.Constant) and value.value is None:
            continue
        assert isinstance(node.target, ast.Name)  # _defaults keeps these only
        name = node.target.id
        if value.lineno != value.end_lineno:
            result.manual.append(Manual(node.lineno, owner, name))
            continue
        start, end = source.span(value)
        old = text[start:end]
        argument = _argument(old, value)
        if argument is None:
            result.manual.append(Manual(node.lineno, owner, name))
            continue
        new = f"{prefix + 'field' if prefix else field_name}(default={argument}, ignore_default=True)"
        bare = bare or not prefix
        edits.append((start, end, new))
        result.changes.append(Change(node.lineno, owner, name, old, new))

    if bare and need_import:
        edits.append(_import_edit(source, names, field_name))
    new_text = text
    for start, end, new in sorted(edits, reverse=True):
        new_text = new_text[:start] + new + new_text[end:]
    if new_text != text:
        try:
            ast.parse(new_text, path)
        except SyntaxError:  # pragma: no cover - every edit is checked above; this is the last guard
            raise FileProblem("the rewritten text would not parse; left unchanged", path=path) from None
    result.new = new_text
    return result


def _import_edit(source: _Source, names: _Names, field_name: str) -> tuple[int, int, str]:
    """The edit that imports ``field`` (as ``field_name``): into the import of the annotations when it is
    ``from xpm import ...``, else on a line of its own after that import (or after the last import)."""
    package = names.package or "xpm"
    alias = "field" if field_name == "field" else f"field as {field_name}"
    origin = names.origin
    if isinstance(origin, ast.ImportFrom) and origin.module in FIELD_MODULES:
        last = origin.names[-1]
        assert last.end_lineno is not None and last.end_col_offset is not None
        at = source.offset(last.end_lineno, last.end_col_offset)
        first = origin.names[0]
        start = source.offset(origin.lineno, origin.col_offset)
        opening = source.text[start : source.offset(first.lineno, first.col_offset)]
        if last.lineno == origin.lineno or "(" not in opening:
            return at, at, f", {alias}"
        # One name a line, in parentheses: one more line, indented as the last.
        indent = " " * last.col_offset
        return at, at, f",{source.newline()}{indent}{alias}"
    anchor = origin or names.last_import
    statement = f"from {package} import {alias}"
    if anchor is None:
        # No import at all: the first line after the module's docstring.
        return 0, 0, statement + source.newline()
    assert anchor.end_lineno is not None
    indent = " " * anchor.col_offset
    at = source.offset(anchor.end_lineno + 1, 0)
    before = "" if at == 0 or source.text[at - 1] in "\r\n" else source.newline()
    return at, at, f"{before}{indent}{statement}{source.newline()}"



def read_rewrite(path: str) -> Rewrite:
    """Reads a Python file (in the encoding it declares) and rewrites its bare defaults.

    Raises:
        FileProblem: the file cannot be read or decoded, or does not parse as Python.
    """
    with open(path, "rb") as stream:
        data = stream.read()
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        text = data.decode(encoding)
    except (SyntaxError, LookupError, UnicodeDecodeError) as exc:
        raise FileProblem(f"cannot be decoded ({exc}); left unchanged", path=path) from None
    result = rewrite_source(text, path)
    result.encoding = encoding
    return result


def write_rewrite(rewrite: Rewrite) -> None:
    """Writes a rewritten file atomically, in its encoding, keeping its permissions."""
    from xpm.fsutil import write_local_atomic

    mode = os.stat(rewrite.path).st_mode & 0o7777
    write_local_atomic(rewrite.path, rewrite.new.encode(rewrite.encoding))
    os.chmod(rewrite.path, mode)


def python_files(root: str) -> Iterator[str]:
    """The ``.py`` files under ``root`` (or ``root`` itself), sorted; hidden folders, caches and
    virtual environments are skipped."""
    if not os.path.isdir(root):
        yield root
        return
    for folder, dirs, files in os.walk(root):
        # A virtual environment (its pyvenv.cfg) holds other projects' code.
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".")
            and d not in SKIPPED_FOLDERS
            and not os.path.exists(os.path.join(folder, d, "pyvenv.cfg"))
        )
        for name in sorted(files):
            if name.endswith(".py"):
                yield os.path.join(folder, name)
