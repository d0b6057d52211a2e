"""``llmobs-async records list``: a whole dataset as JSON Lines, page by page, resumable.

Memory stays constant: each page is written (in one write, then flushed) as
soon as it arrives and then dropped. Only whole pages are ever written, and
the cursor of the next page is known after each one, so an error or Ctrl-C
can say exactly where to resume: ``--cursor C`` (with ``--append`` when
writing to a file) neither loses nor repeats a record.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from typing import IO

import attrs

from ..errors import LLMObsError, ValidationError
from .common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, make_client, on_ctrl_c, quoted, say
from .output import CountBar, record_line


@attrs.define
class _Pull:
    """How far a pull has got: what was written, and the cursor of the next page."""

    cursor: str | None
    written: int = 0
    pages: int = 0


async def records_list(args: argparse.Namespace) -> int:
    """Write every record of the dataset to stdout or ``-o FILE``; return the exit code."""
    output = None if args.output in (None, "-") else args.output
    if args.append and output is None:
        raise ValidationError("--append", "goes with -o FILE (to stdout, append with >>)")
    client = make_client(args)
    # Built (and its options checked) before the output file is opened or truncated.
    pager = client.records.list(
        args.project_id,
        args.dataset_id,
        version=args.version,
        cursor=args.cursor,
        page_size=args.page_size,
    )
    out = _open_output(output, append=args.append)
    bar = CountBar(sys.stderr, what="pulled", enabled=not args.quiet and sys.stderr.isatty())
    state = _Pull(cursor=args.cursor)  # where a new run starts so as to write nothing twice

    async def pull() -> None:
        async for page in pager.pages():
            # No await from here to the end of the page: Ctrl-C cannot split it.
            out.write(b"".join([record_line(r) for r in page.items]))
            out.flush()
            state.written += len(page.items)
            state.pages += 1
            state.cursor = page.next_cursor
            bar(state.written, state.pages)

    started = time.monotonic()
    task = asyncio.create_task(pull())
    try:
        with on_ctrl_c(task.cancel):
            async with client:
                await asyncio.wait([task])
    finally:
        bar.close()
        if out is not sys.stdout.buffer:
            with contextlib.suppress(BrokenPipeError):
                out.close()
    error = None if task.cancelled() else task.exception()
    if isinstance(error, BrokenPipeError):  # `records list ... | head`: the reader is done
        # Python would complain when it flushes stdout on the way out.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    if error is not None and not isinstance(error, LLMObsError):
        raise error
    elapsed = time.monotonic() - started
    where = f" to {output}" if output else ""
    plural = "page" if state.pages == 1 else "pages"
    done = f"wrote {state.written:,} records ({state.pages:,} {plural}){where}"
    if error is None and not task.cancelled():
        say(f"{done} in {elapsed:.1f}s")
        return EXIT_OK
    say(str(error) if error is not None else "interrupted")
    if state.cursor is not None:  # None: no page written, none asked for; nothing to resume
        say(f"{done}; {_how_to_resume(output, state.cursor)}")
    return EXIT_FAILED if error is not None else EXIT_INTERRUPTED


def _how_to_resume(output: str | None, cursor: str) -> str:
    how = f"resume with --cursor {quoted(cursor)}"
    if output:
        return f"{how} --append (the same -o, --version and --page-size)"
    return f"{how} and append the output to what was written (the same --version and --page-size)"


def _open_output(path: str | None, *, append: bool) -> IO[bytes]:
    if path is None:
        return sys.stdout.buffer
    try:
        return open(path, "ab" if append else "wb")
    except OSError as exc:
        raise ValidationError("-o", f"cannot write {path!r}: {exc.strerror}") from None
