"""The Redis store: one org's rate budget shared by every process that uses the same Redis.

Every decision is one ``EVALSHA`` of a script (loaded on first use, and again
whenever Redis answers ``NOSCRIPT``), atomic and on Redis's clock: the gate's
``redis_store.lua`` (:meth:`RedisRateLimitStore.run`) or the task limiter's
``limiter.lua`` (:meth:`RedisRateLimitStore.run_limiter`). Both share the
store's connections and its failure handling.
The ``redis`` package is imported only when a store is made: the library
works without the ``llmobs-async[redis]`` extra.

A store that fails (Redis down, a timeout, a refused script) is reported by
one warning and left alone for ``retry_after`` seconds, while every bucket
paces its process on its own; the first call after that tries it again.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.resources
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

from ..errors import ValidationError

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger("llmobs_async")

SCHEMES: Final = ("redis", "rediss", "unix")
DEFAULT_PREFIX: Final = "llmobs_async:rl"


class StoreUnavailable(Exception):
    """Internal: the store did not answer; the caller paces on its own."""


_REPLY_LENGTH: Final = 7
_DOWN: set[str] = set()
"""Redis locations this process has warned are down: one warning per location, however
many stores use it (a CLI's client and the task module's own limiter each have one)."""
_GATE_SCRIPT: Final = "redis_store.lua"
_LIMITER_SCRIPT: Final = "limiter.lua"
_LIMITER_REPLY_LENGTH: Final = 5


class RedisRateLimitStore:
    """A rate-limit store in Redis, shared by every client (and process) that uses it.

    Pass it, or just its URL, as ``LLMObsClient(rate_limit_store=...)``, or set
    ``LLMOBS_RATE_LIMIT_STORE``. Clients using the same Redis and the same API
    key then share one plan for the org's rate limits: one probe per window for
    all of them, and turns handed out so that together they stay under the limit.

    Args:
        url_or_client: a ``redis://``, ``rediss://`` or ``unix://`` URL, or a
            ``redis.asyncio.Redis`` client of yours (never closed by the store).
        prefix: the start of every key (no ``{`` or ``}``).
        timeout: seconds one decision may take before the store counts as down.
        retry_after: seconds to pace on our own after a failure before trying
            the store again.

    Keys are ``{prefix}:{{origin|key fingerprint}}:limit:{name}`` (the braces
    keep an org's keys in one cluster slot) and expire on their own. They hold
    a fingerprint of the API key, never the key; the URL's password never
    appears in a repr, a log line or an exception.
    """

    def __init__(
        self,
        url_or_client: str | Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = 1.0,
        retry_after: float = 30.0,
    ) -> None:
        try:
            import redis.asyncio  # noqa: F401  (fails here, not on the first request)
        except ImportError:  # pragma: no cover - the dev extra installs it
            raise ValidationError(
                "rate_limit_store", "needs the redis package: pip install 'llmobs-async[redis]'"
            ) from None
        if not isinstance(prefix, str) or not prefix or "{" in prefix or "}" in prefix:
            raise ValidationError("prefix", "must be a non-empty string without { or }")
        self._url: str | None = None
        self._client: Redis | None = None
        if isinstance(url_or_client, str):
            self.location = _location(url_or_client)
            self._url = url_or_client
            self._client = _from_url(url_or_client, timeout)
        else:
            self.location = _client_location(url_or_client)
            self._client = url_or_client
        self._owns_client = self._url is not None
        self.prefix = prefix
        self.timeout = timeout
        self.retry_after = retry_after
        self.round_trips = 0
        """Calls made to Redis, for benchmarks and monitoring (a NOSCRIPT reload counts 2 more)."""
        self._sha: dict[str, str] = {}
        self._failed_at: float | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"RedisRateLimitStore({self.location!r})"

    # --- what the gate asks -------------------------------------------------------------

    def key(self, origin: str, fingerprint: str, kind: str, name: str) -> str:
        """The key of one limit (``kind`` "limit") or one route whose limit is not yet named."""
        return f"{self.prefix}:{{{origin}|{fingerprint}}}:{kind}:{name}"

    def usable(self) -> bool:
        """False while the store is taken as down (it failed less than ``retry_after`` ago)."""
        if self._closed:
            return False
        return self._failed_at is None or time.monotonic() - self._failed_at >= self.retry_after

    async def run(self, keys: Sequence[str], args: Sequence[str | int | bytes]) -> list[int | str]:
        """One decision of the gate: the script's seven values (see ``redis_store.lua``).

        Raises StoreUnavailable when Redis fails or answers nonsense.
        """
        result = await self._eval(_GATE_SCRIPT, keys, args)
        if (
            not isinstance(result, list)
            or len(result) != _REPLY_LENGTH
            or not all(isinstance(value, int) for value in result[:-1])
            or not isinstance(result[-1], bytes)
        ):
            self._fail(TypeError("the rate-limit script's answer is not what it returns"))
            raise StoreUnavailable
        return [*result[:-1], result[-1].decode()]

    async def run_limiter(self, keys: Sequence[str], args: Sequence[str | int]) -> list[int]:
        """One decision of a task's rate limiter: five integers (see ``limiter.lua``).

        Raises StoreUnavailable when Redis fails or answers nonsense.
        """
        result = await self._eval(_LIMITER_SCRIPT, keys, args)
        if (
            not isinstance(result, list)
            or len(result) != _LIMITER_REPLY_LENGTH
            or not all(isinstance(value, int) for value in result)
        ):
            self._fail(TypeError("the rate limiter's script answer is not what it returns"))
            raise StoreUnavailable
        return result

    def limiter_key(self, name: str, kind: str) -> str:
        """The key of one part (``kind``) of a task limiter's state; braces: one cluster slot."""
        return f"{self.prefix}:limiter:{{{name}}}:{kind}"

    async def _eval(
        self, script: str, keys: Sequence[str], args: Sequence[str | int | bytes]
    ) -> object:
        from redis.exceptions import NoScriptError

        if self._closed:
            raise StoreUnavailable
        try:
            async with asyncio.timeout(self.timeout):
                client = self._connect()
                try:
                    sha = self._sha.get(script)
                    if sha is None:
                        raise NoScriptError("not loaded yet")
                    self.round_trips += 1
                    result = await client.evalsha(sha, len(keys), *keys, *args)
                except NoScriptError:
                    self.round_trips += 2
                    self._sha[script] = sha = await client.script_load(_script(script))
                    result = await client.evalsha(sha, len(keys), *keys, *args)
        except Exception as exc:  # whatever went wrong, the job goes on without the store
            self._fail(exc)
            raise StoreUnavailable from None
        if self._failed_at is not None:
            self._failed_at = None
            _DOWN.discard(self.location)
            logger.info(
                "rate-limit store %s answers again; sharing the budget again", self.location
            )
        return result

    async def aclose(self) -> None:
        """Close the connections this store opened (not those of a client you passed)."""
        self._closed = True
        if self._failed_at is not None:
            _DOWN.discard(self.location)  # a store made later for it warns again
        client, self._client = self._client, None
        if client is not None and self._owns_client:
            await client.aclose()

    # --- inside -------------------------------------------------------------------------

    def _connect(self) -> Redis:
        if self._client is None:
            raise StoreUnavailable  # closed
        return self._client

    def _fail(self, exc: BaseException) -> None:
        first = self._failed_at is None and self.location not in _DOWN
        self._failed_at = time.monotonic()
        _DOWN.add(self.location)
        if first:
            logger.warning(
                "rate-limit store %s is unavailable (%s); this process paces itself on its "
                "own, without the other processes, and tries the store again in %g s",
                self.location,
                self._describe(exc),
                self.retry_after,
            )
        else:
            logger.debug("rate-limit store %s still unavailable", self.location)

    def _describe(self, exc: BaseException) -> str:
        text = f"{type(exc).__name__}: {exc}"
        if self._url is not None:
            text = text.replace(self._url, self.location)
            password = urlsplit(self._url).password
            if password:
                text = text.replace(password, "**********")
        return text[:300]


@functools.cache
def _script(name: str) -> str:
    return (importlib.resources.files(__package__) / name).read_text("utf-8")


def _from_url(url: str, timeout: float) -> Redis:
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry  # the asyncio one (redis >= 4.2): 8.x warns at the other
    from redis.backoff import NoBackoff

    try:
        # No retries inside redis-py: a failed call falls back to the local gate
        # at once, and the store is tried again after retry_after.
        return Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            "rate_limit_store", f"is not a usable Redis URL ({type(exc).__name__})"
        ) from None


def _location(url: str) -> str:
    """``url`` without its user and password: what reprs and logs may show."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValidationError("rate_limit_store", "is not a valid URL") from None
    if parts.scheme not in SCHEMES:
        raise ValidationError(
            "rate_limit_store",
            f"must be a redis://, rediss:// or unix:// URL; got {parts.scheme}://",
        )
    if parts.scheme == "unix":
        return f"unix://{parts.path}"
    if not parts.hostname:
        raise ValidationError("rate_limit_store", "the URL has no host")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}:{port or 6379}{parts.path or '/0'}"


def _client_location(client: object) -> str:
    pool = getattr(client, "connection_pool", None)
    kwargs = getattr(pool, "connection_kwargs", None)
    if not isinstance(kwargs, dict) or not hasattr(client, "evalsha"):
        raise ValidationError(
            "rate_limit_store",
            f"must be a Redis URL or a redis.asyncio.Redis; got {type(client).__name__}",
        )
    if "path" in kwargs:
        return f"unix://{kwargs['path']}"
    host, port = kwargs.get("host", "localhost"), kwargs.get("port", 6379)
    return f"redis://{host}:{port}/{kwargs.get('db', 0)}"
