"""``records.update_many``: stream record updates in batches, losing nothing.

The input is read lazily and cut into batches by count and by encoded size;
at most ``max_concurrency`` batches are in flight (the client's semaphore and
rate gate govern the requests themselves), so memory is bounded by
``batch_size x in-flight batches`` however long the input is. Every record
read is either applied or reported in a :class:`BulkFailure`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

import attrs

from . import _converter
from .errors import BulkUpdateError, LLMObsError, PayloadTooLargeError, ValidationError
from .models import RecordUpdate

if TYPE_CHECKING:
    from ._client import LLMObsClient

__all__ = ["BulkFailure", "BulkProgress", "BulkResult"]

_YIELD_EVERY = 256

RecordItem: TypeAlias = RecordUpdate | Mapping[str, Any]
RecordSource: TypeAlias = Iterable[RecordItem] | AsyncIterable[RecordItem]


@attrs.frozen(kw_only=True)
class BulkProgress:
    """Where a bulk update stands; passed to ``on_progress`` after every batch."""

    submitted: int
    """Records read from the input so far."""
    applied: int
    """Records the API accepted."""
    failed: int
    """Records reported as failed (invalid, or their batch failed for good)."""
    retries: int
    """Requests retried so far (429, 5xx, dropped connections, timeouts)."""


ProgressCallback: TypeAlias = Callable[[BulkProgress], None]


@attrs.frozen(kw_only=True)
class BulkFailure:
    """Records that were not applied, and why."""

    records: tuple[Any, ...]
    """The input items exactly as given (a ``RecordUpdate`` or a dict each)."""
    record_ids: tuple[str | None, ...]
    """Their ids, ``None`` where an item had none."""
    error: LLMObsError
    """The typed exception: a ``ValidationError`` for bad input, else the API's answer."""


@attrs.frozen(kw_only=True)
class BulkResult:
    """The outcome of :meth:`Records.update_many`: ``applied + failed == submitted``."""

    submitted: int
    applied: int
    failed: list[BulkFailure]
    retries: int = 0

    @property
    def ok(self) -> bool:
        """True when every submitted record was applied."""
        return not self.failed

    @property
    def failed_count(self) -> int:
        """How many records failed, across all failures."""
        return sum(len(f.records) for f in self.failed)

    @property
    def failed_ids(self) -> list[str | None]:
        """Ids of every failed record, in no particular order."""
        return [rid for f in self.failed for rid in f.record_ids]

    def raise_for_failures(self) -> None:
        """Raise :class:`BulkUpdateError` if any record failed."""
        if self.failed:
            raise BulkUpdateError(
                f"{self.failed_count} of {self.submitted} records failed "
                f"({len(self.failed)} failure(s)); first: {self.failed[0].error}",
                failures=self.failed,
                result=self,
            )


def _record_id(item: Any) -> str | None:
    if isinstance(item, RecordUpdate):
        return item.id
    rid = item.get("id") if isinstance(item, Mapping) else None
    return rid if isinstance(rid, str) else None


class _Batch:
    """Records of one request: the input items and their JSON, back to back.

    The JSON goes into one growing buffer (with the end offset of each record)
    rather than a bytes object per record: orjson's small outputs each hold a
    few KiB, which made a million-record job's memory triple.
    """

    __slots__ = ("ends", "items", "joined")

    def __init__(self, items: list[Any] | None = None, joined: bytes | bytearray = b"") -> None:
        self.items: list[Any] = items or []
        self.joined = bytearray(joined)
        self.ends: list[int] = []

    @property
    def size(self) -> int:
        """Bytes of the request body."""
        return _converter.RECORDS_BODY_OVERHEAD + len(self.joined)

    def add(self, item: Any, encoded: bytes) -> None:
        if self.joined:
            self.joined += b","
        self.joined += encoded
        self.items.append(item)
        self.ends.append(len(self.joined))

    def body(self) -> bytes:
        return _converter.records_body(self.joined)

    def halves(self) -> tuple[_Batch, _Batch]:
        mid = len(self.items) // 2
        cut = self.ends[mid - 1]
        left = _Batch(self.items[:mid], self.joined[:cut])
        left.ends = self.ends[:mid]
        right = _Batch(self.items[mid:], self.joined[cut + 1 :])
        right.ends = [end - cut - 1 for end in self.ends[mid:]]
        return left, right


def _ignore_body(_: bytes) -> None:
    # A 2xx means the whole batch was applied (the API is all-or-nothing), so
    # the echoed records are not decoded: that would cost more than the send.
    return None


class _Job:
    """One run of update_many: the counters, the failures, the in-flight batches."""

    def __init__(
        self,
        client: LLMObsClient,
        path: str,
        *,
        batch_size: int,
        max_batch_bytes: int,
        on_progress: ProgressCallback | None,
    ) -> None:
        self.client = client
        self.path = path
        self.batch_size = batch_size
        self.max_batch_bytes = max_batch_bytes
        self.on_progress = on_progress
        self.submitted = self.applied = self.failed_count = self.retries = 0
        self.failures: list[BulkFailure] = []
        self.slots = asyncio.Semaphore(client._pool.max_concurrency)
        self.callback_error: Exception | None = None

    def result(self) -> BulkResult:
        return BulkResult(
            submitted=self.submitted,
            applied=self.applied,
            failed=self.failures,
            retries=self.retries,
        )

    def report(self) -> None:
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

    def fail(self, items: list[Any], error: LLMObsError) -> None:
        self.failures.append(
            BulkFailure(
                records=tuple(items),
                record_ids=tuple(_record_id(i) for i in items),
                error=error,
            )
        )
        self.failed_count += len(items)

    def count_retry(self) -> None:
        self.retries += 1

    async def send(self, batch: _Batch) -> None:
        try:
            await self.client._request(
                "PATCH", self.path, batch.body(), _ignore_body, self.count_retry
            )
        except PayloadTooLargeError as exc:
            if len(batch.items) == 1:
                self.fail(batch.items, exc)
            else:
                for half in batch.halves():
                    await self.send(half)
                return
        except LLMObsError as exc:
            self.fail(batch.items, exc)
        else:
            self.applied += len(batch.items)
        self.report()

    async def run(self, records: RecordSource) -> BulkResult:
        try:
            return await self._run(records)
        except BaseExceptionGroup as group:
            # A batch task failed in a way no batch should (a bug, not an API
            # error): raise it as itself rather than wrapped in a group.
            first = group.exceptions[0]
            first.add_note(self._summary("update_many stopped"))
            raise first from None

    def _summary(self, what: str) -> str:
        return (
            f"{what} after {self.submitted} records: "
            f"{self.applied} applied, {self.failed_count} failed"
        )

    async def _run(self, records: RecordSource) -> BulkResult:
        source_error: Exception | None = None
        async with asyncio.TaskGroup() as tasks:
            batch = _Batch()
            try:
                async for item in _aiter(records):
                    encoded = self.encode(item)
                    if encoded is None:
                        if self.failed_count % _YIELD_EVERY == 0:
                            # A run of invalid items sends nothing, so nothing
                            # else awaits: let other tasks (and cancel()) in.
                            await asyncio.sleep(0)
                        continue
                    if batch.items and (
                        len(batch.items) >= self.batch_size
                        or batch.size + len(encoded) + 1 > self.max_batch_bytes
                    ):
                        await self._launch(tasks, batch)
                        batch = _Batch()
                    batch.add(item, encoded)
            except Exception as exc:
                # The caller's iterable failed: what was read still goes out and
                # the batches in flight finish, so the counts below are true.
                source_error = exc
            if batch.items:
                await self._launch(tasks, batch)
        for error, what in (
            (source_error, "update_many stopped reading its input"),
            (self.callback_error, "update_many's on_progress raised; every batch was still sent"),
        ):
            if error is not None:
                error.add_note(self._summary(what))
                raise error
        return self.result()

    def encode(self, item: Any) -> bytes | None:
        """Count, validate and encode one input item; a bad one becomes a failure."""
        index = self.submitted
        self.submitted += 1
        try:
            encoded = _converter.encode_record(item)
            if len(encoded) + _converter.RECORDS_BODY_OVERHEAD > self.max_batch_bytes:
                raise ValidationError("", f"is {len(encoded)} bytes as JSON, over max_batch_bytes")
        except ValidationError as exc:
            error = exc.prefixed(f"records[{index}]")
        except Exception as exc:  # anything else about one item stays that item's problem
            error = ValidationError(f"records[{index}]", f"cannot be encoded: {exc!r}")
        else:
            return encoded
        self.fail([item], error)
        self.report()
        return None

    async def _launch(self, tasks: asyncio.TaskGroup, batch: _Batch) -> None:
        await self.slots.acquire()  # back-pressure: the input waits for a free slot
        tasks.create_task(self._send_and_release(batch))

    async def _send_and_release(self, batch: _Batch) -> None:
        try:
            await self.send(batch)
        finally:
            self.slots.release()


async def _aiter(records: RecordSource) -> AsyncIterable[RecordItem]:
    if isinstance(records, AsyncIterable):
        async for item in records:
            yield item
    elif isinstance(records, str | bytes | Mapping) or not isinstance(records, Iterable):
        raise ValidationError("records", "must be an iterable or async iterable of records")
    else:
        for item in records:
            yield item


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(name, f"must be an integer; got {value!r}")
    if value < minimum:
        raise ValidationError(name, f"must be >= {minimum}; got {value!r}")


async def update_many(
    client: LLMObsClient,
    path: str,
    records: RecordSource,
    *,
    batch_size: int,
    max_batch_bytes: int,
    on_progress: ProgressCallback | None,
) -> BulkResult:
    """Run a bulk update job; see :meth:`Records.update_many`."""
    _check_int("batch_size", batch_size, 1)
    _check_int("max_batch_bytes", max_batch_bytes, 1024)
    job = _Job(
        client,
        path,
        batch_size=batch_size,
        max_batch_bytes=max_batch_bytes,
        on_progress=on_progress,
    )
    return await job.run(records)
