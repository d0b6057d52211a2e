"""The rate gate's waiting line: arrival order, at a constant cost per waiter however many wait.

A web app that launches thousands of calls at once puts thousands of waiters
in a bucket's line while its first answer is awaited. Every operation here
costs O(1) amortised per waiter (O(log n) only for the few requeued after a
429), so the gate's CPU per request does not grow with the line:

* waiters leave from the head, in arrival order; a requeued one (a grant that
  went stale) goes back to its first place through a small heap;
* a waiter that leaves early (cancelled) is only marked, and skipped when it
  reaches the head; the marks are swept once they outnumber the waiters;
* the waits the waiters accept are grouped by value (one per client view, so a
  handful), so "who will not wait this long" looks at groups, not waiters.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")

_SWEEP_SLACK = 32
"""Marked waiters tolerated beyond the live ones before a sweep (keeps sweeps amortised)."""


class Waiter(Generic[T]):
    """One queued request: its future, the longest wait it accepts, its arrival number."""

    __slots__ = ("arrival", "cap", "future", "queued")

    def __init__(self, future: asyncio.Future[T], cap: float, arrival: int) -> None:
        self.future = future
        self.cap = cap
        self.arrival = arrival
        self.queued = True


class _Group(Generic[T]):
    """The waiters that accept the same longest wait, and how many of them still wait."""

    __slots__ = ("live", "members")

    def __init__(self) -> None:
        self.members: list[Waiter[T]] = []
        self.live = 0


class WaitQueue(Generic[T]):
    """Waiters in arrival order (see the module docstring); ``len()`` counts those still queued."""

    __slots__ = ("_back", "_caps", "_live", "_order")

    def __init__(self) -> None:
        self._order: deque[Waiter[T]] = deque()  # new arrivals, in arrival order
        self._back: list[tuple[int, int, Waiter[T]]] = []  # requeued ones: a heap by arrival
        self._caps: dict[float, _Group[T]] = {}  # waiters by the wait they accept
        self._live = 0

    def __len__(self) -> int:
        return self._live

    def __bool__(self) -> bool:
        return self._live > 0

    def add(self, loop: asyncio.AbstractEventLoop, max_wait: float, arrival: int) -> Waiter[T]:
        """Queue a new waiter at its place by ``arrival`` (the end, unless it was requeued)."""
        waiter = Waiter(loop.create_future(), max_wait, arrival)
        if not self._order or self._order[-1].arrival < arrival:
            self._order.append(waiter)
        else:
            heapq.heappush(self._back, (arrival, next(_tiebreak), waiter))
        group = self._caps.get(max_wait)
        if group is None:
            group = self._caps[max_wait] = _Group[T]()
        group.members.append(waiter)
        group.live += 1
        self._live += 1
        return waiter

    def head(self) -> Waiter[T] | None:
        """The first waiter still waiting, or None; cancelled ones before it are dropped."""
        order, back = self._order, self._back
        while order or back:
            from_back = bool(back) and (not order or back[0][0] < order[0].arrival)
            waiter = back[0][2] if from_back else order[0]
            if waiter.queued and not waiter.future.done():
                return waiter
            if from_back:
                heapq.heappop(back)
            else:
                order.popleft()
            if waiter.queued:
                self._leave(waiter)  # cancelled, its forget() not run yet
        return None

    def pop(self) -> Waiter[T] | None:
        """Take the first waiter still waiting out of the line."""
        waiter = self.head()
        if waiter is not None:
            self.take(waiter)
        return waiter

    def take(self, head: Waiter[T]) -> None:
        """Take ``head``, just returned by :meth:`head`, out of the line."""
        if self._back and self._back[0][2] is head:
            heapq.heappop(self._back)
        else:
            self._order.popleft()
        self._leave(head)

    def forget(self, waiter: Waiter[T]) -> None:
        """``waiter`` left (cancelled): it no longer counts, and is skipped at the head."""
        if waiter.queued:
            self._leave(waiter)
            if len(self._order) + len(self._back) > 2 * self._live + _SWEEP_SLACK:
                self._sweep()

    def expire(self, wait: float) -> list[Waiter[T]]:
        """Take out every waiter that will not wait ``wait`` seconds; return those still pending."""
        out: list[Waiter[T]] = []
        for cap in [cap for cap in self._caps if cap < wait]:
            for waiter in self._caps.pop(cap).members:
                if waiter.queued:
                    waiter.queued = False
                    self._live -= 1
                    if not waiter.future.done():
                        out.append(waiter)
        if out and len(self._order) + len(self._back) > 2 * self._live + _SWEEP_SLACK:
            self._sweep()
        return out

    def drain(self) -> list[Waiter[T]]:
        """Take out every waiter still pending, in arrival order."""
        back = [entry[2] for entry in sorted(self._back)]
        pending = [w for w in heapq.merge(self._order, back, key=lambda w: w.arrival) if w.queued]
        self._order, self._back, self._caps, self._live = deque(), [], {}, 0
        for waiter in pending:
            waiter.queued = False
        return [w for w in pending if not w.future.done()]

    def _leave(self, waiter: Waiter[T]) -> None:
        waiter.queued = False
        self._live -= 1
        group = self._caps[waiter.cap]
        group.live -= 1
        if not group.live:
            del self._caps[waiter.cap]
        elif len(group.members) > 2 * group.live + _SWEEP_SLACK:
            group.members = [w for w in group.members if w.queued]

    def _sweep(self) -> None:
        """Drop the marked waiters from the line (each was added once: amortised O(1))."""
        self._order = deque(w for w in self._order if w.queued)
        self._back = [entry for entry in self._back if entry[2].queued]
        heapq.heapify(self._back)


_tiebreak = itertools.count()
