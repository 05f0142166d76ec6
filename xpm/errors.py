"""The errors xpm raises.

Every error derives from :class:`XpmError` so that the command line can turn any
of them into one clear line and a non-zero exit. Errors carry the data that
describes the problem (``.cls``, ``.param``, ``.path``...) in addition to their
message, so that callers can react without parsing text.
"""

from __future__ import annotations

import os
from typing import Any

from xpm._version import __version__

__all__ = [
    "XpmError",
    "ConfigError",
    "ValidationError",
    "UnknownParameterError",
    "MissingParameterError",
    "SealedError",
    "IdentifierError",
    "SerializationError",
    "FormatVersionError",
    "ClassImportError",
    "GracefulTimeout",
    "TaskCancelled",
    "os_error_text",
]


class XpmError(Exception):
    """Root of every error raised by xpm.

    ``exit_code`` is the process exit status the command line uses for it.
    """

    exit_code: int = 1


class FileProblem(XpmError, ValueError):
    """A problem in a file a user wrote (settings, experiment YAML): ``<file>: <key>: <problem>``.

    The file and key parts are left out when they do not apply.
    """

    def __init__(self, problem: str, *, path: str | os.PathLike[str] | None = None, key: str = ""):
        self.path = str(path) if path is not None else None
        self.key = key
        self.problem = problem
        parts = [part for part in (self.path, key) if part]
        super().__init__(": ".join([*parts, problem]))


class ConfigError(XpmError, ValueError):
    """A configuration is invalid (bad declaration, bad value, bad use)."""


class ValidationError(ConfigError, TypeError):
    """A value does not match the declared type of a parameter.

    Attributes:
        cls: the name of the configuration class.
        param: the parameter path (``lr``, ``layers[2]``, ``opts['x']``).
        expected: a description of the expected type.
        given: the value that was given.
    """

    def __init__(self, cls: str, param: str, expected: str, given: Any, detail: str = ""):
        self.cls = cls
        self.param = param
        self.expected = expected
        self.given = given
        text = f"{cls}.{param}: expected {expected}, got {describe_value(given)}"
        if detail:
            text += f" ({detail})"
        super().__init__(text)


class UnknownParameterError(ConfigError, AttributeError):
    """A parameter name that the configuration class does not declare."""

    def __init__(self, cls: str, param: str, known: list[str]):
        self.cls = cls
        self.param = param
        self.known = known
        names = ", ".join(known) if known else "none"
        super().__init__(f"{cls} has no parameter '{param}' (its parameters: {names})")


class MissingParameterError(ConfigError):
    """A required parameter was never given a value."""

    def __init__(self, cls: str, param: str, expected: str, created_at: str | None = None):
        self.cls = cls
        self.param = param
        self.expected = expected
        self.created_at = created_at
        text = f"{cls}.{param}: expected {expected}, got nothing (the parameter is required)"
        if created_at:
            text += f"; the configuration was created at {created_at}"
        super().__init__(text)


class SealedError(ConfigError):
    """A sealed configuration (or a constant) cannot be changed."""

    def __init__(self, cls: str, param: str, reason: str):
        self.cls = cls
        self.param = param
        super().__init__(f"{cls}.{param} cannot be set: {reason}")


class IdentifierError(XpmError, ValueError):
    """A value cannot enter an identifier (unsupported kind, missing value...)."""

    def __init__(self, message: str, path: str = ""):
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class SerializationError(XpmError):
    """A configuration file cannot be written or read back.

    Attributes:
        path: the file concerned, when there is one.
    """

    def __init__(self, message: str, path: str | None = None):
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class FormatVersionError(SerializationError):
    """A file was written by a newer format version than this xpm reads."""

    def __init__(self, path: str | None, found: int, supported: int):
        self.found = found
        self.supported = supported
        super().__init__(
            f"format version {found} is newer than the version {supported} "
            f"this xpm ({__version__}) reads; upgrade xpm to read it",
            path,
        )


class ClassImportError(SerializationError):
    """A class named in a configuration file cannot be imported (its module is missing or fails).

    Attributes:
        name: the class, as ``module:qualified.name``.
        reason: why, as ``ExceptionType: message``.
    """

    def __init__(self, name: str, reason: str, path: str | None = None):
        self.name = name
        self.reason = reason
        super().__init__(f"cannot import {name} ({reason})", path)


def describe_value(value: Any) -> str:
    """A short description of a value for error messages: its type and repr."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} ({text})"


class GracefulTimeout(Exception):
    """Raised by a ``ResumableTask`` that stops before its time limit.

    The job ends in error with the reason ``timeout``, and the scheduler runs it
    again (up to ``max_retries`` times) so that it resumes from its checkpoints.
    """


class TaskCancelled(Exception):
    """Raised inside ``execute()`` when the job is asked to stop (SIGTERM, ``jobs kill``).

    Catch it to clean up, then re-raise it: the job ends in error with the reason
    ``cancelled``.
    """


def os_error_text(exc: OSError) -> str:
    """An OS error in the words users act on: ``No space left on device (/ws/jobs/...)``."""
    if exc.strerror:
        return f"{exc.strerror} ({exc.filename})" if exc.filename else exc.strerror
    return str(exc)
