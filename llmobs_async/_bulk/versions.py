"""One new dataset version per bulk job, whatever happens to its first requests.

A ``batch_update`` with ``create_new_version: true`` makes a new version when
it lands; with ``false`` its changes go into the current one, which
experiments may be pinned to. So until a request that asked for the new
version is known to have landed, every request asks for it, and they go one
at a time (two in flight could make two versions). Once one has landed, the
others say ``false`` and go concurrently.

"Known to have landed" comes from its answer. When the answer is lost (a
dropped connection, a timeout, a 5xx, a 200 that is not the API's), the
request may or may not have landed: the dataset's ``current_version``, read
before the job and again before anything else is sent, tells. A re-sent
request then asks for the version only if none was made, so a lost answer
never makes a second one. (A version made meanwhile by another writer reads
the same; the job then adds to it.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

from ..errors import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    LLMObsError,
    NotFoundError,
)

if TYPE_CHECKING:
    from .._routes import Compiled
    from .._transport import Transport

__all__ = ["OneVersion", "StopRetry", "VersionUnknown", "send_batch", "unsure"]

Body = Callable[[bool], bytes]
"""The request body of a batch: asking for the new version (True) or adding to it."""
Retry = Callable[[LLMObsError], Awaitable[bytes | None]]
Post = Callable[[bytes, Retry | None], Awaitable[None]]
"""Send a body with the transport's retries, calling the hook before each retry."""


def unsure(error: LLMObsError) -> bool:
    """Whether a failed request may still have been applied (its answer was lost).

    A 4xx is the API refusing the request (or the rate limit holding it back)
    before applying it; a 5xx, a dropped connection, a timeout or a 2xx that
    is not the API's answer says nothing either way.
    """
    if isinstance(error, APIStatusError):
        return error.status >= 500
    return isinstance(error, APIConnectionError | APIResponseValidationError)


class StopRetry(LLMObsError):
    """Raised by a retry hook: send no more. ``error`` is the last attempt's failure."""

    def __init__(self, error: LLMObsError) -> None:
        super().__init__(str(error))
        self.error = error


class VersionUnknown(LLMObsError):
    """The dataset's version could not be read, so nothing more may be sent safely."""

    def __init__(self, error: LLMObsError) -> None:
        super().__init__(
            f"stopped: the dataset's current version could not be read, so whether the "
            f"job's new version exists is unknown ({error})"
        )
        self.error = error


async def refuse_unsure(error: LLMObsError) -> bytes | None:
    """A retry hook that never re-sends a request whose answer was lost."""
    if unsure(error):
        raise StopRetry(error)
    return None


class Operation(Protocol):
    """What :func:`send_batch` needs of a bulk operation (``operations.BulkOperation`` has it)."""

    @property
    def route(self) -> Compiled: ...
    @property
    def version(self) -> OneVersion | None: ...
    @property
    def resend_unsure(self) -> bool: ...
    def body(self, joined: bytes | bytearray, new_version: bool = False) -> bytes: ...
    def load(self, body: bytes) -> object: ...


async def send_batch(
    transport: Transport, op: Operation, joined: bytes | bytearray, on_retry: Callable[[], None]
) -> None:
    """Send one batch of a bulk job with the transport's retries; its answer must be the API's."""

    async def post(body: bytes, hook: Retry | None) -> None:
        await transport.request(op.route, op.load, body=body, on_retry=on_retry, before_retry=hook)

    if op.version is None:
        await post(op.body(joined), None if op.resend_unsure else refuse_unsure)
    else:
        await op.version.send(
            lambda new: op.body(joined, new), post, resend_unsure=op.resend_unsure
        )


class OneVersion:
    """The state of a job's one new dataset version, and the sending that keeps it one."""

    def __init__(self, read_version: Callable[[], Awaitable[int]]) -> None:
        self._read_version = read_version
        self._lock = asyncio.Lock()
        self.made = False
        """A request that asked for the new version landed (or the version was seen)."""
        self._base: int | None = None
        self._absent = False  # the read before the job found no such dataset
        self._unsure = False

    async def send(self, body: Body, post: Post, *, resend_unsure: bool = True) -> None:
        """Send one batch; ask for the new version while none is known to exist.

        Raises what ``post`` raises, :class:`StopRetry` when an unsure request
        is not to be sent again (``resend_unsure=False``), and
        :class:`VersionUnknown` when ``current_version`` cannot be read.
        """
        hook = None if resend_unsure else refuse_unsure
        if not self.made:
            async with self._lock:
                if not self.made:
                    await self._settle()
                if not self.made:
                    await self._send_new(body, post, resend_unsure)
                    return
        await post(body(False), hook)

    async def _settle(self) -> None:
        """Read the version before the job, or after a request that may have landed."""
        if self._base is None and not self._absent:
            try:
                self._base = await self._read()
            except VersionUnknown as exc:
                if not isinstance(exc.error, NotFoundError):
                    raise
                # No such dataset: no version to protect, and the writes will
                # be refused the same way (the job judges that as usual).
                self._absent = True
        elif self._unsure:
            await self._check()

    async def _check(self) -> None:
        if self._base is None:
            raise VersionUnknown(LLMObsError("the dataset was not found before the job"))
        if await self._read() > self._base:
            self.made = True
        self._unsure = False

    async def _read(self) -> int:
        try:
            return await self._read_version()
        except LLMObsError as exc:
            raise VersionUnknown(exc) from None

    async def _send_new(self, body: Body, post: Post, resend_unsure: bool) -> None:
        async def before_retry(error: LLMObsError) -> bytes | None:
            if not unsure(error):
                return None  # refused before being applied: ask again
            if not resend_unsure:
                raise StopRetry(error)
            await self._check()
            self._unsure = True  # the retry itself may land unseen too
            return body(not self.made)

        self._unsure = True  # until its answer says otherwise
        try:
            await post(body(True), before_retry)
        except (StopRetry, VersionUnknown):
            raise  # nothing new is known about the version
        except LLMObsError as exc:
            if not unsure(exc):
                self._unsure = False
            raise
        self.made = True
        self._unsure = False
