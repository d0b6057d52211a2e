"""The fake's records: create, list by version and tags, delete, batch_update, deduplication."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from llmobs_async.testing import FakeLLMObsServer

from .fakev2 import TIMESTAMP, A, Api, doc, ids, records_path

LIVE_DETAIL = "invalid version: version is greater than the current version or negative"


@pytest.fixture
async def api(llmobs_fake: FakeLLMObsServer) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as http:
        yield Api(llmobs_fake, http)


@pytest.fixture
async def where(api: Api) -> tuple[str, str]:
    pid = await api.project()
    return pid, await api.dataset(pid)


async def create(api: Api, where: tuple[str, str], *records: dict[str, Any], **extra: Any) -> Any:
    body = doc("records", {"records": list(records), **extra})
    return (await api.ok("POST", records_path(*where), body))["data"]


async def listed(api: Api, where: tuple[str, str], **params: str) -> list[str]:
    items, _ = await api.pull(records_path(*where), params)
    return ids(items)


async def test_create_generates_ids_answers_versions_and_lists_the_live_shape(
    api: Api, where: tuple[str, str]
) -> None:
    made = await create(
        api, where, {"input": {"q": 1}, "tags": ["team:ml", "a:b"]}, {"id": "mine", "input": 2}
    )
    assert [r["attributes"]["version"] for r in made] == [1, 1]
    assert made[1]["id"] == "mine" and made[0]["id"] not in ("", "mine")
    first = made[0]["attributes"]
    assert first["tags"] == ["a:b", "team:ml"]  # sorted, as live
    assert {"expected_output", "metadata"}.isdisjoint(first)  # empty: left out
    assert first["dataset_id"] == where[1] and TIMESTAMP.fullmatch(first["created_at"])
    page = await api.ok("GET", records_path(*where))
    assert page["meta"] == {"after": ""} and ids(page["data"]) == ["mine", made[0]["id"]]
    assert all(r["type"] == "datasets" and "version" not in r["attributes"] for r in page["data"])
    shown = page["data"][1]["attributes"]
    assert {k: shown[k] for k in ("canonical_id", "input")} == {
        k: first[k] for k in ("canonical_id", "input")
    }
    assert api.fake.datasets[where[1]].version == 1


async def test_filter_version_shows_the_records_of_that_version(
    api: Api, where: tuple[str, str]
) -> None:
    made = await create(api, where, {"id": "a", "input": 1}, {"id": "b", "input": 2})
    assert ids(made) == ["a", "b"]
    await create(api, where, {"id": "c", "input": 3})
    delete = doc("records", {"record_ids": ["a"]})
    gone = await api.post(records_path(*where, "/records/delete"), delete)
    assert (gone.status, gone.raw) == (204, b"")
    assert await listed(api, where, **{"filter[version]": "1"}) == ["b", "a"]
    assert await listed(api, where, **{"filter[version]": "2"}) == ["c", "b", "a"]
    assert await listed(api, where, **{"filter[version]": "3"}) == ["c", "b"]
    assert await listed(api, where) == ["c", "b"]  # current
    assert await listed(api, where, **{"filter[version]": "0"}) == []
    for bad in ("4", "-1", "one"):
        answer = await api.get(records_path(*where), {"filter[version]": bad})
        assert (answer.status, answer.parameter) == (400, "filter[version]")
        assert answer.error["detail"] == LIVE_DETAIL
    assert set(api.fake.records(where[1])) == {"b", "c"}


async def test_filter_tags_must_all_match(api: Api, where: tuple[str, str]) -> None:
    await create(
        api,
        where,
        {"id": "both", "input": 1, "tags": ["team:ml", "priority:high"]},
        {"id": "one", "input": 2, "tags": ["team:ml"]},
        {"id": "none", "input": 3},
    )
    tags = [("filter[tags]", "team:ml"), ("filter[tags]", "priority:high")]
    assert await listed(api, where, **{"filter[tags]": "team:ml"}) == ["one", "both"]
    assert ids((await api.ok("GET", records_path(*where), params=tags))["data"]) == ["both"]


async def test_delete_of_an_unknown_id_is_404_and_deletes_nothing(
    api: Api, where: tuple[str, str]
) -> None:
    await create(api, where, {"id": "a", "input": 1})
    body = doc("records", {"record_ids": ["a", "nope"]})
    answer = await api.post(records_path(*where, "/records/delete"), body)
    assert (answer.status, answer.pointer) == (404, f"{A}/record_ids/1")
    assert await listed(api, where) == ["a"] and api.fake.datasets[where[1]].version == 1


BAD_CREATES = {
    "no-input": ({"records": [{"input": 1}, {"expected_output": 1}]}, f"{A}/records/1/input"),
    "unknown-key": ({"records": [{"input": 1, "x": 2}]}, f"{A}/records/0/x"),
    "bad-tags": ({"records": [{"input": 1, "tags": "a"}]}, f"{A}/records/0/tags"),
    "bad-metadata": ({"records": [{"input": 1, "metadata": 3}]}, f"{A}/records/0/metadata"),
    "empty-id": ({"records": [{"input": 1, "id": ""}]}, f"{A}/records/0/id"),
    "empty": ({"records": []}, f"{A}/records"),
    "bad-deduplicate": ({"records": [{"input": 1}], "deduplicate": "no"}, f"{A}/deduplicate"),
}


@pytest.mark.parametrize(("attributes", "pointer"), BAD_CREATES.values(), ids=BAD_CREATES.keys())
async def test_bad_creates_are_400_with_a_pointer(
    api: Api, where: tuple[str, str], attributes: dict[str, Any], pointer: str
) -> None:
    answer = await api.post(records_path(*where), doc("records", attributes))
    assert (answer.status, answer.pointer) == (400, pointer)
    assert api.fake.datasets[where[1]].version == 0


async def test_deduplicate_skips_known_content_unless_turned_off(
    api: Api, where: tuple[str, str]
) -> None:
    await create(api, where, {"id": "a", "input": "q", "expected_output": "x"})
    assert await create(api, where, {"input": "q", "expected_output": "x"}) == []
    assert api.fake.datasets[where[1]].version == 1  # nothing changed: no version
    again = await create(api, where, {"input": "q", "expected_output": "x"}, deduplicate=False)
    named = await create(api, where, {"id": "b", "input": "q", "expected_output": "x"})
    assert len(again) == 1 and ids(named) == ["b"] and len(api.fake.records(where[1])) == 3


def batch(dataset_id: str, **attributes: Any) -> dict[str, Any]:
    return doc("datasets", attributes, id=dataset_id)


async def test_batch_update_applies_everything_as_one_version(
    api: Api, where: tuple[str, str]
) -> None:
    pid, did = where
    await create(
        api,
        where,
        {"id": "a", "input": "a", "expected_output": "old", "tags": ["t:1", "t:2"]},
        {"id": "b", "input": "b"},
    )
    body = batch(
        did,
        insert_records=[{"id": "c", "input": "c", "tags": ["new"]}],
        update_records=[
            {
                "id": "a",
                "input": None,
                "expected_output": "new",
                "tag_operations": {"remove": ["t:1"], "add": ["t:3"]},
            }
        ],
        delete_records=["b"],
        deduplicate=True,
        create_new_version=True,
        tags=["batch:1"],
    )
    answer = await api.post(records_path(pid, did, "/batch_update"), body)
    assert answer.status == 200
    [c, a] = answer.body["data"]
    assert (c["id"], a["id"]) == ("c", "a") and {
        c["attributes"]["version"],
        a["attributes"]["version"],
    } == {2}
    assert c["attributes"]["tags"] == ["batch:1", "new"]
    assert (a["attributes"]["input"], a["attributes"]["expected_output"]) == ("a", "new")
    assert a["attributes"]["tags"] == ["t:2", "t:3"]
    assert await listed(api, where) == ["c", "a"]
    assert await listed(api, where, **{"filter[version]": "1"}) == ["b", "a"]
    quiet = batch(did, insert_records=[{"input": "d"}], create_new_version=False)
    [d] = (await api.ok("POST", records_path(pid, did, "/batch_update"), quiet))["data"]
    assert d["attributes"]["version"] == 2 and api.fake.datasets[did].version == 2


async def test_batch_update_applies_tag_operations_of_inserts_too(
    api: Api, where: tuple[str, str]
) -> None:
    pid, did = where
    item = {"id": "e", "input": "e", "tags": ["a:1", "b:2"],
            "tag_operations": {"remove": ["a:1"], "add": ["c:3"]}}  # fmt: skip
    body = batch(did, insert_records=[item], update_records=[], delete_records=[])
    [made] = (await api.ok("POST", records_path(pid, did, "/batch_update"), body))["data"]
    assert made["attributes"]["tags"] == ["b:2", "c:3"]
    assert "tag_operations" not in made["attributes"]
    assert api.fake.records(did)["e"]["tags"] == ["b:2", "c:3"]


BAD_BATCHES = {
    "insert": ({"insert_records": [{"input": 1}, {"id": "x"}]}, 400, f"{A}/insert_records/1/input"),
    "update-unknown": (
        {"update_records": [{"id": "nope", "input": 1}]},
        404,
        f"{A}/update_records/0/id",
    ),
    "update-no-id": ({"update_records": [{"input": 1}]}, 400, f"{A}/update_records/0/id"),
    "delete-unknown": ({"delete_records": ["a", "nope"]}, 404, f"{A}/delete_records/1"),
    "tag-ops": (
        {"update_records": [{"id": "a", "tag_operations": {"drop": []}}]},
        400,
        f"{A}/update_records/0/tag_operations/drop",
    ),
    "version-flag": ({"create_new_version": "yes"}, 400, f"{A}/create_new_version"),
}


@pytest.mark.parametrize(
    ("attributes", "status", "pointer"), BAD_BATCHES.values(), ids=BAD_BATCHES.keys()
)
async def test_bad_batches_change_nothing(
    api: Api, where: tuple[str, str], attributes: dict[str, Any], status: int, pointer: str
) -> None:
    await create(api, where, {"id": "a", "input": 1})
    answer = await api.post(records_path(*where, "/batch_update"), batch(where[1], **attributes))
    assert (answer.status, answer.pointer) == (status, pointer)
    assert api.fake.datasets[where[1]].version == 1 and list(api.fake.records(where[1])) == ["a"]


async def test_batch_update_checks_its_envelope_and_size(api: Api, where: tuple[str, str]) -> None:
    path = records_path(*where, "/batch_update")
    wrong_id = await api.post(path, batch("other", insert_records=[{"input": 1}]))
    records_type = await api.post(
        path, doc("records", {"insert_records": [{"input": 1}]}, id=where[1])
    )
    assert (wrong_id.status, wrong_id.pointer) == (400, "/data/id")
    assert (records_type.status, records_type.pointer) == (400, "/data/type")
    api.fake.max_body_bytes = 200
    big = await api.post(path, batch(where[1], insert_records=[{"input": "x" * 200}]))
    assert big.status == 413 and api.fake.datasets[where[1]].version == 0


async def test_the_records_patch_still_works_and_makes_a_version(
    api: Api, where: tuple[str, str]
) -> None:
    await create(api, where, {"id": "a", "input": 1})
    change = doc("records", {"records": [{"id": "a", "expected_output": None, "input": 5}]})
    [rec] = (await api.ok("PATCH", records_path(*where), change))["data"]
    assert (rec["attributes"]["input"], rec["attributes"]["version"]) == (5, 2)
    versions = (await api.ok("GET", records_path(*where, "/versions")))["data"]
    assert len(versions) == 2
