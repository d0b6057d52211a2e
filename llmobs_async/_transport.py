"""The session pool: one aiohttp session per API origin, shared by every client view."""

from __future__ import annotations

import asyncio

import aiohttp

from ._ratelimit import Limits
from .errors import LLMObsError


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
        "_sessions",
        "max_concurrency",
        "semaphore",
    )

    def __init__(self, *, max_concurrency: int, session: aiohttp.ClientSession | None) -> None:
        self.max_concurrency = max_concurrency
        self.semaphore = asyncio.Semaphore(max_concurrency)
        self._external = session
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        self._limits: dict[tuple[str, str], Limits] = {}
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

    def limits(self, origin: str, key_fingerprint: str) -> Limits:
        """The rate-limit buckets of one org (API key) on one origin, shared by all views."""
        key = (origin, key_fingerprint)
        limits = self._limits.get(key)
        if limits is None:
            limits = self._limits[key] = Limits()
        return limits

    async def close(self) -> None:
        """Close the sessions this pool created (not a caller-supplied one)."""
        self._closed = True
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()
