"""Mocking the heavy modules an experiment file imports, from its ``pre_experiment`` file.

An experiment process only builds configurations and submits them; the jobs, in
their own processes, do the work. When the experiment's code imports ``torch`` or
``transformers`` at the top of its modules, :func:`mock_modules` spares the
experiment the time (or the absence) of those libraries::

    # pre_experiment.py, named by `pre_experiment: pre_experiment.py` in the YAML file
    from xpm.experiments import mock_modules

    mock_modules(["torch", "transformers"])

From then on, in this process, ``import torch`` (and ``import torch.nn``...) gives
a fake module: any attribute is another fake, which can be called, used as a
decorator with or without arguments (``@torch.no_grad()``, ``@torch.compile``),
subscripted (``torch.Tensor[int]``) or derived from (``class Net(torch.nn.Module)``).
The fakes are those of :mod:`xpm.docsloader`. Modules already imported stay real;
the job processes import the real modules.
"""

from __future__ import annotations

import re
import sys
import warnings
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, overload

from xpm.docsloader import DependencyInjectorFinder, DependencyInjectorLoader

__all__ = ["FakeModuleFinder", "mock_modules", "noop_decorator"]

F = TypeVar("F", bound=Callable[..., Any])


@overload
def noop_decorator(fn: F, /, *args: Any, **kwargs: Any) -> F: ...


@overload
def noop_decorator(fn: None = None, /, *args: Any, **kwargs: Any) -> Callable[[F], F]: ...


def noop_decorator(fn: Any = None, /, *args: Any, **kwargs: Any) -> Any:
    """A decorator that changes nothing, used with or without arguments
    (``@noop_decorator`` and ``@noop_decorator(option=1)``)."""
    if fn is not None:
        return fn
    return lambda function: function


class FakeModuleFinder(DependencyInjectorFinder):
    """Makes ``import NAME`` give a fake module for each of ``modules`` and their sub-modules.

    ``"torch"`` fakes ``torch`` and ``torch.nn.functional``, not ``torchvision``. Used
    by :func:`mock_modules`, which puts it first on ``sys.meta_path`` (so that even an
    installed module is faked); :meth:`uninstall` removes it and forgets its fakes.

    Args:
        modules: the top-level names of the modules to fake.
        decorators: kept for code written for older versions (every fake is already
            a decorator); dotted names.

    Attributes:
        modules: the names of the faked modules.
        decorators: the names given as ``decorators``.
    """

    def __init__(self, modules: Iterable[str], decorators: Iterable[str] | None = None):
        self.modules = set(modules)
        self.decorators = set(decorators or ())
        names = "|".join(re.escape(name) for name in sorted(self.modules)) or "(?!)"
        super().__init__(DependencyInjectorLoader(), re.compile(rf"(?:{names})(?:\..+)?$"))

    def __repr__(self) -> str:
        return f"FakeModuleFinder({sorted(self.modules)})"


def mock_modules(modules: Iterable[str], decorators: Iterable[str] | None = None) -> FakeModuleFinder:
    """Fakes ``modules`` (and their sub-modules) in this process, from now on.

    Args:
        modules: the top-level names (``["torch", "transformers"]``).
        decorators: deprecated and not needed: every fake works as a decorator.

    Returns:
        The finder, first on ``sys.meta_path`` (``finder.uninstall()`` stops the mocking).
    """
    if decorators is not None:
        warnings.warn(
            "mock_modules(decorators=...) is not needed: every mocked object works as a decorator",
            DeprecationWarning,
            stacklevel=2,
        )
    finder = FakeModuleFinder(modules, decorators)
    # First, unlike documentation builds: the point is to skip the real (installed) module.
    sys.meta_path.insert(0, finder)
    return finder
