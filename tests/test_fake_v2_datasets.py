"""The fake's datasets: create (409 on a name clash), list, update, soft delete, versions."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from llmobs_async.testing import FakeLLMObsServer

from .fakev2 import TIMESTAMP, V1, A, Api, doc, ids, records_path


@pytest.fixture
async def api(llmobs_fake: FakeLLMObsServer) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as http:
        yield Api(llmobs_fake, http)


async def test_create_answers_version_0_and_leaves_out_empty_fields(api: Api) -> None:
    pid = await api.project()
    answer = await api.post(f"{V1}/{pid}/datasets", doc("datasets", {"name": "qa"}))
    assert answer.status == 200
    data = answer.body["data"]
    attributes = data["attributes"]
    assert data["type"] == "datasets" and data["id"] in api.fake.datasets
    assert set(attributes) == {
        "author", "created_at", "current_version", "dataset_type", "name", "project_id",
        "updated_at",
    }  # fmt: skip
    assert (attributes["current_version"], attributes["dataset_type"]) == (0, "user")
    assert attributes["project_id"] == pid and TIMESTAMP.fullmatch(attributes["updated_at"])
    full = {"name": "full", "description": "d", "metadata": {"team": "ml"}}
    shown = (await api.ok("POST", f"{V1}/{pid}/datasets", doc("datasets", full)))["data"]
    assert {k: shown["attributes"][k] for k in full} == full


async def test_a_name_used_in_the_project_is_409_but_free_in_another(api: Api) -> None:
    pid, other = await api.project("a"), await api.project("b")
    await api.dataset(pid, "qa")
    clash = await api.post(f"{V1}/{pid}/datasets", doc("datasets", {"name": "qa"}))
    assert (clash.status, clash.error["title"], clash.pointer) == (409, "Conflict", f"{A}/name")
    assert await api.dataset(other, "qa")
    second = await api.dataset(pid, "qa-2")
    renamed = await api.patch(f"{V1}/{pid}/datasets/{second}", doc("datasets", {"name": "qa"}))
    assert renamed.status == 409


async def test_unknown_project_or_dataset_is_404(api: Api) -> None:
    pid = await api.project()
    did = await api.dataset(pid)
    other = await api.dataset(await api.project("other"))
    for method, path in [
        ("GET", f"{V1}/nope/datasets"),
        ("POST", f"{V1}/nope/datasets"),
        ("GET", f"{V1}/{pid}/datasets/{other}/versions"),  # a dataset of another project
        ("GET", records_path(pid, "nope")),
        ("PATCH", f"{V1}/{pid}/datasets/nope"),
        ("GET", records_path("nope", did)),
    ]:
        answer = await api.call(method, path, doc("datasets", {"name": "n"}))
        assert answer.status == 404, (method, path)


async def test_list_filters_pages_and_update(api: Api) -> None:
    pid = await api.project()
    made = [await api.dataset(pid, f"d{i}") for i in range(4)]
    await api.dataset(await api.project("elsewhere"), "d1")
    items, pages = await api.pull(f"{V1}/{pid}/datasets", {"page[limit]": "3"})
    assert (ids(items), pages) == (made[::-1], 2)
    named = await api.ok("GET", f"{V1}/{pid}/datasets", params={"filter[name]": "d1"})
    assert ids(named["data"]) == [made[1]] and named["meta"] == {"after": ""}
    by_id = [("filter[id]", made[0]), ("filter[id]", made[2])]
    assert ids((await api.ok("GET", f"{V1}/{pid}/datasets", params=by_id))["data"]) == [
        made[2],
        made[0],
    ]
    change = {"description": "new", "metadata": {"k": 1}}
    answer = await api.patch(f"{V1}/{pid}/datasets/{made[0]}", doc("datasets", change))
    attributes = answer.body["data"]["attributes"]
    assert answer.status == 200 and attributes["name"] == "d0"
    assert (attributes["description"], attributes["metadata"]) == ("new", {"k": 1})
    bad = await api.patch(f"{V1}/{pid}/datasets/{made[0]}", doc("datasets", {"metadata": [1]}))
    assert (bad.status, bad.pointer) == (400, f"{A}/metadata")


async def test_delete_is_soft_answers_204_and_hides_the_dataset(api: Api) -> None:
    pid = await api.project()
    keep, drop = await api.dataset(pid, "keep"), await api.dataset(pid, "drop")
    unknown = await api.post(
        f"{V1}/{pid}/datasets/delete", doc("datasets", {"dataset_ids": [drop, "nope"]})
    )
    assert (unknown.status, unknown.pointer) == (404, f"{A}/dataset_ids/1")
    gone = await api.post(f"{V1}/{pid}/datasets/delete", doc("datasets", {"dataset_ids": [drop]}))
    assert (gone.status, gone.raw) == (204, b"")
    assert api.fake.datasets[drop].attributes["deleted_at"]
    assert ids((await api.ok("GET", f"{V1}/{pid}/datasets"))["data"]) == [keep]
    assert (await api.get(records_path(pid, drop))).status == 404
    assert await api.dataset(pid, "drop")  # the name is free again


async def test_versions_list_each_change_newest_first_with_last_used(api: Api) -> None:
    pid = await api.project()
    did = await api.dataset(pid)
    path = f"{V1}/{pid}/datasets/{did}/versions"
    assert await api.ok("GET", path) == {"data": []}
    body = doc("records", {"records": [{"input": 1}, {"input": 2}]})
    [first, _] = (await api.ok("POST", records_path(pid, did), body))["data"]
    await api.ok(
        "POST",
        records_path(pid, did, "/records/delete"),
        doc("records", {"record_ids": [first["id"]]}),
    )
    versions = (await api.ok("GET", path))["data"]
    assert [v["attributes"]["version_number"] for v in versions] == [2, 1]
    assert all(v["type"] == "dataset_version" for v in versions)
    assert versions[0]["attributes"] == {"dataset_id": did, "version_number": 2}  # never used
    experiment = {"name": "run", "project_id": pid, "dataset_id": did, "dataset_version": 1}
    await api.ok("POST", f"{V1}/experiments", doc("experiments", experiment))
    used = (await api.ok("GET", path))["data"][1]["attributes"]
    assert used["version_number"] == 1 and TIMESTAMP.fullmatch(used["last_used"])
