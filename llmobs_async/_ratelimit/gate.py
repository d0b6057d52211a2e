"""The rate gate: one FIFO queue per (origin, API key, named limit) that spends what the API allows.

Datadog limits are per organization and per named limit, fixed windows of
``X-RateLimit-Period`` seconds, reported on every answer as ``-Limit``,
``-Remaining``, ``-Reset`` (whole seconds to the window's end) and ``-Name``.
A :class:`Bucket` turns those answers into a plan that is revised on every
response:

* **Credit.** ``Remaining`` is spent as soon as it is known: requests leave at
  once while the answers say there is room, counting our own requests that
  the server may not have counted yet.
* **Probes.** When nothing is known (first use, or a window that should have
  reset) a single request goes alone, and its answer says what is left.
  Sixteen requests are never sent blind.
* **Wake-ups.** With no credit left the head of the queue waits for the
  earliest moment room can appear: the window's end (``Reset``, an upper
  bound however it is rounded) or the moment one of our own requests leaves a
  sliding window (its answer's arrival plus ``Period``), whichever is sooner.
* **Sharing.** When the answers show others spending the same budget (other
  processes with the same keys), a bucket takes only its measured share of
  what is left, so several processes do not all spend the whole window.

Requests leave in arrival order; a cancelled waiter leaves the queue and a
cancelled grant gives its turn back. Waits the server asks for are honoured up
to a cap; a longer one fails the waiting requests with :class:`WaitTooLong`,
which the client turns into ``RateLimitError``.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import math
from collections.abc import Callable, Mapping
from typing import Final

from .headers import parse_rate_limit, retry_after_seconds
from .share import Share
from .waitqueue import Waiter, WaitQueue

_UNKNOWN, _OPEN, _LIMITED = 0, 1, 2
_PROBE_PATIENCE: Final = 1.0
"""Seconds the first request of a new bucket may hold the others before they go anyway:
a slow first answer must not stall a web app's concurrent calls."""
_FALLBACK_WAIT: Final = 1.0
"""Seconds to wait for room when the answers say none is left but not when it comes back."""


class WaitTooLong(Exception):
    """The gate would have to hold a request longer than ``max_rate_limit_wait``."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"the rate limit asks to wait {wait:.1f}s")
        self.wait = wait


def key_fingerprint(api_key: str) -> str:
    """A short, non-reversible name for an API key: limits are per org, keyed by it."""
    return hashlib.sha256(api_key.encode("utf-8", "surrogatepass")).hexdigest()[:16]


class OrgPause:
    """When a 429 last paused one of an org's limits, and until when.

    Meanwhile the org's buckets that have not learned their limit's name send
    one request and wait for its answer before the others.
    """

    __slots__ = ("since", "until")

    def __init__(self) -> None:
        self.since = 0.0
        self.until = 0.0

    def note(self, now: float, until: float) -> None:
        """A bucket of the org is paused from ``now`` until ``until`` (loop time)."""
        if until > self.until:
            self.since, self.until = now, until


class Ticket:
    """One request's passage through a bucket, from its grant to its answer."""

    __slots__ = ("arrival", "bucket", "epoch", "probe", "seq")

    def __init__(self, bucket: Bucket, seq: int, probe: bool, arrival: int) -> None:
        self.bucket = bucket
        self.seq = seq
        self.probe = probe
        self.arrival = arrival
        self.epoch = bucket.epoch

    @property
    def current(self) -> bool:
        """False once a 429 or pause made the grant stale: the request must queue again."""
        return self.epoch == self.bucket.epoch


class Bucket:
    """The plan for one named limit of one org on one origin (see the module docstring)."""

    def __init__(self) -> None:
        self.epoch = 0
        """Bumped by every 429 or pause: grants made before it must queue again."""
        self._waiters = WaitQueue[Ticket]()
        self._arrivals = 0
        self._timer: asyncio.TimerHandle | None = None
        self._state = _UNKNOWN
        self._seq = 0
        self._base_seq = 0  # answers to requests sent before the base carry stale counts
        self._base_probe = False
        self._in_flight = 0
        self._uncounted = 0  # ours that the latest count may not include yet
        self._sent_since_base = 0
        self._answered_since_base = 0
        self._r_base = 0
        self._r_min = 0
        self._limit = 0
        self._period = 0.0
        self._share = Share()
        self._uncounted_at_base = 0
        self._reset_at = math.inf  # when the newest answer says room comes back
        self._reset_seq = 0
        self._frees: list[float] = []  # when each of our counted requests leaves a sliding window
        self._paused_until = 0.0
        self._probe_out = False
        self._probe_sent_at = 0.0
        self.org = OrgPause()
        """Shared by the org's buckets (see :class:`Limits`)."""
        self.named = False
        """True once an answer named the limit this bucket's route is under."""
        self._answered_at = 0.0

    # --- the queue ------------------------------------------------------------------

    async def acquire(self, max_wait: float, *, stale: Ticket | None = None) -> Ticket:
        """Wait for this request's turn and return its ticket (first in, first out).

        Raises :class:`WaitTooLong` if the turn is more than ``max_wait`` seconds away.
        A request whose grant went ``stale`` queues again in its first place.
        """
        arrival = self._arrival(stale)
        if (
            not self._waiters
            and self._state == _OPEN
            and not self._paused_until
            and not self.org.until
        ):
            return self._grant("credit", arrival)
        loop = asyncio.get_running_loop()
        if not self._waiters:
            kind = self._may_go(loop.time())
            if kind is not None:
                return self._grant(kind, arrival)
        waiter = self._waiters.add(loop, max_wait, arrival)
        self._dispatch()
        try:  # _turn's body, inline: one coroutine fewer for every queued request
            return await waiter.future
        except asyncio.CancelledError:
            self._left(waiter, self._forget)
            raise

    def _arrival(self, stale: Ticket | None) -> int:
        """A new request's place in arrival order; a stale grant keeps its first one."""
        if stale is not None:
            return stale.arrival
        self._arrivals += 1
        return self._arrivals

    async def _turn(
        self, waiter: Waiter[Ticket], forget: Callable[[Waiter[Ticket]], None]
    ) -> Ticket:
        """Wait for ``waiter``'s grant; a cancelled waiter gives its turn back or leaves."""
        try:
            return await waiter.future
        except asyncio.CancelledError:
            self._left(waiter, forget)
            raise

    def _left(self, waiter: Waiter[Ticket], forget: Callable[[Waiter[Ticket]], None]) -> None:
        """A cancelled waiter gives its turn back (granted meanwhile) or leaves the line."""
        future = waiter.future
        if future.done() and not future.cancelled() and future.exception() is None:
            self.unsend(future.result())
        else:
            forget(waiter)

    def unsend(self, ticket: Ticket) -> None:
        """Give back a grant whose request was never sent."""
        self._in_flight -= 1
        self._uncounted = max(0, self._uncounted - 1)
        if ticket.seq > self._base_seq:
            self._sent_since_base -= 1
        if ticket.probe:
            self._probe_out = False
        self._dispatch()

    def abandon(self, ticket: Ticket) -> None:
        """The request was sent but no answer came (dropped, timed out, cancelled)."""
        self._in_flight -= 1
        if ticket.probe:
            self._probe_out = False
        self._dispatch()

    def _forget(self, waiter: Waiter[Ticket]) -> None:
        self._waiters.forget(waiter)
        self._dispatch()

    def _learning(self, now: float) -> bool:
        """Whether this route must learn its limit before a second request goes.

        While another limit of the org is paused, a route whose limit is not known
        may be under that very limit: one request goes and says, never a burst.
        """
        org = self.org
        if now >= org.until:
            org.until = 0.0  # over: the fast path in acquire may skip this again
            return False
        return not self.named and self._answered_at < org.since

    def _may_go(self, now: float) -> str | None:
        if now < self._paused_until:
            return None
        if self.org.until and self._learning(now):
            return None if self._probe_out else "probe"
        if self._state == _OPEN:
            return "credit"
        if self._state == _UNKNOWN:
            if not self._probe_out:
                return "probe"
            return "credit" if now >= self._probe_sent_at + _PROBE_PATIENCE else None
        if self._credit() > 0:
            return "credit"
        if not self._probe_out and now >= self._wake():
            return "probe"
        return None

    def _grant(self, kind: str, arrival: int) -> Ticket:
        self._seq += 1
        self._in_flight += 1
        self._uncounted += 1
        self._sent_since_base += 1
        probe = kind == "probe"
        if probe:
            self._probe_out = True
            self._probe_sent_at = asyncio.get_running_loop().time()
        return Ticket(self, self._seq, probe, arrival)

    def _credit(self) -> int:
        return self._share.credit(
            self._r_min - self._uncounted,
            self._limit,
            self._sent_since_base,
            self._base_probe,
            base=self._r_base,
            in_flight=self._in_flight,
        )

    def _wake(self) -> float:
        wake = self._reset_at
        # Our own requests leaving a sliding window only say when room comes back
        # while nobody else spends it: with others about, wait for the reset.
        if (
            self._frees
            and self._frees[0] < wake
            and self._share.alone
            # A reset further away than a period contradicts the period: believe the reset.
            and wake <= self._frees[-1]
        ):
            wake = self._frees[0]
        return wake

    def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        waiters = self._waiters
        while (head := waiters.head()) is not None:
            kind = self._may_go(now)
            if kind is None:
                break
            waiters.take(head)
            head.future.set_result(self._grant(kind, head.arrival))
        self._set_timer(loop, self._next_turn(now) if waiters else None)

    def _next_turn(self, now: float) -> float | None:
        """When the head may go, or None if an answer on its way will dispatch again.

        Fails the waiters that will not wait that long.
        """
        if now < self._paused_until:
            at = self._paused_until
        elif self._probe_out and self.org.until and self._learning(now):
            return None  # its answer is on its way and will dispatch again
        elif self._state == _UNKNOWN and self._probe_out:
            at = self._probe_sent_at + _PROBE_PATIENCE
        elif self._probe_out or self._state != _LIMITED:
            return None
        else:
            at = self._wake()
            if at == math.inf:
                at = self._reset_at = now + (self._period or _FALLBACK_WAIT)
        wait = at - now
        # Fail those who will not wait that long; the plan stays, so the next
        # request fails at once too, until the server's time has come.
        for waiter in self._waiters.expire(wait):
            waiter.future.set_exception(WaitTooLong(wait))
        return at if self._waiters else None

    def _set_timer(self, loop: asyncio.AbstractEventLoop, at: float | None) -> None:
        # One timer for the queue, moved only when its time changes: callers
        # arriving during a probe or a pause must not each make (and cancel) one.
        timer = self._timer
        if timer is not None:
            if timer.when() == at:
                return
            timer.cancel()
        self._timer = None if at is None else loop.call_at(at, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._dispatch()

    # --- what the answers say -------------------------------------------------------------

    @property
    def paused_until(self) -> float:
        """When this limit's pause (a 429) ends, in loop time; 0 if it never paused."""
        return self._paused_until

    def pause(self, seconds: float) -> None:
        """Hold every request for ``seconds`` (a ``Retry-After`` without rate-limit headers)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        self.follow(now, now + seconds)

    def follow(self, now: float, until: float) -> None:
        """Hold every request until ``until`` (loop time): this limit is paused."""
        if until > self._paused_until:
            self._paused_until = until
            self.epoch += 1
            self.org.note(now, until)
        self._dispatch()

    def observe(self, ticket: Ticket, status: int, headers: Mapping[str, str], now: float) -> None:
        """Revise the plan from one answer (``now`` is when it arrived)."""
        self._in_flight -= 1
        self._answered_at = now
        if ticket.probe:
            self._probe_out = False
        if (
            self._state == _OPEN
            and status != 429
            and "X-RateLimit-Remaining" not in headers
            and not self._waiters
        ):
            return  # the common case for a limit that reports nothing: nothing to do
        info = parse_rate_limit(headers)
        if info is None or info.remaining is None:
            if status != 429:
                self._state = _OPEN  # this limit reports nothing: nothing to pace by
            else:
                wait = retry_after_seconds(headers.get("Retry-After"))
                if wait is not None:
                    self.pause(wait)
            self._dispatch()
            return
        if info.limit:
            self._limit = info.limit
        if info.period:
            self._period = info.period
        wait = info.reset
        if wait is None and status == 429:
            wait = retry_after_seconds(headers.get("Retry-After"))
        reset_at = now + wait if wait is not None else math.inf
        if self._state != _LIMITED or ticket.probe or status == 429:
            self._rebase(ticket, info.remaining, reset_at, status, now)
        elif ticket.seq < self._base_seq:
            # Counted before the latest base: its count is old news.
            self._uncounted = max(0, self._uncounted - 1)
        else:
            if info.remaining < self._r_min:
                self._r_min = info.remaining
                self._uncounted = self._in_flight
            else:
                self._uncounted = max(0, self._uncounted - 1)
            self._answered_since_base += 1
            if ticket.seq > self._reset_seq:
                # The newest count's reset: an older one may promise room that our
                # own later requests have taken again (a sliding window).
                self._reset_seq = ticket.seq
                self._reset_at = reset_at
            self._measure_share()
            self._prune(info.remaining, now)
        if status != 429 and self._period:
            bisect.insort(self._frees, now + self._period)
        self._dispatch()

    def _rebase(
        self, ticket: Ticket, remaining: int, reset_at: float, status: int, now: float
    ) -> None:
        previous_reset = self._reset_at
        self._state = _LIMITED
        self._base_seq = ticket.seq
        self._base_probe = ticket.probe
        self._r_base = self._r_min = remaining
        self._uncounted = self._uncounted_at_base = self._in_flight
        self._sent_since_base = 0
        self._answered_since_base = 0
        self._share.next_window(rejected=status == 429 and not ticket.probe, reset_at=reset_at)
        self._reset_at = reset_at
        self._reset_seq = ticket.seq
        if status == 429:
            self._r_min = 0
            del self._frees[: bisect.bisect_left(self._frees, reset_at)]
            if reset_at != math.inf and reset_at > self._paused_until:
                self._paused_until = reset_at
                self.org.note(now, reset_at)
            self.epoch += 1
        elif (
            previous_reset != math.inf
            and reset_at - previous_reset >= self._period / 2
            and remaining >= self._limit / 2
        ):
            # A fixed window turned over: every earlier request's room came back at once.
            self._frees.clear()
        else:
            self._prune(remaining, now)

    def _prune(self, remaining: int, now: float) -> None:
        """Forget wake-ups for room this answer's count already shows as free again."""
        del self._frees[: bisect.bisect_right(self._frees, now)]
        if self._limit:
            # At most limit - remaining of ours are still counted (this one among them):
            # the earliest of the others have left the window, and were reused.
            keep = max(0, self._limit - remaining - 1)
            del self._frees[: max(0, len(self._frees) - keep)]

    def _measure_share(self) -> None:
        others = (self._r_base - self._r_min) - self._sent_since_base - self._uncounted_at_base
        self._share.measure(
            ours=self._answered_since_base + (1 if self._base_probe else 0),
            others=others,
            consumed=(self._limit or self._r_base + 1) - self._r_min,
        )


class Limits:
    """The buckets of one (origin, API key): one per named limit, learned per route.

    ``new_bucket`` makes the bucket of a route (default: an in-process
    :class:`Bucket`; a rate-limit store makes buckets that plan with it).
    """

    __slots__ = ("__weakref__", "_named", "_new", "_org", "_routes")  # the pool holds it weakly

    def __init__(self, new_bucket: Callable[[str], Bucket] | None = None) -> None:
        self._routes: dict[str, Bucket] = {}
        self._named: dict[str, Bucket] = {}
        self._new = new_bucket
        self._org = OrgPause()

    def bucket(self, route: str) -> Bucket:
        """The bucket requests to ``route`` queue at."""
        bucket = self._routes.get(route)
        if bucket is None:
            bucket = self._routes[route] = Bucket() if self._new is None else self._new(route)
            bucket.org = self._org
        return bucket

    def learn(self, route: str, bucket: Bucket, name: str) -> None:
        """Record that ``route`` is under the limit called ``name``."""
        bucket.named = True
        named = self._named.setdefault(name, bucket)
        if named is not bucket:
            self._routes[route] = named
            if named.paused_until > bucket.paused_until:
                # Its requests already granted wait out the limit's pause too: the
                # grants go stale, and the request that learned it is answered.
                bucket.follow(asyncio.get_running_loop().time(), named.paused_until)
