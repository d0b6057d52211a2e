"""JSON Lines in: records read lazily with their line numbers; bad lines set aside; failed out.

A bulk command reads its FILE through :class:`JsonLinesSource` and, at the
end, writes every line read but not applied to ``--failed-out``
(:func:`write_failed`), in input order, each marked with why. A malformed
line cannot carry a key: it is written as a mark alone that keeps the line as
text (``{"_failure": {"line": 3, "error": "...", "raw": "{bad"}}``), which
reads back as the same malformed line.
"""

from __future__ import annotations

import bisect
import json
import os
from collections.abc import Collection, Iterator
from typing import IO, Any

from .._bulk.csvsource import CsvSource
from .._bulk.results import BulkResult
from .summary import failure_text

MARK = "_failure"
"""Key added to each record in ``--failed-out`` (why it is there); dropped on reading."""
RAW = "raw"
"""Key of the mark that keeps a malformed line, as text: ``{"_failure": {..., "raw": "{bad"}}``."""


class JsonLinesSource:
    """Reads records lazily from a JSON Lines byte stream, setting bad lines aside.

    A line that is not a JSON object (not UTF-8, not JSON, nested too deeply,
    a number too long to read) is not sent: it is reported with its line
    number and kept verbatim for the failed-records file, and reading goes on.
    Lines before ``start`` are skipped unread. Keys in ``drop`` are removed
    from each object (what ``records list`` writes but the API assigns).
    """

    def __init__(
        self, stream: IO[bytes], *, start: int = 1, drop: Collection[str] = frozenset()
    ) -> None:
        self._stream = stream
        self._drop = tuple(drop)
        self.start = start
        self.last_line = start - 1
        """The last line read: reading resumes at ``last_line + 1``."""
        self.skipped: list[int] = []  # line numbers not passed on (blank or malformed)
        self.malformed: list[tuple[int, str, bytes]] = []  # (line number, reason, raw line)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        start, drop = self.start, self._drop
        for number, raw in enumerate(self._stream, start=1):
            if number < start:
                continue
            self.last_line = number
            value = _parse_line(raw, first=number == 1)
            if value is None:
                self.skipped.append(number)
            elif isinstance(value, str):
                self.skipped.append(number)
                self.malformed.append((number, value, raw.rstrip(b"\r\n")))
            else:
                mark = value.pop(MARK, None)  # a re-run of --failed-out: the mark is not data
                if not value and isinstance(mark, dict) and isinstance(mark.get(RAW), str):
                    # A malformed line set aside by an earlier run: malformed still.
                    self.skipped.append(number)
                    again = str(mark.get("error") or "malformed")
                    self.malformed.append((number, again, _raw_bytes(mark[RAW])))
                    continue
                for key in drop:
                    value.pop(key, None)
                yield value

    def line_of(self, index: int) -> int:
        """The line number of the ``index``-th record passed on (0-based)."""
        line = index + self.start
        while True:
            candidate = index + self.start + bisect.bisect_right(self.skipped, line)
            if candidate == line:
                return line
            line = candidate


def _parse_line(raw: bytes, *, first: bool) -> dict[str, Any] | str | None:
    """The record on one line; a reason (str) if the line is unusable; None if blank."""
    try:
        # A byte-order mark (as some Windows editors write) is not part of the data.
        text = raw.decode("utf-8-sig" if first else "utf-8")
    except UnicodeDecodeError as exc:
        return f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
    if not text.strip():
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"not valid JSON ({exc.msg} at column {exc.colno})"
    except RecursionError:
        return "not valid JSON (nested too deeply)"
    except ValueError:  # the one other refusal: an integer of thousands of digits
        return "not valid JSON (a number has too many digits)"
    if not isinstance(value, dict):
        return f"expected a JSON object, got {type(value).__name__}"
    return value


def count_lines(path: str, start: int) -> int | None:
    """The non-blank lines of ``path`` from line ``start`` (for the progress bar), if a file."""
    if path == "-" or not os.path.isfile(path):
        return None
    with open(path, "rb") as f:
        return sum(1 for number, line in enumerate(f, start=1) if number >= start and line.strip())


def write_failed(path: str, source: JsonLinesSource | CsvSource, result: BulkResult) -> int:
    """Write every line read but not applied, in input order; return how many."""
    lines: list[tuple[int, bytes]] = [
        (n, _json_line({MARK: {"line": n, "error": reason, RAW: _raw_text(raw)}}))
        for n, reason, raw in source.malformed
    ]
    for failure in result.failed:
        for item, position in zip(failure.records, failure.positions, strict=True):
            number = source.line_of(position)
            mark: dict[str, Any] = {"line": number}
            if not failure.sent:
                mark["unsent"] = True
            mark["error"] = failure_text(failure)[:300]
            lines.append((number, _json_line({**item, MARK: mark})))
    lines.sort(key=lambda entry: entry[0])
    with open(path, "wb") as out:
        out.writelines(line for _, line in lines)
    return len(lines)


def _raw_text(raw: bytes) -> str:
    # Bytes that are not UTF-8 become lone surrogates, written as \\u escapes: nothing is lost.
    return raw.decode("utf-8", "surrogateescape")


def _raw_bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _json_line(item: Any) -> bytes:
    try:
        return (json.dumps(item, ensure_ascii=False) + "\n").encode()
    except UnicodeEncodeError:  # a lone surrogate: \\u escapes keep the line valid JSON
        return (json.dumps(item) + "\n").encode()
