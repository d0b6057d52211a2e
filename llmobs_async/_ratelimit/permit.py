"""``async with limiter.acquire(tokens=n):``: the permit, and how a provider's 429 is recognized.

The SDKs' own exceptions are read by their attributes (``status_code`` or
``status``, ``response.headers`` or ``headers``), never imported: openai's and
anthropic's ``RateLimitError``, httpx's and aiohttp's errors all fit.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Protocol


class Limiter(Protocol):
    """What a permit needs of its limiter (:class:`~.limiter.RateLimiter`)."""

    async def _acquire(self, tokens: int) -> None: ...

    async def back_off(
        self, retry_after: float | None = None, *, headers: Mapping[str, str] | None = None
    ) -> None: ...


class Permit:
    """``async with limiter.acquire(tokens=n):``: waits on entry; a 429 inside backs off."""

    __slots__ = ("_limiter", "_tokens")

    def __init__(self, limiter: Limiter, tokens: int) -> None:
        self._limiter = limiter
        self._tokens = tokens

    async def __aenter__(self) -> None:
        await self._limiter._acquire(self._tokens)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None and _status(exc) == 429:
            await self._limiter.back_off(headers=_headers(exc))


def _status(exc: BaseException) -> object:
    status = getattr(exc, "status_code", None)
    return status if status is not None else getattr(exc, "status", None)


def _headers(exc: BaseException) -> Mapping[str, str] | None:
    """The answer's headers of an openai/anthropic/httpx/aiohttp-like error, if it has them."""
    for headers in (
        getattr(getattr(exc, "response", None), "headers", None),
        getattr(exc, "headers", None),
    ):
        if headers is not None and callable(getattr(headers, "items", None)):
            return headers  # type: ignore[no-any-return]
    return None
