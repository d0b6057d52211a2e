"""The transport: the session pool, capped body reads, and credential-free causes.

The pool (sessions, semaphore, rate gates) is shared by every client view.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

from ._ratelimit import Limits
from .errors import LLMObsError

if TYPE_CHECKING:
    from ._ratestore import SharedStore


class SessionPool:
    """Sessions, the concurrency semaphore and the rate limits of one client family.

    Sessions are created lazily inside the running loop (never at import or
    construction time) and closed together by :meth:`close`. A session the
    caller supplied is used for every origin and never closed here.
    """

    __slots__ = (
        "_closed",
        "_external",
        "_limits",
        "_loop",
        "_sessions",
        "_store",
        "max_concurrency",
        "semaphore",
    )

    def __init__(
        self,
        *,
        max_concurrency: int,
        session: aiohttp.ClientSession | None,
        store: tuple[SharedStore | None, bool] = (None, False),
    ) -> None:
        self.max_concurrency = max_concurrency
        self._store = store  # the rate-limit store, and whether the pool closes it
        self.semaphore = asyncio.Semaphore(max_concurrency)
        self._external = session
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        self._limits: dict[tuple[str, str], Limits] = {}
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._closed

    def session(self, origin: str) -> aiohttp.ClientSession:
        """Return the session for ``origin``, creating it on first use."""
        if self._external is not None:
            return self._external
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None:
                # aiohttp sessions belong to the loop that created them.
                raise LLMObsError(
                    "this client was first used in another event loop; "
                    "create one client per event loop (inside it)"
                )
            self._loop = loop
        session = self._sessions.get(origin)
        if session is None:
            if self._closed:
                raise LLMObsError("the client is closed; create a new LLMObsClient")
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
                # trust_env stays off (aiohttp's default): reading .netrc and the
                # proxy variables costs two thread-pool jobs per request, more
                # than the rest of the client. For a proxy, pass session=.
            )
            self._sessions[origin] = session
        return session

    def user_agent(self, ours: str) -> str:
        """``ours``, after the caller's session's own ``User-Agent`` if it sets one."""
        theirs = None if self._external is None else self._external.headers.get("User-Agent")
        return f"{theirs} {ours}" if theirs else ours

    def limits(self, origin: str, key_fingerprint: str) -> Limits:
        """The rate-limit buckets of one org (API key) on one origin, shared by all views."""
        key = (origin, key_fingerprint)
        limits = self._limits.get(key)
        if limits is None:
            store = self._store[0]
            if store is None:
                limits = self._limits[key] = Limits()
            else:
                from ._ratestore import SharedLimits

                limits = self._limits[key] = Limits(SharedLimits(store, *key).bucket)
        return limits

    async def close(self) -> None:
        """Close the sessions this pool created (not a caller-supplied one)."""
        self._closed = True
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()
        store, owned = self._store
        if store is not None and owned:
            await store.aclose()


MAX_RESPONSE_BYTES: Final = 32 * 1024 * 1024
"""The most a response body may hold, counted after decompression (32 MiB).

The API's answers are a few KiB to a few MiB (1,000 records echoed back);
the cap only stops a broken or hostile server (a gzip bomb, an endless
chunked stream) from filling the process's memory.
"""


async def read_body(response: aiohttp.ClientResponse, limit: int = MAX_RESPONSE_BYTES) -> bytes:
    """Read the (decompressed) body in chunks, or raise :class:`BodyTooLarge` past ``limit``.

    aiohttp decompresses a bounded amount per chunk and pauses the socket
    while its buffer is full, so memory stays near ``limit`` whatever the
    server sends.
    """
    declared = response.content_length
    if declared is not None and declared > limit:
        response.close()
        raise BodyTooLarge(0, response.status)
    content = response.content
    chunks: list[bytes] = []
    size = 0
    while chunk := await content.readany():
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


REDACTED: Final = "**********"


def scrub(exc: BaseException, secrets: tuple[str, ...]) -> BaseException:
    """Return ``exc``, or a stand-in without ``secrets`` if its chain would show one.

    aiohttp's ``ClientResponseError`` (a bad status line, an oversized header,
    a duplicate Content-Length) carries the request headers, keys included,
    in its repr. The stand-in keeps the type where it can (with the request
    headers redacted), the message and the chain, so ``__cause__`` still says
    what went wrong.
    """
    scrubber = _Scrubber(secrets)
    if not any(scrubber.leaks(e) for e in _chain(exc)):
        return exc
    return scrubber.scrubbed(exc, {})


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or any(e is s for s in seen):
            continue
        seen.append(e)
        todo += (e.__cause__, e.__context__)
    return seen


_FINDABLE = 8
"""Secrets shorter than this (test keys such as ``"k"``) are redacted where they
are a header's value but not searched for in text, where they would match
ordinary words. Datadog's keys are 32 and 40 characters."""


class _Scrubber:
    __slots__ = ("findable", "secrets")

    def __init__(self, secrets: tuple[str, ...]) -> None:
        self.secrets = secrets
        self.findable = tuple(s for s in secrets if len(s) >= _FINDABLE)

    def leaks(self, exc: BaseException) -> bool:
        if self._request_headers(exc) is not None:
            return True
        if not self.findable:
            return False
        try:
            text = f"{exc!r} {exc} {exc.args!r} {getattr(exc, '__dict__', None)!r}"
        except Exception:  # a repr that fails shows nothing, but trust nothing either
            return True
        return any(secret in text for secret in self.findable)

    def _request_headers(self, exc: BaseException) -> CIMultiDictProxy[str] | None:
        """The request headers ``exc`` carries, if they hold a secret."""
        info = getattr(exc, "request_info", None)
        headers = getattr(info, "headers", None)
        if isinstance(headers, CIMultiDictProxy | CIMultiDict) and any(
            v in self.secrets for v in headers.values()
        ):
            return CIMultiDictProxy(headers) if isinstance(headers, CIMultiDict) else headers
        return None

    def redact(self, text: str) -> str:
        for secret in self.findable:
            text = text.replace(secret, REDACTED)
        return text

    def scrubbed(self, exc: BaseException, done: dict[int, BaseException]) -> BaseException:
        if id(exc) in done:
            return done[id(exc)]
        clean = self.stand_in(exc) if self.leaks(exc) else exc
        done[id(exc)] = clean
        cause, context = exc.__cause__, exc.__context__
        clean.__cause__ = None if cause is None else self.scrubbed(cause, done)
        clean.__context__ = None if context is None else self.scrubbed(context, done)
        clean.__suppress_context__ = exc.__suppress_context__
        return clean

    def stand_in(self, exc: BaseException) -> BaseException:
        headers = self._request_headers(exc)
        if isinstance(exc, aiohttp.ClientResponseError) and headers is not None:
            info = exc.request_info
            safe = CIMultiDict(
                (k, REDACTED if v in self.secrets else v) for k, v in headers.items()
            )
            try:
                copy = type(exc)(
                    aiohttp.RequestInfo(
                        info.url, info.method, CIMultiDictProxy(safe), info.real_url
                    ),
                    (),
                    status=exc.status,
                    message=self.redact(exc.message),
                    headers=exc.headers,
                )
            except Exception:  # a subclass with another signature: use the fallback
                pass
            else:
                if not self.leaks(copy):
                    return copy.with_traceback(exc.__traceback__)
        text = self.redact(f"{type(exc).__name__}: {exc}")
        return aiohttp.ClientError(text).with_traceback(exc.__traceback__)
