"""The session pool every client view shares: sessions per origin, the semaphore, rate gates.

A :class:`~._transport.Transport` is one view's origin, keys, timeout and retry
policy over this pool; closing the client closes the pool for every view.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import OrderedDict
from typing import TYPE_CHECKING, Final

import aiohttp

from ._ratelimit.gate import Limits
from .errors import LLMObsError

if TYPE_CHECKING:
    from ._ratelimit.limiter import RateLimiter
    from ._ratelimit.shared import SharedStore

RECENT_ORGS: Final = 64
"""Orgs (origin, API key) whose rate-limit state outlives their views: the ones used last."""


class SessionPool:
    """Sessions, the concurrency semaphore and the rate limits of one client family.

    Sessions are created lazily inside the running loop (never at import or
    construction time) and closed together by :meth:`close`. A session the
    caller supplied is used for every origin and never closed here.
    """

    __slots__ = (
        "_closed",
        "_external",
        "_limits",
        "_loop",
        "_recent",
        "_sessions",
        "_store",
        "limiters",
        "max_concurrency",
        "semaphore",
    )

    def __init__(
        self,
        *,
        max_concurrency: int,
        session: aiohttp.ClientSession | None,
        store: tuple[SharedStore | None, bool] = (None, False),
    ) -> None:
        self.max_concurrency = max_concurrency
        self._store = store  # the rate-limit store, and whether the pool closes it
        self.semaphore = asyncio.Semaphore(max_concurrency)
        self._external = session
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        # Per org: held by the views that use it (weakly here), plus the orgs
        # used last, so a service that rotates keys keeps nothing per dropped key.
        self._limits: weakref.WeakValueDictionary[tuple[str, str], Limits] = (
            weakref.WeakValueDictionary()
        )
        self._recent: OrderedDict[tuple[str, str], Limits] = OrderedDict()
        self.limiters: dict[str, RateLimiter] = {}
        """The task rate limiters (``LLMObsClient.rate_limiter``) by name: one per name."""
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._closed

    def session(self, origin: str) -> aiohttp.ClientSession:
        """Return the session for ``origin``, creating it on first use."""
        if self._external is not None:
            return self._external
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None:
                # aiohttp sessions belong to the loop that created them.
                raise LLMObsError(
                    "this client was first used in another event loop; "
                    "create one client per event loop (inside it)"
                )
            self._loop = loop
        session = self._sessions.get(origin)
        if session is None:
            if self._closed:
                raise LLMObsError("the client is closed; create a new LLMObsClient")
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
                # trust_env stays off (aiohttp's default): reading .netrc and the
                # proxy variables costs two thread-pool jobs per request, more
                # than the rest of the client. For a proxy, pass session=.
            )
            self._sessions[origin] = session
        return session

    @property
    def store(self) -> SharedStore | None:
        """The rate-limit store, or None."""
        return self._store[0]

    def user_agent(self, ours: str) -> str:
        """``ours``, after the caller's session's own ``User-Agent`` if it sets one."""
        theirs = None if self._external is None else self._external.headers.get("User-Agent")
        return f"{theirs} {ours}" if theirs else ours

    def limits(self, origin: str, key_fingerprint: str) -> Limits:
        """The rate-limit buckets of one org (API key) on one origin, shared by all views."""
        key = (origin, key_fingerprint)
        limits = self._limits.get(key)
        if limits is None:
            store = self._store[0]
            if store is None:
                limits = self._limits[key] = Limits()
            else:
                from ._ratelimit.shared import SharedLimits

                limits = self._limits[key] = Limits(SharedLimits(store, *key).bucket)
        # A view made per request or per task still finds what the gate learned
        # (limits, a pause in force) about the orgs used last.
        recent = self._recent
        recent[key] = limits
        recent.move_to_end(key)
        if len(recent) > RECENT_ORGS:
            recent.popitem(last=False)
        return limits

    async def close(self) -> None:
        """Close the sessions this pool created (not a caller-supplied one)."""
        self._closed = True
        for limiter in self.limiters.values():
            limiter.close()
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()
        store, owned = self._store
        if store is not None and owned:
            await store.aclose()
