"""Tag operations on many records, through ``batch_update`` as ddtrace sends them.

``add_tags``, ``remove_tags``, ``replace_tags``, and ``tag_operations`` on
``update_many`` items.
"""

from __future__ import annotations

from typing import Any

import pytest

from llmobs_async import LLMObsClient, errors, models
from llmobs_async.testing import FakeLLMObsServer

from .test_bulk import check, writes

N = 250


@pytest.fixture
def tagged(fake: FakeLLMObsServer) -> tuple[str, str]:
    """A dataset of N records, each tagged ``team:a`` and ``env:dev``."""
    pid = fake.add_project(name="tags")
    records = [{"id": f"rec-{i}", "input": i, "tags": ["team:a", "env:dev"]} for i in range(N)]
    return pid, fake.add_dataset(project_id=pid, records=records)


def tags_of(fake: FakeLLMObsServer, did: str) -> dict[str, list[str]]:
    return {rid: sorted(rec.get("tags") or ()) for rid, rec in fake.records(did).items()}


def update_items(fake: FakeLLMObsServer) -> list[dict[str, Any]]:
    return [item for r in writes(fake) for item in r.json()["data"]["attributes"]["update_records"]]


def ddtrace_update_item(record_id: str, tag_ops: dict[str, list[str]]) -> dict[str, Any]:
    """ddtrace's ``_get_record_json(..., is_update=True)`` for a tag-only update.

    It sends ``input``, ``expected_output`` and ``metadata`` as null (unchanged
    on the live API) and maps ``replace`` to the wire's ``set``.
    """
    wire = {{"replace": "set"}.get(k, k): v for k, v in tag_ops.items()}
    return {
        "input": None,
        "expected_output": None,
        "metadata": None,
        "id": record_id,
        "tag_operations": wire,
    }


def without_nulls(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if v is not None}


@pytest.mark.parametrize(
    ("method", "tags", "ddtrace_ops", "expected"),
    [
        ("add_tags", ["team:b", "prio:high"], {"add": ["team:b", "prio:high"]},
         ["env:dev", "prio:high", "team:a", "team:b"]),
        ("remove_tags", ["team:a", "absent:x"], {"remove": ["team:a", "absent:x"]}, ["env:dev"]),
        ("replace_tags", ["team:c"], {"replace": ["team:c"]}, ["team:c"]),
        ("replace_tags", [], {"replace": []}, []),
    ],
)  # fmt: skip
async def test_a_tag_job_changes_every_record_in_one_version_in_ddtraces_shape(
    fake: FakeLLMObsServer,
    client: LLMObsClient,
    tagged: tuple[str, str],
    method: str,
    tags: list[str],
    ddtrace_ops: dict[str, list[str]],
    expected: list[str],
) -> None:
    pid, did = tagged
    before = fake.datasets[did].version
    ids = [f"rec-{i}" for i in range(0, N, 2)]  # every other record: 125
    result = check(await getattr(client.records, method)(pid, did, ids, tags, batch_size=50))
    assert (result.ok, result.applied, result.submitted) == (True, 125, 125)
    now = tags_of(fake, did)
    assert all(now[rid] == expected for rid in ids)
    assert all(now[f"rec-{i}"] == ["env:dev", "team:a"] for i in range(1, N, 2))
    assert fake.datasets[did].version == before + 1
    flags = [r.json()["data"]["attributes"]["create_new_version"] for r in writes(fake)]
    assert flags == [True, False, False]
    # Each item is what ddtrace sends for the same call, less its nulls ("unchanged").
    items = update_items(fake)
    assert items == [without_nulls(ddtrace_update_item(rid, ddtrace_ops)) for rid in ids]


async def test_a_single_record_id_is_one_record(
    fake: FakeLLMObsServer, client: LLMObsClient, tagged: tuple[str, str]
) -> None:
    pid, did = tagged
    result = check(await client.records.add_tags(pid, did, "rec-3", ["k:v"]))
    assert (result.applied, result.submitted) == (1, 1)
    assert tags_of(fake, did)["rec-3"] == ["env:dev", "k:v", "team:a"]
    assert len(writes(fake)) == 1


async def test_an_async_iterable_of_ids_is_read_lazily(
    fake: FakeLLMObsServer, client: LLMObsClient, tagged: tuple[str, str]
) -> None:
    pid, did = tagged

    async def ids() -> Any:
        for i in range(N):
            yield f"rec-{i}"

    result = check(await client.records.remove_tags(pid, did, ids(), ["env:dev"], batch_size=100))
    assert result.applied == N
    assert set(map(tuple, tags_of(fake, did).values())) == {("team:a",)}


async def test_a_refused_record_in_a_tag_job_is_isolated_and_reported(
    fake: FakeLLMObsServer, client: LLMObsClient, tagged: tuple[str, str]
) -> None:
    pid, did = tagged
    before = fake.datasets[did].version
    fake.reject_record("rec-7")
    ids = [f"rec-{i}" for i in range(100)] + ["missing"]
    result = check(await client.records.add_tags(pid, did, ids, ["k:v"], batch_size=50))
    assert result.applied == 99
    assert sorted(map(str, result.failed_ids)) == ["missing", "rec-7"]
    by_id = {f.record_ids[0]: f for f in result.failed}
    assert isinstance(by_id["missing"].error, errors.NotFoundError)
    assert by_id["rec-7"].records == ("rec-7",) and by_id["rec-7"].positions == (7,)
    assert "k:v" not in tags_of(fake, did)["rec-7"]
    assert fake.datasets[did].version == before + 1


async def test_update_many_items_carry_tag_operations_applied_remove_add_set(
    fake: FakeLLMObsServer, client: LLMObsClient, tagged: tuple[str, str]
) -> None:
    pid, did = tagged
    items: list[Any] = [
        # remove runs before add: a tag both removed and added stays
        {"id": "rec-0", "expected_output": "x", "tag_operations": {"remove": ["team:a"],
                                                                   "add": ["team:a", "n:1"]}},
        # set (or replace) overrides add and remove
        {"id": "rec-1", "tag_operations": {"add": ["n:2"], "set": ["only:1"]}},
        {"id": "rec-2", "tag_operations": models.TagOperations(remove=["env:dev"])},
        models.RecordUpdate(id="rec-3", expected_output="plain"),
    ]  # fmt: skip
    result = check(await client.records.update_many(pid, did, items))
    assert result.ok and result.applied == 4
    now, stored = tags_of(fake, did), fake.records(did)
    assert now["rec-0"] == ["env:dev", "n:1", "team:a"]
    assert stored["rec-0"]["expected_output"] == "x"
    assert now["rec-1"] == ["only:1"]
    assert now["rec-2"] == ["team:a"]
    assert now["rec-3"] == ["env:dev", "team:a"] and stored["rec-3"]["expected_output"] == "plain"
    assert update_items(fake)[:3] == [
        {"id": "rec-0", "expected_output": "x",
         "tag_operations": {"add": ["team:a", "n:1"], "remove": ["team:a"]}},
        {"id": "rec-1", "tag_operations": {"add": ["n:2"], "set": ["only:1"]}},
        {"id": "rec-2", "tag_operations": {"remove": ["env:dev"]}},
    ]  # fmt: skip


# --- bad input: a ValidationError naming the field, nothing sent ----------------------------


@pytest.mark.parametrize(
    ("method", "tags", "field"),
    [
        ("add_tags", ["team:b", "nocolon"], "tags[1]"),
        ("replace_tags", ["ok:1", ""], "tags[1]"),
        ("remove_tags", ["ok:1", 3], "tags[1]"),
        ("add_tags", [], "tags"),
        ("remove_tags", [], "tags"),
        ("add_tags", "team:b", "tags"),
    ],
)
async def test_bad_tags_are_refused_before_anything_is_sent(
    fake: FakeLLMObsServer,
    client: LLMObsClient,
    tagged: tuple[str, str],
    method: str,
    tags: Any,
    field: str,
) -> None:
    pid, did = tagged
    with pytest.raises(errors.ValidationError) as caught:
        await getattr(client.records, method)(pid, did, ["rec-1"], tags)
    assert caught.value.field == field
    assert fake.requests == []


async def test_remove_tags_takes_a_tag_without_a_colon(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    pid = fake.add_project(name="p")
    did = fake.add_dataset(project_id=pid, records=[{"id": "r", "input": 1, "tags": ["legacy"]}])
    check(await client.records.remove_tags(pid, did, ["r"], ["legacy"]))
    assert tags_of(fake, did)["r"] == []


@pytest.mark.parametrize(
    ("operations", "field"),
    [
        ({"add": ["nocolon"]}, "records[1].tag_operations.add[0]"),
        ({"remove": "team:a"}, "records[1].tag_operations.remove"),
        ({"append": ["a:b"]}, "records[1].tag_operations.append"),
        ({"set": ["a:b"], "replace": ["c:d"]}, "records[1].tag_operations.replace"),
        ({}, "records[1].tag_operations"),
        (["add", "a:b"], "records[1].tag_operations"),
    ],
)
async def test_bad_tag_operations_fail_their_item_and_are_not_sent(
    fake: FakeLLMObsServer,
    client: LLMObsClient,
    tagged: tuple[str, str],
    operations: Any,
    field: str,
) -> None:
    pid, did = tagged
    items = [{"id": "rec-0", "tag_operations": {"add": ["a:b"]}},
             {"id": "rec-1", "tag_operations": operations}]  # fmt: skip
    result = check(await client.records.update_many(pid, did, items))
    assert result.applied == 1 and result.failed_ids == ["rec-1"]
    error = result.failed[0].error
    assert isinstance(error, errors.ValidationError) and error.field == field
    assert [item["id"] for item in update_items(fake)] == ["rec-0"]


def test_tag_operations_model_validates_and_encodes_replace_as_set() -> None:
    ops = models.TagOperations(add=["a:1"], remove=["b"], replace=[])
    assert ops.wire() == b'{"add":["a:1"],"remove":["b"],"set":[]}'
    with pytest.raises(errors.ValidationError) as caught:
        models.TagOperations()
    assert "empty" in str(caught.value)
    with pytest.raises(errors.ValidationError) as caught:
        models.TagOperations(replace=["x"])
    assert caught.value.field == "replace[0]"


async def test_a_bad_record_id_fails_alone_and_is_not_sent(
    fake: FakeLLMObsServer, client: LLMObsClient, tagged: tuple[str, str]
) -> None:
    pid, did = tagged
    result = check(await client.records.add_tags(pid, did, ["rec-1", 5, " "], ["k:v"]))
    assert result.applied == 1
    fields = [f.error.field for f in result.failed if isinstance(f.error, errors.ValidationError)]
    assert fields == ["record_ids[1].id", "record_ids[2].id"]
    assert [item["id"] for item in update_items(fake)] == ["rec-1"]
