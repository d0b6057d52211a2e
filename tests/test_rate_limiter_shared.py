"""The task rate limiter shared through a real redis-server: clients, processes, failures.

Clients with their own store objects stand in for processes (each limiter has
its own process token, as a process would); one test runs real processes.
What is asserted is what the FakeProvider counted (429s, the most calls in one
of its fixed windows), never wall-clock time beyond a pause's lower bound.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from llmobs_async import LLMObsClient, RateLimiter, RedisRateLimitStore
from llmobs_async.errors import LLMObsError, ValidationError
from llmobs_async.testing import FakeProvider

from .redisserver import RedisServer

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "s3cret-limiter-pass-9Zq"
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def make_client(store: object) -> LLMObsClient:
    return LLMObsClient(
        api_key="k",
        app_key="a",
        base_url="http://127.0.0.1:9",
        rate_limit_store=store,  # type: ignore[arg-type]
    )


async def calls(
    http: aiohttp.ClientSession,
    provider: FakeProvider,
    limiter: RateLimiter,
    count: int,
    after_each: Callable[[], None] = lambda: None,
) -> list[int]:
    async def one() -> int:
        async with (
            limiter.acquire(),
            http.post(f"{provider.url}/v1/chat/completions", json=BODY) as response,
        ):
            await response.read()
            after_each()
            return response.status

    return await asyncio.gather(*(one() for _ in range(count)))


def store_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "llmobs_async" and r.levelno >= logging.WARNING]


async def test_two_clients_share_one_limit(
    redis_server: RedisServer, http: aiohttp.ClientSession
) -> None:
    """Two clients (own stores, like two processes) keep together to the provider's limit."""
    clients = [make_client(RedisRateLimitStore(redis_server.url)) for _ in range(2)]
    limiters = [c.rate_limiter("gpt", requests=10, per=0.5) for c in clients]
    try:
        async with FakeProvider(limit=(10, 0.5), service_time=0.01) as provider:
            results = await asyncio.gather(*(calls(http, provider, lim, 10) for lim in limiters))
    finally:
        for client in clients:
            await client.close()
            await client._pool.store.aclose()  # type: ignore[union-attr]
    assert results == [[200] * 10] * 2
    assert provider.rate_limited == 0
    assert provider.max_per_window <= 10
    keys = redis_server.command("KEYS", "*limiter*").split()
    assert keys and all("limiter:{gpt}:" in key for key in keys)
    ttl = int(redis_server.command("PTTL", "llmobs_async:rl:limiter:{gpt}:window"))
    assert 0 < ttl <= 70_000  # two periods (at least 10 s) plus a minute of no use


async def test_two_clients_share_one_tokens_limit(
    redis_server: RedisServer, http: aiohttp.ClientSession
) -> None:
    """30 tokens per window for both together: no window of the provider serves more."""
    stores = [RedisRateLimitStore(redis_server.url) for _ in range(2)]
    clients = [make_client(store) for store in stores]
    limiters = [c.rate_limiter("tok", requests=100, per=0.4, tokens=30) for c in clients]
    body = {"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": "hi"}]}

    async def one(limiter: RateLimiter) -> None:
        async with (
            limiter.acquire(tokens=10),
            http.post(f"{provider.url}/v1/chat/completions", json=body) as response,
        ):
            assert response.status == 200

    try:
        async with FakeProvider(limit=(100, 0.4), service_time=0.0) as provider:
            await asyncio.gather(*(one(lim) for lim in limiters for _ in range(3)))
    finally:
        for client, store in zip(clients, stores, strict=True):
            await client.close()
            await store.aclose()
    assert provider.calls == 6
    assert provider.max_tokens_per_window <= 30
    assert sum(lim.stats.tokens for lim in limiters) == 60


async def test_without_the_store_two_clients_exceed_the_limit(http: aiohttp.ClientSession) -> None:
    """The control: each client paces alone at the whole limit; together they get 429s."""
    clients = [make_client(None) for _ in range(2)]
    limiters = [c.rate_limiter("gpt", requests=10, per=0.5) for c in clients]
    try:
        async with FakeProvider(limit=(10, 0.5), service_time=0.01) as provider:
            await asyncio.gather(*(calls(http, provider, lim, 10) for lim in limiters))
    finally:
        for client in clients:
            await client.close()
    assert provider.rate_limited > 0


async def test_a_back_off_in_one_process_pauses_the_other(redis_server: RedisServer) -> None:
    stores = [RedisRateLimitStore(redis_server.url) for _ in range(2)]
    first, second = (make_client(store).rate_limiter("b", requests=100, per=1) for store in stores)
    try:
        async with first.acquire():
            pass  # both know the store
        await first.back_off(retry_after=0.4)
        async with asyncio.timeout(10), second.acquire():
            pass
    finally:
        for store in stores:
            await store.aclose()
    assert second.stats.backed_off == 0
    assert second.stats.waited >= 0.3


async def test_processes_share_one_limit(
    redis_server: RedisServer, http: aiohttp.ClientSession
) -> None:
    """Three real processes, one limiter name, one Redis: no 429, no window over the limit."""
    async with FakeProvider(limit=(10, 0.5), service_time=0.01) as provider:
        spec = {"redis": redis_server.url, "url": provider.url, "name": "proc", "requests": 10}
        processes = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.limiter_worker",
                json.dumps({**spec, "per": 0.5, "calls": 8}),
                cwd=ROOT,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            for _ in range(3)
        ]
        try:
            async with asyncio.timeout(60):
                for process in processes:
                    assert process.stdout is not None
                    assert (await process.stdout.readline()).strip() == b"READY"
                for process in processes:
                    assert process.stdin is not None
                    process.stdin.write(b"GO\n")
                    await process.stdin.drain()
                outputs = [await process.communicate() for process in processes]
        finally:
            for process in processes:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
    results = [json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outputs]
    assert [r["statuses"] for r in results] == [[200] * 8] * 3
    assert provider.calls == 24
    assert provider.rate_limited == 0
    assert provider.max_per_window <= 10


async def test_redis_killed_mid_run_falls_back_to_the_share(
    http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis dies mid-run: one warning, every call made, each process at its half of the limit.

    Two clients share one store object (one store: one warning); each limiter is its
    own sharer. At the whole limit each after the kill, together they would get 429s.
    """
    own = RedisServer()
    store = RedisRateLimitStore(own.url)
    clients = [make_client(store) for _ in range(2)]
    limiters = [c.rate_limiter("k", requests=10, per=0.5) for c in clients]
    done = 0

    def count() -> None:
        nonlocal done
        done += 1
        if done == 6:
            own.kill()

    try:
        with caplog.at_level(logging.INFO, logger="llmobs_async"):
            async with FakeProvider(limit=(10, 0.5), service_time=0.01) as provider:
                async with asyncio.timeout(30):
                    results = await asyncio.gather(
                        *(calls(http, provider, lim, 15, count) for lim in limiters)
                    )
    finally:
        own.stop()
        for client in clients:
            await client.close()
        await store.aclose()
    assert done == 30 and own.process.returncode is not None
    assert results == [[200] * 15] * 2
    assert provider.rate_limited == 0
    assert provider.max_per_window <= 10
    warnings = store_warnings(caplog)
    assert len(warnings) == 1
    assert "unavailable" in warnings[0].getMessage()


async def test_the_store_is_tried_again_after_its_retry_after(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Redis down, then up again on the same port: the limiter goes back to the store."""
    own = RedisServer()
    port = own.port
    store = RedisRateLimitStore(own.url, retry_after=0.1)
    restarted: RedisServer | None = None
    try:
        with caplog.at_level(logging.INFO, logger="llmobs_async"):
            async with make_client(store) as client:
                limiter = client.rate_limiter("r", requests=2, per=0.1)
                async with limiter.acquire():
                    pass
                own.kill()
                async with limiter.acquire():
                    pass  # the store fails: paced here
                assert len(store_warnings(caplog)) == 1
                restarted = RedisServer(port=port)
                before = store.round_trips
                async with asyncio.timeout(20):
                    while "answers again" not in caplog.text:
                        async with limiter.acquire():
                            pass
                assert store.round_trips > before
                assert restarted.command("EXISTS", "llmobs_async:rl:limiter:{r}:who").strip() == "1"
    finally:
        own.stop()
        if restarted is not None:
            restarted.stop()
        await store.aclose()
    assert len(store_warnings(caplog)) == 1


async def test_the_password_never_shows(
    http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """A store URL with a password: the limiter works, and no repr or log shows the password."""
    secured = RedisServer(password=PASSWORD)
    try:
        with caplog.at_level(logging.DEBUG, logger="llmobs_async"):
            async with make_client(secured.url) as client, FakeProvider(limit=(5, 1.0)) as provider:
                limiter = client.rate_limiter("s", requests=5, per=1)
                await calls(http, provider, limiter, 2)
                store = client._pool.store
                assert isinstance(store, RedisRateLimitStore) and store.round_trips > 0
                shown = f"{limiter!r} {limiter.stats!r} {client!r}"
            wrong = secured.url.replace(PASSWORD, PASSWORD + "-wrong")
            async with make_client(wrong) as client, FakeProvider(limit=(5, 1.0)) as provider:
                limiter = client.rate_limiter("s", requests=5, per=1)
                await calls(http, provider, limiter, 2)
                shown += repr(limiter)
    finally:
        secured.stop()
    assert "127.0.0.1" in shown
    assert PASSWORD not in shown
    assert PASSWORD not in caplog.text
    assert len(store_warnings(caplog)) == 1  # the wrong password: one warning


async def test_a_limiter_of_its_own_shares_with_a_clients_limiter(
    redis_server: RedisServer, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A limiter made on its own shares one budget with ``client.rate_limiter(name)``.

    ``RateLimiter(name, ...)`` with no client (a CLI task module) reads the store from
    LLMOBS_RATE_LIMIT_STORE.
    """
    monkeypatch.setenv("LLMOBS_RATE_LIMIT_STORE", redis_server.url)
    alone = RateLimiter("shared-gpt", requests=10, per=0.5)
    client = make_client(RedisRateLimitStore(redis_server.url))
    try:
        async with FakeProvider(limit=(10, 0.5), service_time=0.01) as provider:
            results = await asyncio.gather(
                calls(http, provider, alone, 10),
                calls(http, provider, client.rate_limiter("shared-gpt", requests=10, per=0.5), 10),
            )
    finally:
        await alone.aclose()
        await client.close()
        await client._pool.store.aclose()  # type: ignore[union-attr]
    assert results == [[200] * 10] * 2
    assert provider.rate_limited == 0 and provider.max_per_window <= 10


async def test_a_limiter_of_its_own_without_a_store_paces_alone(
    http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No variable, no store: the whole limit in this process; bad limits name the field."""
    monkeypatch.delenv("LLMOBS_RATE_LIMIT_STORE", raising=False)
    limiter = RateLimiter("alone", requests=5, per=0.3)
    assert "store" not in repr(limiter)
    async with FakeProvider(limit=(5, 0.3), service_time=0.0) as provider:
        assert await calls(http, provider, limiter, 12) == [200] * 12
    await limiter.aclose()
    assert provider.rate_limited == 0 and provider.max_per_window <= 5
    with pytest.raises(LLMObsError, match="'alone' is closed"):
        async with limiter.acquire():
            pass
    with pytest.raises(ValidationError) as caught:
        RateLimiter("alone", requests=0, per=1)
    assert caught.value.field == "requests"
    with pytest.raises(ValidationError) as caught:
        RateLimiter("alone", requests=1, per=1, store="http://nope")
    assert caught.value.field == "rate_limit_store"
