"""Progress bars that also report to a listener: the streaming writers count their events with
:class:`tqdm` (shown or not), and a caller inside :func:`reporting` hears every step, as the
service's jobs do to publish their progress and to stop at a cancellation."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator

from tqdm.auto import tqdm as _tqdm

Listener = Callable[[str, int, "int | None"], None]
"""Called as ``listener(desc, done, total)`` after every update (``total`` None when unknown)."""

_LISTENER: contextvars.ContextVar[Listener | None] = contextvars.ContextVar("treasure_progress", default=None)


class tqdm(_tqdm):
    """``tqdm.auto.tqdm`` that also calls the listener of :func:`reporting`, hidden bars too; an
    exception the listener raises (a cancellation) ends the work that updates the bar."""

    def __init__(self, *args, **kwargs):
        self._listener_desc = str(kwargs.get("desc") or "")
        self._listener_done = int(kwargs.get("initial") or 0)
        super().__init__(*args, **kwargs)

    def update(self, n: float | None = 1):
        shown = super().update(n)
        listener = _LISTENER.get()
        if listener is not None:
            self._listener_done += int(n or 0)
            total = None if self.total is None else int(self.total)
            listener(self._listener_desc, self._listener_done, total)
        return shown


@contextlib.contextmanager
def reporting(listener: Listener) -> Iterator[None]:
    """Send the updates of every :class:`tqdm` bar made in this context (this thread) to ``listener``."""
    token = _LISTENER.set(listener)
    try:
        yield
    finally:
        _LISTENER.reset(token)
