"""The drop-in's import machinery: ``experimaestro`` and its submodules, served from xpm.

:class:`DropInFinder`, placed first on :data:`sys.meta_path` by
:func:`xpm.compat.install`, answers for ``experimaestro`` and every
``experimaestro.<name>``. A module of :data:`xpm.compat.names.MODULES` becomes a
module object whose names resolve on first use (a module-level ``__getattr__``)
from the table, and stay in the module afterwards; anything else is refused with an
error that says why and where to read more. Resolving on use keeps
``import experimaestro`` as cheap as ``import xpm``.

What each kind of name gives:

* a provided name: the xpm object (``experimaestro.Config is xpm.Config``);
* a name xpm deliberately does not provide: :class:`NotProvidedError`, an
  ``ImportError``, so that ``from experimaestro import X`` shows the reason;
* any other name: the usual ``AttributeError`` (``hasattr`` and ``getattr(m, x, None)``
  behave as with any module);
* an unknown submodule, or one xpm does not provide: ``ModuleNotFoundError``.
"""

from __future__ import annotations

import importlib
import types
from importlib.machinery import ModuleSpec
from typing import Any, Iterable, Sequence

from xpm._version import __version__
from xpm.compat.names import API_VERSION, MISSING_MODULES, MODULES, ROOT, NotProvided
from xpm.errors import XpmError

__all__ = ["DOCS", "DropInFinder", "NotProvidedError", "ModuleNotProvidedError", "BrokenTargetError"]

#: Where users read what the drop-in provides
DOCS = "docs/compatibility.md"

#: The ``origin`` of the drop-in's module specs: a module's repr shows it
ORIGIN = f"xpm {__version__} drop-in for experimaestro {API_VERSION}"


class NotProvidedError(XpmError, ImportError):
    """A name of experimaestro that xpm deliberately does not provide.

    Attributes:
        module: the experimaestro module (``experimaestro.core.serialization``).
        attribute: the name asked for.
        reason: why xpm does not provide it.
    """

    def __init__(self, module: str, attribute: str, reason: str):
        self.module = module
        self.attribute = attribute
        self.reason = reason
        super().__init__(f"{module}.{attribute} is not provided by xpm: {reason}; see {DOCS}", name=module)


class ModuleNotProvidedError(XpmError, ModuleNotFoundError):
    """An ``experimaestro.<name>`` module that xpm does not serve (unknown, or not provided).

    Attributes:
        reason: why, in words.
    """

    def __init__(self, module: str, reason: str):
        self.reason = reason
        super().__init__(f"No module named {module!r} ({reason}); see {DOCS}", name=module)


class BrokenTargetError(XpmError, ImportError):
    """A provided name whose xpm object cannot be loaded (a bug of xpm: the table names something missing)."""

    def __init__(self, module: str, attribute: str, target: str, problem: BaseException):
        self.target = target
        super().__init__(
            f"{module}.{attribute} is {target} in xpm, which cannot be loaded: {type(problem).__name__}: {problem}",
            name=module,
        )


def is_served(fullname: str) -> bool:
    """Whether ``fullname`` is ``experimaestro`` or one of its submodules (the drop-in's names)."""
    return fullname == ROOT or fullname.startswith(ROOT + ".")


def missing_reason(fullname: str) -> str:
    """Why the drop-in has no module ``fullname`` (one that :data:`MODULES` lacks)."""
    for missing, reason in MISSING_MODULES.items():
        if fullname == missing or fullname.startswith(missing + "."):
            return f"xpm does not provide it: {reason}"
    return "xpm's drop-in for experimaestro has no such module"


def resolve(target: str) -> Any:
    """The object a ``"module:attribute"`` target names (imported on the way)."""
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


class DropInFinder:
    """Finder and loader of the drop-in modules (one instance is installed; see :func:`xpm.compat.install`)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: types.ModuleType | None = None
    ) -> ModuleSpec | None:
        if not is_served(fullname):
            return None
        if fullname not in MODULES:
            raise ModuleNotProvidedError(fullname, missing_reason(fullname))
        # Every drop-in module is a package (an empty __path__), so that importing any
        # submodule asks this finder, and an unknown one gets the error above rather
        # than Python's "is not a package".
        return ModuleSpec(fullname, self, origin=ORIGIN, is_package=True)  # type: ignore[arg-type]

    def create_module(self, spec: ModuleSpec) -> types.ModuleType | None:
        return None  # the default module object

    def exec_module(self, module: types.ModuleType) -> None:
        populate(module)

    def invalidate_caches(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"<xpm drop-in finder for {ROOT}>"


def populate(module: types.ModuleType) -> None:
    """Gives a drop-in module its lazy names, ``__all__``, ``__dir__`` and markers."""
    name = module.__name__
    table = MODULES[name]
    prefix = name + "."
    children = set(_direct_children(prefix, MODULES))
    missing = {child: MISSING_MODULES[prefix + child] for child in _direct_children(prefix, MISSING_MODULES)}
    provided = sorted(attr for attr, target in table.items() if isinstance(target, str))

    def __getattr__(attr: str) -> Any:
        target = table.get(attr)
        if isinstance(target, NotProvided):
            raise NotProvidedError(name, attr, target.reason)
        if isinstance(target, str):
            try:
                value = resolve(target)
            except (ImportError, AttributeError) as exc:
                raise BrokenTargetError(name, attr, target, exc) from exc
        elif attr in children:
            # As in experimaestro, whose package imports its submodules: ``experimaestro.core``
            # works after ``import experimaestro``.
            value = importlib.import_module(prefix + attr)
        elif attr in missing:
            raise NotProvidedError(name, attr, missing[attr])
        else:
            raise AttributeError(f"module {name!r} has no attribute {attr!r}")
        module.__dict__[attr] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(provided) | children | set(module.__dict__))

    module.__dict__.update(
        __getattr__=__getattr__,
        __dir__=__dir__,
        __all__=(["__version__"] if name == ROOT else []) + provided,
        __xpm__=True,
        __version__=API_VERSION,
        __doc__=f"xpm's drop-in for {name} (experimaestro {API_VERSION} API); see {DOCS}.",
    )


def _direct_children(prefix: str, names: Iterable[str]) -> list[str]:
    """The last parts of the ``names`` just below ``prefix`` (``"a."`` and ``a.b``, ``a.b.c``: ``b``)."""
    return [name[len(prefix) :] for name in names if name.startswith(prefix) and "." not in name[len(prefix) :]]


def drop_in_modules(modules: dict[str, Any]) -> list[str]:
    """The names of the drop-in's modules among ``modules`` (``sys.modules``)."""
    return [key for key, value in modules.items() if is_served(key) and getattr(value, "__xpm__", False) is True]

