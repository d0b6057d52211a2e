"""The per-site rate gate: one shared cooldown on 429, and pacing from rate-limit headers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from .errors import RateLimitInfo, retry_after_seconds


class RateGate:
    """Holds requests to one site so the job stays under the API's rate limit.

    Two mechanisms, both driven by the ``X-RateLimit-*`` headers of every
    response:

    * **Pause**: a 429 (or ``X-RateLimit-Remaining: 0``) closes the gate for
      everybody until the window resets, so concurrent requests share one
      cooldown instead of each retrying into the limit.
    * **Pacing**: with ``Remaining`` requests left for ``Reset`` seconds,
      requests leave at most one per ``Reset / Remaining`` seconds, which
      spreads the budget over the window instead of spending it at once.
    """

    __slots__ = ("_interval", "_interval_until", "_next_slot", "_paused_until")

    def __init__(self) -> None:
        self._paused_until = 0.0
        self._next_slot = 0.0
        self._interval = 0.0
        self._interval_until = 0.0

    async def wait(self) -> None:
        """Wait for this request's turn to leave."""
        while True:
            now = time.monotonic()
            interval = self._interval if now < self._interval_until else 0.0
            slot = max(now, self._next_slot, self._paused_until)
            self._next_slot = slot + interval
            if slot <= now:
                return
            await asyncio.sleep(slot - now)
            if self._paused_until <= time.monotonic():
                return
            # A 429 closed the gate while we slept: queue again behind the pause.

    def pause(self, seconds: float) -> None:
        """Close the gate for ``seconds`` (extends, never shortens, a pause)."""
        until = time.monotonic() + seconds
        if until > self._paused_until:
            self._paused_until = until

    def observe(self, status: int, headers: Mapping[str, str]) -> None:
        """Learn from a response's rate-limit headers."""
        info = RateLimitInfo.from_headers(headers)
        if status == 429:
            wait = info.reset if info is not None else None
            if wait is None or wait < 0:
                wait = retry_after_seconds(headers.get("Retry-After"))
            if wait is not None:
                self.pause(wait)
                self._set_nominal_interval(info, wait)
            return
        if info is None or info.remaining is None or info.reset is None or info.reset < 0:
            return
        if info.remaining <= 0:
            self.pause(info.reset)
            self._set_nominal_interval(info, info.reset)
        else:
            self._interval = info.reset / info.remaining
            self._interval_until = time.monotonic() + info.reset

    def _set_nominal_interval(self, info: RateLimitInfo | None, reset: float) -> None:
        # After a pause, leave at the limit's nominal rate rather than all at once.
        if info is not None and info.limit and info.period:
            self._interval = info.period / info.limit
            self._interval_until = time.monotonic() + reset + info.period
