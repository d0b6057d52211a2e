"""What a bulk job returns and reports: the result, its failures, progress, interruptions.

The bottom of :mod:`llmobs_async._bulk`: the engine fills these in, the
resources and the command line read them; this module imports neither.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from typing import Any, Final, TypeAlias

import attrs

from ..errors import BulkUpdateError, LLMObsError, _carried_on
from ..models import RecordCreate, RecordUpdate

__all__ = [
    "FLUSH",
    "BulkFailure",
    "BulkInterruptedError",
    "BulkOutcomeUnknownError",
    "BulkProgress",
    "BulkResult",
]

RecordItem: TypeAlias = RecordUpdate | Mapping[str, Any]
RecordSource: TypeAlias = Iterable[RecordItem] | AsyncIterable[RecordItem]
NewRecordSource: TypeAlias = (
    Iterable[RecordCreate | Mapping[str, Any]] | AsyncIterable[RecordCreate | Mapping[str, Any]]
)
IdSource: TypeAlias = Iterable[str] | AsyncIterable[str]

_RESULT_ATTRIBUTE = "_llmobs_bulk_result"


class _Flush:
    __slots__ = ()

    def __repr__(self) -> str:
        return "FLUSH"


FLUSH: Final = _Flush()
"""Yield this from a bulk job's input to send what it has read now, not when a batch is full.

A source whose items trickle in (an experiment's results, a queue) yields
``FLUSH`` every few seconds so that nothing waits long for a full batch.
It is not an item: it is not counted, sent or reported.
"""


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
        return _carried_on(exc, _RESULT_ATTRIBUTE, BulkResult)


def attach_result(exc: BaseException, result: BulkResult) -> None:
    """Leave ``result`` on ``exc`` for :meth:`BulkResult.from_exception`."""
    setattr(exc, _RESULT_ATTRIBUTE, result)
