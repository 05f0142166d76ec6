"""Small helpers users write in configuration classes: decorators, markers and names.

- :func:`initializer`: a method that runs once per object;
- :func:`cache`: a method given a file path that depends on the configuration's
  identifier, in the workspace (to keep a costly result between runs);
- :func:`documentation`, :func:`config_only`, :func:`configmethod`: markers;
- :func:`STDOUT`, :func:`STDERR`: the names of a job's log files;
- :class:`Identifier`: builds dotted type ids (``Identifier("my.lib").model``);
- :class:`help`: the help text of a parameter, in ``Annotated``;
- :func:`tags` and :class:`TagDict`: the tags of a configuration, as a sorted,
  hashable, read-only dictionary;
- :func:`Array`: the old spelling of ``list[T]``.
"""

from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, TypeVar

from xpm import context, layout, taskglobals
from xpm.config.base import ConfigMixin
from xpm.config.types import ArgSpec, TypeAnnotation
from xpm.errors import ConfigError, XpmError

__all__ = [
    "initializer",
    "cache",
    "CacheError",
    "config_only",
    "configmethod",
    "documentation",
    "shoulddocument",
    "STDOUT",
    "STDERR",
    "Identifier",
    "help",
    "TagDict",
    "tags",
    "Array",
]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

#: Where :func:`initializer` keeps the results of an object, in its ``__dict__``
#: (a name no parameter can have: parameter names never start with ``__``)
_INITIALIZED = "__xpm_initialized__"


# --- initializer ----------------------------------------------------------------------------------


def initializer(method: F) -> F:
    """Runs a method once per object; later calls return the result of the first one.

    Arguments of later calls are ignored. A call that raises leaves nothing
    behind: the next call runs the method again. ::

        class Model(Config):
            @initializer
            def network(self):
                return build_network(self.size)   # built at the first call only
    """

    @functools.wraps(method)
    def once(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            done = self.__dict__.setdefault(_INITIALIZED, {})
        except AttributeError:
            raise XpmError(
                f"@initializer {method.__qualname__}: {type(self).__qualname__} objects have no __dict__ "
                "to keep the result in"
            ) from None
        # Keyed by the function: a subclass's initializer of the same name is another one.
        if method in done:
            return done[method]
        value = method(self, *args, **kwargs)
        done[method] = value
        return value

    return once  # type: ignore[return-value]


# --- cache ----------------------------------------------------------------------------------------


class CacheError(XpmError):
    """A :func:`cache` method cannot know its file: no workspace, or no identifier."""

    def __init__(self, method: str, problem: str):
        self.method = method
        self.problem = problem
        super().__init__(f"@cache {method}: {problem}")


def cache(name: str) -> Callable[[F], F]:
    """Gives a method a file path that depends on the configuration, in the workspace.

    The decorated method takes the path as its first argument after ``self``;
    callers do not pass it::

        class Corpus(Config):
            source: Param[str]

            @cache("vocabulary.pkl")
            def vocabulary(self, path: Path):
                if path.exists():
                    return pickle.loads(path.read_bytes())
                vocabulary = count_words(self.source)
                path.write_bytes(pickle.dumps(vocabulary))
                return vocabulary

    The path is ``<workspace>/config/<type id>/<identifier>/<name>``: two
    configurations with the same identifier share it, in every experiment and
    job of the workspace. The workspace is that of the running job, else that of
    the current experiment (``with experiment(...)``); its folder is created at the
    first call. The method runs under a lock on ``<name>.lock``, so that two
    processes never compute the same file at once.

    Raises:
        CacheError: at the call, outside a job and an experiment (no workspace), or
            on an object without an identifier.
    """

    def decorate(method: F) -> F:
        @functools.wraps(method)
        def cached(self: Any, *args: Any, **kwargs: Any) -> Any:
            path = cache_path(self, name, method.__qualname__)
            with _locked(path.with_name(path.name + ".lock")):
                return method(self, path, *args, **kwargs)

        return cached  # type: ignore[return-value]

    return decorate


def cache_path(config: Any, name: str, method: str = "cache") -> Path:
    """The path of the cached file ``name`` of ``config`` (its folder is created)."""
    typename, identifier = _identity(config, method)
    folder = _workspace(method) / layout.config_cache_dir(typename, identifier)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def _identity(obj: Any, method: str) -> tuple[str, str]:
    """(type id, identifier in hex) of a configuration, or of an object built from one."""
    # An object made by instance() records its configuration (``xpmconfig``).
    config = obj if isinstance(obj, ConfigMixin) else getattr(obj, "__dict__", {}).get("__config__")
    if not isinstance(config, ConfigMixin):
        raise CacheError(
            method,
            f"{type(obj).__qualname__} object has no configuration identifier (call it on a configuration, "
            "or on an object built by instance(keep=True))",
        )
    return config.__xpm__.xpmtype.identifier, config.__identifier__().all.hex()


def _workspace(method: str) -> Path:
    """The workspace folder: the running job's, else the current experiment's."""
    wspath = taskglobals.Env.instance().wspath
    if wspath is not None:
        return wspath
    try:
        experiment = context.current_experiment()
    except XpmError:
        raise CacheError(method, "no workspace: call it in a job, or inside `with experiment(...)`") from None
    workspace = getattr(experiment, "workspace", None)
    if workspace is None:
        raise CacheError(method, "the experiment has no workspace (a dry run of a workspace that does not exist)")
    root = workspace.local_path("")
    if root is None:
        raise CacheError(method, f"the experiment's workspace {workspace.location} is not a local folder")
    return Path(root)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Holds an exclusive OS lock on ``path`` (created if needed); released if the process dies."""
    with open(path, "a+b") as handle:
        if os.name == "posix":
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        else:  # pragma: no cover - xpm's jobs run on POSIX systems
            import portalocker

            portalocker.lock(handle, portalocker.LOCK_EX)
        yield  # closing the file releases the lock


# --- markers --------------------------------------------------------------------------------------


def config_only(method: F) -> F:
    """Marks a method meant for configurations rather than for built objects; changes nothing."""
    return method


def configmethod(method: F) -> F:
    """Marks a method kept on configuration objects (every method is); changes nothing."""
    return method


def documentation(method: F) -> F:
    """Marks a method to appear in the generated documentation of its class."""
    target = method.fget if isinstance(method, property) else method
    target.__xpm_documentation__ = True  # type: ignore[union-attr,attr-defined]
    # The attribute documentation tools written for experimaestro look for.
    target.__experimaestro_documentation__ = True  # type: ignore[union-attr,attr-defined]
    return method


def shoulddocument(method: Any) -> bool:
    """Whether :func:`documentation` marked ``method``."""
    target = method.fget if isinstance(method, property) else method
    return bool(getattr(target, "__xpm_documentation__", False))


def STDOUT(jobcontext: Any, config: Any) -> str:
    """The name of a job's standard output file: ``<job name>.out``."""
    return f"{jobcontext.name}.out"


def STDERR(jobcontext: Any, config: Any) -> str:
    """The name of a job's standard error file: ``<job name>.err``."""
    return f"{jobcontext.name}.err"


# --- names and types ------------------------------------------------------------------------------


class Identifier:
    """A dotted, lower-case type id, built piece by piece.

    ``Identifier("My.Lib").model``, ``Identifier("my.lib")["model"]`` and
    ``Identifier("my.lib")("model")`` are all ``Identifier("my.lib.model")``;
    ``str()`` gives the name. Names starting with ``_`` are not pieces (they are
    Python's own lookups): write ``ident["_private"]``.
    """

    __slots__ = ("name",)

    def __init__(self, name: str):
        if not isinstance(name, str):
            raise ConfigError(f"Identifier() takes a string, got {type(name).__name__} ({name!r})")
        self.name = name.lower()

    def __call__(self, key: str) -> Identifier:
        return Identifier(f"{self.name}.{key}")

    __getitem__ = __call__

    def __getattr__(self, key: str) -> Identifier:
        # `name` too: before __init__ sets it (copy, pickle), its lookup must fail, not recurse.
        if key.startswith("_") or key == "name":
            raise AttributeError(key)
        return self(key)

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"Identifier({self.name!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Identifier):
            return NotImplemented
        return other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Identifier, (self.name,))


class help(TypeAnnotation):  # noqa: N801 - a lower-case name, as users write it in annotations
    """The help text of a parameter: ``lr: Param[Annotated[float, help("the learning rate")]]``.

    It takes the place of the text read from the class docstring.
    """

    def __init__(self, text: str):
        self.text = text

    def annotate(self, spec: ArgSpec) -> None:
        spec.help = self.text

    def __repr__(self) -> str:
        return f"help({self.text!r})"


def Array(type_: type[T]) -> Any:  # noqa: N802 - the old spelling of list[T]
    """``list[T]``, under its old name: ``Param[Array(int)]`` is ``Param[list[int]]``."""
    return list[type_]  # type: ignore[valid-type]


# --- tags -----------------------------------------------------------------------------------------


class TagDictReadOnly(XpmError, TypeError):
    """A :class:`TagDict` cannot change."""

    def __init__(self, operation: str):
        self.operation = operation
        super().__init__(f"a TagDict is read-only: {operation} is refused (make a dict(...) of it to change it)")


class TagDict(dict):  # type: ignore[type-arg]
    """The tags of a configuration: sorted by name, read-only, and hashable (usable as a key)."""

    def __init__(self, tags: Mapping[str, Any] | Iterable[tuple[str, Any]] = (), **more: Any):
        items = dict(tags, **more)
        super().__init__(sorted(items.items(), key=lambda item: item[0]))

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(self.items()))

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TagDictReadOnly("changing it")

    def __setitem__(self, key: str, value: Any) -> None:
        raise TagDictReadOnly(f"setting {key!r}")

    def __delitem__(self, key: str) -> None:
        raise TagDictReadOnly(f"deleting {key!r}")

    clear = pop = popitem = setdefault = update = __ior__ = _refuse  # type: ignore[assignment]

    def copy(self) -> TagDict:
        return TagDict(self)

    def __reduce__(self) -> tuple[Any, ...]:
        # dict's own pickling fills the copy with __setitem__, which is refused.
        return (TagDict, (dict(self),))

    def __repr__(self) -> str:
        return f"TagDict({dict.__repr__(self)})"


def tags(config: Any) -> TagDict:
    """The tags of a configuration and of its sub-configurations (see ``tag()``), sorted by name.

    Also works on the task object a job runs (built from the configuration).
    """
    if isinstance(config, ConfigMixin):
        return TagDict(config.__xpm__.tags())
    found = getattr(config, "__tags__", None)
    if isinstance(found, Mapping):
        return TagDict(found)
    raise ConfigError(f"tags() takes a configuration, got {type(config).__qualname__}")
