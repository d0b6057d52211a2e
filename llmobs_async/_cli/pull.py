"""``llmobs-async records list``: a whole dataset as JSON Lines, page by page, resumable.

Memory stays constant: each page is written (in one write, then flushed) as
soon as it arrives and then dropped. Only whole pages are ever written, and
the cursor of the next page is known after each one, so an error or Ctrl-C
can say exactly where to resume: ``--cursor C`` (with ``--append`` when
writing to a file) neither loses nor repeats a record. ``-o FILE`` is written
as ``FILE.partial`` and renamed once complete (see :class:`_Target`): a pull
that fails never destroys the ``FILE`` of an earlier one.
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

from ..errors import BadRequestError, LLMObsError, UnprocessableEntityError, ValidationError
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
    target = _Target.open(output, append=args.append)
    out = target.stream
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
    complete = error is None and not task.cancelled()
    where = target.finish(complete=complete, written=state.pages > 0)
    if isinstance(error, BrokenPipeError):  # `records list ... | head`: the reader is done
        # Python would complain when it flushes stdout on the way out.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    if error is not None and not isinstance(error, LLMObsError):
        raise error
    elapsed = time.monotonic() - started
    plural = "page" if state.pages == 1 else "pages"
    done = f"wrote {state.written:,} records ({state.pages:,} {plural}){where}"
    if complete:
        say(f"{done} in {elapsed:.1f}s")
        return EXIT_OK
    say(str(error) if error is not None else "interrupted")
    refused = state.pages == 0 and isinstance(error, BadRequestError | UnprocessableEntityError)
    if refused and args.cursor is not None:
        # Suggesting it again would only be refused again.
        say(f"{done}; the API refused the request from --cursor {quoted(args.cursor)}")
    elif state.cursor is not None:  # None: no page written, none asked for; nothing to resume
        say(f"{done}; {_how_to_resume(output, state.cursor)}")
    elif output is not None:
        say(done)
    return EXIT_FAILED if error is not None else EXIT_INTERRUPTED


def _how_to_resume(output: str | None, cursor: str) -> str:
    how = f"resume with --cursor {quoted(cursor)}"
    if output:
        return f"{how} --append (the same -o, --version and --page-size)"
    return f"{how} and append the output to what was written (the same --version and --page-size)"


@attrs.define
class _Target:
    """Where the records go: stdout, or ``-o FILE`` by way of ``FILE.partial``.

    A pull writes into ``FILE.partial`` and renames it to ``FILE`` once complete,
    so a pull that fails (a wrong key, a 5xx that outlasts the retries, Ctrl-C)
    never touches a previous ``FILE``. A failed pull keeps the pages it wrote
    in ``FILE.partial``; ``--append`` goes on there when it exists (and renames
    it when complete), else appends to ``FILE`` itself.
    """

    stream: IO[bytes]
    path: str | None = None
    partial: str | None = None

    @classmethod
    def open(cls, path: str | None, *, append: bool) -> _Target:
        if path is None:
            return cls(sys.stdout.buffer)
        partial = f"{path}.partial"
        name = path if append and not os.path.exists(partial) else partial
        stream = _open(name, "ab" if append else "wb")
        return cls(stream, path, partial if name == partial else None)

    def finish(self, *, complete: bool, written: bool) -> str:
        """Rename a complete pull into place; say where the records are (`` to FILE``)."""
        if self.path is None:
            return ""
        if self.partial is None:
            return f" to {self.path}"
        if complete:
            os.replace(self.partial, self.path)
            return f" to {self.path}"
        if not written and os.path.getsize(self.partial) == 0:
            os.remove(self.partial)  # nothing pulled: leave no trace
            return f" ({self.path} is unchanged)"
        return f" to {self.partial} ({self.path} is unchanged until the pull is complete)"


def _open(name: str, mode: str) -> IO[bytes]:
    try:
        return open(name, mode)
    except OSError as exc:
        raise ValidationError("-o", f"cannot write {name!r}: {exc.strerror}") from None
