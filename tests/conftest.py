"""Shared fixtures: a real FakeLLMObsServer on loopback and a client pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import attrs
import pytest

from llmobs_async import LLMObsClient
from llmobs_async.testing import FakeLLMObsServer

from .fakehttp import Env
from .redisserver import _redis_process, redis_server

# The session's real redis-server, emptied for each test of tests/test_redis_*.py.
__all__ = ["_redis_process", "redis_server"]


@attrs.frozen
class Seeded:
    """Ids of the objects seeded into the fake server."""

    project_id: str
    dataset_id: str
    experiment_id: str


@pytest.fixture
async def fake() -> AsyncIterator[FakeLLMObsServer]:
    """A started fake server with no data."""
    async with FakeLLMObsServer() as server:
        yield server


@pytest.fixture
def seeded(fake: FakeLLMObsServer) -> Seeded:
    """One project, one dataset of 10 records (rec-0..rec-9) and one experiment."""
    project_id = fake.add_project(name="proj", description="")
    dataset_id = fake.add_dataset(project_id=project_id, records=10)
    experiment_id = fake.add_experiment(project_id=project_id, dataset_id=dataset_id)
    return Seeded(project_id, dataset_id, experiment_id)


def client_for(fake: FakeLLMObsServer, **kwargs: Any) -> LLMObsClient:
    """A client for ``fake``; retries are fast so fault tests take milliseconds."""
    kwargs.setdefault("api_key", fake.api_key)
    kwargs.setdefault("app_key", fake.app_key)
    client = LLMObsClient(base_url=fake.base_url, **kwargs)
    # Tests inject faults; a 0.5 s first backoff would only slow them down.
    object.__setattr__(client._transport.retry, "initial", 0.001)
    return client


@pytest.fixture
async def client(fake: FakeLLMObsServer) -> AsyncIterator[LLMObsClient]:
    """A client against ``fake``, closed after the test."""
    async with client_for(fake) as c:
        yield c


@pytest.fixture
async def env(fake: FakeLLMObsServer, seeded: Seeded) -> AsyncIterator[Env]:
    """``fake`` and ``seeded`` with a raw aiohttp session, for what the client never sends."""
    async with aiohttp.ClientSession() as http:
        yield Env(fake, seeded, http)
