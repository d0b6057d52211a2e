"""The retry policy: which failures are retried and how long to wait, through ``backoff``."""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeVar

import attrs
import backoff

from .errors import APIConnectionError, APIStatusError, LLMObsError, RateLimitError

T = TypeVar("T")
logger = logging.getLogger("llmobs_async")

RETRYABLE_STATUSES = frozenset({408, 429})


def is_retryable(exc: BaseException) -> bool:
    """408, 429, 5xx, connection errors and timeouts are worth another try."""
    if isinstance(exc, APIStatusError):
        return exc.status in RETRYABLE_STATUSES or exc.status >= 500
    return isinstance(exc, APIConnectionError)


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """Exponential backoff with full jitter, capped; 429 waits as the server says.

    A 429 that carries ``X-RateLimit-Reset`` or ``Retry-After`` also pauses
    the whole site in the rate gate, so the retry itself only has to go back
    through the gate: the wait below is then zero, and every request to the
    site shares one cooldown instead of each sleeping on its own.
    """

    max_retries: int = 5
    initial: float = 0.5
    cap: float = 8.0
    _run: Callable[..., Awaitable[Any]] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        if self.max_retries < 0:
            from .errors import ValidationError

            raise ValidationError("max_retries", "must be >= 0")
        run = backoff.on_exception(
            self._waits,
            LLMObsError,
            max_tries=self.max_retries + 1,
            jitter=None,  # the generator jitters; a server-given wait is not jittered
            giveup=lambda exc: not is_retryable(exc),
            on_backoff=_log_backoff,
            on_giveup=_log_giveup,
            raise_on_giveup=True,
            logger=None,  # our own handlers log, without the noise of every 4xx
        )(_call)
        object.__setattr__(self, "_run", run)

    async def call(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run ``attempt`` until it succeeds, fails for good, or retries run out."""
        result: T = await self._run(attempt)
        return result

    def _waits(self) -> Generator[float, BaseException | None, None]:
        exc = yield 0.0  # primed by backoff with None
        attempt = 0
        while True:
            if isinstance(exc, RateLimitError) and exc.retry_after is not None:
                # The rate gate already holds every request until the reset.
                wait = 0.0
            else:
                wait = random.uniform(0.0, min(self.cap, self.initial * 2**attempt))
            attempt += 1
            exc = yield wait


async def _call(attempt: Callable[[], Awaitable[T]]) -> T:
    return await attempt()


def _log_backoff(details: Any) -> None:
    exc = details["exception"]
    logger.debug(
        "retrying after %s (attempt %d, waiting %.2fs)",
        _describe(exc),
        details["tries"],
        details["wait"],
    )


def _log_giveup(details: Any) -> None:
    exc = details["exception"]
    if is_retryable(exc):
        logger.warning("giving up after %d attempts: %s", details["tries"], _describe(exc))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, APIStatusError):
        return f"{exc.status} on {exc.method} {exc.url}"
    return f"{type(exc).__name__}: {exc}"
