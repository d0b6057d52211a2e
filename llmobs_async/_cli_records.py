"""``llmobs-async records update``: a JSON Lines file through ``update_many``."""

from __future__ import annotations

import argparse
import bisect
import json
import os
import sys
import time
from collections.abc import Iterator
from typing import IO, Any

from ._bulk import BulkResult
from ._client import LLMObsClient
from ._progress import ProgressBar
from .errors import ValidationError

_SHOWN_PROBLEMS = 10


class JsonLinesSource:
    """Reads records lazily from a JSON Lines byte stream, setting bad lines aside.

    A line that is not a JSON object (not UTF-8, not JSON, nested too deeply,
    a number too long to read) is not sent: it is reported with its line
    number and kept verbatim for the failed-records file, and reading goes on.
    """

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self.skipped: list[int] = []  # line numbers not passed on (blank or malformed)
        self.malformed: list[tuple[int, str, bytes]] = []  # (line number, reason, raw line)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for number, raw in enumerate(self._stream, start=1):
            value = _parse_line(raw, first=number == 1)
            if value is None:
                self.skipped.append(number)
            elif isinstance(value, str):
                self.skipped.append(number)
                self.malformed.append((number, value, raw.rstrip(b"\r\n")))
            else:
                yield value

    def line_of(self, index: int) -> int:
        """The line number of the ``index``-th record passed on (0-based)."""
        line = index + 1
        while True:
            candidate = index + 1 + bisect.bisect_right(self.skipped, line)
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


def _count_lines(path: str) -> int | None:
    if path == "-" or not os.path.isfile(path):
        return None
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def _open(path: str) -> IO[bytes]:
    if path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except OSError as exc:
        raise ValidationError("FILE", f"cannot open {path!r}: {exc.strerror}") from None


async def records_update(args: argparse.Namespace, client: LLMObsClient) -> int:
    """Run the command; return the exit code."""
    stream = _open(args.file)
    source = JsonLinesSource(stream)
    show = not args.quiet and sys.stderr.isatty()
    bar = ProgressBar(sys.stderr, total=_count_lines(args.file) if show else None, enabled=show)
    started = time.monotonic()
    try:
        async with client:
            result = await client.records.update_many(
                args.project_id,
                args.dataset_id,
                source,
                batch_size=args.batch_size,
                on_progress=bar,
            )
    finally:
        bar.close()
        if stream is not sys.stdin.buffer:
            stream.close()
    _report(source, result, time.monotonic() - started)
    if args.failed_out:
        _write_failed(args.failed_out, source, result)
    return 0 if result.ok and not source.malformed else 1


def _report(source: JsonLinesSource, result: BulkResult, elapsed: float) -> None:
    problems: list[str] = [f"line {n}: {reason}" for n, reason, _ in source.malformed]
    for failure in result.failed:
        error = failure.error
        if isinstance(error, ValidationError) and error.field.startswith("records["):
            index = int(error.field[8 : error.field.index("]")])
            field = error.field[error.field.index("]") + 1 :].lstrip(".")
            problems.append(f"line {source.line_of(index)}: {field or 'record'}: {error.reason}")
        else:
            problems.append(f"{len(failure.records)} records failed: {error}")
    for problem in problems[:_SHOWN_PROBLEMS]:
        print(f"llmobs-async: {problem}", file=sys.stderr)
    if len(problems) > _SHOWN_PROBLEMS:
        print(f"llmobs-async: ... and {len(problems) - _SHOWN_PROBLEMS} more", file=sys.stderr)
    failed = result.failed_count + len(source.malformed)
    total = result.submitted + len(source.malformed)
    rate = result.applied / elapsed if elapsed > 0 else 0.0
    print(
        f"applied {result.applied:,} of {total:,} records in {elapsed:.1f}s "
        f"({rate:,.0f} records/s); {failed:,} failed; {result.retries:,} retries"
    )


def _write_failed(path: str, source: JsonLinesSource, result: BulkResult) -> None:
    with open(path, "wb") as out:
        for _, _, raw in source.malformed:
            out.write(raw + b"\n")
        for failure in result.failed:
            for item in failure.records:
                out.write(_json_line(item))


def _json_line(item: Any) -> bytes:
    try:
        return (json.dumps(item, ensure_ascii=False) + "\n").encode()
    except UnicodeEncodeError:  # a lone surrogate: \\u escapes keep the line valid JSON
        return (json.dumps(item) + "\n").encode()
