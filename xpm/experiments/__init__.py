"""What an experiment file run by ``experimaestro run-experiment`` imports.

An experiment is a YAML file (its configuration) and a Python file that defines
``run(helper, cfg)``::

    from dataclasses import field
    from xpm.experiments import ExperimentHelper, configuration, ConfigurationBase

    @configuration
    class Configuration(ConfigurationBase):
        epochs: int = 10
        lrs: list[float] = field(default_factory=lambda: [0.1])

    def run(helper: ExperimentHelper, cfg: Configuration):
        for lr in cfg.lrs:
            Train.C(lr=lr, epochs=cfg.epochs).submit()

Grid search (:mod:`xpm.experiments.grid`: ``GridSearch``, ``generate_grid``) and the
mocking of heavy imports (:mod:`xpm.experiments.mockmodules`: ``mock_modules``) are
importable from here too.

This module only defines plain dataclasses: an experiment file imports it at no cost.
Reading the YAML (:mod:`xpm.experiments.yamlconfig`) and loading the experiment
(:mod:`xpm.experiments.loader`) live in their own modules, used by the command line.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, cast, overload

from xpm.experiments.grid import GenericParams, GridSearch, generate_grid
from xpm.experiments.mockmodules import FakeModuleFinder, mock_modules, noop_decorator

__all__ = [
    "ConfigurationBase",
    "ExperimentCallable",
    "ExperimentHelper",
    "FakeModuleFinder",
    "GenericParams",
    "GridSearch",
    "configuration",
    "generate_grid",
    "mock_modules",
    "noop_decorator",
]

T = TypeVar("T", bound=type)
F = TypeVar("F", bound=Callable[..., Any])

if sys.version_info >= (3, 11):
    from typing import dataclass_transform
else:  # pragma: no cover - Python 3.10: type checkers just see a decorator

    def dataclass_transform(**_: Any) -> Callable[[F], F]:
        return lambda fn: fn


@overload
def configuration(cls: T, /) -> T: ...


@overload
def configuration(cls: None = None, /, **kwargs: Any) -> Callable[[T], T]: ...


@dataclass_transform(kw_only_default=True)
def configuration(cls: Any = None, /, **kwargs: Any) -> Any:
    """Makes a class an experiment configuration: a keyword-only dataclass.

    Works with and without parentheses (``@configuration`` and ``@configuration()``,
    the form experimaestro's documentation uses). Keyword-only fields let a subclass
    add fields without defaults after ``ConfigurationBase``'s fields with defaults.
    Other keyword arguments go to :func:`dataclasses.dataclass`.
    """

    def wrap(klass: T) -> T:
        _mutable_defaults_to_factories(klass)
        return cast(T, dataclasses.dataclass(klass, kw_only=True, **kwargs))

    return wrap if cls is None else wrap(cls)


def _copier(value: Any) -> Callable[[], Any]:
    import copy

    return lambda: copy.deepcopy(value)


def _mutable_defaults_to_factories(klass: Any) -> None:
    """``x: list[str] = ["a"]`` is accepted (as experimaestro's configurations accept it):
    each configuration gets its own copy of the default, never a shared list."""
    for name in klass.__dict__.get("__annotations__", {}):
        value = klass.__dict__.get(name)
        if isinstance(value, (list, dict, set)):
            setattr(klass, name, dataclasses.field(default_factory=_copier(value)))


@configuration
class ConfigurationBase:
    """The keys every experiment YAML may use; subclass it to add yours.

    Attributes:
        id: the experiment id (required).
        file: the Python file defining ``run``, relative to the YAML file that
            gives it (``.py`` may be left out).
        module: a dotted module name defining ``run``, instead of ``file``.
        imports: YAML files merged before this one, relative to it.
        parent: the older, single-file form of ``imports``.
        pythonpath: folders added to ``sys.path``, relative to the YAML file.
        title, subtitle, paper, description: what the experiment is about.
        add_timestamp: append ``-YYYYMMDD-HHMM`` to the id (one experiment per run).
        pre_experiment: a Python file (with a ``/`` or ending in ``.py``) or a module
            run before the experiment is imported.
        grid_search: values to search, by dotted key path (``model.layers: [2, 4]``),
            and ``config_dicts``, values that go together (see :func:`generate_grid`).
    """

    id: str
    file: str = "experiment"
    module: str | None = None
    imports: list[str] = dataclasses.field(default_factory=list)
    parent: str | None = None
    pythonpath: list[str] = dataclasses.field(default_factory=list)
    title: str = ""
    subtitle: str = ""
    paper: str = ""
    description: str = ""
    add_timestamp: bool = False
    pre_experiment: str | None = None
    grid_search: dict[str, Any] | None = None


@dataclasses.dataclass
class ExperimentHelper:
    """What ``run(helper, cfg)`` receives besides its configuration.

    Attributes:
        xp: the running experiment (``xp.setenv``, ``xp.workdir``...).
        args: the extra command-line arguments (``run-experiment file.yaml ARGS...``).
        cfg: the validated configuration (also given to ``run`` as its second argument).
    """

    xp: Any
    args: list[str] = dataclasses.field(default_factory=list)
    cfg: Any = None

    @classmethod
    def decorator(cls, fn: Any = None, /, **_: Any) -> Any:
        """experimaestro's ``@ExperimentHelper.decorator`` on ``run``: kept so that
        experiment files port unchanged; ``run`` stays the plain function."""
        return fn if fn is not None else (lambda f: f)


class ExperimentCallable(Protocol):
    """The type of an experiment's ``run(helper, cfg)`` function."""

    def __call__(self, helper: ExperimentHelper, configuration: Any) -> None: ...
