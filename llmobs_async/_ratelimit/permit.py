"""``async with limiter.acquire(tokens=n):``: the permit, and how a provider's 429 is recognized.

The SDKs' own exceptions are read by their attributes (``status_code`` or
``status``, ``response.headers`` or ``headers``), never imported: openai's and
anthropic's ``RateLimitError``, httpx's and aiohttp's errors all fit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import TracebackType
from typing import Protocol

from .._threadloop import home


class Limiter(Protocol):
    """What a permit needs of its limiter (:class:`~.limiter.RateLimiter`)."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop the limiter was last used on, if any."""

    async def _acquire(self, tokens: int) -> None: ...

    async def back_off(
        self, retry_after: float | None = None, *, headers: Mapping[str, str] | None = None
    ) -> None: ...


class Permit:
    """``async with limiter.acquire(tokens=n):``: waits on entry; a 429 inside backs off.

    ``with limiter.acquire(tokens=n):`` does the same from a plain function running in
    a thread for an event loop (a plain task of the experiment runner, or code the
    loop handed to ``run_in_executor`` once the limiter has been used on it): the
    thread blocks while the loop waits for the permit.
    """

    __slots__ = ("_limiter", "_loop", "_tokens")

    def __init__(self, limiter: Limiter, tokens: int) -> None:
        self._limiter = limiter
        self._tokens = tokens
        self._loop: asyncio.AbstractEventLoop | None = None

    def __enter__(self) -> None:
        self._loop = loop = home() or self._limiter.loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None:
            raise RuntimeError("in async code, use `async with limiter.acquire():`")
        if loop is None or loop.is_closed():
            raise RuntimeError(
                "`with limiter.acquire():` runs in a thread working for an event loop (a "
                "plain task of experiments.run); elsewhere use `async with` on the loop"
            )
        asyncio.run_coroutine_threadsafe(self._limiter._acquire(self._tokens), loop).result()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None and _status(exc) == 429 and self._loop is not None:
            pause = self._limiter.back_off(headers=_headers(exc))
            asyncio.run_coroutine_threadsafe(pause, self._loop).result()

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
