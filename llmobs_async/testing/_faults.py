"""Fault injection and rate limiting for the fake API."""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs

HTML_PAGE = (
    b"<html><head><title>502 Bad Gateway</title></head>"
    b"<body><center><h1>502 Bad Gateway</h1></center></body></html>"
)


@attrs.define(kw_only=True)
class RecordedRequest:
    """A request the fake server received (credentials redacted), recorded on arrival."""

    method: str
    path: str
    """The path as sent, query string included (percent-encoding kept)."""
    headers: Mapping[str, str]
    body: bytes
    query: Mapping[str, list[str]] = attrs.field(factory=dict)
    """The query string, decoded: each parameter with its values (``page[cursor]``: ``[...]``)."""
    status: int = 0
    """Status answered; 0 while unanswered, or when the connection was dropped or
    the client went away before the answer."""
    api_key_fingerprint: str | None = None
    """A short hash of the request's ``DD-API-KEY`` (``None`` without one): the keys
    themselves are redacted, this tells tenants apart. Compare it with
    :func:`~llmobs_async.testing.key_fingerprint` of a tenant's key."""
    at: float = attrs.field(factory=time.monotonic)
    """When the request arrived (its body read), in ``time.monotonic()`` seconds: the
    clock asyncio's default loop uses, so tests can compare it with ``loop.time()``."""

    @property
    def url_path(self) -> str:
        """The path without its query string."""
        return self.path.partition("?")[0]

    def json(self) -> Any:
        """The request body, decoded; ``None`` for a request without a body (a GET)."""
        return json.loads(self.body) if self.body else None


@attrs.define(kw_only=True)
class Fault:
    """One injected misbehaviour, applied to the next ``times`` matching requests.

    ``status`` with ``body`` and ``headers`` replaces the answer; ``delay``
    holds the answer back; ``drop`` closes the connection without answering.
    ``match`` narrows the requests it applies to; ``times=None`` is forever;
    ``after`` lets that many matching requests through before it applies.
    ``applied`` carries the request out first and then replaces (or drops)
    its answer: a write that landed but whose answer was lost on the way.
    """

    status: int | None = None
    body: bytes | None = None
    headers: Mapping[str, str] = attrs.field(factory=dict)
    delay: float = 0.0
    drop: bool = False
    times: int | None = 1
    match: Callable[[RecordedRequest], bool] | None = None
    after: int = 0
    applied: bool = False

    def take(self, request: RecordedRequest) -> bool:
        """Consume one use of the fault if it applies to ``request``."""
        if self.times is not None and self.times <= 0:
            return False
        if self.match is not None and not self.match(request):
            return False
        if self.after > 0:
            self.after -= 1
            return False
        if self.times is not None:
            self.times -= 1
        return True


def error_body(status: int, title: str, detail: str | None = None) -> bytes:
    """A JSON:API error body."""
    item = {"status": str(status), "title": title}
    if detail:
        item["detail"] = detail
    return json.dumps({"errors": [item]}).encode()


@attrs.define(kw_only=True)
class Chaos:
    """Random faults at given rates, from a seeded generator (reproducible).

    Rates are fractions of requests: ``error_rate`` answers 503,
    ``rate_limit_rate`` answers 429 with a ``reset`` in the rate-limit
    headers (advertising ``limit`` requests per ``period`` seconds, which a
    pacing client will keep to afterwards), ``drop_rate`` drops the connection.
    ``match`` scopes the chaos to some requests (e.g. only the events push,
    ``match=lambda r: r.url_path.endswith("/events")``); the others pass
    untouched and draw nothing, so the faults a seed gives stay the same
    however many unmatched requests come in between.
    """

    error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    drop_rate: float = 0.0
    reset: float = 0.05
    limit: int = 1000
    period: float = 1.0
    seed: int = 0
    match: Callable[[RecordedRequest], bool] | None = None
    _random: random.Random = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def draw(self, request: RecordedRequest | None = None) -> Fault | None:
        """Pick this request's fault, if any (none when ``match`` leaves ``request`` out)."""
        if self.match is not None and (request is None or not self.match(request)):
            return None
        roll = self._random.random()
        if roll < self.drop_rate:
            return Fault(drop=True)
        roll -= self.drop_rate
        if roll < self.rate_limit_rate:
            return rate_limit_fault(reset=self.reset, limit=self.limit, period=self.period)
        roll -= self.rate_limit_rate
        if roll < self.error_rate:
            return Fault(status=503, body=error_body(503, "Service Unavailable"))
        return None


def rate_limit_fault(*, reset: float, limit: int = 60, period: float = 60.0) -> Fault:
    """A 429 as the API sends it: the ``errors`` strings and the rate-limit headers."""
    return Fault(
        status=429,
        body=b'{"errors":["Too many requests"]}',
        headers=rate_limit_headers(limit=limit, period=period, remaining=0, reset=reset),
    )


def rate_limit_headers(
    *, limit: int, period: float, remaining: int, reset: float
) -> dict[str, str]:
    """``X-RateLimit-*`` headers; ``reset`` is relative seconds, like Datadog's."""
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Period": _num(period),
        "X-RateLimit-Remaining": str(max(remaining, 0)),
        "X-RateLimit-Reset": _num(reset),
        "X-RateLimit-Name": "llm_obs_fake",
    }


def _num(value: float) -> str:
    # Whole seconds print as integers (as the API sends them); sub-second
    # windows, used by fast tests, keep three decimals.
    if value >= 1 or value == 0:
        return str(math.ceil(value))
    return f"{value:.3f}"


@attrs.define
class FixedWindowLimit:
    """The API's rate limit: ``limit`` requests per ``period`` seconds, fixed windows."""

    limit: int
    period: float
    _window_start: float = attrs.field(init=False, factory=time.monotonic)
    _count: int = attrs.field(init=False, default=0)
    rejected: int = attrs.field(init=False, default=0)
    """How many requests were answered 429 by this limit."""

    def admit(self) -> tuple[bool, dict[str, str]]:
        """Count one request; return whether it is allowed and the headers to send."""
        now = time.monotonic()
        if now - self._window_start >= self.period:
            elapsed_windows = (now - self._window_start) // self.period
            self._window_start += elapsed_windows * self.period
            self._count = 0
        self._count += 1
        allowed = self._count <= self.limit
        if not allowed:
            self.rejected += 1
        reset = max(self._window_start + self.period - now, 0.001)
        headers = rate_limit_headers(
            limit=self.limit, period=self.period, remaining=self.limit - self._count, reset=reset
        )
        return allowed, headers
