"""Small helpers of experimaestro that libraries built on it import, kept for them alone.

They are not part of xpm's own API: the drop-in (``xpm.compat.names``) serves them
under their experimaestro names so that those libraries import unchanged.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from xpm.config.base import Config
from xpm.fsutil import write_local_atomic


class JsonSettings:
    """Settings kept in a JSON file, described by a marshmallow schema (``cls.SCHEMA``).

    ``Sub.load(path)`` reads the file when it exists (else makes default settings);
    ``settings.save()`` writes it back, creating its folder.
    """

    SCHEMA: Any = None
    path: Path

    @classmethod
    def load(cls, path: Path) -> Any:
        path = Path(path)
        settings = cls.SCHEMA().loads(path.read_text()) if path.is_file() else cls()
        settings.path = path
        return settings

    def save(self) -> None:
        # written whole then renamed (its folder made if needed): never half a settings file
        write_local_atomic(str(self.path), self.SCHEMA().dumps(self).encode("utf-8"))


def cleanupdir(path: Path) -> Path:
    """Empties the folder ``path`` (made if missing) and returns it: the caller asks for the deletion."""
    import shutil

    path = Path(path)
    if path.is_dir():
        for child in path.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    path.mkdir(parents=True, exist_ok=True)
    return path


class Interaction(ABC):
    """How an action asks its user questions (``choice``, ``checkbox``, ``text``)."""

    @abstractmethod
    def choice(self, key: str, label: str, choices: list[str]) -> str: ...

    @abstractmethod
    def checkbox(self, key: str, label: str, *, default: bool = False) -> bool: ...

    @abstractmethod
    def text(self, key: str, label: str, *, default: str = "") -> str: ...


class CLIInteraction(Interaction):
    """Questions asked on the terminal; ``prefill`` answers some by key without asking."""

    _TRUE = ("true", "yes", "1", "y")
    _FALSE = ("false", "no", "0", "n")

    def __init__(self, prefill: dict[str, str] | None = None):
        self._prefill = dict(prefill or {})

    def choice(self, key: str, label: str, choices: list[str]) -> str:
        if key in self._prefill:
            value = self._prefill[key]
            if value not in choices:
                raise ValueError(f"{key}: {value!r} is not one of {', '.join(choices)}")
            return value
        lines = [label, *(f"  {i}) {c}" for i, c in enumerate(choices, 1))]
        while True:
            answer = input("\n".join(lines) + "\nSelect: ").strip()
            if answer.isdigit() and 1 <= int(answer) <= len(choices):
                return choices[int(answer) - 1]

    def checkbox(self, key: str, label: str, *, default: bool = False) -> bool:
        answer = self._prefill.get(key)
        while True:
            if answer is None:
                answer = input(f"{label} [{'Y/n' if default else 'y/N'}] ").strip() or ("y" if default else "n")
            if answer.lower() in self._TRUE:
                return True
            if answer.lower() in self._FALSE:
                return False
            if key in self._prefill:
                raise ValueError(f"{key}: {answer!r} is not a yes or no")
            answer = None

    def text(self, key: str, label: str, *, default: str = "") -> str:
        if key in self._prefill:
            return self._prefill[key]
        return input(f"{label} " + (f"[{default}] " if default else "")).strip() or default


class Action(Config):
    """An operation on an experiment's results, with questions to its user (``describe``, ``execute``).

    Libraries define actions; xpm's monitors do not offer to run them (see docs/compatibility.md):
    call ``action.instance().execute(CLIInteraction())`` to run one.
    """

    __xpmid__ = "experimaestro.actions.action"

    def describe(self) -> str:
        raise NotImplementedError(f"{type(self).__qualname__}.describe() is not defined")

    def execute(self, interaction: Interaction) -> None:
        raise NotImplementedError(f"{type(self).__qualname__}.execute() is not defined")


class ConfigInformation:
    """The loading entry point libraries call as ``ConfigInformation.deserialize(...)``.

    The record of a configuration itself (``config.__xpm__``) is xpm's ``ConfigInfo``.
    """

    @staticmethod
    def deserialize(
        path: Any,
        as_instance: bool = False,
        return_tasks: bool = False,
        partial_loading: bool | None = None,
        definition_filename: str | None = None,
    ) -> Any:
        """What ``xpm.serialize.serialize`` saved: the configuration, ``(configuration,
        init tasks)`` with ``return_tasks``, or the object with ``as_instance`` (init tasks run)."""
        from xpm import serialize

        if as_instance and return_tasks:
            raise ValueError("deserialize(): as_instance and return_tasks cannot both be set")
        name = definition_filename or serialize.SAVED_FILE
        result = serialize.deserialize(path, as_instance, partial_loading, definition_filename=name)
        if as_instance or return_tasks:
            return result
        return result[0]
