"""LLMObsClient: options, views, and the resource namespaces; no request code."""

from __future__ import annotations

import math
from types import TracebackType
from typing import Final

import aiohttp
import attrs
from yarl import URL

from . import _config
from ._pool import SessionPool
from ._ratelimit import shared
from ._ratelimit.gate import key_fingerprint
from ._ratelimit.limiter import RateLimiter, limiter_for
from ._ratelimit.redis_store import RedisRateLimitStore
from ._resources import Datasets, Projects, Records
from ._retry import RetryPolicy
from ._transport import Transport
from ._version import __version__
from .errors import ValidationError
from .experiments import Experiments

USER_AGENT: Final = f"llmobs-async/{__version__} aiohttp/{aiohttp.__version__}"


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
            store=shared.resolve(rate_limit_store),
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
        self._keys = keys
        self._transport = transport = Transport(
            self._pool,
            origin=str(base_url),
            headers={
                "DD-API-KEY": api_key.reveal(),
                "DD-APPLICATION-KEY": app_key.reveal(),
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": self._pool.user_agent(USER_AGENT),
            },
            timeout=timeout,
            retry=retry,
            key_fingerprint=key_fingerprint(api_key.reveal()),
        )
        self.projects = Projects(transport)
        """Projects: create (get-or-create by name), get, list, update, delete."""
        self.datasets = Datasets(transport)
        """A project's datasets: create, get, list, update, delete, versions."""
        self.records = Records(transport)
        """A dataset's records: list, create, update, delete, and the bulk jobs."""
        self.experiments = Experiments(transport, records=self.records, datasets=self.datasets)
        """Experiments: create, get, list, update, delete, their ``.events``; and the runner:
        ``run``, ``resume``, ``compare``, ``rows``."""

    @property
    def base_url(self) -> str:
        """The API origin this view sends to, e.g. ``https://api.datadoghq.com``."""
        return self._transport.origin

    @property
    def max_retries(self) -> int:
        """Retries after the first attempt."""
        return self._transport.retry.max_retries

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
        retry = self._transport.retry
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
            timeout=self._transport.timeout if timeout is None else _config.check_timeout(timeout),
            retry=retry,
        )
        return view

    def rate_limiter(
        self, name: str, *, requests: int, per: float, tokens: int | None = None
    ) -> RateLimiter:
        """A rate limit for the task's own calls (e.g. to an LLM provider), by name.

        At most ``requests`` acquisitions, and at most ``tokens`` tokens, start in
        any ``per`` seconds (a sliding window)::

            limiter = client.rate_limiter("openai:gpt-4o", requests=500, per=60, tokens=30_000)
            async with limiter.acquire(tokens=estimate):
                response = await openai_client.chat.completions.create(...)

        With the client's ``rate_limit_store`` it is one budget for every process
        (and machine) using the same Redis and name; without, the whole limit is
        this process's. The same name returns the same limiter, on this client
        and every view made by :meth:`with_options`; the same name with other
        limits raises ``ValidationError``. See :class:`~llmobs_async.RateLimiter`.
        """
        return limiter_for(self._pool.limiters, self._pool.store, name, requests, per, tokens)

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
        transport = self._transport
        retries = transport.retry.max_retries
        return f"LLMObsClient(base_url={transport.origin!r}, max_retries={retries})"


def _wait_cap(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (0 <= value < math.inf):
        raise ValidationError(
            "max_rate_limit_wait", f"must be a finite number of seconds >= 0; got {value!r}"
        )
    return float(value)
