"""Checkers: conditions on a parameter's value beyond its type, written in ``Annotated``.

``mode: Param[Annotated[str, Choices(["fast", "exact"])]]`` accepts only those two
strings. A checker is asked each time a value is assigned; a value it refuses
raises :class:`~xpm.errors.ValidationError` naming the class, the parameter, the
value and what the checker expects (``str(checker)``). Checkers never change a
value, so they never change an identifier.
"""

from __future__ import annotations

from typing import Any, Iterable

from xpm.config.types import ArgSpec, TypeAnnotation

__all__ = ["Checker", "Choices"]


class Checker(TypeAnnotation):
    """Base of the value checkers: override :meth:`check` and ``__str__``.

    ``__str__`` says what the checker expects, in a few words: it completes the
    sentence "expected ..." of the error raised for a refused value.
    """

    def check(self, value: Any) -> bool:
        """Whether ``value`` is acceptable (it already has the declared type)."""
        raise NotImplementedError(f"{type(self).__qualname__}.check() is not defined")

    def annotate(self, spec: ArgSpec) -> None:
        # Several checkers may be stacked (Annotated[int, Positive(), Choices(...)]): all must accept.
        spec.checkers.append(self)

    def __str__(self) -> str:
        return f"a value accepted by {type(self).__name__}"


class Choices(Checker):
    """Accepts only the given values (compared with ``==``).

    Args:
        choices: the accepted values, in the order the error message lists them.
    """

    def __init__(self, choices: Iterable[Any]):
        self.choices = list(choices)

    def check(self, value: Any) -> bool:
        # `==` only (`in` would also accept by identity): a value equal to a choice is accepted.
        return any(value == choice for choice in self.choices)

    def __str__(self) -> str:
        return "value in " + ", ".join(str(choice) for choice in self.choices)

    def __repr__(self) -> str:
        return f"Choices({self.choices!r})"
