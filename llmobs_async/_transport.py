"""The transport: the one request loop, over the session pool (:mod:`._pool`).

Every request of every resource goes through :meth:`Transport.request`:
route and query and body, then retries, the rate gate, the concurrency
semaphore, the session, the status, and the typed exception. The pool
(sessions, semaphore, rate gates) is shared by every client view; a
:class:`Transport` is one view's origin, keys, timeout and retry policy over it.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Final, TypeAlias, TypeVar
from urllib.parse import quote

import aiohttp
from aiohttp.http_exceptions import DecompressSizeError
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from ._errorbody import parse_errors
from ._pool import SessionPool
from ._ratelimit.gate import Ticket, WaitTooLong
from ._ratelimit.headers import parse_rate_limit, server_wait
from ._retry import RetryPolicy
from ._routes import Compiled
from ._scrub import scrub
from ._text import printable
from .errors import (
    STATUS_CLASSES,
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    LLMObsError,
    RateLimitError,
    ResponseTooLargeError,
    ServerError,
)

logger = logging.getLogger("llmobs_async")

T = TypeVar("T")
Query: TypeAlias = Sequence[tuple[str, str]]
"""Query parameters in wire form, e.g. ``[("filter[name]", "evals"), ("page[limit]", "100")]``."""
_LARGE_BODY: Final = 1 << 20

Streamed: TypeAlias = Callable[[], aiohttp.Payload]
"""A body made afresh for each attempt (a file upload)."""

if TYPE_CHECKING:
    pass


MAX_RESPONSE_BYTES: Final = 32 * 1024 * 1024
"""The most a response body may hold, counted after decompression (32 MiB).

The API's answers are a few KiB to a few MiB (1,000 records echoed back);
the cap only stops a broken or hostile server (a gzip bomb, an endless
chunked stream) from filling the process's memory.
"""


_READ_SIZE: Final = 1 << 20  # bytes per read of a body


async def read_body(response: aiohttp.ClientResponse, limit: int = MAX_RESPONSE_BYTES) -> bytes:
    """Read the (decompressed) body in chunks, or raise :class:`BodyTooLarge` past ``limit``.

    aiohttp (3.13.3 and later) decompresses a bounded amount per network
    chunk and pauses the socket while its buffer is full, so memory stays near
    ``limit`` whatever the server sends. Reads are bounded too: aiohttp 3.14.0's
    ``readany`` kept refilling its buffer while it drained it, a gzip bomb whole.
    """
    declared = response.content_length
    if declared is not None and declared > limit:
        response.close()
        raise BodyTooLarge(0, response.status)
    content = response.content
    if content.is_eof():
        # The whole answer has arrived with its headers (small answers do): take it at once.
        data = content.read_nowait()
        if len(data) > limit:
            response.close()
            raise BodyTooLarge(len(data), response.status)
        return data
    chunks: list[bytes] = []
    size = 0
    while True:
        try:
            chunk = await content.read(_READ_SIZE)
        except aiohttp.ClientPayloadError as exc:
            # aiohttp's own cap on what one network chunk may inflate to
            # (32 MiB, like ours): the same verdict as ours, a body too large.
            if isinstance(exc.__cause__, DecompressSizeError):
                response.close()
                raise BodyTooLarge(size, response.status) from None
            raise
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            response.close()  # drop the connection: the rest is never read
            raise BodyTooLarge(size, response.status)
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class BodyTooLarge(Exception):
    """Internal: the body passed the cap after ``read`` bytes; the client maps it."""

    def __init__(self, read: int, status: int) -> None:
        super().__init__(read, status)
        self.read = read
        self.status = status


class Transport:
    """One view's way to the API: its origin, keys, timeout and retry policy over the shared pool.

    Resources hold a transport, never the client.
    """

    __slots__ = ("_headers", "limits", "observer", "origin", "pool", "retry", "timeout")

    def __init__(
        self,
        pool: SessionPool,
        *,
        origin: str,
        headers: Mapping[str, str],
        timeout: aiohttp.ClientTimeout,
        retry: RetryPolicy,
        key_fingerprint: str,
    ) -> None:
        self.pool = pool
        self.origin = origin
        self.timeout = timeout
        self.retry = retry
        # Built once per view: every request reuses the same header object.
        self._headers = CIMultiDictProxy(CIMultiDict(headers))
        self.limits = pool.limits(str(URL(origin).origin()), key_fingerprint)
        # Told each answer's status and headers: a call asking for its raw response.
        self.observer: Callable[[int, CIMultiDictProxy[str]], None] | None = None

    async def request(
        self,
        route: Compiled,
        load: Callable[[bytes], T],
        *,
        body: bytes | Streamed | None = None,
        query: Query | None = None,
        on_retry: Callable[[], None] | None = None,
        before_retry: Callable[[LLMObsError], Awaitable[bytes | None]] | None = None,
    ) -> T:
        """Send one logical request (with retries) and return ``load`` of the 2xx body.

        Any 2xx is a success; a 202 or 204 has an empty body, which ``load``
        gets as ``b""``. ``on_retry`` is called before each retry. A
        :data:`Streamed` body is a function making a fresh payload (with its
        own Content-Type) for each attempt: a file upload is re-sent whole.
        ``before_retry`` gets the error of the attempt that failed before each
        retry and returns the body to send again (``None``: the same), or
        raises to send nothing more: a write whose first attempt may have
        landed (a lost answer) can change what the retry says.
        """
        target = self.origin + route.path
        if query:
            target += "?" + "&".join(f"{quote(k, safe='[]')}={quote(v, safe='')}" for k, v in query)
        url = URL(target, encoded=True)
        method = route.method
        if on_retry is None and before_retry is None:
            # The first attempt is made here, not through retry.call: nearly every
            # request succeeds at once and then pays for no wrapper at all.
            first_failure: LLMObsError | None = None
            try:
                data = await self._attempt(method, url, body, route.gate)
            except LLMObsError as exc:
                first_failure = exc
            if first_failure is not None:
                data = await self.retry.after(
                    first_failure, lambda: self._attempt(method, url, body, route.gate)
                )
        else:
            attempts = 0
            failed: LLMObsError | None = None

            async def attempt() -> bytes:
                nonlocal attempts, body, failed
                attempts += 1
                if attempts > 1:
                    if on_retry is not None:
                        on_retry()
                    if before_retry is not None and failed is not None:
                        body = await before_retry(failed) or body
                try:
                    return await self._attempt(method, url, body, route.gate)
                except LLMObsError as exc:
                    failed = exc
                    raise

            data = await self.retry.call(attempt)
        try:
            return load(data)
        except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
            raise APIResponseValidationError(
                f"{method} {url.raw_path}: the response body is not the documented shape "
                f"({type(exc).__name__}: {printable(str(exc))})",
                status=200,
                method=method,
                url=str(url),
                body=data,
            ) from exc

    async def _attempt(
        self, method: str, url: URL, body: bytes | Streamed | None, gate: str
    ) -> bytes:
        limits, semaphore = self.limits, self.pool.semaphore
        bucket = limits.bucket(gate)
        # The rate gate's turn, then a concurrency slot, held until the answer. The
        # gate is passed at send time: a grant that went stale while waiting for a
        # slot (a 429 arrived meanwhile) queues again, in its first place.
        stale: Ticket | None = None
        while True:
            try:
                ticket = await bucket.acquire(self.retry.max_rate_limit_wait, stale=stale)
            except WaitTooLong as exc:
                raise _waited_too_long(method, url, exc.wait) from None
            try:
                await semaphore.acquire()
            except BaseException:
                bucket.unsend(ticket)
                raise
            if ticket.current:
                break
            semaphore.release()
            bucket.unsend(ticket)
            stale = ticket
        loop = asyncio.get_running_loop()
        answered = False
        failure: BaseException | None = None
        try:
            session = self.pool.session(self.origin)
            try:
                sent: Mapping[str, str] = self._headers
                payload: bytes | io.BytesIO | aiohttp.Payload | None
                if callable(body):
                    payload = body()
                    sent = CIMultiDict(sent)
                    sent["Content-Type"] = payload.content_type  # with a multipart boundary
                else:
                    # aiohttp warns that large raw bytes may block the loop while
                    # written; a fresh BytesIO per attempt is streamed instead.
                    payload = body if body is None or len(body) <= _LARGE_BODY else io.BytesIO(body)
                async with session.request(
                    method,
                    url,
                    data=payload,
                    headers=sent,
                    timeout=self.timeout,
                    # Redirects are not followed: the keys must not travel to
                    # another origin, and the API does not redirect.
                    allow_redirects=False,
                    # A caller's session may raise on 4xx; statuses are ours to map.
                    raise_for_status=False,
                ) as response:
                    status = response.status
                    headers = response.headers
                    data = await read_body(response)
            except (TimeoutError, aiohttp.ClientError, OSError, BodyTooLarge) as exc:
                # Raised below, outside any handler, so the original (whose
                # repr may hold the keys) is not chained as __context__ too.
                failure = exc
            else:
                bucket.observe(ticket, status, headers, loop.time())
                answered = True
        finally:
            semaphore.release()
            if not answered:
                bucket.abandon(ticket)
        if failure is not None:
            raise self._failure(method, url, failure)
        if self.observer is not None:
            self.observer(status, headers)
        name = headers.get("X-RateLimit-Name")
        if name is not None:
            limits.learn(gate, bucket, name)
        if 200 <= status < 300:
            return data
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s %s answered %d", method, url.raw_path, status)
        raise status_error(status=status, method=method, url=str(url), headers=headers, body=data)

    def _failure(self, method: str, url: URL, exc: BaseException) -> LLMObsError:
        """The typed error for an attempt that got no complete answer, its cause scrubbed."""
        where = f"{method} {url.raw_path}"
        error: LLMObsError
        if isinstance(exc, BodyTooLarge):
            return ResponseTooLargeError(
                f"{where}: the {exc.status} response body is larger than the "
                f"{MAX_RESPONSE_BYTES >> 20} MiB cap; stopped reading",
                status=exc.status,
                method=method,
                url=str(url),
                limit=MAX_RESPONSE_BYTES,
            )
        cause = scrub(exc, (self._headers["DD-API-KEY"], self._headers["DD-APPLICATION-KEY"]))
        if isinstance(exc, TimeoutError):
            error = APITimeoutError(f"{where} timed out", method=method, url=str(url))
        else:
            error = APIConnectionError(
                f"{where} failed: {type(cause).__name__}: {printable(str(cause))}",
                method=method,
                url=str(url),
            )
        error.__cause__ = cause
        return error


def status_error(
    *, status: int, method: str, url: str, headers: Mapping[str, str], body: bytes
) -> APIStatusError:
    """The typed exception for a non-2xx answer, its ``errors`` array parsed."""
    if 300 <= status < 400:
        return APIStatusError(
            status=status,
            errors=[],
            method=method,
            url=url,
            headers=headers,
            body=body,
            message=f"{status} redirect from {method} {URL(url).raw_path} not followed "
            "(the client never sends credentials through a redirect)",
        )
    errors = parse_errors(body)
    if status == 429:
        info = parse_rate_limit(headers)
        return RateLimitError(
            status=status,
            errors=errors,
            method=method,
            url=url,
            headers=headers,
            body=body,
            rate_limit=info,
            retry_after=server_wait(headers, info),
        )
    cls = STATUS_CLASSES.get(status) or (ServerError if status >= 500 else APIStatusError)
    return cls(status=status, errors=errors, method=method, url=url, headers=headers, body=body)


def _waited_too_long(method: str, url: URL, wait: float) -> RateLimitError:
    """The error for a request the gate would have held past ``max_rate_limit_wait``."""
    return RateLimitError(
        status=429,
        errors=[],
        method=method,
        url=str(url),
        headers={"Retry-After": f"{wait:.3f}"},
        body=b"",
        message=f"429 RateLimitError: {method} {url.raw_path}: the rate limit asks to wait "
        f"{wait:.1f}s, longer than max_rate_limit_wait; not sent",
        retry_after=wait,
    )
