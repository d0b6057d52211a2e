"""RateLimiter: a rate limit for the task's own calls (an LLM provider's), shared through Redis.

A **sliding window**: at most ``requests`` acquisitions, and at most ``tokens``
tokens, start in any interval of ``per`` seconds (plus a small margin for the
time a call takes to reach the provider). That keeps under a provider that
counts fixed windows, sliding windows or a token bucket alike; a token bucket
here would allow twice the limit inside one of the provider's fixed windows.

* **One pump per limiter per process.** Waiters queue in arrival order; the
  pump asks for as many permits as wait (up to :data:`BATCH`, with their token
  amounts), hands out the prefix that fits, and when refused sleeps as long as
  the answer says (until the oldest entry leaves the window, or a pause ends).
* **With the client's store** (``rate_limit_store``) every decision is one call
  of ``limiter.lua`` on Redis's clock: one budget for every process and machine.
  The script also counts the processes sharing the limiter.
* **The store failing is not an error.** The pump paces this process on its own,
  at its share of the limit (the limit divided by the processes the store last
  counted), and tries the store again after the store's ``retry_after``; the
  store logs its one warning.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
from collections import deque
from collections.abc import Mapping
from typing import Final

import attrs

from ..errors import LLMObsError, ValidationError
from .headers import wait_from
from .permit import Permit
from .redis_store import RedisRateLimitStore, StoreUnavailable
from .shared import SharedStore, resolve

BATCH: Final = 64
"""The most waiters one store call asks permits for."""
NAME_MAX: Final = 200


def margin(per: float) -> float:
    """Seconds added to the window: a call granted now reaches the provider a little later."""
    return min(0.25, max(0.01, per * 0.05))


@attrs.frozen
class RateLimiterStats:
    """What one :class:`RateLimiter` did in this process."""

    acquired: int
    """Permits granted."""
    tokens: int
    """Tokens granted with them."""
    waited: float
    """Seconds spent waiting for permits, summed over every acquisition."""
    backed_off: int
    """Pauses asked for (:meth:`RateLimiter.back_off`, or a 429 raised inside ``acquire``)."""


class _Waiter:
    __slots__ = ("future", "since", "tokens")

    def __init__(self, future: asyncio.Future[None], tokens: int, since: float) -> None:
        self.future = future
        self.tokens = tokens
        self.since = since


class RateLimiter:
    """A rate limit for calls the task makes itself, e.g. to an LLM provider.

    Made by :meth:`LLMObsClient.rate_limiter <llmobs_async.LLMObsClient.rate_limiter>`
    (sharing the client's store), or on its own where there is no client, as in a
    task module the command line imports (``RateLimiter(name, requests=..., per=...)``,
    sharing ``LLMOBS_RATE_LIMIT_STORE``)::

        limiter = client.rate_limiter("openai:gpt-4o", requests=500, per=60, tokens=30_000)
        async with limiter.acquire(tokens=estimate):
            response = await openai_client.chat.completions.create(...)

    At most ``requests`` acquisitions (and ``tokens`` tokens) start in any
    ``per`` seconds, first in, first out. With the client's
    ``rate_limit_store`` every process using the same Redis and name shares the
    one budget; without it the whole limit is this process's. A provider 429
    raised inside ``acquire`` (anything with ``status_code`` or ``status`` 429,
    such as openai's or anthropic's ``RateLimitError``) pauses every process
    sharing the limiter for the wait its headers ask, then is re-raised.
    """

    def __init__(
        self,
        name: str,
        *,
        requests: int,
        per: float,
        tokens: int | None = None,
        store: str | RedisRateLimitStore | None = None,
    ) -> None:
        """A limiter of its own, for code that has no client (a task module of the CLI).

        ``store`` is a Redis URL (closed by :meth:`aclose`), a
        :class:`RedisRateLimitStore`, or None: ``LLMOBS_RATE_LIMIT_STORE`` if set,
        else this process alone. Processes whose limiters have the same name and
        store share one budget, whether made here or by ``client.rate_limiter``.
        """
        check_limits(name, requests, per, tokens)
        resolved, owned = resolve(store)
        self._setup(name, requests, float(per), tokens, resolved, owned)

    @classmethod
    def _of_client(
        cls, name: str, requests: int, per: float, tokens: int | None, store: SharedStore | None
    ) -> RateLimiter:
        """A client's limiter: its store as it is (resolved and closed by the client)."""
        limiter = cls.__new__(cls)
        limiter._setup(name, requests, per, tokens, store, False)
        return limiter

    def _setup(
        self,
        name: str,
        requests: int,
        per: float,
        tokens: int | None,
        store: SharedStore | None,
        owned: bool,
    ) -> None:
        self.name = name
        """The limiter's name: processes using the same name and store share it."""
        self.requests = requests
        """Acquisitions allowed in any ``per`` seconds."""
        self.per = per
        """The window, in seconds."""
        self.tokens = tokens
        """Tokens allowed in any ``per`` seconds, or None: no token limit."""
        self._store = store
        self._owns_store = owned
        self._span = per + margin(per)
        self._keys = (
            []
            if store is None
            else [store.limiter_key(name, kind) for kind in ("window", "state", "who", "waiting")]
        )
        self._token = "p" + secrets.token_hex(8)
        self._queue: deque[_Waiter] = deque()
        self._mine: deque[tuple[float, int]] = deque()  # this process's grants: when, tokens
        self._paused_until = 0.0
        self._sharers = 1
        self._others = (0, 0, 0.0)  # others' requests, tokens in the window at the last answer
        self._pump: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._kick: asyncio.Event | None = None
        self._closed = False
        self._acquired = self._granted_tokens = self._backed_off = 0
        self._waited = 0.0

    def __repr__(self) -> str:
        where = "" if self._store is None else f", store={self._store.location!r}"
        return (
            f"RateLimiter({self.name!r}, requests={self.requests}, per={self.per:g}, "
            f"tokens={self.tokens}{where})"
        )

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop this limiter was last used on (``with acquire()`` waits there)."""
        return self._loop

    @property
    def stats(self) -> RateLimiterStats:
        """Permits, tokens, seconds waited and pauses of this limiter in this process."""
        return RateLimiterStats(
            acquired=self._acquired,
            tokens=self._granted_tokens,
            waited=self._waited,
            backed_off=self._backed_off,
        )

    def acquire(self, tokens: int = 0) -> Permit:
        """Wait for a permit (and ``tokens`` tokens): ``async with limiter.acquire(tokens=n):``.

        In a plain task of ``experiments.run`` (run in the run's threads),
        ``with limiter.acquire(tokens=n):`` waits the same way.

        The permit is spent on entry; leaving never gives it back (the call was
        made). A provider 429 raised in the block backs off (see :meth:`back_off`)
        before it propagates. ``tokens`` is ignored by a limiter without a token limit.
        """
        if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0:
            raise ValidationError("tokens", f"must be an int >= 0; got {tokens!r}")
        if self.tokens is None:
            tokens = 0
        elif tokens > self.tokens:
            raise ValidationError(
                "tokens",
                f"{tokens} can never be granted: the limit is {self.tokens} per {self.per:g} s",
            )
        return Permit(self, tokens)

    async def back_off(
        self, retry_after: float | None = None, *, headers: Mapping[str, str] | None = None
    ) -> None:
        """Pause every acquisition of every process sharing this limiter.

        The wait: the ``retry-after-ms`` header, else ``retry-after`` (seconds or
        an HTTP date), else ``retry_after`` seconds, else 1 s. A later call never
        shortens a pause in force.
        """
        if retry_after is not None and (
            isinstance(retry_after, bool)
            or not isinstance(retry_after, int | float)
            or not 0 <= retry_after < math.inf
        ):
            raise ValidationError(
                "retry_after", f"must be a finite number of seconds >= 0; got {retry_after!r}"
            )
        wait = wait_from(retry_after, headers)
        loop = asyncio.get_running_loop()
        self._backed_off += 1
        self._paused_until = max(self._paused_until, loop.time() + wait)
        if self._store is not None and self._store.usable():
            # If the store fails: paused here; the store's one warning says the rest.
            with contextlib.suppress(StoreUnavailable):
                await self._store.run_limiter(self._keys, self._args(round(wait * 1000, 3), []))
        if self._kick is not None:
            self._kick.set()

    # --- inside -------------------------------------------------------------------------

    async def _acquire(self, tokens: int) -> None:
        if self._closed:
            raise LLMObsError(self._closed_reason())
        self._loop = loop = asyncio.get_running_loop()
        waiter = _Waiter(loop.create_future(), tokens, loop.time())
        self._queue.append(waiter)
        if self._pump is None:
            self._kick = asyncio.Event()
            self._pump = loop.create_task(self._run())
        await waiter.future

    def _args(self, pause_ms: float, amounts: list[int]) -> list[str | int]:
        return [
            self._token,
            str(round(self._span * 1000, 3)),
            self.requests,
            self.tokens or 0,
            str(pause_ms),
            *amounts,
        ]

    def _live(self) -> list[_Waiter]:
        """Up to BATCH waiters still waiting, in order; cancelled ones in front are dropped."""
        queue = self._queue
        while queue and queue[0].future.done():
            queue.popleft()
        out: list[_Waiter] = []
        for waiter in queue:
            if not waiter.future.done():
                out.append(waiter)
                if len(out) == BATCH:
                    break
        return out

    def _grant(self, waiter: _Waiter, now: float) -> None:
        self._mine.append((now, waiter.tokens))
        self._acquired += 1
        self._granted_tokens += waiter.tokens
        self._waited += now - waiter.since
        if not waiter.future.done():
            waiter.future.set_result(None)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        kick = self._kick
        assert kick is not None
        try:
            while True:
                waiting = self._live()
                if not waiting:
                    return
                now = loop.time()
                while self._mine and self._mine[0][0] <= now - self._span:
                    self._mine.popleft()
                if now < self._paused_until:
                    wait: float | None = self._paused_until - now
                elif self._store is not None and self._store.usable():
                    wait = await self._shared_step(waiting)
                else:
                    wait = self._local_step(waiting, now)
                if wait is None:
                    continue
                kick.clear()
                try:
                    async with asyncio.timeout(wait):
                        await kick.wait()
                except TimeoutError:
                    pass
        except Exception as exc:  # a bug here must not leave the waiters hanging
            self._fail_waiters(exc)
            raise
        finally:
            self._pump = None

    async def _shared_step(self, waiting: list[_Waiter]) -> float | None:
        """Ask the store for permits; the wait it asks for, or None to go on at once."""
        assert self._store is not None
        try:
            reply = await self._store.run_limiter(
                self._keys, self._args(-1, [w.tokens for w in waiting])
            )
        except StoreUnavailable:
            return None  # the next round paces locally, at this process's share
        granted, wait_ms, sharers, count, tokens = reply
        now = asyncio.get_running_loop().time()
        for waiter in waiting[:granted]:
            # A waiter cancelled during the call still spent its permit in the store.
            self._grant(waiter, now)
        self._sharers = max(1, sharers)
        own = len(self._mine), sum(amount for _, amount in self._mine)
        self._others = (max(0, count - own[0]), max(0, tokens - own[1]), now + self._span)
        return None if wait_ms < 0 else wait_ms / 1000

    def _local_step(self, waiting: list[_Waiter], now: float) -> float | None:
        """Grant what fits in this process's part of the limit; the wait until more fits."""
        shared = self._store is not None
        requests = self.requests // self._sharers if shared else self.requests
        requests = max(1, requests)
        share_tokens = None if self.tokens is None else max(1, self.tokens // self._sharers)
        # What the others had in the window at the store's last answer still counts
        # until that window has passed: a share is not a licence to exceed the limit.
        other_n, other_t, other_until = self._others if shared else (0, 0, 0.0)
        if now >= other_until:
            other_n = other_t = 0
        own_n = len(self._mine)
        own_t = sum(amount for _, amount in self._mine)
        for waiter in waiting:
            fits = own_n + 1 <= requests and own_n + other_n + 1 <= self.requests
            if fits and self.tokens is not None and share_tokens is not None:
                # An amount above the share alone goes when nothing of ours is in the window.
                in_share = own_t + waiter.tokens <= share_tokens or own_t == 0
                fits = in_share and own_t + other_t + waiter.tokens <= self.tokens
            if not fits:
                break
            self._grant(waiter, now)
            own_n, own_t = own_n + 1, own_t + waiter.tokens
        else:
            return None
        frees = [self._mine[0][0] + self._span] if self._mine else []
        if other_n or other_t:
            frees.append(other_until)
        if shared and self._store is not None:
            frees.append(now + self._store.retry_after)
        return max(0.001, min(frees, default=now + self._span) - now)

    def close(self) -> None:
        """Stop the pump; waiters still queued fail (the client is closed)."""
        self._closed = True
        if self._pump is not None:
            self._pump.cancel()
        self._fail_waiters(LLMObsError(self._closed_reason()))

    def _closed_reason(self) -> str:
        return f"the rate limiter {self.name!r} is closed (its client was, or aclose())"

    async def aclose(self) -> None:
        """Close a limiter made with ``RateLimiter(...)``: its pump, and a store it made."""
        self.close()
        if self._owns_store and self._store is not None:
            await self._store.aclose()

    def _fail_waiters(self, exc: Exception) -> None:
        for waiter in self._queue:
            if not waiter.future.done():
                waiter.future.set_exception(exc)
        self._queue.clear()


def limiter_for(
    registry: dict[str, RateLimiter],
    store: SharedStore | None,
    name: str,
    requests: int,
    per: float,
    tokens: int | None,
) -> RateLimiter:
    """The limiter called ``name`` in ``registry``, made on first use; validated."""
    check_limits(name, requests, per, tokens)
    limiter = registry.get(name)
    if limiter is None:
        limiter = registry[name] = RateLimiter._of_client(name, requests, float(per), tokens, store)
        return limiter
    made = f"requests={limiter.requests}, per={limiter.per:g}, tokens={limiter.tokens}"
    for field, value, given in (
        ("requests", limiter.requests, requests),
        ("per", limiter.per, float(per)),
        ("tokens", limiter.tokens, tokens),
    ):
        if value != given:
            raise ValidationError(field, f"the limiter {name!r} was already made with {made}")
    return limiter


def check_limits(name: object, requests: object, per: object, tokens: object) -> None:
    """Refuse limits that cannot work, naming the field, before anything waits on them."""
    if not isinstance(name, str) or not name or len(name) > NAME_MAX or not name.isprintable():
        raise ValidationError(
            "name", f"must be a non-empty printable string of at most {NAME_MAX} characters"
        )
    if isinstance(requests, bool) or not isinstance(requests, int) or requests < 1:
        raise ValidationError("requests", f"must be an int >= 1; got {requests!r}")
    if isinstance(per, bool) or not isinstance(per, int | float) or not 0 < per < math.inf:
        raise ValidationError("per", f"must be a finite number of seconds > 0; got {per!r}")
    if tokens is not None and (
        isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 1
    ):
        raise ValidationError("tokens", f"must be None or an int >= 1; got {tokens!r}")
