"""docs/compatibility.md lists every name of experimaestro's package, and every row names tests that exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from xpm.compat.names import MODULES, ROOT, NotProvided

ROOT_DIR = Path(__file__).resolve().parents[2]
DOC = (ROOT_DIR / "docs" / "compatibility.md").read_text(encoding="utf-8")


def _rows() -> list[tuple[str, str, str]]:
    """(first cell, status, tests) of the rows of the tables under "Names and behaviours"."""
    section = DOC.split("## Names and behaviours", 1)[1]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) == 3 and not set(cells[0]) <= {"-"} and cells[0] not in ("name", "behaviour"):
            rows.append((cells[0], cells[1], cells[2]))
    return rows


def _test_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}


def test_every_row_names_tests_that_exist() -> None:
    rows = _rows()
    assert len(rows) >= 45
    for first, _, tests in rows:
        refs = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", tests)
        assert refs, f"{first}: no test named"
        for file, function in refs:
            path = ROOT_DIR / file
            assert path.is_file(), f"{first}: {file} does not exist"
            assert function in _test_functions(path), f"{first}: {file} has no {function}"


def test_every_name_of_the_package_has_a_row_with_the_right_status() -> None:
    listed: dict[str, str] = {}
    for first, status, _ in _rows():
        for name in re.findall(r"`(\w+)`", first):
            listed[name] = status
    for name, target in MODULES[ROOT].items():
        assert name in listed, f"experimaestro.{name} has no row in docs/compatibility.md"
        not_provided = listed[name].startswith("not provided")
        assert not_provided == isinstance(target, NotProvided), f"{name}: the row says {listed[name]!r}"
