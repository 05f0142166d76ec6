"""Progress bars that report to the running job: ``for batch in tqdm(loader): ...``.

:data:`tqdm` shows a progress bar as usual and records the bar's progress in the
job's event log, where the monitors read it (a bar inside another one reports at
the next level). It is the ``tqdm`` package's bar, with every argument of it,
when that package is installed; otherwise :class:`PlainProgressBar`, which takes
the same basic arguments and prints one line when it ends.

Reports go through :func:`progress`, which records only the changes that show (at
least 1%, a new description, or 10 s later): a bar may update on every item.
Outside a job, nothing is recorded.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, ClassVar, Iterable, Iterator, TextIO

from xpm import context, taskglobals

__all__ = ["tqdm", "progress", "PlainProgressBar"]  # noqa: F822 - tqdm: see __getattr__ below

logger = logging.getLogger(__name__)


def progress(value: float, level: int = 0, desc: str | None = None, console: bool = False) -> None:
    """Reports the progress of the running task (``value`` from 0 to 1) at a nesting ``level``.

    See :func:`xpm.context.progress`; in addition, the helper processes of a task
    (``Env.instance().slave``) report nothing, and ``console=True`` also logs the
    value (logger ``xpm.notifications``, level INFO).
    """
    if taskglobals.Env.instance().slave:
        return
    if console:
        logger.info("progress [%d] %s %.1f%%", level, desc or "", 100 * value)
    context.progress(value, level=level, desc=desc)


def _report(bar: Any, n: float, total: float | None, level: int, desc: str | None) -> None:
    """Reports ``bar`` at ``n`` of ``total`` (nothing when the total is unknown, or when unchanged)."""
    if not total:
        return
    value = (n / total, level, desc or None)
    # The last update and close() both report the end: once is enough.
    if bar.__dict__.get("_xpm_reported") == value:
        return
    bar.__dict__["_xpm_reported"] = value
    progress(value[0], level=level, desc=value[2])


class PlainProgressBar:
    """The bar used when the ``tqdm`` package is not installed: reports, and prints one line at the end.

    It takes the arguments of ``tqdm`` that matter here (``iterable``, ``desc``,
    ``total``, ``leave``, ``file``, ``disable``, ``position``, ``initial``) and
    accepts the others without using them, so code written for ``tqdm`` runs.
    """

    #: the positions of the bars not closed yet: a new bar takes the first free one
    _positions: ClassVar[set[int]] = set()

    def __init__(
        self,
        iterable: Iterable[Any] | None = None,
        desc: str | None = None,
        total: float | None = None,
        leave: bool | None = True,
        file: TextIO | None = None,
        disable: bool | None = False,
        position: int | None = None,
        initial: float = 0,
        **ignored: Any,
    ):
        if total is None and iterable is not None:
            try:
                total = len(iterable)  # type: ignore[arg-type]
            except (TypeError, AttributeError):
                total = None
        self.iterable = iterable
        self.desc = desc or ""
        self.total = total
        self.leave = leave
        self.file = file
        self.disable = bool(disable)
        self.n = initial
        self.postfix: str | None = None
        self.closed = False
        if self.disable:
            self.pos = position or 0
            return
        if position is None:
            position = next(i for i in range(len(self._positions) + 1) if i not in self._positions)
        self.pos = position
        self._positions.add(position)
        _report(self, self.n, self.total, self.pos, self.desc)

    def __iter__(self) -> Iterator[Any]:
        if self.iterable is None:
            raise TypeError("this progress bar has no iterable: use update() instead")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __len__(self) -> int:
        if self.total is not None:
            return int(self.total)
        return len(self.iterable)  # type: ignore[arg-type]

    def __enter__(self) -> PlainProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: float = 1) -> None:
        """Advances the bar by ``n``."""
        if self.disable:
            return
        self.n += n
        _report(self, self.n, self.total, self.pos, self.desc)

    def reset(self, total: float | None = None) -> None:
        """Starts again from 0 (with a new total, if given)."""
        self.n = 0
        if total is not None:
            self.total = total

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        """Changes the description (reported with the next update)."""
        self.desc = desc or ""

    set_description_str = set_description

    def set_postfix(self, ordered_dict: Any = None, refresh: bool = True, **kwargs: Any) -> None:
        """Sets the text shown after the counts (``loss=0.25``)."""
        items = dict(ordered_dict or {}, **kwargs)
        self.postfix = ", ".join(f"{key}={value}" for key, value in items.items())

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = s

    def refresh(self, *args: Any, **kwargs: Any) -> None:
        """Nothing to redraw: this bar prints only when it ends."""

    def clear(self, *args: Any, **kwargs: Any) -> None:
        """Nothing to clear: this bar prints only when it ends."""

    def close(self) -> None:
        """Ends the bar: reports its last value and prints its line (if ``leave``)."""
        if self.closed:
            return
        self.closed = True
        if self.disable:
            return
        self._positions.discard(self.pos)
        _report(self, self.n, self.total, self.pos, self.desc)
        if self.leave:
            print(self._line(), file=self.file or sys.stderr, flush=True)

    def _line(self) -> str:
        count = f"{self.n:g}/{self.total:g}" if self.total is not None else f"{self.n:g}"
        parts = [f"{self.desc}: {count}" if self.desc else count]
        if self.postfix:
            parts.append(self.postfix)
        return ", ".join(parts)

    @classmethod
    def write(cls, s: str, file: TextIO | None = None, end: str = "\n", nolock: bool = False) -> None:
        """Prints a message (tqdm's way to print without breaking bars)."""
        print(s, file=file or sys.stdout, end=end)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._line()}>"


def _bar_class() -> type:
    """The tqdm package's bar made to report to the job, or :class:`PlainProgressBar`."""
    try:
        from tqdm.auto import tqdm as base  # type: ignore[import-untyped]
    except ImportError:
        return PlainProgressBar

    class tqdm(base):  # type: ignore[misc,valid-type]
        """tqdm's progress bar, which also reports its progress to the running job."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._xpm_report()

        def update(self, n: float = 1) -> bool | None:
            # tqdm's iteration calls update() when it redraws (every `mininterval`), not at each item.
            displayed = super().update(n)
            self._xpm_report()
            return displayed  # type: ignore[no-any-return]

        def close(self) -> None:
            # The last value first: close() disables the bar. A second close() reports nothing.
            self._xpm_report()
            super().close()

        def _xpm_report(self) -> None:
            if not getattr(self, "disable", True):
                # set_description() appends ": " to the text it is given; the report shows the text.
                desc = self.desc[:-2] if self.desc.endswith(": ") else self.desc
                _report(self, self.n, self.total, abs(self.pos), desc)

    tqdm.__module__ = __name__
    return tqdm


def __getattr__(name: str) -> Any:
    # `tqdm` is made on first use: importing this module does not import the tqdm package.
    if name == "tqdm":
        cls = _bar_class()
        globals()["tqdm"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
