"""One client process of the rate-limit benchmark: ``python ratelimit/clients.py '<json spec>'``.

The spec names the client, the server URL, and the slice of the job this
process sends: ``requests`` requests of ``per_request`` records, the records
numbered from ``first_record``. The process imports its library and opens the
client, prints ``READY``, and waits for a line on stdin, so that several
processes sharing one limit start together. Then it sends its requests and
prints one JSON line: its process CPU time (``time.process_time``) and the
``time.monotonic`` instants of its first request and last answer (the clock
is system-wide, so the runner can compare them across processes), plus what
the client itself reported. On an exception it prints ``{"error": ...}`` and
exits 1.

The clients:

* ``llmobs_async``: ``LLMObsClient`` with default options and one
  ``records.update_many(..., batch_size=per_request)`` over all the records.
* ``llmobs_async_redis``: the same with ``rate_limit_store=`` the spec's
  ``redis`` URL; it also reports the store's round trips (``redis_calls``).
* ``official``: ``datadog-api-client`` (async) with ``enable_retry=True`` and
  ``max_retries=20``, one ``update_llm_obs_dataset_records`` per batch, at
  most 16 at once.
* ``naive``: aiohttp, at most 16 at once; on a 429 it sleeps an exponential
  backoff with full jitter (0.5 s base, 8 s cap) and tries again, ignoring
  every header.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, see common.py

from common import worker_main
from cpu.clients import Official
from cpu.scenarios import DATASET_ID, PROJECT_ID, make_record

from ratelimit.procs import CONCURRENCY

RECORDS_PATH = f"/api/v2/llm-obs/v1/{PROJECT_ID}/datasets/{DATASET_ID}/records"
Job = Callable[[], Awaitable[dict[str, Any]]]


class LLMObsJob:
    """This project's client, as a user would run a bulk job."""

    name = "llmobs_async"

    def __init__(
        self, url: str, batches: list[list[dict[str, Any]]], redis: str | None = None
    ) -> None:
        self.url, self.batches, self.redis = url, batches, redis

    async def __aenter__(self) -> Job:
        import llmobs_async

        store = None if self.redis is None else llmobs_async.RedisRateLimitStore(self.redis)
        self._store = store
        self._client = llmobs_async.LLMObsClient(
            base_url=self.url,
            api_key="k",
            app_key="a",
            rate_limit_store=store,
            max_concurrency=CONCURRENCY,  # the default, as every client here gets
        )
        records = [record for batch in self.batches for record in batch]
        size = len(self.batches[0])

        async def run() -> dict[str, Any]:
            result = await self._client.records.update_many(
                PROJECT_ID, DATASET_ID, records, batch_size=size
            )
            out = {"applied": result.applied, "failed": result.failed_count}
            if store is not None:
                out["redis_calls"] = store.round_trips
            return out

        return run

    async def __aexit__(self, *exc_info: object) -> None:
        await self._client.close()
        if self._store is not None:
            await self._store.aclose()


class LLMObsRedisJob(LLMObsJob):
    """This project's client with the shared rate-limit store (``rate_limit_store=``)."""

    name = "llmobs_async_redis"


class RetryingOfficial(Official):
    """The official client with its own retries on, and enough of them never to give up."""

    def configure(self, configuration: Any) -> None:
        """``enable_retry=True``, ``max_retries=20``."""
        configuration.enable_retry = True
        configuration.max_retries = 20


class OfficialJob:
    """The official client: one call per batch, at most ``CONCURRENCY`` at once."""

    name = "official"

    def __init__(self, url: str, batches: list[list[dict[str, Any]]]) -> None:
        self.url, self.batches = url, batches

    async def __aenter__(self) -> Job:
        self._adapter = await RetryingOfficial(self.url, CONCURRENCY).__aenter__()
        calls = [self._adapter.records_call(batch) for batch in self.batches]
        return lambda: bounded(calls)

    async def __aexit__(self, *exc_info: object) -> None:
        await self._adapter.__aexit__(*exc_info)


class NaiveJob:
    """Plain aiohttp with exponential backoff and jitter on 429; headers ignored."""

    name = "naive"
    base, cap = 0.5, 8.0

    def __init__(self, url: str, batches: list[list[dict[str, Any]]]) -> None:
        self.url, self.batches = url, batches

    async def __aenter__(self) -> Job:
        import aiohttp

        headers = {"DD-API-KEY": "k", "DD-APPLICATION-KEY": "a", "Content-Type": "application/json"}
        self._session = aiohttp.ClientSession(headers=headers)
        calls = [self._call(batch) for batch in self.batches]
        return lambda: bounded(calls)

    async def __aexit__(self, *exc_info: object) -> None:
        await self._session.close()

    def _call(self, batch: list[dict[str, Any]]) -> Callable[[], Awaitable[int]]:
        url = self.url + RECORDS_PATH

        async def call() -> int:
            body = json.dumps({"data": {"type": "records", "attributes": {"records": batch}}})
            for attempt in range(100):
                async with self._session.patch(url, data=body) as response:
                    data = await response.read()
                    if response.status == 200:
                        return len(json.loads(data)["data"])
                    if response.status != 429:
                        raise RuntimeError(f"answered {response.status}: {data[:200]!r}")
                await asyncio.sleep(random.uniform(0.0, min(self.cap, self.base * 2**attempt)))
            raise RuntimeError("still answered 429 after 100 attempts")

        return call


async def bounded(calls: list[Callable[[], Awaitable[int]]]) -> dict[str, Any]:
    """Run every call, at most ``CONCURRENCY`` at once; sum the records they confirm.

    A call that raises counts its batch as failed instead of ending the job,
    so the runner sees exactly which records were lost.
    """
    gate = asyncio.Semaphore(CONCURRENCY)
    failures: list[str] = []

    async def one(call: Callable[[], Awaitable[int]]) -> int:
        async with gate:
            try:
                return await call()
            except Exception as exc:
                failures.append(f"{type(exc).__name__}: {str(exc)[:200]}")
                return 0

    applied = sum(await asyncio.gather(*(one(call) for call in calls)))
    return {"applied": applied, "failed_batches": len(failures), "first_failure": failures[:1]}


JOBS: dict[str, Any] = {job.name: job for job in (LLMObsJob, LLMObsRedisJob, OfficialJob, NaiveJob)}


def batches_of(spec: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """This process's records, cut into the batches of ``per_request`` records."""
    size, first = spec["per_request"], spec["first_record"]
    return [
        [make_record(first + index * size + offset) for offset in range(size)]
        for index in range(spec["requests"])
    ]


async def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Open the client, wait for the go, run the job; CPU and the first/last instants."""
    extra = {"redis": spec["redis"]} if spec.get("redis") else {}
    async with JOBS[spec["client"]](spec["url"], batches_of(spec), **extra) as job:
        print("READY", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        cpu, start = time.process_time(), time.monotonic()
        reported = await job()
        end, cpu = time.monotonic(), time.process_time() - cpu
    return {"cpu_s": cpu, "start": start, "end": end, "reported": reported}


def main(argv: list[str]) -> int:
    """Run the spec given as the first argument; print one JSON line."""
    return worker_main(measure, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
