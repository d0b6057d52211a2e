"""``client.records`` against the fake: list, create, update, delete, and the bulk jobs."""

from __future__ import annotations

from collections import Counter

import pytest

from llmobs_async import LLMObsClient, errors, models
from llmobs_async.testing import Chaos, FakeLLMObsServer

from ..conftest import Seeded, client_for


async def test_list_reads_every_record_of_the_current_version(
    client: LLMObsClient, seeded: Seeded
) -> None:
    records = [r async for r in client.records.list(seeded.project_id, seeded.dataset_id)]
    assert sorted(r.id for r in records) == sorted(f"rec-{i}" for i in range(10))
    assert all(r.dataset_id == seeded.dataset_id and r.created_at for r in records)


async def test_list_at_an_older_version_and_by_tags(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    pid, did = seeded.project_id, seeded.dataset_id
    old = fake.store.datasets[did].version
    await client.records.create(pid, did, [{"input": "tagged", "id": "t1", "tags": ["team:ml"]}])
    at_old = [r.id async for r in client.records.list(pid, did, version=old)]
    assert "t1" not in at_old and len(at_old) == 10
    [tagged] = [r async for r in client.records.list(pid, did, tags=["team:ml"])]
    assert (tagged.id, tagged.tags, tagged.input) == ("t1", ("team:ml",), "tagged")
    assert fake.requests[-1].query["filter[tags]"] == ["team:ml"]
    with pytest.raises(errors.BadRequestError, match="invalid version"):
        [r async for r in client.records.list(pid, did, version=old + 5)]


async def test_create_returns_the_stored_records_with_their_version(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    created = await client.records.create(
        seeded.project_id,
        seeded.dataset_id,
        [
            {"input": {"q": 1}, "expected_output": "a", "metadata": {"m": 1}},
            models.RecordCreate(input="x", id="mine", tags=["k:v"]),
        ],
        deduplicate=False,
    )
    assert [r.input for r in created] == [{"q": 1}, "x"]
    assert created[1].id == "mine" and created[1].tags == ("k:v",)
    version = fake.store.datasets[seeded.dataset_id].version
    assert {r.version for r in created} == {version}
    body = fake.requests[-1].json()["data"]
    assert body["type"] == "records" and body["attributes"]["deduplicate"] is False


@pytest.mark.parametrize(
    ("records", "field"),
    [
        ([{"expected_output": "no input"}], "records[0].input"),
        ([{"input": 1}, {"input": 2, "bogus": 1}], "records[1].bogus"),
        ([{"input": 1, "tags": "a:b"}], "records[0].tags"),
        ([], "records"),
    ],
)
async def test_create_refuses_bad_records_before_sending(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded, records: list, field: str
) -> None:
    with pytest.raises(errors.ValidationError) as caught:
        await client.records.create(seeded.project_id, seeded.dataset_id, records)
    assert caught.value.field == field and fake.requests == []


async def test_delete_removes_records_and_an_unknown_id_is_not_found(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    await client.records.delete(seeded.project_id, seeded.dataset_id, ["rec-1", "rec-2"])
    assert "rec-1" not in fake.records(seeded.dataset_id) and fake.requests[-1].status == 204
    with pytest.raises(errors.NotFoundError):
        await client.records.delete(seeded.project_id, seeded.dataset_id, "rec-404")


async def test_create_many_makes_one_dataset_version_for_the_whole_job(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    did = seeded.dataset_id
    before = fake.store.datasets[did].version
    fake.inject(status=503, times=2)
    result = await client.records.create_many(
        seeded.project_id,
        did,
        ({"input": i, "id": f"new-{i}"} for i in range(2500)),
        batch_size=500,
    )
    assert (result.ok, result.applied, result.submitted) == (True, 2500, 2500)
    assert fake.store.datasets[did].version == before + 1
    batches = [r for r in fake.requests if r.url_path.endswith("/batch_update") and r.status == 200]
    flags = [r.json()["data"]["attributes"]["create_new_version"] for r in batches]
    assert flags == [True] + [False] * 4
    assert len(fake.records(did)) == 2510


async def test_create_many_isolates_a_bad_record_and_reports_it(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    fake.reject_record("bad-7")
    items = [{"input": i, "id": f"ok-{i}"} for i in range(20)]
    items[7] = {"input": "x", "id": "bad-7"}
    items[12] = {"expected_output": "no input"}  # refused before sending
    result = await client.records.create_many(seeded.project_id, seeded.dataset_id, items)
    assert result.applied == 18 and result.submitted == 20
    assert sorted(f.record_ids[0] or "" for f in result.failed) == ["", "bad-7"]
    assert "bad-7" not in fake.records(seeded.dataset_id)


async def test_delete_many_deletes_every_id_in_one_version(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    before = fake.store.datasets[seeded.dataset_id].version
    result = await client.records.delete_many(
        seeded.project_id, seeded.dataset_id, iter([f"rec-{i}" for i in range(8)]), batch_size=3
    )
    assert (result.ok, result.applied) == (True, 8)
    assert sorted(fake.records(seeded.dataset_id)) == ["rec-8", "rec-9"]
    assert fake.store.datasets[seeded.dataset_id].version == before + 1
    bad = await client.records.delete_many(seeded.project_id, seeded.dataset_id, ["rec-8", ""])
    assert bad.applied == 1 and bad.failed[0].error.field == "records[1].id"  # type: ignore[attr-defined]


async def test_a_100000_record_pull_through_faults_returns_every_id_exactly_once() -> None:
    async with FakeLLMObsServer() as fake:
        pid = fake.add_project()
        did = fake.add_dataset(project_id=pid, records=100_000)
        fake.chaos = Chaos(error_rate=0.1, rate_limit_rate=0.05, drop_rate=0.03, seed=11)
        async with client_for(fake) as client:
            counts = Counter([r.id async for r in client.records.list(pid, did, page_size=2000)])
        answered = Counter(r.status for r in fake.requests)
    assert len(counts) == 100_000 and set(counts.values()) == {1}
    assert counts.keys() == {f"rec-{i}" for i in range(100_000)}
    assert answered[200] == 50 and sum(answered.values()) > 50  # faults were met and waited out
