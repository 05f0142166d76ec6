"""Partial identifiers: folders shared by tasks that differ only in some parameters.

A task that trains for ``max_iter`` iterations can keep its checkpoints in a
folder shared with the same training run for more iterations: declare the
parameters that may differ in a *group* and a *partial* that leaves the group
out, then generate the path in the partial's folder::

    iterations = param_group("iterations")

    class Learn(Task):
        checkpoints = partial(exclude_groups=[iterations])

        max_iter: Param[int] = field(groups=[iterations])
        lr: Param[float]
        path: Meta[Path] = field(default_factory=PathGenerator("ckpt", partial=checkpoints))

Every ``Learn`` with the same ``lr`` gets the same
``partials/<type id>/checkpoints/<partial identifier>/ckpt``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable


@dataclass(frozen=True)
class ParameterGroup:
    """A named group of parameters (compared by name)."""

    name: str


def param_group(name: str) -> ParameterGroup:
    """A parameter group, given to ``field(groups=[...])`` and to :func:`partial`."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"param_group() takes a non-empty name, got {name!r}")
    return ParameterGroup(name)


@dataclass
class Partial:
    """Which parameters a partial identifier keeps.

    A parameter is left out when it is in an excluded group, when it has no group
    and ``exclude_no_group`` is set, or always when ``exclude_all`` is set — unless
    one of its groups is in ``include_groups``, which wins.
    """

    exclude_groups: set[ParameterGroup] = field(default_factory=set)
    include_groups: set[ParameterGroup] = field(default_factory=set)
    exclude_no_group: bool = False
    exclude_all: bool = False
    #: the name of its folder under ``partials/<type id>/`` (the class attribute's name by default)
    name: str | None = None

    #: how xpm.config.classinfo recognises partials among class attributes
    __xpm_partial__ = True

    def __post_init__(self) -> None:
        self.exclude_groups = _groups(self.exclude_groups, "exclude_groups")
        self.include_groups = _groups(self.include_groups, "include_groups")

    def is_excluded(self, groups: Iterable[ParameterGroup]) -> bool:
        """Whether a parameter of these groups is left out of the partial identifier."""
        groups = set(groups)
        if groups & self.include_groups:
            return False
        if self.exclude_all:
            return True
        if not groups:
            return self.exclude_no_group
        return bool(groups & self.exclude_groups)


def _groups(groups: Iterable[ParameterGroup], what: str) -> set[ParameterGroup]:
    result = set(groups)
    for group in result:
        if not isinstance(group, ParameterGroup):
            raise ValueError(f"partial({what}=...): {group!r} is not a parameter group (use param_group())")
    return result


def partial(
    *,
    exclude_groups: Iterable[ParameterGroup] = (),
    include_groups: Iterable[ParameterGroup] = (),
    exclude_no_group: bool = False,
    exclude_all: bool = False,
) -> Partial:
    """Declares a partial identifier (see the module documentation)."""
    return Partial(set(exclude_groups), set(include_groups), exclude_no_group, exclude_all)
