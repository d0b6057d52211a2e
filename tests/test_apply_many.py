"""``records.apply_many``: every kind of change in one stream, one dataset version.

Inserts, updates, deletes and tag operations go in the body ddtrace's
``Dataset.push()`` sends.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmobs_async import BulkOutcomeUnknownError, LLMObsClient, errors, models
from llmobs_async.testing import FakeLLMObsServer, RecordedRequest

from . import live_bodies
from .conftest import Seeded
from .test_bulk import check, writes

FIELDS = ["insert_records", "update_records", "delete_records", "deduplicate", "create_new_version"]


def mixed(n: int) -> list[Any]:
    """n changes in turn: insert new-i, update rec-i (with a tag), delete del-i."""
    out: list[Any] = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            out.append({"op": "insert", "id": f"new-{i}", "input": {"n": i}, "tags": ["src:job"]})
        elif kind == 1:
            out.append(
                {"op": "update", "id": f"rec-{i}", "expected_output": f"out-{i}",
                 "tag_operations": {"add": ["seen:1"]}}
            )  # fmt: skip
        else:
            out.append({"op": "delete", "id": f"del-{i}"})
    return out


@pytest.fixture
def dataset(fake: FakeLLMObsServer) -> tuple[str, str]:
    """Records rec-i and del-i for i < 600."""
    pid = fake.add_project(name="mixed")
    records = [{"id": f"{p}-{i}", "input": i} for i in range(600) for p in ("rec", "del")]
    return pid, fake.add_dataset(project_id=pid, records=records)


def attributes(request: RecordedRequest) -> dict[str, Any]:
    attrs: dict[str, Any] = request.json()["data"]["attributes"]
    return attrs


async def test_a_mixed_job_applies_every_kind_of_change_in_one_version(
    fake: FakeLLMObsServer, client: LLMObsClient, dataset: tuple[str, str]
) -> None:
    pid, did = dataset
    before = fake.datasets[did].version
    changes = mixed(300)
    result = check(await client.records.apply_many(pid, did, changes, batch_size=50))
    assert (result.ok, result.submitted, result.applied) == (True, 300, 300)
    assert fake.datasets[did].version == before + 1
    sent = [attributes(r) for r in writes(fake)]
    assert len(sent) == 6
    # Every body carries the three arrays, in ddtrace's order, each change in its own.
    assert all(list(a) == FIELDS for a in sent)
    assert [a["create_new_version"] for a in sent] == [True] + [False] * 5
    assert [len(a[f]) for a in sent[:1] for f in FIELDS[:3]] == [17, 17, 16]
    stored = fake.records(did)
    for i in range(300):
        if i % 3 == 0:
            assert stored[f"new-{i}"]["input"] == {"n": i}
            assert stored[f"new-{i}"]["tags"] == ["src:job"]
        elif i % 3 == 1:
            assert stored[f"rec-{i}"]["expected_output"] == f"out-{i}"
            assert stored[f"rec-{i}"]["tags"] == ["seen:1"]
        else:
            assert f"del-{i}" not in stored


async def test_batches_are_cut_by_encoded_size_and_no_body_is_over_the_cap(
    fake: FakeLLMObsServer, client: LLMObsClient, dataset: tuple[str, str]
) -> None:
    pid, did = dataset
    changes = mixed(300)
    for change in changes[::3]:
        change["input"] = {"text": "x" * 200}
    result = check(await client.records.apply_many(pid, did, changes, max_batch_bytes=4096))
    assert result.ok and result.applied == 300
    sizes = [len(r.body) for r in writes(fake)]
    counts = [sum(len(a[f]) for f in FIELDS[:3]) for a in map(attributes, writes(fake))]
    assert max(sizes) <= 4096 and sum(counts) == 300
    # Cut by size alone (batch_size is 1,000), and filled: each body but the last is within
    # one change (under 300 bytes) of the cap, less the 11-byte mark each change is counted
    # with but not sent.
    assert len(sizes) > 1
    assert all(size > 4096 - 300 - 11 * n for size, n in zip(sizes[:-1], counts, strict=False))


async def test_the_body_is_ddtraces_recorded_batch_update(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    """API-REFERENCE 2.3's recording of ``Dataset.push()``, sent through ``apply_many``."""
    recorded = json.loads(live_bodies.BATCH_UPDATE_REQUEST)
    pid = fake.add_project(name="p")
    did = fake.add_dataset(project_id=pid, id=recorded["data"]["id"])
    change = models.RecordCreate(
        input={"prompt": "What is the capital of Massachusetts?"},
        expected_output={"answer": "Boston"},
        id="record-id-1",
        tags=["team:ml", "priority:high"],
    )
    check(await client.records.apply_many(pid, did, [change]))
    [request] = writes(fake)
    sent = request.json()
    # ddtrace writes "metadata": null for "no metadata"; this client leaves it out.
    del recorded["data"]["attributes"]["insert_records"][0]["metadata"]
    assert sent == recorded
    assert list(sent["data"]["attributes"]) == FIELDS
    assert list(sent["data"]["attributes"]["insert_records"][0]) == [
        "input", "expected_output", "id", "tags"
    ]  # fmt: skip
    assert fake.records(did)["record-id-1"]["tags"] == ["priority:high", "team:ml"]


async def test_models_say_what_each_change_is(
    fake: FakeLLMObsServer, client: LLMObsClient, dataset: tuple[str, str]
) -> None:
    pid, did = dataset
    changes = [
        models.RecordCreate(input="a", id="new-a"),
        models.RecordUpdate(id="rec-1", input="changed"),
        models.RecordDelete("del-1"),
        {"op": "update", "id": "rec-2", "tag_operations": models.TagOperations(replace=["x:1"])},
    ]
    result = check(await client.records.apply_many(pid, did, changes))
    assert result.ok and result.applied == 4
    [body] = [attributes(r) for r in writes(fake)]
    assert body["insert_records"] == [{"input": "a", "id": "new-a"}]
    assert body["update_records"] == [
        {"id": "rec-1", "input": "changed"},
        {"id": "rec-2", "tag_operations": {"set": ["x:1"]}},
    ]
    assert body["delete_records"] == ["del-1"]
    stored = fake.records(did)
    assert "new-a" in stored and "del-1" not in stored and stored["rec-1"]["input"] == "changed"
    assert stored["rec-2"]["tags"] == ["x:1"]


async def test_refused_changes_are_isolated_and_reported_with_their_error(
    fake: FakeLLMObsServer, client: LLMObsClient, dataset: tuple[str, str]
) -> None:
    pid, did = dataset
    before = fake.datasets[did].version
    fake.reject_record("new-30")  # an insert
    changes = mixed(120)
    changes[61] = {"op": "update", "id": "nowhere", "input": 1}  # 404 from the API
    changes[62] = {"op": "delete", "id": "gone"}  # 404 too
    result = check(await client.records.apply_many(pid, did, changes, batch_size=40))
    assert result.applied == 117
    assert sorted(map(str, result.failed_ids)) == ["gone", "new-30", "nowhere"]
    by_id = {f.record_ids[0]: f for f in result.failed}
    assert isinstance(by_id["nowhere"].error, errors.NotFoundError)
    assert by_id["nowhere"].records == (changes[61],) and by_id["nowhere"].positions == (61,)
    assert isinstance(by_id["new-30"].error, errors.BadRequestError)
    assert fake.datasets[did].version == before + 1
    stored = fake.records(did)
    assert "new-30" not in stored and "new-33" in stored and "del-59" not in stored


async def test_the_item_an_error_points_at_is_probed_first(
    fake: FakeLLMObsServer, client: LLMObsClient, dataset: tuple[str, str]
) -> None:
    """A pointer ``update_records/k`` names the batch's k-th update, not its k-th change."""
    pid, did = dataset
    changes = mixed(60)
    changes[40] = {"op": "update", "id": "nowhere", "input": 1}
    result = check(await client.records.apply_many(pid, did, changes, batch_size=60))
    assert result.applied == 59 and result.failed_ids == ["nowhere"]
    sent = writes(fake)
    # the batch, the change pointed at alone, then the rest: no bisection
    assert len(sent) == 3
    assert attributes(sent[1])["update_records"] == [{"id": "nowhere", "input": 1}]


async def test_a_lost_answer_to_the_first_batch_makes_no_second_version(
    fake: FakeLLMObsServer, client: LLMObsClient, dataset: tuple[str, str]
) -> None:
    pid, did = dataset
    before = fake.datasets[did].version
    fake.inject(drop=True, applied=True, match=lambda r: b'"new-0"' in r.body)
    # The first batch inserts and updates: a re-sent delete that had landed would be
    # answered 404 (its record is gone), as in delete_many.
    first = [c for c in mixed(45) if c["op"] != "delete"]
    changes = first + [{"op": "delete", "id": f"del-{i}"} for i in range(60)]
    result = check(await client.records.apply_many(pid, did, changes, batch_size=30))
    assert (result.ok, result.applied, result.retries) == (True, 90, 1)
    assert fake.datasets[did].version == before + 1
    flags = [attributes(r)["create_new_version"] for r in writes(fake)]
    assert flags == [True, False, False, False]


async def test_without_deduplication_a_lost_answer_is_not_sent_again(
    fake: FakeLLMObsServer, client: LLMObsClient, dataset: tuple[str, str]
) -> None:
    pid, did = dataset
    fake.inject(status=503, times=None, match=lambda r: b'"new-0"' in r.body)
    changes = mixed(60)
    result = check(
        await client.records.apply_many(pid, did, changes, batch_size=30, deduplicate=False)
    )
    assert result.applied == 30
    assert all(isinstance(f.error, BulkOutcomeUnknownError) for f in result.failed)
    assert [a["deduplicate"] for a in map(attributes, writes(fake))][-1] is False


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"id": "rec-1", "input": 1}, "changes[1].op"),
        ({"op": "upsert", "id": "rec-1"}, "changes[1].op"),
        ({"op": "delete", "id": "rec-1", "input": 1}, "changes[1].input"),
        ({"op": "delete"}, "changes[1].id"),
        ({"op": "insert", "expected_output": 1}, "changes[1].input"),
        ({"op": "update", "input": 1}, "changes[1].id"),
        ({"op": "update", "id": "r", "tag_operations": {"add": ["x"]}},
         "changes[1].tag_operations.add[0]"),
        ("rec-1", "changes[1]"),
    ],
)  # fmt: skip
async def test_a_bad_change_fails_alone_and_is_not_sent(
    fake: FakeLLMObsServer, client: LLMObsClient, dataset: tuple[str, str], change: Any, field: str
) -> None:
    pid, did = dataset
    changes = [{"op": "delete", "id": "del-0"}, change, {"op": "delete", "id": "del-2"}]
    result = check(await client.records.apply_many(pid, did, changes))
    assert result.applied == 2 and result.failed_count == 1
    error = result.failed[0].error
    assert isinstance(error, errors.ValidationError) and error.field == field
    assert result.failed[0].positions == (1,)
    [body] = [attributes(r) for r in writes(fake)]
    assert body["delete_records"] == ["del-0", "del-2"]
    assert body["insert_records"] == body["update_records"] == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"changes": {"op": "delete", "id": "x"}}, "changes"),
        ({"changes": [], "deduplicate": "yes"}, "deduplicate"),
        ({"changes": [], "batch_size": 0}, "batch_size"),
    ],
)
async def test_bad_arguments_are_refused_before_anything_is_sent(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded, kwargs: Any, field: str
) -> None:
    with pytest.raises(errors.ValidationError) as caught:
        await client.records.apply_many(seeded.project_id, seeded.dataset_id, **kwargs)
    assert caught.value.field == field
    assert fake.requests == []
