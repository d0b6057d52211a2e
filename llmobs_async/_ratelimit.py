"""The per-site rate gate: one shared cooldown on 429, and pacing from rate-limit headers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping


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

    @property
    def paused_for(self) -> float:
        """Seconds until the gate reopens (0 when open)."""
        return max(0.0, self._paused_until - time.monotonic())

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
        remaining_raw = headers.get("X-RateLimit-Remaining")
        reset_raw = headers.get("X-RateLimit-Reset")
        if status == 429:
            wait = _float(reset_raw)
            if wait is None:
                wait = _float(headers.get("Retry-After"))
            if wait is not None and wait >= 0:
                self.pause(wait)
                self._set_nominal_interval(headers, wait)
            return
        if remaining_raw is None or reset_raw is None:
            return
        remaining, reset = _float(remaining_raw), _float(reset_raw)
        if remaining is None or reset is None or reset < 0:
            return
        if remaining <= 0:
            self.pause(reset)
            self._set_nominal_interval(headers, reset)
        else:
            self._interval = reset / remaining
            self._interval_until = time.monotonic() + reset

    def _set_nominal_interval(self, headers: Mapping[str, str], reset: float) -> None:
        # After a pause, leave at the limit's nominal rate rather than all at once.
        limit = _float(headers.get("X-RateLimit-Limit"))
        period = _float(headers.get("X-RateLimit-Period"))
        if limit and period and limit > 0:
            self._interval = period / limit
            self._interval_until = time.monotonic() + reset + period


def _float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None
