"""A terminal progress line for bulk updates: counts, rate and ETA, redrawn in place."""

from __future__ import annotations

import time
from typing import TextIO

from ._bulk import BulkProgress


class ProgressBar:
    """Draws ``BulkProgress`` updates on one terminal line, at most ~10 times a second.

    Disabled (draws nothing) when ``enabled`` is false, e.g. when the stream
    is not a terminal or the user asked for quiet output.
    """

    def __init__(self, stream: TextIO, *, total: int | None, enabled: bool) -> None:
        self._stream = stream
        self._total = total
        self._enabled = enabled
        self._started = time.monotonic()
        self._last_draw = 0.0
        self._last: BulkProgress | None = None

    def __call__(self, progress: BulkProgress) -> None:
        """Take an update; redraw if enough time has passed."""
        self._last = progress
        now = time.monotonic()
        if self._enabled and now - self._last_draw >= 0.1:
            self._last_draw = now
            self._draw(progress, now)

    def close(self) -> None:
        """Draw the final state and end the line."""
        if self._enabled and self._last is not None:
            self._draw(self._last, time.monotonic())
            self._stream.write("\n")
            self._stream.flush()

    def _draw(self, p: BulkProgress, now: float) -> None:
        elapsed = max(now - self._started, 1e-6)
        done = p.applied + p.failed
        rate = done / elapsed
        line = f"{done:,}"
        if self._total:
            width = 24
            filled = min(width, int(width * done / self._total))
            line = f"[{'#' * filled}{'.' * (width - filled)}] {done:,}/{self._total:,}"
            if rate > 0:
                line += f"  ETA {_duration((self._total - done) / rate)}"
        line += f"  {rate:,.0f} rec/s  applied {p.applied:,}  failed {p.failed:,}"
        line += f"  retries {p.retries:,}"
        self._stream.write("\r" + line + "\x1b[K")
        self._stream.flush()


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"
