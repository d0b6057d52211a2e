"""The bulk engine: stream items in batches, isolate bad ones, account for all.

The input is read lazily and cut into batches by count and by encoded size;
at most ``max_concurrency`` batches are in flight (the client's semaphore and
rate gate govern the requests themselves), so memory is bounded by
``batch_size x in-flight batches`` however long the input is.

A batch the API refuses with 400, 404, 409 or 422 is isolated (see
:meth:`BulkJob._probe` and :meth:`BulkJob._bisect`): a record is reported
failed only on the answer to a request that carried it alone, or when its
batch is judged request-level (one record alone and the rest of the batch
fail alike). 401 and 403 stop the job; so does the same request-level error
for two batches in a row. Every record read ends applied, failed, or (when
the job stops or is interrupted) failed with ``sent=False``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Hashable, Iterable
from typing import TYPE_CHECKING, Any, Final

from ..errors import APIStatusError, LLMObsError, ValidationError
from .batches import Batch as _Batch
from .batches import detached, each, error_key
from .results import (
    FLUSH,
    BulkFailure,
    BulkInterruptedError,
    BulkOutcomeUnknownError,
    BulkProgress,
    BulkResult,
    ProgressCallback,
    attach_result,
)
from .versions import StopRetry, VersionUnknown, send_batch, unsure

if TYPE_CHECKING:
    from .._transport import Transport
    from .operations import BulkOperation

_ISOLATE: Final = frozenset({400, 404, 409, 422})
_STOP: Final = frozenset({401, 403})
_YIELD_EVERY: Final = 256


class _Stopped:
    """What ``_try`` returns when the job sends no more requests."""


_STOPPED: Final = _Stopped()


class BulkJob:
    """One run of a bulk operation: the reader, the batches, the accounting.

    ``run()`` returns the :class:`BulkResult`; ``stop()`` ends the job early
    and gracefully (the command line's Ctrl-C).
    """

    def __init__(
        self,
        transport: Transport,
        op: BulkOperation,
        *,
        batch_size: int,
        max_batch_bytes: int,
        on_progress: ProgressCallback | None,
        field: str = "records",
        name: str = "update_many",
    ) -> None:
        self.transport = transport
        self.op = op
        self.version = op.version
        self.batch_size = batch_size
        self.max_batch_bytes = max_batch_bytes
        self.on_progress = on_progress
        self.field = field
        self._encode_item = op.encode
        self._room = max_batch_bytes - op.body_overhead  # bytes of items a body can hold
        self.name = name
        self.submitted = self.applied = self.failed_count = self.retries = 0
        self.failures: list[BulkFailure] = []
        self.slots = asyncio.Semaphore(transport.pool.max_concurrency)
        self.stopped: LLMObsError | None = None
        self.read_all = False
        self.source_error: Exception | None = None
        self.callback_error: Exception | None = None
        self._first = True
        self._halted = False  # no more requests (401/403, a repeated request-level error)
        self._open: dict[_Batch, None] = {}  # batches whose items await an answer
        self._streak: tuple[Hashable, int] = (None, 0)
        self._tasks: asyncio.TaskGroup | None = None
        self._reader: asyncio.Task[None] | None = None
        self._senders: set[asyncio.Task[None]] = set()

    # --- control ------------------------------------------------------------------

    def stop(self, grace: float) -> None:
        """Stop reading now; cancel the requests still in flight after ``grace`` seconds.

        What was read and got no answer is reported with ``sent=False`` and a
        :class:`BulkInterruptedError`; ``run()`` then returns normally.
        """
        if self.stopped is None:
            self.stopped = BulkInterruptedError(
                "the job was stopped before these records got an answer"
            )
        self._stop_reading()
        asyncio.get_running_loop().call_later(grace, self._cancel_senders)

    def _stop_reading(self) -> None:
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()

    def _cancel_senders(self) -> None:
        for task in list(self._senders):
            task.cancel()

    def _halt(self, error: LLMObsError) -> None:
        if not self._halted:
            self._halted = True
            self.stopped = error
            self._stop_reading()

    # --- the run ----------------------------------------------------------------------

    async def run(self, records: Iterable[Any] | AsyncIterable[Any]) -> BulkResult:
        """Read ``records`` to the end (or until stopped) and return the account."""
        try:
            try:
                async with asyncio.TaskGroup() as tasks:
                    self._tasks = tasks
                    self._reader = tasks.create_task(self._read(records))
            except BaseExceptionGroup as group:
                # A batch task failed in a way no batch should (a bug, not an API
                # error): raise it as itself rather than wrapped in a group.
                first = group.exceptions[0]
                first.add_note(self._summary("stopped"))
                raise first from None
        except asyncio.CancelledError as exc:
            interrupted = BulkInterruptedError(
                "the job was cancelled before these records got an answer"
            )
            if not self._halted:
                self.stopped = interrupted
            result = self._close(self.stopped)
            exc.add_note(self._summary("was cancelled"))
            attach_result(exc, result)
            raise
        if self.stopped is not None and not self._halted and self.read_all and not self._open:
            self.stopped = None  # stopped after everything had been read and answered
        result = self._close(self.stopped)
        for error, what in (
            (self.source_error, "stopped reading its input"),
            (self.callback_error, "on_progress raised; every batch was still sent"),
        ):
            if error is not None:
                error.add_note(self._summary(what))
                attach_result(error, result)
                raise error
        return result

    def _close(self, error: LLMObsError | None) -> BulkResult:
        """Report what is still open as not sent, and build the result."""
        for batch in list(self._open):
            if batch.items:
                self._fail(
                    batch,
                    error or BulkInterruptedError("these records got no answer"),
                    sent=False,
                )
        self._open.clear()
        return BulkResult(
            submitted=self.submitted,
            applied=self.applied,
            failed=self.failures,
            retries=self.retries,
            stopped=self.stopped,
        )

    def _summary(self, what: str) -> str:
        return (
            f"{self.name} {what}; after {self.submitted} records: "
            f"{self.applied} applied, {self.failed_count} failed"
        )

    # --- reading ------------------------------------------------------------------------

    def _new_batch(self, start: int) -> _Batch:
        batch = _Batch(start)
        self._open[batch] = None
        return batch

    async def _read(self, records: Iterable[Any] | AsyncIterable[Any]) -> None:
        batch = self._new_batch(0)
        batch_size, room = self.batch_size, self._room
        try:
            async for item in each(records):
                if item is FLUSH:
                    if batch.items:
                        full, batch = batch, self._new_batch(self.submitted)
                        await self._launch(full)
                    continue
                index = self.submitted
                encoded = self._encode(item)
                if encoded is None:
                    if batch.items:
                        batch.holes.append(index)
                    else:
                        batch.start = index + 1
                    if self.failed_count % _YIELD_EVERY == 0:
                        # A run of invalid items sends nothing, so nothing
                        # else awaits: let other tasks (and cancel()) in.
                        await asyncio.sleep(0)
                    continue
                if batch.items and (
                    len(batch.items) >= batch_size or len(batch.joined) + len(encoded) + 1 > room
                ):
                    # The item joins the next batch before the wait for a slot,
                    # so an interruption during the wait still accounts for it.
                    full, batch = batch, self._new_batch(index)
                    batch.add(item, encoded)
                    await self._launch(full)
                else:
                    batch.add(item, encoded)
        except Exception as exc:
            # The caller's iterable failed: what was read still goes out and
            # the batches in flight finish, so the counts are true.
            self.source_error = exc
        else:
            self.read_all = True
        if batch.items:
            await self._launch(batch)
        else:
            self._open.pop(batch, None)

    def _encode(self, item: Any) -> bytes | None:
        """Count, validate and encode one input item; a bad one becomes a failure."""
        index = self.submitted
        self.submitted += 1
        try:
            encoded = self._encode_item(item)
            if len(encoded) > self._room:
                raise ValidationError("", f"is {len(encoded)} bytes as JSON, over max_batch_bytes")
        except ValidationError as exc:
            error = exc.prefixed(f"{self.field}[{index}]")
        except Exception as exc:  # anything else about one item stays that item's problem
            error = ValidationError(f"{self.field}[{index}]", f"cannot be encoded: {exc!r}")
        else:
            return encoded
        single = _Batch(index)
        single.items.append(item)
        self._fail(single, error)
        return None

    async def _launch(self, batch: _Batch) -> None:
        await self.slots.acquire()  # back-pressure: the input waits for a free slot
        assert self._tasks is not None
        task = self._tasks.create_task(self._send_root(batch))
        self._senders.add(task)
        task.add_done_callback(self._senders.discard)
        if self._first:
            self._first = False
            if self.version is not None:
                await asyncio.wait([task])  # the others wait for it (not cancelled with us)

    # --- sending and isolating ----------------------------------------------------------

    async def _send_root(self, batch: _Batch) -> None:
        try:
            error = await self._try(batch)
            if isinstance(error, LLMObsError):
                await self._isolate(batch, error, probe=True)
        finally:
            self.slots.release()

    async def _try(
        self, batch: _Batch, answered: LLMObsError | None = None
    ) -> LLMObsError | _Stopped | None:
        """Send ``batch``; None if applied, else the error (``_STOPPED`` if not sent).

        ``answered`` is the error a larger request carrying these records got:
        if the job halts before they are sent again, they fail with it (they
        were answered, just not isolated); without one they stay unsent.
        """
        if self._halted:
            if answered is not None:
                self._fail(batch, answered)
            return _STOPPED
        try:
            await send_batch(self.transport, self.op, batch.joined, self._count_retry)
        except VersionUnknown as exc:
            # These records stay open, reported with sent=False. A 404 or 401 on
            # the read says more as itself: the dataset is unknown, or the keys.
            self._halt(exc if unsure(exc.error) else exc.error)
            return _STOPPED
        except StopRetry as exc:
            return BulkOutcomeUnknownError(
                f"these records may or may not have been applied (no readable answer: "
                f"{exc.error}); not sent again, as that could apply them twice",
                error=detached(exc.error),
            )
        except LLMObsError as exc:
            return detached(exc)
        self._open.pop(batch, None)
        self.applied += len(batch)
        self._streak = (None, 0)
        self._report()
        return None

    async def _isolate(self, batch: _Batch, error: LLMObsError, *, probe: bool) -> None:
        """Settle a batch the API refused: split it, or report it failed."""
        status = error.status if isinstance(error, APIStatusError) else None
        if status in _STOP:
            self._halt(error)
            self._fail(batch, error)
        elif len(batch) == 1 or (status not in _ISOLATE and status != 413):
            self._fail(batch, error)
        elif probe and status != 413:
            await self._probe(batch, error)
        else:
            await self._bisect(batch, error)

    async def _probe(self, batch: _Batch, error: LLMObsError) -> None:
        """One record alone, then the rest: finds a request-level error in 3 requests.

        The record is the one the error points at (a hint only) or the first.
        If it lands, the problem is among the rest, which is bisected. If it
        fails like the batch and so does the rest, the two disjoint requests
        judge the batch request-level.
        """
        hint = (
            self.op.pointed_index(error, batch.joined)
            if isinstance(error, APIStatusError)
            else None
        )
        single, rest = batch.pick(hint if hint is not None and 0 <= hint < len(batch) else 0)
        self._replace(batch, single, rest)
        first = await self._try(single, error)
        if first is None:
            await self._bisect(rest, error)
            return
        if not isinstance(first, LLMObsError):  # halted: the rest keeps the batch's answer
            self._fail(rest, error)
            return
        await self._isolate(single, first, probe=False)  # it failed alone
        second = await self._try(rest, error)
        if not isinstance(second, LLMObsError):
            return
        if error_key(first) == error_key(error) == error_key(second):
            self._fail(rest, second)
            self._judged_request_level(second)
        else:
            await self._isolate(rest, second, probe=True)

    async def _bisect(self, batch: _Batch, error: LLMObsError) -> None:
        """Send both halves; split again whichever fails, down to single records."""
        if len(batch) == 1:
            await self._send_part(batch, error)
            return
        left, right = batch.halves()
        self._replace(batch, left, right)
        await asyncio.gather(self._send_part(left, error), self._send_part(right, error))

    async def _send_part(self, part: _Batch, answered: LLMObsError) -> None:
        error = await self._try(part, answered)
        if isinstance(error, LLMObsError):
            await self._isolate(part, error, probe=False)

    def _judged_request_level(self, error: LLMObsError) -> None:
        key = error_key(error)
        count = self._streak[1] + 1 if self._streak[0] == key else 1
        self._streak = (key, count)
        if count >= 2:
            self._halt(error)

    # --- accounting ------------------------------------------------------------------------

    def _replace(self, batch: _Batch, *parts: _Batch) -> None:
        self._open.pop(batch, None)
        for part in parts:
            if part.items:
                self._open[part] = None

    def _fail(self, batch: _Batch, error: LLMObsError, *, sent: bool = True) -> None:
        self._open.pop(batch, None)
        self.failures.append(
            BulkFailure(
                records=tuple(batch.items),
                record_ids=tuple(self.op.item_id(i) for i in batch.items),
                error=error,
                positions=tuple(batch.positions()),
                sent=sent,
            )
        )
        self.failed_count += len(batch)
        self._report()

    def _count_retry(self) -> None:
        self.retries += 1

    def _report(self) -> None:
        if self.on_progress is None:
            return
        try:
            self.on_progress(
                BulkProgress(
                    submitted=self.submitted,
                    applied=self.applied,
                    failed=self.failed_count,
                    retries=self.retries,
                )
            )
        except Exception as exc:
            # The caller's callback failed: stop calling it, but let every batch
            # finish so nothing is left half-sent; the error is raised at the end.
            self.on_progress = None
            self.callback_error = exc
