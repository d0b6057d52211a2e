"""LLMObsClient: configuration, views, and the one request loop."""

from __future__ import annotations

import asyncio
import io
import logging
import math
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Final, TypeVar

import aiohttp
import attrs
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from . import _config, _ratestore
from ._ratelimit import Bucket, Ticket, WaitTooLong, key_fingerprint
from ._redis_store import RedisRateLimitStore
from ._resources import Experiments, Projects, Records
from ._retry import RetryPolicy
from ._transport import MAX_RESPONSE_BYTES, BodyTooLarge, SessionPool, read_body, scrub
from ._version import __version__
from .errors import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    LLMObsError,
    RateLimitError,
    ResponseTooLargeError,
    ValidationError,
    printable,
    status_error,
)

logger = logging.getLogger("llmobs_async")

USER_AGENT: Final = f"llmobs-async/{__version__} aiohttp/{aiohttp.__version__}"
T = TypeVar("T")
_LARGE_BODY: Final = 1 << 20


class LLMObsClient:
    """Async client for the Datadog LLM Observability API.

    Create one per process (or per tenant with :meth:`with_options`) and close
    it with ``async with`` or :meth:`close`. Resources are namespaces:
    ``client.experiments``, ``client.projects``, ``client.records``.

    Args:
        api_key: Datadog API key; default ``DD_API_KEY``.
        app_key: application key; default ``DD_APP_KEY``, then ``DD_APPLICATION_KEY``.
        site: Datadog site; default ``DD_SITE``, then ``datadoghq.com``.
        base_url: overrides ``site``, e.g. ``http://127.0.0.1:8126`` for a local server.
        max_concurrency: requests in flight at once, across all views (an int >= 1).
        max_retries: retries on 408, 429, 5xx, connection errors and timeouts (an int >= 0).
        timeout: seconds per attempt (finite, > 0), or an ``aiohttp.ClientTimeout``.
            It bounds each attempt on its own, from sending to the last byte
            of the answer; time spent waiting at the rate gate (after a 429,
            or pacing), for a slot under ``max_concurrency`` and between
            retries is not counted.
        session: an ``aiohttp.ClientSession`` of yours to send through; it is
            used for every origin and never closed by the client. Its
            ``raise_for_status`` is overridden (the client maps statuses
            itself) and its ``User-Agent``, if any, is kept with the
            client's appended.
        max_rate_limit_wait: the longest server-given wait (``Retry-After``,
            ``X-RateLimit-Reset``) honoured, in seconds; a longer one raises
            ``RateLimitError`` with ``retry_after`` set instead of parking the call.
        rate_limit_store: share the org's rate budget with other processes: a
            ``redis://`` URL (closed with the client) or a
            :class:`~llmobs_async.RedisRateLimitStore`; default
            ``LLMOBS_RATE_LIMIT_STORE``, else each process paces on its own. If
            the store fails, the client paces on its own and logs one warning.
            Views made by :meth:`with_options` share it.

    Response bodies are read up to 32 MiB (after decompression); a larger one
    raises :class:`~llmobs_async.errors.ResponseTooLargeError`, not retried.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        app_key: str | None = None,
        site: str | None = None,
        base_url: str | None = None,
        max_concurrency: int = 16,
        max_retries: int = 5,
        timeout: float | aiohttp.ClientTimeout = 30.0,
        session: aiohttp.ClientSession | None = None,
        max_rate_limit_wait: float = 60.0,
        rate_limit_store: str | RedisRateLimitStore | None = None,
    ) -> None:
        max_concurrency = _config.check_count("max_concurrency", max_concurrency, 1)
        max_retries = _config.check_count("max_retries", max_retries, 0)
        self._pool = SessionPool(
            max_concurrency=max_concurrency,
            session=session,
            store=_ratestore.resolve(rate_limit_store),
        )
        self._owns_pool = True
        self._configure(
            base_url=_config.resolve_base_url(site, base_url),
            keys=_config.resolve_keys(api_key, app_key),
            timeout=_config.check_timeout(timeout),
            retry=RetryPolicy(
                max_retries=max_retries, max_rate_limit_wait=_wait_cap(max_rate_limit_wait)
            ),
        )

    def _configure(
        self,
        *,
        base_url: URL,
        keys: tuple[_config.Secret | None, _config.Secret | None],
        timeout: aiohttp.ClientTimeout,
        retry: RetryPolicy,
    ) -> None:
        api_key, app_key = keys
        if api_key is None:
            raise ValidationError("api_key", "missing: pass api_key= or set DD_API_KEY")
        if app_key is None:
            raise ValidationError("app_key", "missing: pass app_key= or set DD_APP_KEY")
        self._base_url = base_url
        self._origin = str(base_url)
        self._keys = keys
        self._retry = retry
        self._timeout = timeout
        self._limits = self._pool.limits(str(base_url.origin()), key_fingerprint(api_key.reveal()))
        # Built once per view: every request reuses the same header object.
        self._headers = CIMultiDictProxy(
            CIMultiDict(
                {
                    "DD-API-KEY": api_key.reveal(),
                    "DD-APPLICATION-KEY": app_key.reveal(),
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                    "User-Agent": self._pool.user_agent(USER_AGENT),
                }
            )
        )
        self.experiments = Experiments(self)
        """Update experiments: ``await client.experiments.update(id, status="completed")``."""
        self.projects = Projects(self)
        """Update projects: ``await client.projects.update(id, description="...")``."""
        self.records = Records(self)
        """Update dataset records, one request or a streamed bulk job."""

    @property
    def base_url(self) -> str:
        """The API origin this view sends to, e.g. ``https://api.datadoghq.com``."""
        return self._origin

    @property
    def max_retries(self) -> int:
        """Retries after the first attempt."""
        return self._retry.max_retries

    def with_options(
        self,
        *,
        site: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        app_key: str | None = None,
        timeout: float | aiohttp.ClientTimeout | None = None,
        max_retries: int | None = None,
        max_rate_limit_wait: float | None = None,
    ) -> LLMObsClient:
        """Return a view with other settings that shares this client's pool.

        Cheap: no session is created. The view shares the sessions, the
        concurrency limit and the per-site rate gates. It does not own them:
        closing a view (or leaving ``async with view``) does nothing, so one
        tenant's view cannot close the pool under the others; close the
        client you created. Options not given are kept from this client (keys
        are not re-read from the environment); a given key is validated like
        the constructor's, so ``api_key=""`` is refused, never replaced by
        this client's key.
        """
        view = object.__new__(LLMObsClient)
        view._pool = self._pool
        view._owns_pool = False
        if site is None and base_url is None:
            url = self._base_url
        else:
            url = _config.resolve_base_url(site, base_url)
        current_api, current_app = self._keys
        retry = self._retry
        if max_retries is not None:
            retry = attrs.evolve(
                retry, max_retries=_config.check_count("max_retries", max_retries, 0)
            )
        if max_rate_limit_wait is not None:
            retry = attrs.evolve(retry, max_rate_limit_wait=_wait_cap(max_rate_limit_wait))
        view._configure(
            base_url=url,
            keys=(
                current_api if api_key is None else _config.check_key("api_key", api_key),
                current_app if app_key is None else _config.check_key("app_key", app_key),
            ),
            timeout=self._timeout if timeout is None else _config.check_timeout(timeout),
            retry=retry,
        )
        return view

    async def close(self) -> None:
        """Close the sessions the client opened. Safe to call twice.

        Every view made with :meth:`with_options` is closed with it. On a
        view this does nothing: the client it came from owns the pool.
        """
        if self._owns_pool:
            await self._pool.close()

    async def __aenter__(self) -> LLMObsClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"LLMObsClient(base_url={self._origin!r}, max_retries={self._retry.max_retries})"

    async def _request(
        self,
        method: str,
        path: str,
        body: bytes,
        parse: Callable[[bytes], T],
        on_retry: Callable[[], None] | None = None,
        route: str | None = None,
    ) -> T:
        """Send one logical request (with retries) and parse the 2xx body.

        ``path`` is already percent-encoded. This is the only place requests
        are sent from: retries, the rate gate, the semaphore, timeouts and
        error mapping all live here. ``on_retry`` is called before each retry.
        ``route`` names the endpoint for the rate gate (default: method and path).
        """
        url = URL(self._origin + path, encoded=True)
        route = route or f"{method} {path}"
        if on_retry is None:
            data = await self._retry.call(lambda: self._attempt(method, url, body, route))
        else:
            attempts = 0

            def attempt() -> Awaitable[bytes]:
                nonlocal attempts
                attempts += 1
                if attempts > 1:
                    on_retry()
                return self._attempt(method, url, body, route)

            data = await self._retry.call(attempt)
        try:
            return parse(data)
        except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
            raise APIResponseValidationError(
                f"{method} {url.raw_path}: the response body is not the documented shape "
                f"({type(exc).__name__}: {printable(str(exc))})",
                status=200,
                method=method,
                url=str(url),
                body=data,
            ) from exc

    async def _pass_gate(self, bucket: Bucket, method: str, url: URL) -> Ticket:
        """Wait for the rate gate's turn, then for a concurrency slot; hold the slot.

        The gate is passed at send time: a grant that went stale while waiting
        for a slot (a 429 arrived meanwhile) queues again, in its first place.
        """
        semaphore = self._pool.semaphore
        stale: Ticket | None = None
        while True:
            try:
                ticket = await bucket.acquire(self._retry.max_rate_limit_wait, stale=stale)
            except WaitTooLong as exc:
                raise _waited_too_long(method, url, exc.wait) from None
            try:
                await semaphore.acquire()
            except BaseException:
                bucket.unsend(ticket)
                raise
            if ticket.current:
                return ticket
            semaphore.release()
            bucket.unsend(ticket)
            stale = ticket

    async def _attempt(self, method: str, url: URL, body: bytes, route: str) -> bytes:
        limits, semaphore = self._limits, self._pool.semaphore
        bucket = limits.bucket(route)
        ticket = await self._pass_gate(bucket, method, url)
        loop = asyncio.get_running_loop()
        answered = False
        failure: BaseException | None = None
        try:
            session = self._pool.session(self._origin)
            try:
                async with session.request(
                    method,
                    url,
                    # aiohttp warns that large raw bytes may block the loop while
                    # written; a fresh BytesIO per attempt is streamed instead.
                    data=body if len(body) <= _LARGE_BODY else io.BytesIO(body),
                    headers=self._headers,
                    timeout=self._timeout,
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
        name = headers.get("X-RateLimit-Name")
        if name is not None:
            limits.learn(route, bucket, name)
        if 200 <= status < 300:
            return data
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s %s answered %d", method, url.raw_path, status)
        if 300 <= status < 400:
            raise APIStatusError(
                status=status,
                errors=[],
                method=method,
                url=str(url),
                headers=headers,
                body=data,
                message=f"{status} redirect from {method} {url.raw_path} not followed "
                "(the client never sends credentials through a redirect)",
            )
        raise status_error(status=status, method=method, url=str(url), headers=headers, body=data)

    def _failure(self, method: str, url: URL, exc: BaseException) -> LLMObsError:
        """The typed error for an attempt that got no complete answer, its cause scrubbed."""
        where = f"{method} {url.raw_path}"
        error: LLMObsError
        if isinstance(exc, BodyTooLarge):
            error = ResponseTooLargeError(
                f"{where}: the {exc.status} response body is larger than the "
                f"{MAX_RESPONSE_BYTES >> 20} MiB cap; stopped reading",
                status=exc.status,
                method=method,
                url=str(url),
                limit=MAX_RESPONSE_BYTES,
            )
            return error
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


def _wait_cap(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (0 <= value < math.inf):
        raise ValidationError(
            "max_rate_limit_wait", f"must be a finite number of seconds >= 0; got {value!r}"
        )
    return float(value)


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
    )
