"""The rate gate's work per request does not grow with the number of waiting callers.

A web app launches thousands of calls at once; they all queue at the gate
while the first answer is awaited. These tests count the lines of the
client's own code that run (``sys.settrace``, no clock) while 100 and then
1,000 callers go through the gate, and require the same work per caller in
both: a gate that looks at every waiter on every turn does ten times more
per caller at 1,000.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

import llmobs_async
from llmobs_async import errors
from llmobs_async.testing import FakeLLMObsServer

from .conftest import client_for
from .redisserver import RedisServer

PACKAGE = str(Path(llmobs_async.__file__).parent)
FAKE = str(Path(PACKAGE) / "testing")
SMALL, LARGE = 100, 1000
GROWTH = 1.25
"""Work per caller at LARGE may exceed that at SMALL by this factor (an O(n) scan makes it ~3x)."""


async def client_lines(run: Callable[[], Awaitable[Any]]) -> int:
    """The lines of llmobs_async (not its fake server) executed while ``run()`` runs."""
    count = 0

    def line(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return line

    def call(frame: FrameType, event: str, arg: object) -> Any:
        name = frame.f_code.co_filename
        return line if name.startswith(PACKAGE) and not name.startswith(FAKE) else None

    previous = sys.gettrace()
    sys.settrace(call)
    try:
        await run()
    finally:
        sys.settrace(previous)
    return count


async def burst_on_a_new_limit(callers: int) -> int:
    """Lines per caller: ``callers`` updates launched together on a fresh client.

    The first goes alone to learn the limit; every other one waits at the gate
    for its answer, then all are let through.
    """
    async with FakeLLMObsServer() as fake:
        project_id = fake.add_project()
        async with client_for(fake, max_concurrency=32) as client:

            async def run() -> None:
                calls = (client.projects.update(project_id, name=f"n{i}") for i in range(callers))
                projects = await asyncio.wait_for(asyncio.gather(*calls), 60)
                assert len(projects) == callers

            lines = await client_lines(run)
        assert len(fake.requests) == callers
    return lines // callers


async def cancelled_during_a_pause(callers: int) -> int:
    """Lines per caller: ``callers`` queue behind a 429's pause, then all are cancelled.

    They are cancelled newest first, the order in which a line searched from
    its front finds them last.
    """
    async with FakeLLMObsServer() as fake:
        project_id = fake.add_project()
        fake.inject(status=429, headers={"Retry-After": "30"})
        async with client_for(fake, max_retries=0) as client:
            with pytest.raises(errors.RateLimitError):
                await client.projects.update(project_id, name="limited")

            async def run() -> None:
                queued = [
                    asyncio.create_task(client.projects.update(project_id, name=f"n{i}"))
                    for i in range(callers)
                ]
                await asyncio.sleep(0)  # one turn of the loop: every task is now queued
                for task in reversed(queued):
                    task.cancel()
                outcomes = await asyncio.gather(*queued, return_exceptions=True)
                assert all(isinstance(o, asyncio.CancelledError) for o in outcomes)

            lines = await client_lines(run)
        assert len(fake.requests) == 1  # nothing was sent during the pause
    return lines // callers


async def refused_for_their_cap(callers: int) -> int:
    """Lines per caller: callers that will wait 60 s queue behind a 30 s pause; then

    as many that will wait only 1 s arrive, and each is refused (``RateLimitError``).
    """
    async with FakeLLMObsServer() as fake:
        project_id = fake.add_project()
        fake.inject(status=429, headers={"Retry-After": "30"})
        async with client_for(fake, max_retries=0, max_rate_limit_wait=60) as client:
            with pytest.raises(errors.RateLimitError):
                await client.projects.update(project_id, name="limited")
            impatient = client.with_options(max_rate_limit_wait=1)

            async def run() -> None:
                patient = [
                    asyncio.create_task(client.projects.update(project_id, name=f"p{i}"))
                    for i in range(callers)
                ]
                await asyncio.sleep(0)
                refused = await asyncio.gather(
                    *(impatient.projects.update(project_id, name=f"i{i}") for i in range(callers)),
                    return_exceptions=True,
                )
                assert all(isinstance(r, errors.RateLimitError) for r in refused)
                for task in patient:
                    task.cancel()
                await asyncio.gather(*patient, return_exceptions=True)

            lines = await client_lines(run)
        assert len(fake.requests) == 1
    return lines // (2 * callers)


async def cancelled_at_the_store(callers: int, store: str) -> int:
    """Lines per caller: ``callers`` queue at a Redis-shared gate held by a 429, then leave.

    The shared bucket keeps its line with the same code as the in-process one.
    """
    async with FakeLLMObsServer() as fake:
        project_id = fake.add_project()
        fake.inject(status=429, headers={"Retry-After": "30"})
        async with client_for(fake, max_retries=0, rate_limit_store=store) as client:
            with pytest.raises(errors.RateLimitError):
                await client.projects.update(project_id, name="limited")

            async def run() -> None:
                queued = [
                    asyncio.create_task(client.projects.update(project_id, name=f"n{i}"))
                    for i in range(callers)
                ]
                await asyncio.sleep(0)
                for task in reversed(queued):
                    task.cancel()
                outcomes = await asyncio.gather(*queued, return_exceptions=True)
                assert all(isinstance(o, asyncio.CancelledError) for o in outcomes)

            lines = await client_lines(run)
        assert len(fake.requests) == 1
    return lines // callers


async def test_the_shared_gates_work_per_caller_does_not_grow_with_the_line(
    redis_server: RedisServer,
) -> None:
    small = await cancelled_at_the_store(SMALL, redis_server.url)
    large = await cancelled_at_the_store(LARGE, redis_server.url)
    assert large <= small * GROWTH, (
        f"{large} lines of client code per caller with {LARGE} waiting, {small} with {SMALL}"
    )


@pytest.mark.parametrize(
    "scenario", [burst_on_a_new_limit, cancelled_during_a_pause, refused_for_their_cap]
)
async def test_the_gates_work_per_caller_does_not_grow_with_the_line(
    scenario: Callable[[int], Awaitable[int]],
) -> None:
    small = await scenario(SMALL)
    large = await scenario(LARGE)
    assert large <= small * GROWTH, (
        f"{large} lines of client code per caller with {LARGE} waiting, {small} with {SMALL}"
    )
