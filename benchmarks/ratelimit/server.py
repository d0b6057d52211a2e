"""Loopback server that enforces one rate limit, for the rate-limit benchmark.

Run as its own process (``python benchmarks/ratelimit/server.py``). It binds
127.0.0.1 on a free port and prints ``PORT <n>`` as its first line, like
``server.py``. It serves the dataset-records update,
``PATCH /api/v2/llm-obs/v1/{project_id}/datasets/{dataset_id}/records``,
under ONE limit of L requests per P seconds, in one of two modes:

* ``fixed``: fixed windows of P seconds. The first window starts at the
  reset minus a random offset in [0, P), so its phase is nothing a client
  could know in advance.
* ``sliding``: at most L requests admitted in any P-second interval.

With a ``latency`` (the service time), every answer is held that long after
the request is admitted or refused, as a real API takes tens of milliseconds.

Every answer, 200 or 429, carries ``X-RateLimit-Limit``, ``-Period``,
``-Remaining``, ``-Reset`` and ``-Name``. ``Reset`` is in whole seconds, the
ceiling of the true time left, as the Datadog API sends it: until the window
ends (fixed), or until the oldest counted request leaves the interval
(sliding). A request over the limit is answered 429 with
``{"errors": ["Too many requests"]}`` and is not applied, nor counted.

Control endpoints for the runner:

* ``POST /_reset`` with ``{"limit": L, "period": P, "mode": "fixed"}``:
  forget everything and start a new limit now (one server serves every
  case). An optional ``"offset"`` in [0, P) sets the window phase (the
  runner draws it at random, to give every client of a case the same one);
  otherwise it is drawn here. An optional ``"latency"`` (seconds, default 0)
  is the service time of every answer. Answers the offset.
* ``GET /_stats``: answers per status, the ids of every applied record, and
  the most requests handled at once and the server's CPU seconds since the reset
  (one process: when it nears the makespan, the server, not the client, is the bound).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import math
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, see common.py

import orjson
from aiohttp import web
from common import serve
from cpu.server import list_datasets, record_resources

PREFIX = "/api/v2/llm-obs/v1"
JSON = "application/json"
LIMIT_NAME = "llm_obs_dataset_records"
MODES = ("fixed", "sliding")


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The limit's answer to one request, with what the headers must say."""

    admitted: bool
    remaining: int
    reset: int


class FixedWindow:
    """L requests per window of P seconds; windows start at ``origin + k * P``."""

    def __init__(self, limit: int, period: float, origin: float) -> None:
        self.limit, self.period, self.origin = limit, period, origin
        self._window = -1
        self._count = 0

    def admit(self, now: float) -> Verdict:
        """Count the request in the current window if it has room."""
        window = math.floor((now - self.origin) / self.period)
        if window != self._window:
            self._window, self._count = window, 0
        admitted = self._count < self.limit
        if admitted:
            self._count += 1
        ends = self.origin + (window + 1) * self.period
        return Verdict(admitted, self.limit - self._count, math.ceil(ends - now))


class SlidingWindow:
    """At most L requests admitted in any interval of P seconds."""

    def __init__(self, limit: int, period: float) -> None:
        self.limit, self.period = limit, period
        self._admitted: collections.deque[float] = collections.deque()

    def admit(self, now: float) -> Verdict:
        """Admit the request if fewer than L were admitted in the last P seconds."""
        while self._admitted and self._admitted[0] <= now - self.period:
            self._admitted.popleft()
        admitted = len(self._admitted) < self.limit
        if admitted:
            self._admitted.append(now)
        oldest_leaves = self._admitted[0] + self.period - now if self._admitted else 0.0
        return Verdict(admitted, self.limit - len(self._admitted), math.ceil(oldest_leaves))


@dataclasses.dataclass
class State:
    """The limit in force and what was served under it since the last reset."""

    limit: int = 20
    period: float = 2.0
    mode: str = "fixed"
    offset: float = 0.0
    latency: float = 0.0
    window: FixedWindow | SlidingWindow = dataclasses.field(
        default_factory=lambda: FixedWindow(20, 2.0, time.monotonic())
    )
    answers: collections.Counter[int] = dataclasses.field(default_factory=collections.Counter)
    applied: list[str] = dataclasses.field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    cpu_at_reset: float = 0.0

    def reset(
        self, limit: int, period: float, mode: str, offset: float | None, latency: float = 0.0
    ) -> None:
        """Start a new limit now; its first window began ``offset`` seconds ago (random)."""
        self.limit, self.period, self.mode, self.latency = limit, period, mode, latency
        self.offset = random.uniform(0.0, period) if offset is None else offset
        if mode == "fixed":
            self.window = FixedWindow(limit, period, time.monotonic() - self.offset)
        else:
            self.window = SlidingWindow(limit, period)
        self.answers.clear()
        self.applied.clear()
        self.max_in_flight = 0
        self.cpu_at_reset = time.process_time()


STATE = State()


def _headers(verdict: Verdict) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(STATE.limit),
        "X-RateLimit-Period": f"{STATE.period:g}",
        "X-RateLimit-Remaining": str(verdict.remaining),
        "X-RateLimit-Reset": str(verdict.reset),
        "X-RateLimit-Name": LIMIT_NAME,
    }


def _reply(status: int, document: Any, headers: dict[str, str] | None = None) -> web.Response:
    STATE.answers[status] += 1
    return web.Response(
        body=orjson.dumps(document), status=status, content_type=JSON, headers=headers
    )


def _records(body: bytes) -> list[dict[str, Any]]:
    """The records of a records PATCH body or of a ``batch_update``'s ``update_records``."""
    try:
        data = orjson.loads(body)["data"]
        field = "update_records" if data.get("type") == "datasets" else "records"
        records = data["attributes"][field]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"bad request body: {exc!r}") from None
    if data.get("type") not in ("records", "datasets") or not isinstance(records, list):
        raise ValueError("data.type must be 'records' or 'datasets' with a list of records")
    if not records:
        raise ValueError("no records")
    if not all(isinstance(r, dict) and isinstance(r.get("id"), str) for r in records):
        raise ValueError("every record needs a string id")
    return records


async def update_records(request: web.Request) -> web.Response:
    """Count the request in flight while it is handled (see :func:`_update_records`)."""
    STATE.in_flight += 1
    STATE.max_in_flight = max(STATE.max_in_flight, STATE.in_flight)
    try:
        return await _update_records(request)
    finally:
        STATE.in_flight -= 1


async def _update_records(request: web.Request) -> web.Response:
    """Admit the request under the limit, then apply and echo its records."""
    if not request.headers.get("DD-API-KEY") or not request.headers.get("DD-APPLICATION-KEY"):
        return _reply(403, {"errors": ["missing DD-API-KEY or DD-APPLICATION-KEY"]})
    verdict = STATE.window.admit(time.monotonic())
    headers = _headers(verdict)
    if STATE.latency:
        # Admitted (and counted) on arrival, answered after the service time.
        await asyncio.sleep(STATE.latency)
    if not verdict.admitted:
        return _reply(429, {"errors": ["Too many requests"]}, headers)
    try:
        records = _records(await request.read())
    except ValueError as exc:
        return _reply(400, {"errors": [str(exc)]}, headers)
    STATE.applied.extend(record["id"] for record in records)
    resources = record_resources(records, request.match_info["dataset_id"])
    return _reply(200, {"data": resources}, headers)


async def reset(request: web.Request) -> web.Response:
    """``POST /_reset``: a new limit, new counters, no applied records."""
    try:
        spec = orjson.loads(await request.read())
        limit, period, mode = int(spec["limit"]), float(spec["period"]), str(spec["mode"])
        offset = None if spec.get("offset") is None else float(spec["offset"])
        latency = float(spec.get("latency") or 0.0)
        if limit < 1 or period <= 0 or mode not in MODES or not 0 <= latency < 10:
            raise ValueError(f"limit >= 1, period > 0, mode in {MODES}, 0 <= latency < 10")
        if offset is not None and not 0 <= offset < period:
            raise ValueError("offset must be in [0, period)")
    except (ValueError, KeyError, TypeError) as exc:
        return web.Response(status=400, text=f"bad reset: {exc!r}")
    STATE.reset(limit, period, mode, offset, latency)
    return web.Response(body=orjson.dumps({"offset": STATE.offset}), content_type=JSON)


async def stats(_: web.Request) -> web.Response:
    """``GET /_stats``: answers per status code and the applied record ids."""
    document = {
        "limit": STATE.limit,
        "period": STATE.period,
        "mode": STATE.mode,
        "answers": {str(status): count for status, count in STATE.answers.items()},
        "applied_ids": STATE.applied,
        "max_in_flight": STATE.max_in_flight,
        "server_cpu_s": time.process_time() - STATE.cpu_at_reset,
    }
    return web.Response(body=orjson.dumps(document), content_type=JSON)


def make_app() -> web.Application:
    """Build the aiohttp application: the records route and the control routes."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_patch(PREFIX + "/{project_id}/datasets/{dataset_id}/records", update_records)
    # What update_many sends, under the same limit; its read of the dataset's version is not.
    app.router.add_post(PREFIX + "/{project_id}/datasets/{dataset_id}/batch_update", update_records)
    app.router.add_get(PREFIX + "/{project_id}/datasets", list_datasets)
    app.router.add_post("/_reset", reset)
    app.router.add_get("/_stats", stats)
    return app


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(make_app()))
