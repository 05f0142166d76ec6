"""Encoders and decoders of workspace records, created once (msgspec's advice).

Append-only logs are JSON lines in which each line checks itself::

    ["1a2b3c4d",{"kind":"state","ts":1700000000.5,"state":"running"}]\\n

The first element is the CRC-32 (8 lowercase hex digits) of the exact bytes of the
event that follows. A line that does not end with a newline, does not have this
shape, or whose checksum does not match is damaged (a torn write, a full disk, an
NFS hiccup): readers skip it and report it, never misread it.
"""

from __future__ import annotations

import zlib
from typing import Any, Callable, Iterator, NamedTuple, TypeVar

import msgspec

from xpm.errors import FormatVersionError, SerializationError
from xpm.schema import PARAMS_VERSION, RECORD_VERSION, AnyEvent, ParamsFile, VersionView

T = TypeVar("T")

_encoder = msgspec.json.Encoder()
_version_decoder = msgspec.json.Decoder(VersionView)
#: Decoders by type, made on first use: making one walks the type's annotations (all
#: the events' for AnyEvent), which a command that reads no log should not pay at start-up.
_decoders: dict[Any, msgspec.json.Decoder] = {}
_PREFIX = b'["'
_SEP = b'",'


def _decoder(cls: Any) -> msgspec.json.Decoder:
    decoder = _decoders.get(cls)
    if decoder is None:
        decoder = _decoders[cls] = msgspec.json.Decoder(cls)
    return decoder


def encode(record: Any) -> bytes:
    """The JSON bytes of a record (compact)."""
    return _encoder.encode(record)


def check_version(data: bytes, supported: int, source: str | None, what: str = "record") -> int:
    """Reads only the ``version`` of a record; refuses a newer one with a clear error."""
    try:
        version = _version_decoder.decode(data).version
    except msgspec.DecodeError as exc:
        raise SerializationError(f"not a valid {what} ({exc})", source) from None
    if version > supported:
        raise FormatVersionError(source, version, supported)
    return version


def decode_record(data: bytes, cls: type[T], source: str | None = None) -> T:
    """Decodes a versioned record, refusing newer versions with a clear error."""
    check_version(data, RECORD_VERSION, source)
    try:
        return _decoder(cls).decode(data)  # type: ignore[no-any-return]
    except msgspec.DecodeError as exc:
        raise SerializationError(f"not a valid {cls.__name__} ({exc})", source) from None


def decode_params(data: bytes, source: str | None = None) -> ParamsFile:
    """Decodes a ``params.json`` / ``xpm.json`` file, without rebuilding (importing) its classes.

    Raises:
        FormatVersionError: the file was written by a newer format version.
        SerializationError: the file is not a valid parameters file.
    """
    check_version(data, PARAMS_VERSION, source, "xpm parameters file")
    try:
        return _decoder(ParamsFile).decode(data)  # type: ignore[no-any-return]
    except msgspec.DecodeError as exc:
        raise SerializationError(f"not a valid xpm parameters file ({exc})", source) from None


def params_identifier(params: ParamsFile) -> str | None:
    """The identifier a parameters file records for its root configuration (None: no root object)."""
    root = params.root.get("id") if isinstance(params.root, dict) else None
    found = next((o for o in params.objects if o.id == root), None)
    return found.identifier if found is not None else None


def encode_line(event: Any) -> bytes:
    """One self-checking log line for ``event``, newline included."""
    body = _encoder.encode(event)
    return b'["%08x",%s]\n' % (zlib.crc32(body), body)


class LineProblem(NamedTuple):
    """A damaged line: where it starts, and why it was skipped."""

    offset: int
    reason: str


def iter_lines(data: bytes, base_offset: int = 0) -> Iterator[tuple[int, Any]]:
    """Yields ``(end offset, event or LineProblem)`` for each line of ``data``.

    A last line without a newline is not yielded at all (it may still be being
    written): the caller resumes from the last end offset it saw. Offsets are
    relative to the file when ``base_offset`` is where ``data`` starts.
    """
    start = 0
    size = len(data)
    decode = _decoder(AnyEvent).decode
    while start < size:
        end = data.find(b"\n", start)
        if end < 0:
            return
        parsed = _parse(data, start, end, base_offset, decode)
        if isinstance(parsed, LineProblem):
            # A torn line followed by a complete one share a physical line (the
            # writer of the second did not know the first was torn): recover the
            # complete event at the end.
            resync = data.rfind(_PREFIX, start + 1, end)
            while resync > start:
                recovered = _parse(data, resync, end, base_offset, decode)
                if not isinstance(recovered, LineProblem):
                    yield base_offset + resync, LineProblem(base_offset + start, "torn line")
                    parsed = recovered
                    break
                resync = data.rfind(_PREFIX, start + 1, resync)
        yield base_offset + end + 1, parsed
        start = end + 1


def _parse(data: bytes, start: int, end: int, base_offset: int, decode: Callable[[bytes], Any]) -> Any:
    line = data[start:end]
    if not (line.startswith(_PREFIX) and line[10:12] == _SEP and line.endswith(b"]")):
        return LineProblem(base_offset + start, "not a log line")
    body = line[12:-1]
    try:
        expected = int(line[2:10], 16)
    except ValueError:
        return LineProblem(base_offset + start, "bad checksum field")
    if zlib.crc32(body) != expected:
        return LineProblem(base_offset + start, "checksum mismatch")
    try:
        return decode(body)
    except msgspec.DecodeError as exc:
        return LineProblem(base_offset + start, f"unknown event ({exc})")


def last_line(data: bytes, end: int | None = None) -> bytes:
    """The last complete line of ``data[:end]`` (which ends with a newline), newline included; b"" if empty."""
    end = len(data) if end is None else end
    return data[data.rfind(b"\n", 0, end - 1) + 1 : end] if end else b""


def trailing_partial(data: bytes) -> bool:
    """Whether ``data`` ends with a line that has no newline (torn, or being written)."""
    return bool(data) and not data.endswith(b"\n")
