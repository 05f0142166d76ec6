"""Reading the YAML files users write (settings, experiment configurations): safely, with bounds.

:func:`load_yaml` parses with PyYAML's safe loader (no Python objects) and refuses
documents nested too deep or whose aliases expand past a bound ("billion laughs"),
with the position; :func:`yaml_problem` turns a YAML error into one line.

This module imports yaml: ``import xpm`` must not import it.
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["YAML_MAX_DEPTH", "YAML_MAX_VALUES", "load_yaml", "yaml_problem"]

#: The deepest nesting of mappings and lists a YAML file may have
YAML_MAX_DEPTH = 100
#: The most values a YAML file may hold once its aliases are expanded
YAML_MAX_VALUES = 1_000_000


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, with the nesting and the expansion of aliases bounded.

    A few lines of nested aliases ("billion laughs") make a document of 10^9 values that
    every later walk of it would take forever to visit; deep nesting overflows the
    recursion of the composer. Both are refused while composing, with the position.
    """

    def __init__(self, stream: str):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > YAML_MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise yaml.MarkedYAMLError(problem=f"nested more than {YAML_MAX_DEPTH} levels deep", problem_mark=mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self) -> Any:
        node = super().compose_document()
        if node is not None and _expanded_size(node, {}) > YAML_MAX_VALUES:
            raise yaml.MarkedYAMLError(
                problem=f"its aliases expand to more than {YAML_MAX_VALUES:,} values", problem_mark=node.start_mark
            )
        return node


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many values a node stands for once aliases are expanded (each node counted once per use).

    Aliases share nodes, so the nodes form a graph without cycles of growth: a size is computed
    once per node (``sizes``), and the walk is as long as the file, whatever the expansion.
    """
    known = sizes.get(id(node))
    if known is not None:
        return known
    sizes[id(node)] = 1  # a cycle (an alias to an enclosing node) counts once
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(child, sizes) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value)
    else:
        size = 1
    # Saturated: the size only needs to be compared with the bound.
    sizes[id(node)] = size = min(size, YAML_MAX_VALUES + 1)
    return size


def load_yaml(text: str) -> Any:
    """Parses a YAML text safely (no Python objects), with nesting and alias expansion bounded.

    Raises:
        yaml.YAMLError: the text is not valid YAML, or goes past a bound (see :func:`yaml_problem`).
    """
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def yaml_problem(exc: yaml.YAMLError, text: str) -> str:
    """One line describing a YAML syntax error, with its 1-based position."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or exc.context or "syntax error"
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        return f"{where}invalid YAML ({what})"
    if isinstance(exc, yaml.reader.ReaderError):
        # A forbidden character: the reader only knows its offset in the text.
        before = text[: exc.position]
        line = before.count("\n") + 1
        column = exc.position - (before.rfind("\n") + 1) + 1
        return f"line {line}, column {column}: invalid YAML (forbidden character #x{exc.character:04x})"
    return f"invalid YAML ({' '.join(str(exc).split())})"
