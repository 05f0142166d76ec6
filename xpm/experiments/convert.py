"""Converting YAML values to declared types, with one-line problems naming the key.

msgspec does the conversion (``"3"`` to 3, ``"1e-3"`` to 0.001, strings to paths);
its messages (``Expected `int`, got `str` - at `$.epochs```) are reworded here as a
key path and a problem (``epochs``, ``expected int, got 'ten'``) that
:mod:`xpm.experiments.loader` and :mod:`xpm.experiments.grid` put in their errors.

msgspec is imported when a value is converted, not when this module is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import PurePath
from typing import Any

from xpm.errors import XpmError

__all__ = ["ConversionError", "convert", "dec_hook", "describe", "key_text", "show_value"]


class ConversionError(XpmError, ValueError):
    """A value does not convert to its type.

    Attributes:
        parts: the key path of the bad value within the converted value (``("[1]",)``
            for the second item of a list; empty for the value itself).
        problem: what is wrong (``expected float, got 'x'``).
    """

    def __init__(self, parts: Iterable[str], problem: str):
        self.parts = tuple(parts)
        self.problem = problem
        key = key_text(self.parts)
        super().__init__(f"{key}: {problem}" if key else problem)


def key_text(parts: Iterable[Any]) -> str:
    """``("model", "layers")`` → ``model.layers``; list indexes stay glued (``lrs[1]``)."""
    return ".".join(str(part) for part in parts).replace(".[", "[")


def show_value(value: Any) -> str:
    """A value as the user would recognise it in their file, kept short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def dec_hook(tp: Any, obj: Any) -> Any:
    """Builds the types msgspec does not know from the YAML value (paths from strings)."""
    if isinstance(tp, type) and issubclass(tp, PurePath) and isinstance(obj, str):
        return tp(obj)
    name = getattr(tp, "__qualname__", None) or repr(tp)
    # A TypeError becomes a msgspec.ValidationError carrying the key path.
    raise TypeError(f"Expected `{name}`, got `{type(obj).__name__}`")


def convert(value: Any, tp: Any) -> Any:
    """``value`` converted to ``tp``, strings coerced (``"3"`` to 3 for an ``int``).

    Raises:
        ConversionError: the value does not fit the type (with the key path inside the value).
        TypeError: the type is not one that msgspec converts to.
    """
    import msgspec

    try:
        return msgspec.convert(value, type=tp, strict=False, dec_hook=dec_hook)
    except msgspec.ValidationError as exc:
        raise ConversionError(*describe(str(exc), value)) from None


# msgspec's messages: "Expected `int`, got `str` - at `$.epochs`",
# "Object missing required field `id`", "Expected `str`, got `int` - at `key` in `$.d`".
_MESSAGE = re.compile(r"^(?P<text>.*?)(?: - at `(?P<at>[^`]*)`(?: in `(?P<within>[^`]*)`)?)?$", re.DOTALL)
_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")
_EXPECTED = re.compile(r"^Expected `(?P<type>[^`]*)`, got `(?P<got>[^`]*)`$")
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]*)`$")
_TYPE_WORDS = {"object": "mapping", "array": "list"}


def describe(message: str, data: Any) -> tuple[list[str], str]:
    """A msgspec validation message about ``data``, as a key path and a problem in
    the lower case of the rest of a line (``["lrs", "[1]"]``, ``expected float, got 'x'``)."""
    match = _MESSAGE.match(message)
    assert match is not None  # the pattern matches any text
    text, at, within = match.group("text"), match.group("at"), match.group("within")
    raw_path = within if at == "key" and within else (at or "$")
    parts = [name if name else f"[{index}]" for name, index in _PATH_PART.findall(raw_path)]
    if at == "key":
        text = text.replace("Expected", "Expected a key of type", 1)

    missing = _MISSING.match(text)
    if missing:
        return [*parts, missing.group("field")], "required key is missing"

    expected = _EXPECTED.match(text)
    if expected:
        wanted = " | ".join(_TYPE_WORDS.get(word, word) for word in expected.group("type").split(" | "))
        found, value = _lookup(data, parts)
        got = show_value(value) if found and at != "key" else expected.group("got")
        return parts, f"expected {wanted}, got {got}"

    # Other messages ("Invalid enum value 'z'", a __post_init__ error): kept.
    text = text.replace("`", "")
    if text[:1].isupper() and text[1:2].islower():
        text = text[0].lower() + text[1:]
    return parts, text


def _lookup(data: Any, parts: list[str]) -> tuple[bool, Any]:
    """The value at a key path, if it can be found."""
    for part in parts:
        if part.startswith("["):
            if part == "[...]" or not isinstance(data, list):
                return False, None
            index = int(part[1:-1])
            if index >= len(data):
                return False, None
            data = data[index]
        elif isinstance(data, dict) and part in data:
            data = data[part]
        else:
            return False, None
    return True, data
