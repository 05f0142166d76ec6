"""Importing code whose heavy dependencies are absent, for documentation builds.

A documentation build imports the modules it documents, and these import their
dependencies (``torch``, ``transformers``...), which the build machine may lack.
:meth:`DependencyInjectorFinder.install` makes every missing module whose name
matches a pattern importable as a fake :class:`Module`: any attribute of it is
another fake, which can be called, used as a decorator, or subclassed, so that
class definitions and signatures still load::

    import re
    from xpm.docsloader import DependencyInjectorFinder

    finder = DependencyInjectorFinder.install(re.compile(r"(torch|transformers)(\\..*)?"))
    import mypackage.models  # `import torch` inside it gives a fake module
    ...
    finder.uninstall()

Only modules that cannot be found otherwise are faked: the finder comes last.
"""

from __future__ import annotations

import abc
import importlib.abc
import importlib.machinery
import re
import sys
import types
from typing import Any, Sequence

__all__ = ["Module", "DependencyInjectorLoader", "DependencyInjectorFinder"]


class Module(types.ModuleType):
    """A fake module: each attribute is another fake (``torch.nn.Module``), made on first access.

    A fake can be called (a call with one function, as a decorator is, returns
    that function; other calls return a fake), and subclassed (``class
    Net(torch.nn.Module)`` gives a class with no base but ``object``).
    """

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__") and key.endswith("__"):
            # Special names are looked up by Python itself (__file__, __all__,
            # __wrapped__...): a fake there would mislead it.
            raise AttributeError(key)
        fake = Module(f"{self.__name__}.{key}")
        setattr(self, key, fake)
        return fake

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if len(args) == 1 and not kwargs and callable(args[0]) and not isinstance(args[0], Module):
            return args[0]
        return Module(f"{self.__name__}()")

    def __getitem__(self, key: Any) -> Module:
        # `torch.Tensor[...]`, `Dataset[int]` in annotations and base classes
        return self

    def __or__(self, other: Any) -> Module:
        # `Tensor | None` in an annotation evaluated at import
        return self

    __ror__ = __or__

    def __mro_entries__(self, bases: tuple[Any, ...]) -> tuple[type, ...]:
        # A fake used as a base class stands for a placeholder class named after it (one per
        # fake, so that two classes derived from the same fake share their base).
        placeholder = self.__dict__.get("__placeholder__")
        if placeholder is None:
            module, _, name = self.__name__.rpartition(".")
            # subscriptable (`class Sharded(IterableDataset)` then `Sharded[int]`), as generic bases are
            attributes = {
                "__module__": module or name,
                "__class_getitem__": classmethod(_same_class),
                "__xpm_fake__": self,
            }
            placeholder = _FakeBase(name, (), attributes)
            self.__dict__["__placeholder__"] = placeholder
        return (placeholder,)

    def __repr__(self) -> str:
        return f"<fake module {self.__name__!r}>"


def _same_class(cls: type, key: Any) -> type:
    return cls


class _FakeBase(abc.ABCMeta):
    """The class of placeholder base classes: a class attribute the fake would have
    (``apply`` of a class derived from ``torch.autograd.Function``) is a fake too.

    It derives from ``ABCMeta`` so that a class may derive from a fake and from an
    abstract class at once.
    """

    def __getattr__(cls, key: str) -> Any:
        if key.startswith("__") and key.endswith("__"):
            raise AttributeError(key)
        for klass in cls.__mro__:
            fake = klass.__dict__.get("__xpm_fake__")
            if fake is not None:
                return getattr(fake, key)
        raise AttributeError(key)


class DependencyInjectorLoader(importlib.abc.Loader):
    """Creates the fake modules, and remembers their names (to forget them at uninstall)."""

    def __init__(self) -> None:
        self.created: list[str] = []

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Module:
        self.created.append(spec.name)
        return Module(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        """A fake module has no code to run."""


class DependencyInjectorFinder(importlib.abc.MetaPathFinder):
    """Finds a fake module for each name that ``matcher`` matches from its start (``re.match``).

    ``torch(\\..*)?`` matches ``torch`` and its sub-modules, and also ``torchvision``:
    end the pattern with ``$`` to match whole names only.

    Args:
        loader: the loader of the fake modules.
        matcher: a compiled regular expression (or its text) matched against full module names.
    """

    def __init__(self, loader: DependencyInjectorLoader, matcher: re.Pattern[str] | str):
        self._loader = loader
        self.matcher = re.compile(matcher) if isinstance(matcher, str) else matcher

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not self.matcher.match(fullname):
            return None
        # A package: so that `import fake.sub` works for any sub-module.
        return importlib.machinery.ModuleSpec(fullname, self._loader, is_package=True)

    @staticmethod
    def install(matcher: re.Pattern[str] | str) -> DependencyInjectorFinder:
        """Fakes the missing modules whose names match ``matcher``; returns the finder (to uninstall)."""
        finder = DependencyInjectorFinder(DependencyInjectorLoader(), matcher)
        # Last: a module that is installed is imported for real.
        sys.meta_path.append(finder)
        return finder

    def uninstall(self) -> None:
        """Stops faking modules, and forgets those it made (a later import looks for them again)."""
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        for name in self._loader.created:
            module = sys.modules.get(name)
            if isinstance(module, Module):
                del sys.modules[name]
        self._loader.created.clear()

    def __repr__(self) -> str:
        return f"DependencyInjectorFinder({self.matcher.pattern!r})"
