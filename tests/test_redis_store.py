"""The shared rate-limit store against a real redis-server: configuration, keys, failures, secrets.

Clients with their own store object stand in for processes here (each has its
own connections and token, as a process would); tests/test_redis_processes.py
runs real processes. Waits are bounded by ``asyncio.timeout``, and state is
awaited through events (``on_progress``), never by sleeping.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest

from llmobs_async import LLMObsClient, RedisRateLimitStore, errors
from llmobs_async._ratelimit.shared import ENV_VAR, TTL_MS, SharedBucket
from llmobs_async.testing import FakeLLMObsServer, RecordedRequest

from .redisserver import RedisServer, free_port

PASSWORD = "s3cret-redis-pass-7Qx"


@pytest.fixture
async def limited() -> AsyncIterator[FakeLLMObsServer]:
    """A fake API under one fixed window of 10 record writes per second.

    Reads (a bulk job's look at the dataset's version) are limited apart, as on the
    live API, where they answer under another named limit.
    """
    async with FakeLLMObsServer(rate_limit=(10, 1.0)) as server:
        server.rate_limited = lambda r: r.method != "GET"
        yield server


def make_client(fake: FakeLLMObsServer, store: object, **options: object) -> LLMObsClient:
    client = LLMObsClient(
        base_url=fake.base_url,
        api_key=fake.api_key,
        app_key=fake.app_key,
        rate_limit_store=store,  # type: ignore[arg-type]
        **options,  # type: ignore[arg-type]
    )
    object.__setattr__(client._transport.retry, "initial", 0.001)
    return client


def dataset(fake: FakeLLMObsServer, records: int) -> tuple[str, str]:
    project_id = fake.add_project(name="p", description="")
    return project_id, fake.add_dataset(project_id=project_id, records=records)


def updates(first: int, count: int, tag: str) -> list[dict[str, object]]:
    return [{"id": f"rec-{i}", "input": {"by": tag}} for i in range(first, first + count)]


def store_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "llmobs_async"
        and r.levelno == logging.WARNING
        and "rate-limit store" in r.getMessage()
    ]


# --- sharing ----------------------------------------------------------------------------


async def test_two_clients_share_one_window(
    redis_server: RedisServer, limited: FakeLLMObsServer
) -> None:
    """Two clients with their own store objects keep together to the limit: no 429."""
    project_id, dataset_id = dataset(limited, 40)
    stores = [RedisRateLimitStore(redis_server.url) for _ in range(2)]
    clients = [make_client(limited, store) for store in stores]
    try:
        async with asyncio.timeout(20):
            results = await asyncio.gather(
                *(
                    c.records.update_many(
                        project_id, dataset_id, updates(20 * i, 20, f"c{i}"), batch_size=1
                    )
                    for i, c in enumerate(clients)
                )
            )
    finally:
        for c in clients:
            await c.close()
        for store in stores:
            await store.aclose()
    assert [r.applied for r in results] == [20, 20]
    assert limited.rate_limit is not None and limited.rate_limit.rejected == 0
    assert all(store.round_trips > 0 for store in stores)


async def test_one_probe_for_the_whole_org(
    redis_server: RedisServer, limited: FakeLLMObsServer
) -> None:
    """At first use, one request goes alone for every client; the rest wait for its answer."""
    project_id, dataset_id = dataset(limited, 10)
    writes = lambda r: r.method != "GET"  # noqa: E731
    limited.inject(delay=0.3, times=1, match=writes)  # the first write's answer takes 0.3 s
    clients = [make_client(limited, redis_server.url) for _ in range(3)]
    try:
        async with asyncio.timeout(10):
            await asyncio.gather(
                *(
                    c.records.update_many(
                        project_id, dataset_id, updates(3 * i, 3, "x"), batch_size=1
                    )
                    for i, c in enumerate(clients)
                )
            )
    finally:
        for c in clients:
            await c.close()
    first, *others = [r for r in limited.requests if writes(r)]
    assert len(others) == 8
    assert all(r.at >= first.at + 0.3 for r in others)
    assert all(r.status == 200 for r in limited.requests)


async def test_a_429_pauses_every_client_of_the_org(
    redis_server: RedisServer, fake: FakeLLMObsServer
) -> None:
    """A window another client found spent is spent for all: none of them sends into it."""
    project_id = fake.add_project(name="p", description="")
    fake.inject_rate_limit(reset=30, limit=10, period=60)
    first, second = (
        make_client(fake, redis_server.url, max_rate_limit_wait=1.0, max_retries=1)
        for _ in range(2)
    )
    try:
        async with asyncio.timeout(10):
            with pytest.raises(errors.RateLimitError):
                await first.projects.update(project_id, name="a")
            with pytest.raises(errors.RateLimitError) as raised:
                await second.projects.update(project_id, name="b")
    finally:
        await first.close()
        await second.close()
    assert raised.value.retry_after is not None and raised.value.retry_after > 25
    assert len(fake.requests) == 1  # the second client sent nothing into the spent window


@pytest.mark.parametrize("shared", [True, False], ids=["store", "in-process"])
async def test_a_retry_after_without_rate_limit_headers_is_waited_out(
    redis_server: RedisServer, fake: FakeLLMObsServer, shared: bool
) -> None:
    """After answers with no headers, a 429 with only ``Retry-After: 1`` pauses the org."""
    project_id = fake.add_project(name="p", description="")
    client = make_client(fake, redis_server.url if shared else None)
    pause_ends: list[float] = []

    def paused(request: RecordedRequest) -> bool:
        """The server refuses everything for 1 s from the first request it sees."""
        if not pause_ends:
            pause_ends.append(request.at + 1.0)
        return request.at < pause_ends[0]

    try:
        async with asyncio.timeout(10):
            await client.projects.update(project_id, name="no headers")  # the limit reports nothing
            fake.inject(status=429, headers={"Retry-After": "1"}, times=None, match=paused)
            results = await asyncio.gather(
                *(client.projects.update(project_id, name=f"n{i}") for i in range(10)),
                return_exceptions=True,
            )
    finally:
        await client.close()
    assert [getattr(r, "name", r) for r in results] == [f"n{i}" for i in range(10)]
    refused = [r for r in fake.requests if r.status == 429]
    # The ten went together before any answer said to wait; none was sent into the pause again.
    assert len(refused) <= 10, len(refused)


async def test_a_cancelled_waiter_leaves_and_the_rest_goes_on(
    redis_server: RedisServer, fake: FakeLLMObsServer
) -> None:
    """Cancelling a call queued at the store's gate frees it; later calls still pass."""
    project_id = fake.add_project(name="p", description="")
    fake.inject_rate_limit(reset=1, limit=10, period=10)
    async with make_client(fake, redis_server.url) as client, asyncio.timeout(10):
        waiting = asyncio.ensure_future(client.projects.update(project_id, name="a"))

        def parked() -> SharedBucket | None:
            """The bucket, once the 429's retry sleeps at its gate."""
            buckets = list(client._transport.limits._routes.values())
            bucket = buckets[0] if buckets else None
            ready = isinstance(bucket, SharedBucket) and bucket._wake_at > 0 and bucket._queue
            return bucket if ready and isinstance(bucket, SharedBucket) else None

        while (bucket := parked()) is None:  # noqa: ASYNC110 - nothing signals it; polled under the timeout
            await asyncio.sleep(0.001)
        assert fake.requests[0].status == 429
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert not bucket._queue
        project = await client.projects.update(project_id, name="b")
    assert project.name == "b"
    assert [r.status for r in fake.requests] == [429, 200]


# --- configuration and keys ------------------------------------------------------------------


async def test_the_environment_names_the_store(
    redis_server: RedisServer, fake: FakeLLMObsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``LLMOBS_RATE_LIMIT_STORE`` is read when no store is given; views share it."""
    monkeypatch.setenv(ENV_VAR, redis_server.url)
    project_id = fake.add_project(name="p", description="")
    async with make_client(fake, None) as client:
        view = client.with_options(max_retries=2)
        await view.projects.update(project_id, name="n")
        buckets = list(view._transport.limits._routes.values())
        assert buckets and all(isinstance(b, SharedBucket) for b in buckets)
        assert client._transport.limits is view._transport.limits


async def test_keys_expire_and_hold_no_key_material(
    redis_server: RedisServer, limited: FakeLLMObsServer
) -> None:
    """Every key is namespaced, has a TTL, and neither its name nor its value holds a key."""
    project_id, dataset_id = dataset(limited, 12)
    async with make_client(limited, redis_server.url) as client:
        await client.records.update_many(project_id, dataset_id, updates(0, 12, "k"), batch_size=1)
    origin = limited.base_url
    keys = [k for k in redis_server.command("--scan").splitlines() if origin in k]
    assert keys and all(k.startswith("llmobs_async:rl:{") for k in keys)
    assert any(k.endswith(":limit:llm_obs_fake") for k in keys)
    for key in keys:
        ttl = int(redis_server.command("PTTL", key))
        assert 0 < ttl <= TTL_MS + 2 * 1000
        dump = key + redis_server.command("HGETALL", key)
        assert limited.api_key not in dump and limited.app_key not in dump


def test_a_bad_store_value_is_refused_without_showing_it() -> None:
    """Not a Redis URL, or not a store: ValidationError, and the value never in the message."""
    for value in (f"http://:{PASSWORD}@example.com", "not a url at all"):
        with pytest.raises(errors.ValidationError) as raised:
            LLMObsClient(api_key="k", app_key="a", rate_limit_store=value)
        assert PASSWORD not in str(raised.value)
    with pytest.raises(errors.ValidationError, match="rate_limit_store"):
        LLMObsClient(api_key="k", app_key="a", rate_limit_store=42)  # type: ignore[arg-type]


# --- when Redis fails ----------------------------------------------------------------------


async def test_redis_down_at_start_warns_once_and_the_job_completes(
    limited: FakeLLMObsServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing listens: one warning, then the in-process gate paces the job; nothing lost."""
    project_id, dataset_id = dataset(limited, 30)
    url = f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"
    with caplog.at_level(logging.INFO, logger="llmobs_async"):
        async with make_client(limited, url) as client, asyncio.timeout(15):
            result = await client.records.update_many(
                project_id, dataset_id, updates(0, 30, "d"), batch_size=1
            )
    assert result.applied == 30
    assert len(store_warnings(caplog)) == 1
    assert PASSWORD not in caplog.text
    assert limited.rate_limit is not None and limited.rate_limit.rejected == 0


async def test_redis_killed_mid_job_warns_once_and_loses_nothing(
    limited: FakeLLMObsServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis dies while requests wait at its gate: they move to the in-process gate."""
    project_id, dataset_id = dataset(limited, 40)
    own = RedisServer()
    killed = asyncio.Event()

    def progress(state: object) -> None:
        if getattr(state, "applied", 0) >= 15 and not killed.is_set():
            own.kill()
            killed.set()

    try:
        with caplog.at_level(logging.INFO, logger="llmobs_async"):
            async with make_client(limited, own.url) as client, asyncio.timeout(20):
                result = await client.records.update_many(
                    project_id,
                    dataset_id,
                    updates(0, 40, "m"),
                    batch_size=1,
                    on_progress=progress,  # type: ignore[arg-type]
                )
    finally:
        own.stop()
    assert killed.is_set()
    assert result.applied == 40 and result.failed_count == 0
    stored = limited.records(dataset_id)
    assert all(stored[f"rec-{i}"]["input"] == {"by": "m"} for i in range(40))
    assert len(store_warnings(caplog)) == 1


async def test_the_password_never_shows(
    limited: FakeLLMObsServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A URL with a password: it works, and no repr, log line or error shows the password."""
    project_id, dataset_id = dataset(limited, 10)
    secured = RedisServer(password=PASSWORD)
    try:
        store = RedisRateLimitStore(secured.url)
        with caplog.at_level(logging.DEBUG, logger="llmobs_async"):
            async with make_client(limited, store) as client:
                await client.records.update_many(
                    project_id, dataset_id, updates(0, 10, "p"), batch_size=1
                )
                shown = f"{client!r} {store!r} {store.location} {client._pool._store!r}"
            assert store.round_trips > 0  # the store really was used, password and all
            wrong = RedisRateLimitStore(secured.url.replace(PASSWORD, PASSWORD + "-wrong"))
            async with make_client(limited, wrong) as client:
                await client.records.update(project_id, dataset_id, updates(0, 1, "w"))
            await store.aclose()
            await wrong.aclose()
    finally:
        secured.stop()
    assert len(store_warnings(caplog)) == 1  # the wrong password: one warning
    assert "127.0.0.1" in shown
    assert PASSWORD not in shown
    assert PASSWORD not in caplog.text


def test_the_library_works_without_the_redis_package() -> None:
    """Without the extra: clients work; asking for a store says what to install."""
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "import llmobs_async\n"
        "llmobs_async.LLMObsClient(api_key='k', app_key='a')\n"
        "try:\n"
        f"    llmobs_async.LLMObsClient(api_key='k', app_key='a', rate_limit_store='redis://:{PASSWORD}@h/0')\n"
        "except llmobs_async.errors.ValidationError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "pip install 'llmobs-async[redis]'" in done.stdout
    assert PASSWORD not in done.stdout + done.stderr
