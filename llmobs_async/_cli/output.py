"""Command-line output: models as JSON (indented, or one per line), records, progress bars."""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TextIO

import attrs
import orjson

from .._bulk.results import BulkProgress
from ..experiments import RunProgress
from ..models import Author, DatasetRecord


def to_jsonable(value: Any, *, nested: bool = False) -> Any:
    """A response model (or list of them) as plain JSON-ready data.

    Fields the API sent that the models do not know (a model's ``extra``) are
    written beside the known ones, as the API sent them. A model inside
    another (an ``author``) leaves out the fields it does not have.
    """
    if attrs.has(type(value)):
        out: dict[str, Any] = {}
        extra: Mapping[str, Any] = {}
        for field in attrs.fields(type(value)):
            item = getattr(value, field.name)
            if field.name == "extra":
                extra = item
            elif item is not None or not nested:
                out[field.name] = to_jsonable(item, nested=True)
        for key, item in extra.items():
            out.setdefault(key, to_jsonable(item, nested=True))
        return out
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {key: to_jsonable(item, nested=True) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(item, nested=nested) for item in value]
    return value


def print_json(value: Any) -> None:
    """Print a response model as indented JSON on stdout."""
    print(json.dumps(to_jsonable(value), indent=2, ensure_ascii=False))


def print_jsonl(value: Any) -> None:
    """Print a response model as one line of JSON (JSON Lines) on stdout."""
    print(json.dumps(to_jsonable(value), ensure_ascii=False, separators=(",", ":")), flush=True)


_RECORD_SERVER_FIELDS = ("dataset_id", "version", "canonical_id", "created_at", "updated_at")


def record_line(record: DatasetRecord) -> bytes:
    """One record as a line of JSON: what ``records create`` reads first, then the API's fields.

    Written out for speed (a pull writes every record of a dataset): about
    10x faster than :func:`to_jsonable` and the standard library.
    """
    doc: dict[str, Any] = {
        "id": record.id,
        "input": record.input,
        "expected_output": record.expected_output,
        "metadata": record.metadata,
        "tags": record.tags,
    }
    for name in _RECORD_SERVER_FIELDS:
        item = getattr(record, name)
        if item is not None:
            doc[name] = item
    author = record.author
    if author is not None:
        doc["author"] = _author(author)
    if record.deleted_at is not None:
        doc["deleted_at"] = record.deleted_at
    for key, item in record.extra.items():
        doc.setdefault(key, item)
    try:
        return orjson.dumps(doc, default=_plain, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:  # an integer beyond 64 bits, which orjson refuses: the slow way
        return json.dumps(to_jsonable(doc)).encode() + b"\n"  # ASCII: whatever the strings hold


def _author(author: Author) -> Any:
    # Records mostly name their author by id alone: the common case skips the generic walk.
    only_id = author.name is author.email is author.handle is author.icon is None
    if only_id and author.id is not None and not author.extra:
        return {"id": author.id}
    return to_jsonable(author, nested=True)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):  # e.g. a read-only mapping view
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


class ProgressBar:
    """Draws ``BulkProgress`` updates on one terminal line, at most ~10 times a second.

    Disabled (draws nothing) when ``enabled`` is false, e.g. when the stream
    is not a terminal or the user asked for quiet output.
    """

    def __init__(
        self, stream: TextIO, *, total: int | None, enabled: bool, verb: str = "applied"
    ) -> None:
        self._stream = stream
        self._verb = verb
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
        line += f"  {rate:,.0f} rec/s  {self._verb} {p.applied:,}  failed {p.failed:,}"
        line += f"  retries {p.retries:,}"
        self._stream.write("\r" + line + "\x1b[K")
        self._stream.flush()


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


class CountBar:
    """Draws a running count (records pulled, pages) on one terminal line, ~10 times a second.

    For work whose total is unknown, such as a dataset pulled page by page.
    Disabled (draws nothing) when ``enabled`` is false.
    """

    def __init__(self, stream: TextIO, *, what: str, enabled: bool) -> None:
        self._stream = stream
        self._what = what
        self._enabled = enabled
        self._started = time.monotonic()
        self._last_draw = 0.0
        self._drawn = False
        self._count = self._pages = 0

    def __call__(self, count: int, pages: int) -> None:
        """Take the new totals; redraw if enough time has passed."""
        self._count, self._pages = count, pages
        now = time.monotonic()
        if self._enabled and now - self._last_draw >= 0.1:
            self._last_draw = now
            self._draw(now)

    def close(self) -> None:
        """Draw the final state and end the line."""
        if self._enabled and self._drawn:
            self._draw(time.monotonic())
            self._stream.write("\n")
            self._stream.flush()

    def _draw(self, now: float) -> None:
        self._drawn = True
        rate = self._count / max(now - self._started, 1e-6)
        line = f"{self._what} {self._count:,} records  {self._pages:,} pages  {rate:,.0f} rec/s"
        self._stream.write("\r" + line + "\x1b[K")
        self._stream.flush()


class RunBar:
    """Draws an experiment run's ``RunProgress`` on stderr.

    On a terminal: one line redrawn ~10 times a second. Elsewhere (a CI log),
    when asked for with ``--progress``: a new line at most once a second,
    the first at once. Disabled (draws nothing) when ``enabled`` is false.
    """

    def __init__(self, stream: TextIO, *, enabled: bool, terminal: bool) -> None:
        self._stream = stream
        self._enabled = enabled
        self._terminal = terminal
        self._every = 0.1 if terminal else 1.0
        self._started = time.monotonic()
        self._last_draw = -1.0
        self._last: RunProgress | None = None
        self._drawn = self._closed = False

    def __call__(self, progress: RunProgress) -> None:
        """Take an update (a ``RunProgress``); redraw if enough time has passed."""
        self._last = progress
        now = time.monotonic()
        due = self._last_draw < 0 or now - self._last_draw >= self._every
        if self._enabled and due and not self._closed:
            self._last_draw = now
            self._draw(progress, now)

    @property
    def experiment_id(self) -> str | None:
        """The experiment of the last update, if there was one."""
        return None if self._last is None else self._last.experiment_id

    def close(self) -> None:
        """Draw the final state and end the line (once)."""
        if self._enabled and self._last is not None and not self._closed:
            self._draw(self._last, time.monotonic())
        if self._drawn and self._terminal and not self._closed:
            self._stream.write("\n")
            self._stream.flush()
        self._closed = True

    def _draw(self, p: RunProgress, now: float) -> None:
        self._drawn = True
        elapsed = max(now - self._started, 1e-6)
        rate = p.done / elapsed
        if p.total:
            width = 24
            filled = min(width, int(width * p.done / p.total))
            line = f"[{'#' * filled}{'.' * (width - filled)}] {p.done:,}/{p.total:,} rows"
            if rate > 0:
                line += f"  ETA {_duration((p.total - p.done) / rate)}"
        else:
            line = f"{p.done:,} rows"
        line += (
            f"  {rate:,.1f} rows/s  task errors {p.task_errors:,}  pushed {p.pushed:,}"
            f"  push failed {p.push_failed:,}  retries {p.retries:,}"
        )
        if self._terminal:
            self._stream.write("\r" + line + "\x1b[K")
        else:
            self._stream.write(f"llmobs-async: {line}\n")
        self._stream.flush()
