"""The fake from the command line with faults, its service time, and tenants told apart."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator

import pytest

from llmobs_async import LLMObsClient, errors
from llmobs_async.testing import FakeLLMObsServer, key_fingerprint


async def _fake_server(*options: str) -> AsyncIterator[dict[str, str]]:
    """Run ``llmobs-async fake-server`` with ``options``; yield what it printed, by label."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DD_")}
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "llmobs_async",
        "fake-server",
        "--port",
        "0",
        *options,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environ,
    )
    assert server.stdout is not None
    try:
        said: dict[str, str] = {}
        line = ""
        while not line.startswith("  export "):
            line = (await asyncio.wait_for(server.stdout.readline(), 30)).decode()
            assert line, "fake-server ended before saying where it listens"
            if line.startswith("fake LLM Observability API on "):
                said["base_url"] = line.split()[5]
            elif line.startswith("  ") and not line.startswith("  export"):
                label, _, rest = line.strip().partition(" ")
                said[label] = rest.strip()
        yield said
    finally:
        server.terminate()
        await asyncio.wait_for(server.communicate(), 30)


@pytest.fixture
async def failing_server() -> AsyncIterator[dict[str, str]]:
    async for said in _fake_server("--error-rate", "1", "--seed", "7", "--rate-limit", "3/60"):
        yield said


async def test_fake_server_options_inject_faults_and_say_so(
    failing_server: dict[str, str],
) -> None:
    assert failing_server["faults"] == "503 100.0%, limit 3/60s, seed 7"
    async with LLMObsClient(
        base_url=failing_server["base_url"],
        api_key="fake-api-key",
        app_key="fake-app-key",
        max_retries=0,
        max_rate_limit_wait=1,
    ) as client:
        for _ in range(2):
            with pytest.raises(errors.ServerError):
                await client.projects.get(failing_server["project"])


async def test_fake_server_rate_limit_option_answers_429_beyond_it() -> None:
    async for said in _fake_server("--rate-limit", "2/60"):
        async with LLMObsClient(
            base_url=said["base_url"],
            api_key="fake-api-key",
            app_key="fake-app-key",
            max_retries=0,
            max_rate_limit_wait=1,
        ) as client:
            for _ in range(2):
                await client.projects.get(said["project"])
            with pytest.raises(errors.RateLimitError) as caught:
                await client.projects.get(said["project"])
        assert caught.value.retry_after is not None and caught.value.retry_after > 1


async def _refused(*options: str) -> bytes:
    """Run ``fake-server`` with ``options`` that must be refused; return what it said."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "llmobs_async",
        "fake-server",
        "--port",
        "0",
        *options,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2, err
    assert b"Traceback" not in err
    return err


@pytest.mark.parametrize(
    ("option", "value"),
    [("--error-rate", "1.5"), ("--latency", "-1"), ("--rate-limit", "60"), ("--drop-rate", "x")],
)
async def test_fake_server_refuses_a_bad_fault_option(option: str, value: str) -> None:
    assert option.encode() in await _refused(option, value)


async def test_rates_adding_up_past_one_are_refused() -> None:
    err = await _refused("--error-rate", "0.7", "--drop-rate", "0.5")
    assert b"--error-rate" in err and b"more than 1" in err


async def test_latency_is_a_service_time_on_every_request() -> None:
    async with (
        FakeLLMObsServer(latency=0.2) as fake,
        LLMObsClient(base_url=fake.base_url, api_key=fake.api_key, app_key=fake.app_key) as client,
    ):
        project_id = fake.add_project()
        started = time.monotonic()
        await asyncio.gather(*(client.projects.get(project_id) for _ in range(4)))
        took = time.monotonic() - started
    assert took >= 0.2  # served at once, every request would take milliseconds
    assert fake.max_in_flight >= 2  # a service time, not a queue: requests overlap


async def test_recorded_requests_tell_tenants_apart_without_their_keys() -> None:
    tenants = {"acme": ("acme-api-key-0001", "acme-app-key"), "init": ("init-api-key-02", "x")}
    async with FakeLLMObsServer() as fake:
        for api_key, app_key in tenants.values():
            fake.add_keys(api_key, app_key)
        project_id = fake.add_project()
        async with LLMObsClient(base_url=fake.base_url, api_key="a", app_key="b") as client:
            for api_key, app_key in tenants.values():
                await client.with_options(api_key=api_key, app_key=app_key).projects.get(project_id)
    seen = [request.api_key_fingerprint for request in fake.requests]
    assert seen == [key_fingerprint(api_key) for api_key, _ in tenants.values()]
    for api_key, _ in tenants.values():
        assert api_key not in repr(fake.requests)
    assert {request.headers["DD-API-KEY"] for request in fake.requests} == {"<redacted>"}
