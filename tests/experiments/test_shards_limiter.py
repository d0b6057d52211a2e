"""Runs whose task paces its LLM calls with a ``RateLimiter``, against a real ``FakeProvider``.

Two shards share the limiter's window in a real ``redis-server``, killed in the middle
of the run; a plain task paces with ``with limiter.acquire():`` in the run's threads.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.request
from typing import Any

import aiohttp
import pytest

from llmobs_async import LLMObsClient, RedisRateLimitStore
from llmobs_async.testing import FakeLLMObsServer, FakeProvider

from ..conftest import client_for
from ..redisserver import RedisServer
from .common import seed, wait
from .test_shards import made

N = 60
LIMIT = (10, 0.25)


async def test_shards_finish_at_their_share_when_redis_dies_mid_run(
    fake: FakeLLMObsServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis killed after 15 calls: one warning, every row stored once, no provider 429.

    Two shards (two clients on one store, as two processes' limiters would be two
    sharers) pace at half the limit each once the store is gone; at the whole limit each
    they would be answered 429.
    """
    data = seed(fake, N)
    redis = RedisServer()
    store = RedisRateLimitStore(redis.url)
    clients = [client_for(fake, rate_limit_store=store) for _ in range(2)]
    calls = 0

    def task_for(client: LLMObsClient, http: aiohttp.ClientSession, url: str) -> Any:
        limiter = client.rate_limiter("llm", requests=LIMIT[0], per=LIMIT[1])
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}

        async def task(input_data: Any, config: Any) -> int:
            nonlocal calls
            async with limiter.acquire(), http.post(f"{url}/v1/chat/completions", json=body) as r:
                calls += 1
                if calls == 15:
                    redis.kill()
                return r.status

        return task

    try:
        eid = await made(clients[0], data)
        with caplog.at_level(logging.INFO, logger="llmobs_async"):
            async with (
                FakeProvider(limit=LIMIT, service_time=0.0) as provider,
                aiohttp.ClientSession() as http,
            ):
                runs = await wait(
                    asyncio.gather(
                        *(
                            c.experiments.run(
                                experiment_id=eid,
                                shard=(i, 2),
                                task=task_for(c, http, provider.url),
                                concurrency=5,
                                max_task_retries=0,
                            )
                            for i, c in enumerate(clients)
                        )
                    )
                )
        done = await wait(clients[0].experiments.summarize(eid))
    finally:
        redis.stop()
        for c in clients:
            await c.close()
        await store.aclose()
    assert redis.process.returncode is not None and calls == N
    assert [run.experiment.status for run in runs] == ["running", "running"]
    assert sum(run.rows_done for run in runs) == N and all(run.task_errors == 0 for run in runs)
    spans = list(fake.events(eid).spans.values())
    assert [span["meta"]["output"] for span in spans] == [200] * N
    assert fake.events(eid).duplicate_rows() == {}
    assert provider.rate_limited == 0 and provider.max_per_window <= LIMIT[0]
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "unavailable" in warnings[0].getMessage()
    assert done.ok and fake.experiments[eid]["status"] == "completed"


async def test_a_plain_task_paces_with_with_acquire_in_the_runs_threads(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    """A plain task (the run's threads) uses ``with limiter.acquire():`` and blocking HTTP.

    urllib's ``HTTPError`` for a 429 carries ``status`` and ``headers``: leaving the block
    with it backs the limiter off, as openai's ``RateLimitError`` does in async code.
    """
    data = seed(fake, 40)
    limiter = client.rate_limiter("sync-llm", requests=LIMIT[0], per=LIMIT[1])
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()

    async with FakeProvider(limit=LIMIT, service_time=0.0) as provider:

        def task(input_data: Any, config: Any) -> int:
            request = urllib.request.Request(
                f"{provider.url}/v1/chat/completions", data=body, method="POST"
            )
            request.add_header("Content-Type", "application/json")
            with limiter.acquire(), opener.open(request, timeout=10) as response:
                return int(response.status)

        run = await wait(
            client.experiments.run(
                data.project_id, data.dataset_id, "sync", task=task, concurrency=8
            )
        )
    assert run.ok and run.task_errors == 0 and run.rows_done == 40
    assert provider.calls == 40 and provider.rate_limited == 0
    assert provider.max_per_window <= LIMIT[0]
    assert limiter.stats.acquired == 40


async def test_with_acquire_refuses_where_it_cannot_wait(client: LLMObsClient) -> None:
    """On the loop itself, or in a thread that works for no loop: a clear error, no hang."""
    limiter = client.rate_limiter("nowhere", requests=1, per=1)
    with pytest.raises(RuntimeError, match="async with"), limiter.acquire():
        pass
    fresh = client.rate_limiter("fresh", requests=1, per=1)

    def in_a_plain_thread() -> None:
        with fresh.acquire():
            pass

    with pytest.raises(RuntimeError, match="thread working for an event loop"):
        await asyncio.to_thread(in_a_plain_thread)
