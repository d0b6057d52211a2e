"""The client's transport against the real fake server: retries, limits, lifecycle."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from llmobs_async import LLMObsClient, errors
from llmobs_async.testing import FakeLLMObsServer, RecordedRequest

from .conftest import Seeded, client_for

pytestmark = pytest.mark.usefixtures("seeded")


def _statuses(fake: FakeLLMObsServer) -> list[int]:
    return [r.status for r in fake.requests]


async def test_three_updates_send_the_documented_requests(
    fake: FakeLLMObsServer, seeded: Seeded, client: LLMObsClient
) -> None:
    exp = await client.experiments.update(seeded.experiment_id, status="completed")
    proj = await client.projects.update(seeded.project_id, description="nightly evals")
    recs = await client.records.update(
        seeded.project_id, seeded.dataset_id, [{"id": "rec-1", "expected_output": None}]
    )
    assert (exp.status, proj.description, recs[0].id) == ("completed", "nightly evals", "rec-1")
    paths = [r.path for r in fake.requests]
    assert paths == [
        f"/api/v2/llm-obs/v1/experiments/{seeded.experiment_id}",
        # The live API answers the PATCH with an empty 200: the client reads it back.
        f"/api/v2/llm-obs/v1/experiments?filter[id]={seeded.experiment_id}",
        f"/api/v2/llm-obs/v1/projects/{seeded.project_id}",
        f"/api/v2/llm-obs/v1/{seeded.project_id}/datasets/{seeded.dataset_id}/records",
    ]
    headers = fake.requests[0].headers
    assert headers["Content-Type"] == "application/json"
    assert headers["Accept"] == "application/json"
    assert headers["User-Agent"].startswith("llmobs-async/")


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 429])
async def test_transient_statuses_are_retried(
    fake: FakeLLMObsServer, seeded: Seeded, client: LLMObsClient, status: int
) -> None:
    fake.inject(status=status, times=2)
    project = await client.projects.update(seeded.project_id, name="after retries")
    assert project.name == "after retries"
    assert _statuses(fake) == [status, status, 200]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 422])
async def test_client_errors_are_not_retried(
    fake: FakeLLMObsServer, seeded: Seeded, client: LLMObsClient, status: int
) -> None:
    fake.inject(status=status, times=5)
    with pytest.raises(errors.APIStatusError) as info:
        await client.projects.update(seeded.project_id, name="x")
    assert info.value.status == status
    assert _statuses(fake) == [status]


async def test_retries_are_bounded_by_max_retries(fake: FakeLLMObsServer, seeded: Seeded) -> None:
    fake.inject(status=503, times=None)
    async with client_for(fake, max_retries=3) as client:
        with pytest.raises(errors.ServerError):
            await client.projects.update(seeded.project_id, name="x")
    assert _statuses(fake) == [503] * 4


async def test_dropped_connections_are_retried(
    fake: FakeLLMObsServer, seeded: Seeded, client: LLMObsClient
) -> None:
    fake.inject(drop=True, times=2)
    await client.projects.update(seeded.project_id, name="survived")
    assert _statuses(fake) == [0, 0, 200]
    assert fake.projects[seeded.project_id]["name"] == "survived"


async def test_connection_failure_is_wrapped_with_its_cause(fake: FakeLLMObsServer) -> None:
    fake.inject(drop=True, times=None)
    async with client_for(fake, max_retries=1) as client:
        with pytest.raises(errors.APIConnectionError) as info:
            await client.projects.update("p", name="x")
    assert isinstance(info.value.__cause__, aiohttp.ClientError)
    assert not isinstance(info.value, errors.APITimeoutError)
    assert len(fake.requests) == 2


async def test_refused_connection_is_an_api_connection_error() -> None:
    async with FakeLLMObsServer() as gone:
        base_url = gone.base_url
    async with LLMObsClient(base_url=base_url, api_key="k", app_key="a", max_retries=0) as c:
        with pytest.raises(errors.APIConnectionError) as info:
            await c.projects.update("p", name="x")
    assert isinstance(info.value.__cause__, aiohttp.ClientConnectionError | OSError)


async def test_slow_answer_times_out_per_attempt(fake: FakeLLMObsServer, seeded: Seeded) -> None:
    fake.inject(delay=1.0, times=1)
    async with client_for(fake, timeout=0.1, max_retries=1) as client:
        project = await client.projects.update(seeded.project_id, name="second try")
    assert project.name == "second try"
    async with client_for(fake, timeout=0.1, max_retries=0) as client:
        fake.inject(delay=1.0, times=1)
        with pytest.raises(errors.APITimeoutError) as info:
            await client.projects.update(seeded.project_id, name="x")
    assert isinstance(info.value.__cause__, TimeoutError)


async def test_429_waits_for_the_reset_header(
    fake: FakeLLMObsServer, seeded: Seeded, client: LLMObsClient
) -> None:
    fake.inject_rate_limit(reset=0.3)
    started = time.monotonic()
    await client.projects.update(seeded.project_id, name="x")
    assert time.monotonic() - started >= 0.29
    assert _statuses(fake) == [429, 200]


async def test_429_waits_for_retry_after(
    fake: FakeLLMObsServer, seeded: Seeded, client: LLMObsClient
) -> None:
    fake.inject(status=429, headers={"Retry-After": "0.3"})
    started = time.monotonic()
    await client.projects.update(seeded.project_id, name="x")
    assert time.monotonic() - started >= 0.29


async def test_429_pauses_every_request_to_the_site(
    fake: FakeLLMObsServer, seeded: Seeded, client: LLMObsClient
) -> None:
    fake.inject_rate_limit(reset=0.3, limit=1000, period=1.0)
    await client.projects.update(seeded.project_id, name="x")  # 429, waits, 200
    fake.inject_rate_limit(reset=0.3, limit=1000, period=1.0)
    first = asyncio.create_task(client.projects.update(seeded.project_id, name="y"))
    await asyncio.sleep(0)  # let it reach the server before the others start
    others_started = time.monotonic()
    await asyncio.gather(
        first,
        # One name: racing writes of different values would each read back another's.
        *(client.experiments.update(seeded.experiment_id, name="n") for _ in range(3)),
    )
    # Whatever the order, at most one request hit the limit: the rest waited.
    assert _statuses(fake).count(429) == 2
    assert time.monotonic() - others_started >= 0.29


async def test_semaphore_bounds_requests_in_flight(fake: FakeLLMObsServer, seeded: Seeded) -> None:
    fake.inject(delay=0.05, times=None)
    async with client_for(fake, max_concurrency=4) as client:
        await asyncio.gather(
            *(client.projects.update(seeded.project_id, name=f"n{i}") for i in range(20))
        )
    assert len(fake.requests) == 20
    assert fake.max_in_flight == 4


async def test_cancelled_call_leaves_the_client_usable(
    fake: FakeLLMObsServer, seeded: Seeded
) -> None:
    arrived = asyncio.Event()

    def arrive(_: RecordedRequest) -> bool:
        arrived.set()
        return True

    fake.inject(delay=5.0, match=arrive)
    async with client_for(fake, max_concurrency=2) as client:
        task = asyncio.create_task(client.projects.update(seeded.project_id, name="never"))
        await arrived.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        project = await client.projects.update(seeded.project_id, name="after cancel")
        assert project.name == "after cancel"
        assert client._pool.semaphore._value == 2
    assert fake.projects[seeded.project_id]["name"] == "after cancel"


async def test_caller_session_is_used_and_left_open(fake: FakeLLMObsServer, seeded: Seeded) -> None:
    async with aiohttp.ClientSession() as session:
        async with client_for(fake, session=session) as client:
            await client.projects.update(seeded.project_id, name="via my session")
        assert not session.closed
        async with session.get(fake.base_url + "/nothing") as response:
            assert response.status == 404  # still usable after the client closed


async def test_closed_client_refuses_requests(fake: FakeLLMObsServer, seeded: Seeded) -> None:
    client = client_for(fake)
    await client.projects.update(seeded.project_id, name="x")
    await client.close()
    await client.close()  # idempotent
    with pytest.raises(errors.LLMObsError, match="closed"):
        await client.projects.update(seeded.project_id, name="y")


async def test_with_options_shares_the_pool_and_overrides_settings(
    fake: FakeLLMObsServer, seeded: Seeded, client: LLMObsClient
) -> None:
    wrong = client.with_options(api_key="not-the-key", max_retries=0)
    assert wrong._pool is client._pool
    assert wrong.max_retries == 0 and client.max_retries == 5
    with pytest.raises(errors.PermissionDeniedError):
        await wrong.projects.update(seeded.project_id, name="x")
    await client.projects.update(seeded.project_id, name="still fine")
    eu = client.with_options(site="datadoghq.eu")
    assert eu.base_url == "https://api.datadoghq.eu"
    assert len(client._pool._sessions) == 1  # the view created no session


async def test_path_parameters_are_percent_encoded(
    fake: FakeLLMObsServer, seeded: Seeded, client: LLMObsClient
) -> None:
    with pytest.raises(errors.NotFoundError):
        await client.experiments.update(f"../projects/{seeded.project_id}", name="hijack")
    assert fake.requests[-1].path.endswith(f"/experiments/..%2Fprojects%2F{seeded.project_id}")
    assert fake.projects[seeded.project_id]["name"] == "proj"


async def test_redirects_are_not_followed_with_credentials(
    fake: FakeLLMObsServer, seeded: Seeded, client: LLMObsClient
) -> None:
    async with FakeLLMObsServer() as elsewhere:
        target = f"{elsewhere.base_url}/api/v2/llm-obs/v1/projects/{seeded.project_id}"
        fake.inject(status=307, headers={"Location": target})
        with pytest.raises(errors.APIStatusError) as info:
            await client.projects.update(seeded.project_id, name="x")
        assert info.value.status == 307
        assert elsewhere.requests == []


def test_keys_and_site_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DD_API_KEY", "env-api")
    monkeypatch.delenv("DD_APP_KEY", raising=False)
    monkeypatch.setenv("DD_APPLICATION_KEY", "env-app")
    monkeypatch.setenv("DD_SITE", "us5.datadoghq.com")
    client = LLMObsClient()
    assert client.base_url == "https://api.us5.datadoghq.com"
    assert client._transport._headers["DD-APPLICATION-KEY"] == "env-app"
    monkeypatch.setenv("DD_APP_KEY", "preferred")
    assert LLMObsClient()._transport._headers["DD-APPLICATION-KEY"] == "preferred"
    assert LLMObsClient(api_key="explicit")._transport._headers["DD-API-KEY"] == "explicit"


def test_missing_keys_are_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DD_API_KEY", "DD_APP_KEY", "DD_APPLICATION_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(errors.ValidationError, match="DD_API_KEY") as info:
        LLMObsClient()
    assert info.value.field == "api_key"
    with pytest.raises(errors.ValidationError, match="DD_APP_KEY"):
        LLMObsClient(api_key="k")


@pytest.mark.parametrize(
    ("site", "expected"),
    [
        ("datadoghq.com", "https://api.datadoghq.com"),
        ("us3.datadoghq.com", "https://api.us3.datadoghq.com"),
        ("us5.datadoghq.com", "https://api.us5.datadoghq.com"),
        ("datadoghq.eu", "https://api.datadoghq.eu"),
        ("ap1.datadoghq.com", "https://api.ap1.datadoghq.com"),
        ("ap2.datadoghq.com", "https://api.ap2.datadoghq.com"),
        ("uk1.datadoghq.com", "https://api.uk1.datadoghq.com"),
        ("ddog-gov.com", "https://api.ddog-gov.com"),
        ("us2.ddog-gov.com", "https://api.us2.ddog-gov.com"),
    ],
)
def test_every_site_has_its_base_url(site: str, expected: str) -> None:
    assert LLMObsClient(site=site, api_key="k", app_key="a").base_url == expected


def test_unknown_site_lists_the_valid_ones() -> None:
    with pytest.raises(errors.ValidationError) as info:
        LLMObsClient(site="datadoghq.mars", api_key="k", app_key="a")
    assert info.value.field == "site"
    assert "us3.datadoghq.com" in str(info.value) and "base_url" in str(info.value)


@pytest.mark.parametrize(
    "base_url",
    ["http://example.com", "ftp://127.0.0.1", "http://user:pw@127.0.0.1:1", "not a url"],
)
def test_unsafe_base_urls_are_refused(base_url: str) -> None:
    with pytest.raises(errors.ValidationError) as info:
        LLMObsClient(base_url=base_url, api_key="k", app_key="a")
    assert info.value.field == "base_url"


@pytest.mark.parametrize(
    "base_url", ["https://proxy.internal", "http://127.0.0.1:8126", "http://[::1]:8126"]
)
def test_https_and_loopback_http_base_urls_are_accepted(base_url: str) -> None:
    client = LLMObsClient(base_url=base_url, api_key="k", app_key="a")
    assert client.base_url == base_url


@pytest.mark.parametrize(
    ("option", "value"), [("timeout", 0), ("max_retries", -1), ("max_concurrency", 0)]
)
def test_bad_options_are_refused(option: str, value: int) -> None:
    with pytest.raises(errors.ValidationError) as info:
        LLMObsClient(api_key="k", app_key="a", **{option: value})
    assert info.value.field == option


def test_a_client_is_bound_to_the_event_loop_that_first_used_it() -> None:
    first = asyncio.new_event_loop()
    try:
        fake = first.run_until_complete(FakeLLMObsServer().start())
        project_id = fake.add_project()
        client = client_for(fake)
        first.run_until_complete(client.projects.update(project_id, name="first loop"))

        async def from_another_loop() -> None:
            with pytest.raises(errors.LLMObsError, match="another event loop"):
                await client.projects.update(project_id, name="second loop")

        asyncio.run(from_another_loop())
        first.run_until_complete(client.close())
        first.run_until_complete(fake.stop())
    finally:
        first.close()
    assert fake.projects[project_id]["name"] == "first loop"


async def test_unset_in_a_record_dict_leaves_the_field_out(
    fake: FakeLLMObsServer, seeded: Seeded, client: LLMObsClient
) -> None:
    from llmobs_async import UNSET

    record = {"id": "rec-1", "input": UNSET, "expected_output": "kept"}
    await client.records.update(seeded.project_id, seeded.dataset_id, [record])
    result = await client.records.update_many(
        seeded.project_id, seeded.dataset_id, [{"id": "rec-2", "metadata": UNSET}]
    )
    assert result.ok
    patch, batch = [r.json()["data"]["attributes"] for r in fake.requests if r.method != "GET"]
    assert patch["records"] == [{"id": "rec-1", "expected_output": "kept"}]
    assert batch["update_records"] == [{"id": "rec-2"}]


async def test_the_override_origin_variable_points_the_client_at_a_server(
    monkeypatch: pytest.MonkeyPatch, fake: FakeLLMObsServer, seeded: Seeded
) -> None:
    # ddtrace's variable: an app is pointed at the fake without a code change.
    monkeypatch.setenv("DD_LLMOBS_OVERRIDE_ORIGIN", fake.base_url)
    monkeypatch.setenv("DD_API_KEY", fake.api_key)
    monkeypatch.setenv("DD_APP_KEY", fake.app_key)
    async with LLMObsClient() as client:
        assert client.base_url == fake.base_url
        assert (await client.projects.get(seeded.project_id)).name == "proj"
    assert LLMObsClient(site="datadoghq.eu").base_url == "https://api.datadoghq.eu"
    monkeypatch.setenv("DD_LLMOBS_OVERRIDE_ORIGIN", "http://example.com")
    with pytest.raises(errors.ValidationError) as caught:
        LLMObsClient()
    assert caught.value.field == "DD_LLMOBS_OVERRIDE_ORIGIN"
