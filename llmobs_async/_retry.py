"""The retry policy: which failures are retried and how long to wait, through ``backoff``."""

from __future__ import annotations

import asyncio
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
    max_rate_limit_wait: float = 60.0
    """A 429 asking to wait longer than this is raised, not waited out."""
    _retries: Callable[..., Awaitable[Any]] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        if self.max_retries < 0:
            from .errors import ValidationError

            raise ValidationError("max_retries", "must be >= 0")
        retries = backoff.on_exception(
            self._waits,
            LLMObsError,
            max_tries=self.max_retries,
            jitter=None,  # the generator jitters; a server-given wait is not jittered
            giveup=lambda exc: not self.should_retry(exc),
            on_backoff=_log_backoff,
            on_giveup=_log_giveup,
            raise_on_giveup=True,
            logger=None,  # our own handlers log, without the noise of every 4xx
            start=1,  # wait_gen keyword: the first retry's wait is paid below
        )(_wait_then_call)
        object.__setattr__(self, "_retries", retries)

    async def call(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run ``attempt`` until it succeeds, fails for good, or retries run out."""
        # The first attempt runs outside backoff, so a request that succeeds
        # (nearly all of them) pays nothing for the retry machinery.
        try:
            return await attempt()
        except LLMObsError as exc:
            failed = exc
        # Outside the handler: a later failure must not carry this one as its context.
        return await self.after(failed, attempt)

    async def after(self, exc: LLMObsError, attempt: Callable[[], Awaitable[T]]) -> T:
        """Continue :meth:`call` after its first attempt failed with ``exc``.

        For callers that make the first attempt themselves (the transport does,
        to keep a wrapper off every successful request); re-raises ``exc`` when
        it is not retried.
        """
        if not self.should_retry(exc) or self.max_retries == 0:
            _log_giveup({"tries": 0, "exception": exc})
            raise exc
        wait = self.wait(exc, 0)
        _log_backoff({"tries": 0, "wait": wait, "exception": exc})
        result: T = await self._retries([wait], attempt)
        return result

    def should_retry(self, exc: BaseException) -> bool:
        """Retryable, and not a 429 whose wait is longer than ``max_rate_limit_wait``."""
        if isinstance(exc, RateLimitError) and exc.retry_after is not None:
            return exc.retry_after <= self.max_rate_limit_wait
        return is_retryable(exc)

    def wait(self, exc: BaseException | None, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (0-based) after ``exc``."""
        if isinstance(exc, RateLimitError) and exc.retry_after is not None:
            # The rate gate already holds every request to the site until the reset.
            return 0.0
        return random.uniform(0.0, min(self.cap, self.initial * 2**retry))

    def _waits(self, start: int) -> Generator[float, BaseException | None, None]:
        exc = yield 0.0  # primed by backoff with None
        retry = start
        while True:
            exc = yield self.wait(exc, retry)
            retry += 1


async def _wait_then_call(pending: list[float], attempt: Callable[[], Awaitable[T]]) -> T:
    if pending:
        await asyncio.sleep(pending.pop())
    return await attempt()


def _log_backoff(details: Any) -> None:
    exc = details["exception"]
    logger.debug(
        "retrying after %s (attempt %d failed, waiting %.2fs)",
        _describe(exc),
        details["tries"] + 1,  # backoff counts retries only: the first try ran before
        details["wait"],
    )


def _log_giveup(details: Any) -> None:
    exc = details["exception"]
    if is_retryable(exc):
        logger.warning("giving up after %d attempts: %s", details["tries"] + 1, _describe(exc))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, APIStatusError):
        return f"{exc.status} on {exc.method} {exc.url}"
    return f"{type(exc).__name__}: {exc}"
