"""``llmobs-async records update``: a JSON Lines file through the bulk engine.

Ctrl-C stops reading, gives the batches in flight ``--grace`` seconds, then
prints the summary, writes ``--failed-out`` (every record read but not
applied, each marked) and the line to resume from; a second Ctrl-C quits at
once. Lines before the resume line are accounted for: applied, or in
``--failed-out``.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from typing import IO, Any

from .. import _routes
from .._bulk import BulkInterruptedError, BulkResult, check_batch_options, records_patch
from .._bulkjob import BulkJob
from .._client import LLMObsClient
from ..errors import ValidationError
from .output import ProgressBar
from .summary import failure_text, print_summary

EXIT_INTERRUPTED = 130
MARK = "_failure"
"""Key added to each record in ``--failed-out`` (why it is there); dropped on reading."""


class JsonLinesSource:
    """Reads records lazily from a JSON Lines byte stream, setting bad lines aside.

    A line that is not a JSON object (not UTF-8, not JSON, nested too deeply,
    a number too long to read) is not sent: it is reported with its line
    number and kept verbatim for the failed-records file, and reading goes on.
    Lines before ``start`` are skipped unread.
    """

    def __init__(self, stream: IO[bytes], *, start: int = 1) -> None:
        self._stream = stream
        self.start = start
        self.last_line = start - 1
        """The last line read: reading resumes at ``last_line + 1``."""
        self.skipped: list[int] = []  # line numbers not passed on (blank or malformed)
        self.malformed: list[tuple[int, str, bytes]] = []  # (line number, reason, raw line)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        start = self.start
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
                value.pop(MARK, None)  # a re-run of --failed-out: the mark is not data
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


def _count_lines(path: str, start: int) -> int | None:
    if path == "-" or not os.path.isfile(path):
        return None
    with open(path, "rb") as f:
        return sum(1 for number, line in enumerate(f, start=1) if number >= start and line.strip())


def _open(path: str) -> IO[bytes]:
    if path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except OSError as exc:
        raise ValidationError("FILE", f"cannot open {path!r}: {exc.strerror}") from None


class _Interrupts:
    """SIGINT: the first stops the job gracefully, the second quits at once."""

    def __init__(self, job: BulkJob, grace: float) -> None:
        self.job = job
        self.grace = grace
        self.count = 0

    def __call__(self) -> None:
        self.count += 1
        if self.count == 1:
            sys.stderr.write(
                f"\nllmobs-async: interrupted: no more lines are read; the batches in flight "
                f"get {self.grace:g}s to finish (Ctrl-C again to quit at once)\n"
            )
            sys.stderr.flush()
            self.job.stop(self.grace)
        else:
            sys.stderr.write("\nllmobs-async: interrupted again: quitting without a summary\n")
            sys.stderr.flush()
            os._exit(EXIT_INTERRUPTED)


async def records_update(args: argparse.Namespace, client: LLMObsClient) -> int:
    """Run the command; return the exit code."""
    if args.start_line < 1:
        raise ValidationError("--start-line", "must be >= 1")
    if args.grace < 0:
        raise ValidationError("--grace", "must be >= 0")
    check_batch_options(args.batch_size, 5_000_000)
    op = records_patch(
        _routes.UPDATE_RECORDS.compile(project_id=args.project_id, dataset_id=args.dataset_id)
    )
    stream = _open(args.file)
    source = JsonLinesSource(stream, start=args.start_line)
    show = not args.quiet and sys.stderr.isatty()
    total = _count_lines(args.file, args.start_line) if show else None
    bar = ProgressBar(sys.stderr, total=total, enabled=show)
    job = BulkJob(
        client._transport,
        op,
        batch_size=args.batch_size,
        max_batch_bytes=5_000_000,
        on_progress=bar,
        name="records update",
    )
    interrupts = _Interrupts(job, args.grace)
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):  # Windows: Ctrl-C stays KeyboardInterrupt
        loop.add_signal_handler(signal.SIGINT, interrupts)
    started = time.monotonic()
    try:
        async with client:
            result = await job.run(source)
    finally:
        with contextlib.suppress(NotImplementedError):
            loop.remove_signal_handler(signal.SIGINT)
        bar.close()
        if stream is not sys.stdin.buffer:
            stream.close()
    elapsed = time.monotonic() - started
    print_summary(source, result, elapsed, verbose=args.verbose)
    if args.failed_out:
        written = _write_failed(args.failed_out, source, result)
        lines = "line" if written == 1 else "lines"
        print(f"llmobs-async: wrote {written:,} {lines} to {args.failed_out}", file=sys.stderr)
    if result.stopped is not None and not isinstance(result.stopped, BulkInterruptedError):
        print(
            f"llmobs-async: stopped early: {result.stopped}; the records read but not sent "
            "are reported as not sent",
            file=sys.stderr,
        )
    if not job.read_all:
        print(
            f"llmobs-async: stopped at line {source.last_line:,}: lines up to it are applied "
            f"or in --failed-out; resume with --start-line {source.last_line + 1}",
            file=sys.stderr,
        )
    if isinstance(result.stopped, BulkInterruptedError) or interrupts.count:
        return EXIT_INTERRUPTED
    return 0 if result.ok and not source.malformed else 1


def _write_failed(path: str, source: JsonLinesSource, result: BulkResult) -> int:
    """Write every line read but not applied, in input order; return how many."""
    lines: list[tuple[int, bytes]] = [(n, raw + b"\n") for n, _, raw in source.malformed]
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


def _json_line(item: Any) -> bytes:
    try:
        return (json.dumps(item, ensure_ascii=False) + "\n").encode()
    except UnicodeEncodeError:  # a lone surrogate: \\u escapes keep the line valid JSON
        return (json.dumps(item) + "\n").encode()
