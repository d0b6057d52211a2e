"""``with_raw_response``: the typed result with the final attempt's status, headers and retries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from llmobs_async import APIResponse, LLMObsClient, errors, models
from llmobs_async.testing import FakeLLMObsServer

from .conftest import Seeded, client_for


@pytest.fixture
async def limited() -> AsyncIterator[FakeLLMObsServer]:
    """A fake that sends ``X-RateLimit-*`` headers with every answer (100 per minute)."""
    async with FakeLLMObsServer(rate_limit=(100, 60)) as server:
        yield server


async def test_the_final_attempt_after_a_retried_503_with_the_typed_result(
    limited: FakeLLMObsServer,
) -> None:
    project_id = limited.add_project(name="p")
    async with client_for(limited) as client:
        limited.inject(status=503, headers={"X-Request-Id": "first"})
        raw = await client.projects.with_raw_response.update(project_id, name="renamed")
    assert isinstance(raw, APIResponse)
    assert (raw.status, raw.retries) == (200, 1)
    assert isinstance(raw.parsed, models.Project) and raw.parse() is raw.parsed
    assert raw.parsed.name == "renamed"
    assert raw.request_id is None  # the 503's header is not the final answer's
    info = raw.rate_limit  # the final answer's: the one request the limit counted
    assert info is not None
    assert (info.limit, info.period, info.remaining, info.name) == (100, 60.0, 99, "llm_obs_fake")
    assert raw.headers["Content-Type"].startswith("application/json")
    assert raw.elapsed > 0
    assert [r.status for r in limited.requests] == [503, 200]


async def test_the_request_id_and_a_bodiless_answer(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    fake.inject(status=204, body=b"", headers={"X-Request-Id": "req-42"}, applied=True)
    raw = await client.experiments.with_raw_response.delete(seeded.experiment_id)
    assert (raw.status, raw.request_id, raw.parsed, raw.retries) == (204, "req-42", None, 0)
    assert raw.rate_limit is None  # the fake without a rate limit sends none


async def test_an_update_s_raw_response_is_the_write_s_not_the_read_back_s(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    fake.inject(status=503, match=lambda r: r.method == "PATCH")
    fake.inject(status=502, match=lambda r: r.method == "GET")  # a retried read-back
    raw = await client.experiments.with_raw_response.update(
        seeded.experiment_id, status="running", extra_headers={"X-Tag": "t"}
    )
    assert isinstance(raw.parsed, models.Experiment) and raw.parsed.status == "running"
    assert raw.retries == 1  # the PATCH's; the read-back's retry is not counted
    assert [(r.method, r.status) for r in fake.requests][:2] == [("PATCH", 503), ("PATCH", 200)]
    assert all(r.headers.get("X-Tag") == "t" for r in fake.requests)  # options pass through


async def test_every_resource_has_its_raw_methods(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    dataset = await client.datasets.with_raw_response.get(seeded.project_id, seeded.dataset_id)
    versions = await client.datasets.with_raw_response.versions(
        seeded.project_id, seeded.dataset_id
    )
    records = await client.records.with_raw_response.update(
        seeded.project_id, seeded.dataset_id, [{"id": "rec-1", "input": "x"}]
    )
    created = await client.experiments.with_raw_response.create(
        seeded.project_id, seeded.dataset_id, "run"
    )
    assert dataset.parsed.id == seeded.dataset_id and dataset.status == 200
    assert isinstance(versions.parsed, list)
    assert records.parsed[0].id == "rec-1"
    assert (created.parsed.name or "").startswith("run")
    fake.inject(status=429, headers={"Retry-After": "0"})
    pushed = await client.experiments.events.with_raw_response.create(
        seeded.experiment_id,
        metrics=[
            {
                "span_id": "s",
                "label": "acc",
                "metric_type": "score",
                "timestamp_ms": int(time.time() * 1000),
                "score_value": 1.0,
            }
        ],
    )
    assert (pushed.status, pushed.retries, pushed.parsed) == (202, 1, None)


async def test_concurrent_raw_calls_each_get_their_own_answer(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    ids = [fake.add_project(name=f"p{i}") for i in range(4)]
    fake.inject(status=503, match=lambda r: ids[2] in r.path)
    answers = await asyncio.gather(
        *(client.projects.with_raw_response.update(i, name=f"n-{i}") for i in ids)
    )
    assert [a.parsed.id for a in answers] == ids
    assert [a.retries for a in answers] == [0, 0, 1, 0]


async def test_a_failing_call_raises_as_it_would_without_raw(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    with pytest.raises(errors.NotFoundError):
        await client.projects.with_raw_response.get("nope")


async def test_no_key_in_the_raw_response_or_its_repr(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    raw = await client.projects.with_raw_response.get(seeded.project_id, extra_headers={"X-A": "1"})
    shown = f"{raw!r} {raw.headers!r} {dict(raw.headers)} {raw.rate_limit!r}"
    for secret in (fake.api_key, fake.app_key):
        assert secret not in shown
    assert "DD-API-KEY" not in raw.headers and "X-A" not in raw.headers  # the response's own
    assert repr(raw).startswith("APIResponse(status=200, retries=0,")
