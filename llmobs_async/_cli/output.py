"""Command-line output: models as JSON (indented, or one per line) and the progress bar."""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TextIO

import attrs

from .._bulk import BulkProgress


def to_jsonable(value: Any) -> Any:
    """A response model (or list of them) as plain JSON-ready data."""

    def serialize(_: Any, __: Any, v: Any) -> Any:
        if isinstance(v, datetime):
            return v.isoformat()
        if isinstance(v, enum.Enum):
            return v.value
        if isinstance(v, Mapping) and not isinstance(v, dict):
            return dict(v)
        return v

    if isinstance(value, list):
        return [to_jsonable(v) for v in value]
    return attrs.asdict(value, value_serializer=serialize)


def print_json(value: Any) -> None:
    """Print a response model as indented JSON on stdout."""
    print(json.dumps(to_jsonable(value), indent=2, ensure_ascii=False))


def print_jsonl(value: Any) -> None:
    """Print a response model as one line of JSON (JSON Lines) on stdout."""
    print(json.dumps(to_jsonable(value), ensure_ascii=False, separators=(",", ":")))


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
