"""Raw-HTTP helpers for the fake server's own tests: bodies, a session, state snapshots."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import TYPE_CHECKING, Any

import aiohttp
import attrs

from llmobs_async.testing import FakeLLMObsServer, RecordedRequest

if TYPE_CHECKING:
    from .conftest import Seeded

PREFIX = "/api/v2/llm-obs/v1"
KEYS = {"DD-API-KEY": "fake-api-key", "DD-APPLICATION-KEY": "fake-app-key"}
JSON = {"Content-Type": "application/json"}
VALID = {
    "experiments": {"status": "completed"},
    "projects": {"name": "renamed"},
    "records": {"records": [{"id": "rec-1", "expected_output": "yes"}]},
}
TIMESTAMPS = {"created_at", "updated_at"}
RECORD_KEYS = {"id", "dataset_id", "input", "expected_output", "metadata", *TIMESTAMPS}
RECORD_KEYS |= {"tags", "canonical_id", "author", "version"}
"""Every key of a record the fake answers (``id`` beside ``attributes``, the rest inside)."""
RATE_HEADERS = [f"X-RateLimit-{h}" for h in ("Limit", "Period", "Remaining", "Reset", "Name")]
Reply = tuple[int, Any, bytes]


def jsonapi(kind: str, attributes: dict[str, Any]) -> dict[str, Any]:
    return {"data": {"type": kind, "attributes": attributes}}


def name_doc(name: Any) -> dict[str, Any]:
    return jsonapi("projects", {"name": name})


def recs(*records: Any, **extra: Any) -> dict[str, Any]:
    return jsonapi("records", {"records": list(records), **extra})


def pick(mapping: Any, *keys: str) -> tuple[Any, ...]:
    return tuple(mapping[k] for k in keys)


async def send(
    http: aiohttp.ClientSession, url: str, body: Any, headers: dict[str, str] | None = None
) -> Reply:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {**KEYS, **JSON} if headers is None else headers
    async with http.patch(url, data=data, headers=headers) as response:
        return response.status, response.headers, await response.read()


@attrs.frozen
class Env:
    """The ``fake`` and ``seeded`` fixtures plus a raw aiohttp session."""

    fake: FakeLLMObsServer
    seeded: Seeded
    http: aiohttp.ClientSession

    def url(self, kind: str) -> str:
        s, base = self.seeded, self.fake.base_url + PREFIX
        paths = {
            "experiments": f"/experiments/{s.experiment_id}",
            "projects": f"/projects/{s.project_id}",
        }
        return base + paths.get(kind, f"/{s.project_id}/datasets/{s.dataset_id}/records")

    async def patch(self, kind: str, body: Any, headers: dict[str, str] | None = None) -> Reply:
        return await send(self.http, self.url(kind), body, headers)

    async def rename(self) -> Reply:
        return await self.patch("projects", name_doc("renamed"))

    def state(self) -> Any:
        f = self.fake
        return copy.deepcopy((f.projects, f.experiments, f.records(self.seeded.dataset_id)))

    def statuses(self) -> list[int]:
        return [r.status for r in self.fake.requests]


def hold_after(fake: FakeLLMObsServer, answered: int, held_at: int) -> asyncio.Event:
    """Answer the first ``answered`` writes and hold every later one (for a minute).

    The event is set once ``held_at`` writes are held: a bulk job is then stuck
    with all its batches in flight and its reader waiting for a slot. Reads
    (GET: a job's reads of its dataset's version) are answered, uncounted. A
    bulk job sends its first batch alone, so ``held_at > 1`` needs ``answered >= 1``.
    """
    held = asyncio.Event()
    count = 0

    def match(request: RecordedRequest) -> bool:
        nonlocal count
        if request.method == "GET":
            return False
        count += 1
        if count - answered >= held_at:
            held.set()
        return count > answered

    fake.inject(delay=60, times=None, match=match)
    return held
