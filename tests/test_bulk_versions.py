"""A bulk job makes exactly one new dataset version, and counts only what the API applied.

Each fault hits the job's first batch (the one that asks for the new version)
unless said otherwise: a refused record, a 5xx, an answer lost after the
write landed, a 200 that is not the API's answer.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from llmobs_async import BulkOutcomeUnknownError, LLMObsClient, errors
from llmobs_async.testing import FakeLLMObsServer, RecordedRequest

from .conftest import Seeded, client_for
from .test_bulk import check, writes

BATCH = 100


def new_records(n: int, *, ids: bool = True) -> list[dict[str, Any]]:
    return [{"input": {"n": i}, **({"id": f"new-{i}"} if ids else {})} for i in range(n)]


def first_batch(request: RecordedRequest) -> bool:
    """The job's first batch: it carries new-0 (or rec-0, or the first id to delete)."""
    return request.method == "POST" and any(
        needle in request.body for needle in (b'"new-0"', b'{"n":0}', b'"rec-0"')
    )


def versions_made(fake: FakeLLMObsServer, dataset_id: str, before: int) -> int:
    return fake.datasets[dataset_id].version - before


def new_version_flags(fake: FakeLLMObsServer) -> list[bool]:
    return [r.json()["data"]["attributes"]["create_new_version"] for r in writes(fake)]


async def listed_at(client: LLMObsClient, seeded: Seeded, version: int) -> set[str]:
    pid, did = seeded.project_id, seeded.dataset_id
    return {r.id async for r in client.records.list(pid, did, version=version)}


async def test_a_refused_record_in_the_first_batch_does_not_send_the_job_into_the_old_version(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    did = seeded.dataset_id
    before = fake.datasets[did].version
    fake.reject_record("new-3")
    result = check(
        await client.records.create_many(
            seeded.project_id, did, new_records(2500), batch_size=BATCH
        )
    )
    assert (result.applied, result.failed_ids) == (2499, ["new-3"])
    assert versions_made(fake, did, before) == 1
    # The version experiments may be pinned to is untouched.
    assert await listed_at(client, seeded, before) == {f"rec-{i}" for i in range(10)}
    assert len(await listed_at(client, seeded, before + 1)) == 2509


@pytest.mark.parametrize("job", ["create_many", "delete_many", "update_many"])
async def test_a_first_batch_that_fails_with_5xx_does_not_send_the_rest_into_the_old_version(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded, job: str
) -> None:
    pid, did = seeded.project_id, seeded.dataset_id
    fake.add_records(did, [{"id": f"rec-{i}", "input": i} for i in range(10, 500)])
    before = fake.datasets[did].version
    fake.inject(status=503, times=None, match=first_batch)  # every retry too
    items: Any = {
        "create_many": new_records(500),
        "delete_many": [f"rec-{i}" for i in range(500)],
        "update_many": [{"id": f"rec-{i}", "expected_output": "new"} for i in range(500)],
    }[job]
    result = check(await getattr(client.records, job)(pid, did, items, batch_size=BATCH))
    assert result.applied == 400 and result.failed_count == BATCH
    assert all(isinstance(f.error, errors.ServerError) for f in result.failed)
    assert versions_made(fake, did, before) == 1
    # The version was read before the job, before each retry of the batch that
    # asked for it, and before the next batch asked again.
    reads = [r for r in fake.requests if r.method == "GET"]
    assert len(reads) == 1 + client._transport.retry.max_retries + 1
    landed = [r for r in writes(fake) if r.status == 200]
    assert [r.json()["data"]["attributes"]["create_new_version"] for r in landed] == [True] + [
        False
    ] * 3


@pytest.mark.parametrize("lost", ["dropped", "502"])
@pytest.mark.parametrize("job", ["update_many", "create_many"])
async def test_a_first_batch_that_landed_but_lost_its_answer_makes_no_second_version(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded, job: str, lost: str
) -> None:
    pid, did = seeded.project_id, seeded.dataset_id
    before = fake.datasets[did].version
    if lost == "dropped":
        fake.inject(drop=True, applied=True, match=first_batch)
    else:  # a proxy's 502 after the API applied the request
        fake.inject_html(status=502, applied=True, match=first_batch)
    if job == "update_many":
        items = [{"id": f"rec-{i}", "expected_output": f"new-{i}"} for i in range(10)]
        result = check(await client.records.update_many(pid, did, items, batch_size=3))
        assert all(
            fake.records(did)[f"rec-{i}"]["expected_output"] == f"new-{i}" for i in range(10)
        )
    else:
        result = check(await client.records.create_many(pid, did, new_records(10), batch_size=3))
        assert len(fake.records(did)) == 20  # each once
    assert (result.ok, result.applied, result.retries) == (True, 10, 1)
    assert versions_made(fake, did, before) == 1
    # The re-sent first batch found the version made and added to it.
    assert new_version_flags(fake) == [True, False, False, False, False]


async def test_update_many_makes_one_version_per_job_not_one_per_batch(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    pid, did = seeded.project_id, seeded.dataset_id
    before = fake.datasets[did].version
    updates = [{"id": f"rec-{i}", "expected_output": f"new-{i}"} for i in range(10)]
    result = check(await client.records.update_many(pid, did, updates, batch_size=2))
    assert (result.ok, result.applied) == (True, 10)
    assert len(writes(fake)) == 5
    assert versions_made(fake, did, before) == 1
    assert new_version_flags(fake) == [True] + [False] * 4


async def test_update_many_refuses_a_null_that_batch_update_reads_as_unchanged(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    items = [{"id": "rec-1", "expected_output": None}, {"id": "rec-2", "expected_output": "x"}]
    result = check(await client.records.update_many(seeded.project_id, seeded.dataset_id, items))
    assert result.applied == 1 and result.failed_ids == ["rec-1"]
    [failure] = result.failed
    assert isinstance(failure.error, errors.ValidationError)
    assert failure.error.field == "records[0].expected_output"
    assert all(b'"rec-1"' not in r.body for r in writes(fake))


async def test_an_html_200_to_a_batch_fails_its_records_and_stores_nothing(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    did = seeded.dataset_id
    fake.inject_html(status=200, match=lambda r: r.method == "POST")
    result = check(
        await client.records.create_many(seeded.project_id, did, new_records(10, ids=False))
    )
    assert (result.applied, result.failed_count) == (0, 10)
    [failure] = result.failed
    assert isinstance(failure.error, errors.APIResponseValidationError) and failure.sent
    assert len(fake.records(did)) == 10  # the seeded ones only


async def test_an_html_200_after_the_first_batch_landed_still_makes_one_version(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    pid, did = seeded.project_id, seeded.dataset_id
    before = fake.datasets[did].version
    fake.inject_html(status=200, applied=True, match=first_batch)
    result = check(await client.records.create_many(pid, did, new_records(500), batch_size=BATCH))
    # The proxy's page says nothing: those records are failed, never counted applied.
    assert result.applied == 400
    assert isinstance(result.failed[0].error, errors.APIResponseValidationError)
    # The next batch read the version, found it made, and added to it.
    assert versions_made(fake, did, before) == 1
    assert new_version_flags(fake) == [True] + [False] * 4


async def test_an_unreadable_version_stops_the_job_before_anything_is_sent(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    fake.inject(status=503, times=None, match=lambda r: r.method == "GET")
    result = check(
        await client.records.create_many(seeded.project_id, seeded.dataset_id, new_records(50))
    )
    assert writes(fake) == [] and result.applied == 0
    assert result.stopped is not None and "current version" in str(result.stopped)
    assert all(not f.sent for f in result.failed) and result.failed_count == 50


async def test_create_many_without_deduplication_never_resends_an_unsure_batch(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    pid, did = seeded.project_id, seeded.dataset_id
    before = fake.datasets[did].version

    def second_batch(request: RecordedRequest) -> bool:
        return request.method == "POST" and b'{"n":100}' in request.body

    fake.inject(drop=True, applied=True, match=first_batch)
    fake.inject(drop=True, applied=True, match=second_batch)
    records = new_records(300, ids=False)
    result = check(
        await client.records.create_many(pid, did, records, deduplicate=False, batch_size=BATCH)
    )
    assert result.applied == 100
    assert [len(f.records) for f in result.failed] == [BATCH, BATCH]
    assert all(isinstance(f.error, BulkOutcomeUnknownError) for f in result.failed)
    assert all(isinstance(f.error.error, errors.APIConnectionError) for f in result.failed)  # type: ignore[attr-defined]
    # Nothing was added twice, and the job still made exactly one version.
    inputs = Counter(str(r["input"]) for r in fake.records(did).values())
    assert max(inputs.values()) == 1 and len(fake.records(did)) == 310
    assert versions_made(fake, did, before) == 1


async def test_records_create_without_deduplication_is_not_resent_after_a_lost_answer(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    pid, did = seeded.project_id, seeded.dataset_id
    fake.inject(drop=True, applied=True, match=lambda r: r.method == "POST")
    with pytest.raises(errors.APIConnectionError):
        await client.records.create(pid, did, new_records(3, ids=False), deduplicate=False)
    assert len(fake.requests) == 1 and len(fake.records(did)) == 13  # once, not twice
    # With deduplication (the default) the re-sent request is harmless, so it is sent.
    fake.inject(drop=True, applied=True, match=lambda r: r.method == "POST")
    created = await client.records.create(pid, did, [{"input": "again"}])
    assert len(fake.requests) == 3 and created == [] and len(fake.records(did)) == 14


async def test_the_fake_can_apply_a_request_and_lose_its_answer(
    fake: FakeLLMObsServer, seeded: Seeded
) -> None:
    fake.inject(drop=True, applied=True)
    async with client_for(fake, max_retries=0) as client:
        with pytest.raises(errors.APIConnectionError):
            await client.projects.update(seeded.project_id, name="renamed")
    assert fake.projects[seeded.project_id]["name"] == "renamed"
    assert fake.requests[-1].status == 0
