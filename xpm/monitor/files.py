"""What the monitor shows of a job's files: a log followed like ``tail -f``, parameters as lines."""

from __future__ import annotations

import codecs
from typing import Any, Container

from xpm import codec, layout
from xpm.errors import XpmError
from xpm.schema import ObjectRecord, ParamsFile
from xpm.workspace import NotFound, Workspace

#: How much of a big log a :class:`LogFollower` shows first (and at most per read)
TAIL_BYTES = 64 * 1024
#: At most this many parameter lines in a job's detail
MAX_PARAM_LINES = 200


def one_line(exc: BaseException) -> str:
    """The first line of an error's message (its type when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class LogFollower:
    """The text appended to a log file since the last read, like ``tail -f``.

    The first read returns at most the last ``tail`` bytes (from a line start);
    a log that grew by more than ``tail`` between two reads is skipped ahead the
    same way, and a log that shrank (a new attempt of the job) is read again from
    its start. Bytes are decoded as UTF-8 (a character split between two reads is
    decoded whole; invalid bytes become U+FFFD).

    Attributes:
        problem: why the last read failed (None when it did not).
        skipped: whether the last read skipped part of the log.
    """

    def __init__(self, workspace: Workspace, rel: str, *, tail: int = TAIL_BYTES):
        self.workspace = workspace
        self.rel = rel
        self.tail = tail
        self.offset: int | None = None
        self.problem: str | None = None
        self.skipped = False
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    @property
    def path(self) -> str:
        return self.workspace.describe(self.rel)

    def read(self) -> str:
        """The new text ('' when there is none, when the file is missing, or when it could not be read)."""
        try:
            return self._read()
        except (OSError, XpmError) as exc:
            self.problem = f"{self.path}: {one_line(exc)}"
            return ""

    def _read(self) -> str:
        self.problem = None
        self.skipped = False
        size = self.workspace.size(self.rel)
        if size is None or size == self.offset:
            return ""
        start = self.offset if self.offset is not None and self.offset <= size else 0
        if start == 0 and self.offset is not None:
            self._decoder.reset()  # the file was replaced by a shorter one
        if size - start > self.tail:
            start = size - self.tail
            self.skipped = self.offset is not None or start > 0
            self._decoder.reset()
            data = self.workspace.read_from(self.rel, start - 1)
            # Start at a line start: drop the rest of a line cut in the middle (if it ends here).
            cut = data.find(b"\n")
            data = data[cut + 1 :] if cut >= 0 else data[1:]
            start += cut if cut >= 0 else 0
        else:
            data = self.workspace.read_from(self.rel, start)
        self.offset = start + len(data)
        return self._decoder.decode(data)


def params_lines(params: ParamsFile, *, depth: int = 3) -> list[str]:
    """``name = value`` lines for the fields of the root configuration.

    A configuration value shows as ``<type id>``, and its own fields follow as
    ``name.field = value`` (down to ``depth`` levels, each configuration once).
    """
    objects = {record.id: record for record in params.objects}
    lines: list[str] = []
    seen: set[int] = set()

    def walk(prefix: str, record: ObjectRecord, level: int) -> None:
        seen.add(record.id)
        for name, raw in record.fields.items():
            if len(lines) >= MAX_PARAM_LINES:
                return
            lines.append(f"{prefix}{name} = {_display(raw, objects)}")
            if isinstance(raw, dict) and raw.get("$") == "config" and level < depth:
                inner = objects.get(raw.get("id"))  # type: ignore[arg-type]
                if inner is not None and inner.id not in seen:
                    walk(f"{prefix}{name}.", inner, level + 1)

    root = params.root
    if isinstance(root, dict) and root.get("$") == "config" and root.get("id") in objects:
        walk("", objects[root["id"]], 1)
    else:
        lines.append(f"= {_display(root, objects)}")
    return lines


def _display(raw: Any, objects: dict[int, ObjectRecord]) -> str:
    """Compact text of an encoded value (spec/params.md): ``32``, ``"bm25"``, ``<demo.model>``, ``[1, 2]``."""
    if isinstance(raw, list):
        return "[" + ", ".join(_display(x, objects) for x in raw) + "]"
    if not isinstance(raw, dict):
        return codec.encode(raw).decode()
    kind = raw.get("$")
    if kind == "config":
        record = objects.get(raw.get("id"))  # type: ignore[arg-type]
        return f"<{record.typeid}>" if record is not None else "<?>"
    items = raw.get("items")
    if kind in ("tuple", "set") and isinstance(items, list):
        inner = ", ".join(_display(x, objects) for x in items)
        return f"({inner})" if kind == "tuple" else f"{{{inner}}}"
    if kind == "dict" and isinstance(items, list):
        pairs = (f"{_display(p[0], objects)}: {_display(p[1], objects)}" for p in items if len(p) == 2)
        return "{" + ", ".join(pairs) + "}"
    if kind == "enum":
        return f"{str(raw.get('type', '')).rpartition(':')[2]}.{raw.get('name')}"
    if kind in ("path", "generated", "float"):
        return str(raw.get("value"))
    return codec.encode(raw).decode()


def read_params(
    ws: Workspace, key: tuple[str, str], known: Container[tuple[str, str]]
) -> tuple[list[str], list[tuple[str, str]], str | None, bool]:
    """A job's parameters as lines, and its dependencies: the jobs of ``known`` that its
    parameters hold (tasks used as values). When ``params.json`` cannot be read: no lines, the
    problem in one line, and whether the file is only missing."""
    rel = layout.job_params(*key)
    source = ws.describe(rel)
    try:
        params = codec.decode_params(ws.read_bytes(rel), source)
        lines = params_lines(params)
    except NotFound:
        return [], [], f"{source}: missing", True
    except (OSError, XpmError, ValueError, TypeError, KeyError) as exc:
        text = one_line(exc)
        return [], [], text if source in text else f"{source}: {text}", False
    root = params.root.get("id") if isinstance(params.root, dict) else None
    dependencies: list[tuple[str, str]] = []
    for record in params.objects:
        dep = (record.typeid, record.identifier)
        if record.id != root and dep != key and dep in known and dep not in dependencies:
            dependencies.append(dep)
    return lines, dependencies, None, False
