"""Bulk jobs: what they return, and ``records.update_many`` on top of the engine.

The engine (``_bulkjob``) knows nothing of records: it is given a
:class:`BulkOperation` that says which endpoint to call, how one item is
validated and encoded, how encoded items are framed into a body, how an item's
id is read and which item an error points at. Every records job
goes through :func:`batch_update` (``update_records``, ``insert_records`` or
``delete_records``), so a job makes one new dataset version (see ``_bulkversion``).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

import attrs

from .._wire import records as _wire_records
from .._wire.json import encode_json
from ..errors import APIStatusError, BulkUpdateError, LLMObsError, ValidationError
from ..models import RecordCreate, RecordUpdate
from . import changes as _changes

if TYPE_CHECKING:
    from .._routes import Compiled
    from .versions import OneVersion

__all__ = [
    "BulkFailure",
    "BulkInterruptedError",
    "BulkOperation",
    "BulkOutcomeUnknownError",
    "BulkProgress",
    "BulkResult",
    "RecordsOperation",
]

RecordItem: TypeAlias = RecordUpdate | Mapping[str, Any]
RecordSource: TypeAlias = Iterable[RecordItem] | AsyncIterable[RecordItem]
NewRecordSource: TypeAlias = (
    Iterable[RecordCreate | Mapping[str, Any]] | AsyncIterable[RecordCreate | Mapping[str, Any]]
)
IdSource: TypeAlias = Iterable[str] | AsyncIterable[str]

_RESULT_ATTRIBUTE = "_llmobs_bulk_result"


class BulkInterruptedError(LLMObsError):
    """The error of records that got no answer because the job was interrupted.

    The job was cancelled, timed out, or stopped (Ctrl-C in the command line)
    before these records were sent, or while their request was in flight.
    They may be sent again: updates and deletes are idempotent, and inserts
    are when the job deduplicates (the default).
    """


class BulkOutcomeUnknownError(LLMObsError):
    """The error of records whose request may or may not have been applied.

    Their request got no readable answer (a dropped connection, a timeout, a
    5xx) and was not sent again, because sending it again could apply it
    twice: inserts with ``deduplicate=False``. ``error`` is the last failure.
    Look the records up before sending them again.
    """

    def __init__(self, message: str, *, error: LLMObsError) -> None:
        super().__init__(message)
        self.error = error


@attrs.frozen(kw_only=True)
class BulkProgress:
    """Where a bulk job stands; passed to ``on_progress`` after every answer."""

    submitted: int
    """Records read from the input so far."""
    applied: int
    """Records the API accepted."""
    failed: int
    """Records reported as failed (invalid, or refused for good)."""
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
    """Why: a ``ValidationError`` for bad input, the API's answer (a typed
    ``APIStatusError``), or :class:`BulkInterruptedError`."""
    positions: tuple[int, ...] = ()
    """Where each record was in the input, counting from 0 (``records[i]`` of a list)."""
    sent: bool = True
    """False when no answer about these records arrived: the job stopped or was
    interrupted before sending them (or while they were in flight). Such
    records are safe to send again."""


@attrs.frozen(kw_only=True)
class BulkResult:
    """The outcome of a bulk job: ``applied + failed_count == submitted``, always.

    A job that ends early still returns (or, when cancelled or timed out,
    carries; see :meth:`from_exception`) an account of every record it read:
    applied, failed, or not sent (failures with ``sent=False``). Records it
    never read are not counted; ``submitted`` says how far it read.
    """

    submitted: int
    """Records read from the input."""
    applied: int
    """Records the API accepted."""
    failed: list[BulkFailure]
    """Every record not applied, grouped by cause."""
    retries: int = 0
    """Requests retried (429, 5xx, dropped connections, timeouts)."""
    stopped: LLMObsError | None = None
    """Why the job ended before its input did, or ``None``: a 401 or 403, the
    same request-level error for two batches in a row, or
    :class:`BulkInterruptedError` when it was cancelled, timed out or stopped."""

    @property
    def ok(self) -> bool:
        """True when every submitted record was applied and the job was not stopped."""
        return not self.failed and self.stopped is None

    @property
    def failed_count(self) -> int:
        """How many records were not applied, across all failures."""
        return sum(len(f.records) for f in self.failed)

    @property
    def failed_ids(self) -> list[str | None]:
        """Ids of every record not applied."""
        return [rid for f in self.failed for rid in f.record_ids]

    @property
    def unsent(self) -> list[BulkFailure]:
        """The failures of records that got no answer (``sent=False``): send them again."""
        return [f for f in self.failed if not f.sent]

    def raise_for_failures(self) -> None:
        """Raise :class:`~llmobs_async.errors.BulkUpdateError` if any record failed."""
        if self.failed:
            raise BulkUpdateError(
                f"{self.failed_count} of {self.submitted} records failed "
                f"({len(self.failed)} failure(s)); first: {self.failed[0].error}",
                failures=self.failed,
                result=self,
            )

    @staticmethod
    def from_exception(exc: BaseException) -> BulkResult | None:
        """The partial result of a job that ended in ``exc``, or ``None``.

        A bulk job that is cancelled, times out (``asyncio.timeout``,
        ``asyncio.wait_for``), or whose input or ``on_progress`` raises, leaves
        its account on the exception: what was applied, what failed, and what
        was read but not sent (``sent=False``, error
        :class:`BulkInterruptedError`). ``exc`` may be the exception itself or
        one that it caused (a ``TimeoutError`` raised from the cancellation)::

            try:
                async with asyncio.timeout(600):
                    result = await client.records.update_many(p, d, records)
            except TimeoutError as exc:
                result = BulkResult.from_exception(exc)
        """
        seen: BaseException | None = exc
        for _ in range(8):  # a short chain: the exception, its cause, their context
            if seen is None:
                return None
            found = getattr(seen, _RESULT_ATTRIBUTE, None)
            if isinstance(found, BulkResult):
                return found
            seen = seen.__cause__ or seen.__context__
        return None


def attach_result(exc: BaseException, result: BulkResult) -> None:
    """Leave ``result`` on ``exc`` for :meth:`BulkResult.from_exception`."""
    setattr(exc, _RESULT_ATTRIBUTE, result)


class BulkOperation(Protocol):
    """What is specific to one bulk endpoint; the engine does the rest."""

    @property
    def route(self) -> Compiled:
        """The endpoint, ids filled in."""

    @property
    def body_overhead(self) -> int:
        """Bytes of a body around zero items (the largest, if bodies differ)."""

    @property
    def version(self) -> OneVersion | None:
        """The job's one new dataset version, when it makes one: its first batch goes alone."""

    @property
    def resend_unsure(self) -> bool:
        """A request whose answer was lost may be sent again (it cannot apply twice)."""

    def encode(self, item: Any) -> bytes:
        """Validate and encode one item; raise ValidationError naming the field."""

    def body(self, joined: bytes | bytearray, new_version: bool = False) -> bytes:
        """The request body around encoded items joined by commas.

        ``new_version``: the body asks for the job's new dataset version.
        """

    def load(self, body: bytes) -> object:
        """Read a 2xx answer; raise (KeyError, TypeError, ValueError) if it is not the API's."""

    def item_id(self, item: Any) -> str | None:
        """The item's id, for reports; ``None`` if it has none."""

    def pointed_index(self, error: APIStatusError, joined: bytes | bytearray) -> int | None:
        """The index (in the request) of the item the error points at, if any.

        ``joined`` is the request's items, encoded and comma-separated.
        """


def _record_id(item: Any) -> str | None:
    if isinstance(item, RecordUpdate | RecordCreate):
        return item.id if isinstance(item.id, str) else None
    rid = item.get("id") if isinstance(item, Mapping) else None
    return rid if isinstance(rid, str) else None


def given_id(item: Any) -> str | None:
    return item if isinstance(item, str) else None


@attrs.define(kw_only=True)
class RecordsOperation:
    """A records endpoint for the bulk engine: ``head + items + tail`` bodies.

    ``new_head``, when set, is the head of a request that asks for the job's
    one new dataset version (``create_new_version: true``); the engine sends
    such requests one at a time until one has landed (``_bulkversion``).
    """

    route: Compiled
    encode: Callable[[Any], bytes]
    item_id: Callable[[Any], str | None]
    head: bytes
    tail: bytes
    pointer: str
    """The JSON pointer prefix of an item, e.g. ``/data/attributes/records/``."""
    new_head: bytes | None = None
    version: OneVersion | None = None
    resend_unsure: bool = True
    load: Callable[[bytes], object] = _wire_records.check_answer
    body_overhead: int = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.body_overhead = len(max(self.head, self.new_head or b"", key=len)) + len(self.tail)

    def body(self, joined: bytes | bytearray, new_version: bool = False) -> bytes:
        """The request body around ``joined``, the items encoded and comma-separated."""
        head = self.new_head if new_version and self.new_head is not None else self.head
        return b"%s%s%s" % (head, joined, self.tail)

    def pointed_index(self, error: APIStatusError, joined: bytes | bytearray = b"") -> int | None:
        """The item index in ``<pointer><i>/...``, if an error has one (``joined`` unused)."""
        for item in error.errors:
            pointer = item.source.pointer if item.source is not None else None
            if pointer and pointer.startswith(self.pointer):
                index = pointer[len(self.pointer) :].partition("/")[0]
                if index.isdigit():
                    return int(index)
        return None


def records_patch(route: Compiled) -> RecordsOperation:
    """``PATCH .../records``: one dataset version per request (kept for the benchmark)."""
    head, _, tail = _wire_records.records_body(b"\x00").partition(b"\x00")
    return RecordsOperation(
        route=route,
        # The wire module's function itself, not a method around it: it runs per record.
        encode=_wire_records.encode_record,
        item_id=_record_id,
        head=head,
        tail=tail,
        pointer="/data/attributes/records/",
    )


_ENCODERS: dict[str, Callable[[Any], bytes]] = {
    "insert_records": _wire_records.encode_new_record,
    "update_records": _changes.encode_update,
    "delete_records": _wire_records.encode_record_id,
}


def batch_update(
    route: Compiled,
    dataset_id: str,
    field: str,
    options: bytes,
    *,
    version: OneVersion,
    resend_unsure: bool = True,
) -> RecordsOperation:
    """``POST .../batch_update`` carrying ``field``: ``{insert,update,delete}_records``.

    One request of the job asks for the new dataset version
    (``create_new_version: true``), as ddtrace does; the others add to it.
    """
    start = b'{"data":{"type":"datasets","id":%s,"attributes":{%s' % (
        encode_json(dataset_id),
        options,
    )
    head = b'%s"create_new_version":false,"%s":[' % (start, field.encode())
    return RecordsOperation(
        route=route,
        encode=_ENCODERS[field],
        item_id=given_id if field == "delete_records" else _record_id,
        head=head,
        new_head=head.replace(b'"create_new_version":false', b'"create_new_version":true'),
        tail=b"]}}}",
        pointer=f"/data/attributes/{field}/",
        version=version,
        resend_unsure=resend_unsure,
    )


def check_batch_options(batch_size: object, max_batch_bytes: object) -> None:
    """Refuse a batch size or byte cap that is not an integer in range."""
    for name, value, minimum in (
        ("batch_size", batch_size, 1),
        ("max_batch_bytes", max_batch_bytes, 1024),
    ):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(name, f"must be an integer; got {value!r}")
        if value < minimum:
            raise ValidationError(name, f"must be >= {minimum}; got {value!r}")


def check_source(records: object, name: str = "records") -> None:
    """Refuse an input that is not an iterable (or async iterable) of items."""
    if not isinstance(records, AsyncIterable) and (
        isinstance(records, str | bytes | Mapping) or not isinstance(records, Iterable)
    ):
        raise ValidationError(name, "must be an iterable or async iterable of items")
