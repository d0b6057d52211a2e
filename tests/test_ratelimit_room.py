"""The gate never slows a job the limit has room for, and never bursts into a paused org.

Against the fake server with a real service time (every answer held 30 ms),
so a gate that holds requests back shows in how many the server handled at
once (``fake.max_in_flight``), not in a wall-clock assert.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

import pytest

from llmobs_async import LLMObsClient, errors
from llmobs_async.testing import FakeLLMObsServer

from .conftest import client_for
from .redisserver import RedisServer

T = TypeVar("T")

SERVICE_S = 0.03
CONCURRENCY = 16


async def bounded(call: Awaitable[T], seconds: float = 10.0) -> T:
    """``call``, or a TimeoutError if the gate parked it."""
    return await asyncio.wait_for(call, seconds)


def updates(client: LLMObsClient, project_id: str, count: int, tag: str) -> Awaitable[object]:
    return asyncio.gather(
        *(client.projects.update(project_id, name=f"{tag}{i}") for i in range(count))
    )


async def test_a_limit_with_room_runs_at_full_concurrency_in_its_first_window() -> None:
    # 1000 per minute: the first window lasts the whole test, so only a gate that
    # spends it at once from the first answer on reaches max_concurrency.
    async with FakeLLMObsServer(rate_limit=(1000, 60.0)) as fake:
        project_id = fake.add_project()
        fake.inject(delay=SERVICE_S, times=None)
        async with client_for(fake, max_concurrency=CONCURRENCY) as client:
            await bounded(updates(client, project_id, 4 * CONCURRENCY, "n"))
        assert fake.rate_limit is not None and fake.rate_limit.rejected == 0
        assert len(fake.requests) == 4 * CONCURRENCY
        assert fake.max_in_flight == CONCURRENCY


async def test_a_bulk_job_under_a_limit_with_room_is_bound_by_concurrency_alone() -> None:
    records, batch_size = 1600, 25
    async with FakeLLMObsServer(rate_limit=(600, 60.0)) as fake:
        project_id = fake.add_project()
        dataset_id = fake.add_dataset(project_id=project_id, records=records)
        fake.inject(delay=SERVICE_S, times=None)
        async with client_for(fake, max_concurrency=CONCURRENCY) as client:
            result = await bounded(
                client.records.update_many(
                    project_id,
                    dataset_id,
                    ({"id": f"rec-{i}", "expected_output": i} for i in range(records)),
                    batch_size=batch_size,
                )
            )
        assert (result.ok, result.applied) == (True, records)
        assert fake.rate_limit is not None and fake.rate_limit.rejected == 0
        assert fake.max_in_flight == CONCURRENCY


async def test_clients_sharing_a_limit_with_room_are_not_held_to_one_client() -> None:
    # Two clients (as two processes would) with the same keys share 1000 per minute:
    # together they have more in flight than one client can.
    async with FakeLLMObsServer(rate_limit=(1000, 60.0)) as fake:
        project_id = fake.add_project()
        fake.inject(delay=SERVICE_S, times=None)
        async with (
            client_for(fake, max_concurrency=CONCURRENCY) as first,
            client_for(fake, max_concurrency=CONCURRENCY) as second,
        ):
            await bounded(
                asyncio.gather(
                    updates(first, project_id, 6 * CONCURRENCY, "a"),
                    updates(second, project_id, 6 * CONCURRENCY, "b"),
                )
            )
        assert fake.rate_limit is not None and fake.rate_limit.rejected == 0
        assert fake.max_in_flight > CONCURRENCY


async def test_clients_sharing_a_short_limit_still_draw_few_429() -> None:
    # Room for 20 per window, four clients starting together: the first window must
    # not be spent as if each were alone (that is 4 x 16 requests into 20).
    async with FakeLLMObsServer(rate_limit=(20, 1.0)) as fake:
        project_id = fake.add_project()
        fake.inject(delay=SERVICE_S, times=None)
        clients = [client_for(fake, max_concurrency=CONCURRENCY) for _ in range(4)]
        try:
            await bounded(
                asyncio.gather(
                    *(updates(c, project_id, 10, f"c{i}") for i, c in enumerate(clients))
                )
            )
        finally:
            for c in clients:
                await c.close()
        assert fake.rate_limit is not None
        assert fake.rate_limit.rejected <= 4, fake.rate_limit.rejected


# --- an org known to be paused: a route whose limit is not known sends one request -----------


def limit_headers(**values: str) -> dict[str, str]:
    """Datadog's ``X-RateLimit-*`` headers, by suffix."""
    return {f"X-RateLimit-{name}": value for name, value in values.items()}


async def pause_the_org(fake: FakeLLMObsServer, client: LLMObsClient) -> float:
    """An experiment update answered 429 under limit "a" for 1 s; when it arrived."""
    project_id = fake.add_project()
    dataset_id = fake.add_dataset(project_id=project_id, records=1)
    experiment_id = fake.add_experiment(project_id=project_id, dataset_id=dataset_id)
    fake.inject(
        status=429,
        headers=limit_headers(Limit="60", Period="60", Remaining="0", Reset="1", Name="a"),
        match=lambda request: "/experiments/" in request.path,
    )
    with pytest.raises(errors.RateLimitError):
        await client.with_options(max_retries=0).experiments.update(experiment_id, name="x")
    return fake.requests[-1].at


@pytest.mark.parametrize("shared", [False, True], ids=["in-process", "store"])
async def test_a_route_with_no_known_limit_sends_one_request_into_a_paused_org(
    redis_server: RedisServer, shared: bool
) -> None:
    async with FakeLLMObsServer() as fake:
        project_id = fake.add_project()
        store = redis_server.url if shared else None
        async with client_for(fake, rate_limit_store=store) as client:
            # Projects answer without rate-limit headers: their limit's name is not known.
            await client.projects.update(project_id, name="warm")
            limited = await pause_the_org(fake, client)
            fake.inject(delay=SERVICE_S * 3, times=None, match=lambda r: "/projects/" in r.path)
            await bounded(updates(client, project_id, 5, "n"))
        first, *rest = [r for r in fake.requests if r.at > limited and "/projects/" in r.path]
        assert len(rest) == 4
        # One went to learn the limit; the others only once its answer said there is none.
        early = [round(r.at - first.at, 3) for r in rest if r.at - first.at < SERVICE_S * 3]
        assert not early, f"sent before the first answer, at {early}"


@pytest.mark.parametrize("shared", [False, True], ids=["in-process", "store"])
async def test_a_route_that_learns_it_is_under_a_paused_limit_waits_out_its_pause(
    redis_server: RedisServer, shared: bool
) -> None:
    async with FakeLLMObsServer() as fake:
        project_id = fake.add_project()
        body = {"data": {"id": project_id, "type": "projects", "attributes": {"name": "n"}}}
        store = redis_server.url if shared else None
        async with client_for(fake, rate_limit_store=store) as client:
            limited = await pause_the_org(fake, client)
            fake.inject(
                status=200,
                body=body,
                headers=limit_headers(Limit="60", Period="60", Remaining="50", Reset="1", Name="a"),
                delay=SERVICE_S,
                times=None,
                match=lambda request: "/projects/" in request.path,
            )
            await bounded(updates(client, project_id, 5, "n"))
        _first, *rest = [r for r in fake.requests if r.at > limited and "/projects/" in r.path]
        assert len(rest) == 4
        # The first answer named limit "a", paused until 1 s after the 429: no burst into it.
        early = [round(r.at - limited, 3) for r in rest if r.at - limited < 1.0 - 0.02]
        assert not early, f"sent into limit a's pause, at {early}"
