"""``records update`` and ``records create``: a JSON Lines file through the bulk engine.

Both run :func:`run_bulk` with their ``batch_update`` operation, as
``client.records.update_many`` and ``create_many`` do: one new dataset version per run.

Ctrl-C stops reading, gives the batches in flight ``--grace`` seconds, then
prints the summary, writes ``--failed-out`` (every record read but not
applied, each marked) and the line to resume from; a second Ctrl-C quits at
once. The resume line is the first line not applied that a new run may
apply (see :func:`_resume`): following it alone sends every record left.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Collection

from .._bulk.engine import BulkJob
from .._bulk.operations import BulkOperation, check_batch_options
from .._bulk.results import BulkInterruptedError, BulkResult
from .._client import LLMObsClient
from .._resources.records import batch_operation
from .._retry import is_retryable
from ..errors import ValidationError
from . import csvin
from .common import EXIT_INTERRUPTED, make_client, on_ctrl_c, open_input, say
from .jsonl import write_failed
from .output import ProgressBar
from .summary import print_summary

MAX_BATCH_BYTES = 5_000_000

SERVER_KEYS = frozenset(
    {"dataset_id", "version", "canonical_id", "created_at", "updated_at", "deleted_at", "author"}
)
"""Keys ``records list`` writes that the API assigns: ``records create`` drops them, so that
the output of one dataset's ``records list`` can be fed to another's ``records create``."""


async def records_update(args: argparse.Namespace) -> int:
    """``llmobs-async records update``: update records by id; return the exit code."""
    client = make_client(args)
    op = batch_operation(client._transport, args.project_id, args.dataset_id, "update_records", b"")
    return await run_bulk(args, client, op, verb="applied")


async def records_create(args: argparse.Namespace) -> int:
    """``llmobs-async records create``: add records as one new dataset version; the exit code."""
    options = b'"deduplicate":%s,' % (b"true" if args.deduplicate else b"false")
    client = make_client(args)
    op = batch_operation(
        client._transport, args.project_id, args.dataset_id, "insert_records", options
    )
    return await run_bulk(args, client, op, verb="created", drop=SERVER_KEYS)


async def run_bulk(
    args: argparse.Namespace,
    client: LLMObsClient,
    op: BulkOperation,
    *,
    verb: str,
    drop: Collection[str] = frozenset(),
) -> int:
    """Run ``op`` over the records of ``args.file`` (JSON Lines or CSV); summarise; the exit code.

    ``verb`` says what happened to a record that went through (``applied``,
    ``created``); ``drop`` names keys removed from every line before sending.
    """
    if args.start_line < 1:
        raise ValidationError("--start-line", "must be >= 1")
    if args.grace < 0:
        raise ValidationError("--grace", "must be >= 0")
    check_batch_options(args.batch_size, MAX_BATCH_BYTES)
    if args.failed_out:
        _check_writable(args.failed_out)
    stream = open_input(args.file)
    try:
        source, count = csvin.open_source(args, stream, drop)
    except BaseException:
        if stream is not sys.stdin.buffer:
            stream.close()
        raise
    show = not args.quiet and sys.stderr.isatty()
    total = count(args.file, args.start_line) if show else None
    bar = ProgressBar(sys.stderr, total=total, enabled=show, verb=verb)
    name = f"records {args.action}"
    job = BulkJob(
        client._transport,
        op,
        batch_size=args.batch_size,
        max_batch_bytes=MAX_BATCH_BYTES,
        on_progress=bar,
        name=name,
    )
    interrupted = False

    def stop() -> None:
        nonlocal interrupted
        interrupted = True
        sys.stderr.write(
            f"\nllmobs-async: interrupted: no more lines are read; the batches in flight "
            f"get {args.grace:g}s to finish (Ctrl-C again to quit at once)\n"
        )
        sys.stderr.flush()
        job.stop(args.grace)

    started = time.monotonic()
    try:
        with on_ctrl_c(stop, again="quitting without a summary"):
            async with client:
                result = await job.run(source)
    finally:
        bar.close()
        if stream is not sys.stdin.buffer:
            stream.close()
    elapsed = time.monotonic() - started
    print_summary(source, result, elapsed, verbose=args.verbose, verb=verb)
    if args.failed_out:
        written = write_failed(args.failed_out, source, result)
        say(f"wrote {written:,} {'line' if written == 1 else 'lines'} to {args.failed_out}")
    if result.stopped is not None and not isinstance(result.stopped, BulkInterruptedError):
        say(
            f"stopped early: {result.stopped}; the records read but not sent "
            "are reported as not sent"
        )
    resume = _resume(args, source, result, verb=verb, read_all=job.read_all)
    if resume:
        say(resume)
    if isinstance(result.stopped, BulkInterruptedError) or interrupted:
        return EXIT_INTERRUPTED
    return 0 if result.ok and not source.malformed else 1


def _resume(
    args: argparse.Namespace,
    source: csvin.Source,
    result: BulkResult,
    *,
    verb: str,
    read_all: bool,
) -> str:
    """How to send what this run did not apply, or ``""`` when nothing is left to send.

    To send again: the lines not read, and the records read but not sent or
    whose batch failed in a way a retry may fix (5xx, 429, connection). A
    record refused for good (or a malformed line) would be refused again: it
    is in ``--failed-out`` to be fixed. Starting at the first line to send
    again re-sends the lines after it that were applied, which is safe for an
    update (the same values again) and for a deduplicating create; a create
    without deduplication is told to resume after the last line read and to
    send the rest from ``--failed-out`` instead.
    """
    again = sorted(
        source.line_of(position)
        for failure in result.failed
        if not failure.sent or is_retryable(failure.error)
        for position in failure.positions
    )
    if read_all and not again:
        return ""
    first = again[0] if again else source.last_line + 1
    at = f"stopped at line {source.last_line:,}" if not read_all else "read every line"
    if args.action == "update" or args.deduplicate:
        why = (
            "which sets the same values" if args.action == "update" else "deduplication skips them"
        )
        text = f"{at}; resume with --start-line {first} (every line before it is {verb}"
        if result.failed or source.malformed:
            text += " or refused, see --failed-out" if args.failed_out else " or refused"
        if first <= source.last_line:
            text += f"; the lines from it on that were {verb} already are sent again, {why}"
        return text + ")"
    text = f"{at}; resume with --start-line {source.last_line + 1}" if not read_all else at
    if not again:
        return text
    where = (
        f"they are in {args.failed_out}, marked unsent or with their error"
        if args.failed_out
        else f"lines {_ranges(again)}"
    )
    return (
        f"{text}{' and send' if not read_all else '; send'} the {len(again):,} records read but "
        f"not {verb} on their own ({where}): with deduplication off, starting at an earlier "
        "line would add the records created after it twice"
    )


def _ranges(lines: list[int]) -> str:
    """``3-5, 9, 12-20``: sorted line numbers as ranges (the first ten)."""
    spans: list[list[int]] = []
    for line in lines:
        if spans and line <= spans[-1][1] + 1:
            spans[-1][1] = line
        else:
            spans.append([line, line])
    shown = [f"{a}-{b}" if a != b else f"{a}" for a, b in spans[:10]]
    return ", ".join(shown) + (", ..." if len(spans) > 10 else "")


def _check_writable(path: str) -> None:
    """Refuse a ``--failed-out`` that cannot be written before anything is sent.

    Found only at the end, the records it should hold would be lost with it.
    Opened for appending, so a ``--failed-out`` that is also the input is not emptied.
    """
    try:
        with open(path, "ab"):
            pass
    except OSError as exc:
        raise ValidationError("--failed-out", f"cannot write {path!r}: {exc.strerror}") from None
