"""The gate's shared state: buckets that plan an org's rate budget in a store, with other processes.

Without a store (the default) each process's :class:`~.gate.Bucket` plans
alone. With one, a :class:`SharedBucket` asks the store for turns, and the
store (one atomic script per call, see ``redis_store.lua``) keeps one plan for
everyone using the same keys: when the window ends, what is left, who probes.

* **One call per decision.** Only the bucket's *pump* talks to the store: it
  asks for as many turns as requests are waiting, and the same call carries
  what the answers since the last call said. Answers that others wait for (a
  probe's, a 429, a sounding's) are reported at once; the rest ride along with
  the next request for turns.
* **Waits come with the refusal.** A refused pump learns in the same answer
  how long to wait, and sleeps until then or until one of its own answers
  has news.
* **The store failing is not an error.** The bucket falls back to its own
  in-process plan (it *is* a Bucket), and queued requests move there in order.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Mapping
from typing import Final, NamedTuple, Protocol

import orjson

from ..errors import RateLimitInfo, ValidationError
from .gate import Bucket, Ticket, WaitTooLong
from .headers import parse_rate_limit, retry_after_seconds, server_wait
from .redis_store import RedisRateLimitStore, StoreUnavailable
from .waitqueue import Waiter, WaitQueue

ENV_VAR: Final = "LLMOBS_RATE_LIMIT_STORE"
TTL_MS: Final = 600_000
"""Keys outlive their last use by this (plus two periods), then expire."""

_ANSWER, _UNSENT, _LOST = 1, 2, 3


class SharedStore(Protocol):
    """What a store offers the gate and the task limiters (Redis is the one implementation)."""

    location: str
    """Where the store is, without credentials: what reprs and logs may show."""
    retry_after: float
    """Seconds the store is left alone after a failure."""

    def key(self, origin: str, fingerprint: str, kind: str, name: str) -> str:
        """The key of one named limit (``kind`` "limit") or not-yet-named route ("route")."""

    def usable(self) -> bool:
        """False while the store is taken as down."""

    async def run(self, keys: list[str], args: list[str | int | bytes]) -> list[int | str]:
        """One decision: seven values (see ``redis_store.lua``); StoreUnavailable when down."""

    def limiter_key(self, name: str, kind: str) -> str:
        """The key of one part of a task limiter's state."""

    async def run_limiter(self, keys: list[str], args: list[str | int]) -> list[int]:
        """One decision of a task limiter: five ints (see ``limiter.lua``)."""

    async def aclose(self) -> None:
        """Release the store's connections."""


class Reply(NamedTuple):
    """The store's decision for one pump call."""

    granted: int
    first: int
    probe: bool
    sounding: bool
    wait: float | None
    """Seconds until asking again makes sense, or None: every turn asked for was granted."""
    open: bool
    alias: str


class SharedLimits:
    """One org (origin, API key fingerprint) in a store: makes the buckets of its limits."""

    __slots__ = ("fingerprint", "origin", "store")

    def __init__(self, store: SharedStore, origin: str, fingerprint: str) -> None:
        self.store = store
        self.origin = origin
        self.fingerprint = fingerprint

    def bucket(self, route: str) -> Bucket:
        """A bucket for ``route``; it moves to its limit's key once the limit's name is known."""
        return SharedBucket(self, route)

    def key(self, kind: str, name: str) -> str:
        """This org's key for a limit or a route."""
        return self.store.key(self.origin, self.fingerprint, kind, name)

    async def step(
        self, key: str, token: str, want: int, events: bytes, alias_from: str | None
    ) -> Reply:
        """Report ``events`` and ask for ``want`` turns, in one call."""
        keys = [key, key + ":who"] + ([alias_from] if alias_from else [])
        raw = await self.store.run(keys, [token, want, events, TTL_MS, key])
        granted, first, probe, sounding, wait, is_open, alias = raw
        return Reply(
            int(granted),
            int(first),
            probe == 1,
            sounding == 1,
            None if wait == -1 else int(wait) / 1000,
            is_open == 1,
            str(alias),
        )


class SharedTicket(Ticket):
    """A turn granted by the store."""

    __slots__ = ("granted_at", "home", "sounding")

    def __init__(
        self, bucket: SharedBucket, seq: int, arrival: int, *, probe: bool, sounding: bool
    ) -> None:
        super().__init__(bucket, seq, probe, arrival)
        self.sounding = sounding
        self.home = bucket.generation
        self.granted_at = asyncio.get_running_loop().time()


class _FellBack(Exception):
    """The store failed: the waiter queues at the in-process gate instead."""


_Event = tuple[int, SharedTicket, int, RateLimitInfo | None, float | None, float]


class SharedBucket(Bucket):
    """A bucket whose plan lives in a store; its own in-process plan is the fallback."""

    def __init__(self, org: SharedLimits, route: str) -> None:
        super().__init__()
        self._org = org
        self._key = org.key("route", route)
        self._named = False
        self._alias_from: str | None = None
        self._token = "b" + secrets.token_hex(8)
        self.generation = 0
        """Bumped when the bucket moves to another key: its older turns are foreign there."""
        self._queue = WaitQueue[Ticket]()
        self._events: list[_Event] = []
        self._urgent = False
        self._pump: asyncio.Task[None] | None = None
        self._kick: asyncio.Event | None = None
        self._wake_at = 0.0
        self._open = False

    # --- the queue ----------------------------------------------------------------------

    async def acquire(self, max_wait: float, *, stale: Ticket | None = None) -> Ticket:
        """Wait for a turn from the store (first in, first out); see :meth:`Bucket.acquire`."""
        if not self._org.store.usable():
            return await super().acquire(max_wait, stale=stale)
        if self.org.until and self._learning(asyncio.get_running_loop().time()):
            # Another limit of the org is paused and this route's is not known: the
            # in-process plan sends one request to learn it and holds the rest for it.
            return await super().acquire(max_wait, stale=stale)
        arrival = self._arrival(stale)
        if self._open and not self._queue:
            return SharedTicket(self, 0, arrival, probe=False, sounding=False)
        loop = asyncio.get_running_loop()
        wait = self._wake_at - loop.time()
        if wait > max_wait:
            raise WaitTooLong(wait)
        waiter = self._queue.add(loop, max_wait, arrival)
        self._start()
        try:
            return await self._turn(waiter, self._forget_shared)
        except _FellBack:
            return await super().acquire(max_wait, stale=stale)

    def _forget_shared(self, waiter: Waiter[Ticket]) -> None:
        self._queue.forget(waiter)
        if not self._queue and self._kick is not None:
            self._kick.set()  # a pump sleeping for nobody may stop

    def unsend(self, ticket: Ticket) -> None:
        """Give back a turn whose request was never sent."""
        if not isinstance(ticket, SharedTicket):
            super().unsend(ticket)
        elif ticket.seq and self._org.store.usable():
            self._events.append((_UNSENT, ticket, 0, None, None, 0.0))
            if ticket.probe:
                self._note_urgent()

    def abandon(self, ticket: Ticket) -> None:
        """The request was sent but no answer came."""
        if not isinstance(ticket, SharedTicket):
            super().abandon(ticket)
        elif ticket.probe and self._org.store.usable():
            self._events.append((_LOST, ticket, 0, None, None, 0.0))
            self._note_urgent()

    def observe(self, ticket: Ticket, status: int, headers: Mapping[str, str], now: float) -> None:
        """Note what an answer says; news others wait for goes to the store at once."""
        if not isinstance(ticket, SharedTicket):
            super().observe(ticket, status, headers, now)
            # A request that learned the route's limit in-process: plan under its key.
            self._move_to(parse_rate_limit(headers))
            return
        self._answered_at = now
        if self._open and status != 429 and "X-RateLimit-Remaining" not in headers:
            return  # a limit that reports nothing: nothing to tell
        info = parse_rate_limit(headers)
        self._move_to(info)
        if status == 429:
            self.epoch += 1  # turns granted before it and not yet sent queue again
            wait = server_wait(headers, info)
            if wait is not None:
                # Known in-process too: routes that learn they are under this limit
                # (and its org's routes that have not) hold their requests meanwhile.
                self.follow(now, now + wait)
        if not self._org.store.usable():
            return
        reports = info is not None and info.remaining is not None
        retry = retry_after_seconds(headers.get("Retry-After")) if status == 429 else None
        self._events.append((_ANSWER, ticket, status, info if reports else None, retry, now))
        if ticket.probe or ticket.sounding or status == 429 or (reports and self._open):
            self._open = False
            self._note_urgent()

    def _move_to(self, info: RateLimitInfo | None) -> None:
        """Plan under the limit's key once an answer names it."""
        if info is not None and info.name and not self._named:
            self._named = True
            self._alias_from = self._key
            self._key = self._org.key("limit", info.name)
            self.generation += 1

    # --- the pump -----------------------------------------------------------------------

    def _note_urgent(self) -> None:
        self._urgent = True
        if self._pump is not None and self._kick is not None:
            self._kick.set()
        else:
            self._start()

    def _start(self) -> None:
        if self._pump is None:
            if self._kick is None:
                self._kick = asyncio.Event()
            self._pump = asyncio.get_running_loop().create_task(self._run())

    def _live(self) -> int:
        self._queue.head()  # drops the cancelled ones in front
        return len(self._queue)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        kick = self._kick
        assert kick is not None
        try:
            while True:
                want = self._live()
                if not want and not self._urgent:
                    return
                self._urgent = False
                kick.clear()
                events, self._events = self._events, []
                alias_from = self._alias_from
                if not self._org.store.usable():
                    self._fall_back()
                    return
                try:
                    reply = await self._org.step(
                        self._key, self._token, want, self._encode(events), alias_from
                    )
                except StoreUnavailable:
                    self._fall_back()
                    return
                if alias_from == self._alias_from:
                    self._alias_from = None
                if reply.alias:
                    # Others learned this route's limit: plan under its key from now on.
                    self._named = True
                    self._key = reply.alias
                    self.generation += 1
                    self._events[:0] = events
                    self._urgent = True
                    continue
                self._open = reply.open
                self._hand_out(reply)
                if reply.wait is None or not self._live():
                    continue
                self._expire(reply.wait)
                if not self._live() and not self._urgent:
                    return
                self._wake_at = loop.time() + reply.wait
                try:
                    async with asyncio.timeout(reply.wait):
                        await kick.wait()
                except TimeoutError:
                    pass
                self._wake_at = 0.0
        finally:
            self._pump = None
            self._wake_at = 0.0

    def _hand_out(self, reply: Reply) -> None:
        for index in range(reply.granted):
            first = index == 0
            waiter = self._queue.pop()
            probe, sounding = first and reply.probe, first and reply.sounding
            if waiter is None:
                # Its waiter left while we asked: give the turn back.
                ticket = SharedTicket(self, 0, 0, probe=probe, sounding=sounding)
                ticket.seq = reply.first + index
                self.unsend(ticket)
                continue
            waiter.future.set_result(
                SharedTicket(
                    self, reply.first + index, waiter.arrival, probe=probe, sounding=sounding
                )
            )

    def _expire(self, wait: float) -> None:
        """Fail the waiters that will not wait ``wait`` seconds."""
        for waiter in self._queue.expire(wait):
            waiter.future.set_exception(WaitTooLong(wait))

    def _fall_back(self) -> None:
        """The store is down: every waiter moves to the in-process gate, in order."""
        self._events.clear()
        self._urgent = False
        for waiter in self._queue.drain():
            waiter.future.set_exception(_FellBack())

    def _encode(self, events: list[_Event]) -> bytes:
        """The events as the script reads them: ages in ms, never this machine's clock."""
        now = asyncio.get_running_loop().time()
        out: list[list[float]] = []
        for kind, ticket, status, info, retry, arrived in events:
            seq = ticket.seq if ticket.home == self.generation and ticket.seq else -1
            if kind != _ANSWER:
                out.append([kind, seq, int(ticket.probe)])
                continue
            reset = -1.0 if info is None or info.reset is None else info.reset
            out.append(
                [
                    _ANSWER,
                    seq,
                    status,
                    -1 if info is None or info.remaining is None else info.remaining,
                    -1 if info is None or info.limit is None else info.limit,
                    -1 if info is None or not info.period else round(info.period * 1000, 3),
                    round(reset * 1000, 3) if reset >= 0 else -1,
                    1000 if reset == int(reset) else 1,
                    round((now - ticket.granted_at) * 1000, 3),
                    round((now - arrived) * 1000, 3),
                    -1 if retry is None else round(retry * 1000, 3),
                    int(ticket.probe),
                ]
            )
        return orjson.dumps(out)


def resolve(value: object) -> tuple[SharedStore | None, bool]:
    """The store named by ``rate_limit_store`` (or the environment), and whether we own it.

    ``None`` reads :data:`ENV_VAR`; a string is a Redis URL (the store is
    closed with the client); a store object is used as it is (and closed by
    its owner). The value never appears in an error: a URL may hold a password.
    """
    if value is None:
        from_env = os.environ.get(ENV_VAR) or None
        if from_env is None:
            return None, False
        try:
            return RedisRateLimitStore(from_env), True
        except ValidationError as exc:  # the user set the variable, not the argument
            raise ValidationError(ENV_VAR, exc.reason) from None
    if isinstance(value, str):
        return RedisRateLimitStore(value), True
    if isinstance(value, RedisRateLimitStore):
        return value, False
    raise ValidationError(
        "rate_limit_store",
        f"must be a Redis URL or a RedisRateLimitStore; got {type(value).__name__}",
    )
