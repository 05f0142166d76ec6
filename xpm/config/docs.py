"""Help texts from docstrings: the class docstring and per-parameter help.

Parameter help comes, in order of preference, from a docstring written right
after the attribute (``x: Param[int]`` then ``\"\"\"The x.\"\"\"``) or from an
``Attributes:`` section of the class docstring (Google style). Parsed on demand
only, since it reads the class source.
"""

from __future__ import annotations

import re

_SECTION = re.compile(r"^\s*(Attributes|Args|Arguments|Parameters)\s*:\s*$")
_ANY_SECTION = re.compile(r"^\s*[A-Z][A-Za-z ]*:\s*$")
_ENTRY = re.compile(r"^(\s*)(\w+)\s*(\([^)]*\))?\s*:\s*(.*)$")
_cache: dict[type, dict[str, str]] = {}


def class_description(cls: type) -> str:
    """The description part of the class docstring (before any section)."""
    doc = cls.__dict__.get("__doc__") or ""
    lines = []
    for line in _dedent(doc).splitlines():
        if _ANY_SECTION.match(line):
            break
        lines.append(line)
    return "\n".join(lines).strip()


def argument_help(cls: type, name: str) -> str:
    """The help of the parameter ``name`` declared in ``cls`` ("" when none)."""
    if cls not in _cache:
        helps = _attributes_section(cls.__dict__.get("__doc__") or "")
        helps.update(_attribute_docstrings(cls))
        _cache[cls] = helps
    return _cache[cls].get(name, "")


def _dedent(doc: str) -> str:
    import inspect

    return inspect.cleandoc(doc)


def _attributes_section(doc: str) -> dict[str, str]:
    helps: dict[str, str] = {}
    in_section = False
    current: str | None = None
    indent = None
    for line in _dedent(doc).splitlines():
        if _SECTION.match(line):
            in_section, current, indent = True, None, None
            continue
        if not in_section:
            continue
        if _ANY_SECTION.match(line) and not line.startswith(" "):
            in_section = False
            continue
        entry = _ENTRY.match(line)
        if entry and (indent is None or len(entry.group(1)) <= indent):
            indent = len(entry.group(1))
            current = entry.group(2)
            helps[current] = entry.group(4).strip()
        elif current and line.strip():
            helps[current] = (helps[current] + " " + line.strip()).strip()
    return helps


def _attribute_docstrings(cls: type) -> dict[str, str]:
    import ast
    import inspect
    import textwrap

    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}
    helps: dict[str, str] = {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    for node, following in zip(body, body[1:]):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            helps[node.target.id] = inspect.cleandoc(following.value.value)
    return helps
