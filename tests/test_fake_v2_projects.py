"""The fake's projects: get-or-create, list with filters and pages, delete."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from llmobs_async.testing import FakeLLMObsServer
from llmobs_async.testing._store import AUTHOR_ID

from .fakev2 import TIMESTAMP, V1, Api, doc, ids


@pytest.fixture
async def api(llmobs_fake: FakeLLMObsServer) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as http:
        yield Api(llmobs_fake, http)


async def test_create_answers_the_live_shape_and_a_second_create_gets_the_same_project(
    api: Api,
) -> None:
    first = await api.post(f"{V1}/projects", doc("projects", {"name": "evals"}))
    assert first.status == 200
    data = first.body["data"]
    assert set(data) == {"id", "type", "attributes"} and data["type"] == "projects"
    attributes = data["attributes"]
    assert set(attributes) == {"author", "created_at", "name", "updated_at"}  # no empty description
    assert attributes["author"] == {"id": AUTHOR_ID} and attributes["name"] == "evals"
    assert TIMESTAMP.fullmatch(attributes["created_at"])
    again = await api.post(
        f"{V1}/projects", doc("projects", {"name": "evals", "description": "other"})
    )
    assert (again.status, again.body) == (200, first.body)  # the existing one, unchanged
    described = await api.ok(
        "POST", f"{V1}/projects", doc("projects", {"name": "b", "description": "d"})
    )
    assert described["data"]["attributes"]["description"] == "d"
    assert len(api.fake.projects) == 2


async def test_list_is_newest_first_with_filters_and_ends_with_an_empty_after(api: Api) -> None:
    made = [await api.project(f"p{i}") for i in range(5)]
    page = await api.ok("GET", f"{V1}/projects")
    assert ids(page["data"]) == made[::-1] and page["meta"] == {"after": ""}
    named = await api.ok("GET", f"{V1}/projects", params={"filter[name]": "p3"})
    assert ids(named["data"]) == [made[3]]
    by_id = [("filter[id]", made[0]), ("filter[id]", made[4]), ("filter[id]", "nope")]
    assert ids((await api.ok("GET", f"{V1}/projects", params=by_id))["data"]) == [made[4], made[0]]
    items, pages = await api.pull(f"{V1}/projects", {"page[limit]": "2"})
    assert (ids(items), pages) == (made[::-1], 3)


async def test_delete_answers_204_and_an_unknown_id_deletes_nothing(api: Api) -> None:
    one, two = await api.project("one"), await api.project("two")
    missing = await api.post(
        f"{V1}/projects/delete", doc("projects", {"project_ids": [one, "gone-id"]})
    )
    assert (missing.status, missing.pointer) == (404, "/data/attributes/project_ids/1")
    assert "gone-id" in missing.error["detail"] and set(api.fake.projects) == {one, two}
    gone = await api.post(f"{V1}/projects/delete", doc("projects", {"project_ids": [one]}))
    assert (gone.status, gone.raw) == (204, b"")
    assert ids((await api.ok("GET", f"{V1}/projects"))["data"]) == [two]
    renamed = await api.patch(f"{V1}/projects/{one}", doc("projects", {"name": "back"}))
    assert renamed.status == 404


BAD = {
    "no-name": (doc("projects", {"description": "d"}), "/data/attributes/name"),
    "empty-name": (doc("projects", {"name": ""}), "/data/attributes/name"),
    "wrong-type": (doc("project", {"name": "x"}), "/data/type"),
    "unknown-field": (doc("projects", {"name": "x", "owner": "me"}), "/data/attributes/owner"),
}


@pytest.mark.parametrize(("body", "pointer"), BAD.values(), ids=BAD.keys())
async def test_bad_creates_are_400_with_a_pointer(api: Api, body: object, pointer: str) -> None:
    answer = await api.post(f"{V1}/projects", body)
    assert (answer.status, answer.error["title"], answer.pointer) == (400, "Bad Request", pointer)
    assert api.fake.projects == {}


async def test_bad_deletes_are_400(api: Api) -> None:
    for ids_ in ([], "p", [""]):
        answer = await api.post(f"{V1}/projects/delete", doc("projects", {"project_ids": ids_}))
        assert answer.status == 400 and answer.pointer.startswith("/data/attributes/project_ids")


async def test_seeding_helpers_feed_the_lists_and_reseeding_an_id_keeps_one_entry(
    api: Api,
) -> None:
    pid = api.fake.add_project(id="p-1", name="first")
    api.fake.add_project(id="p-1", name="again")
    did = api.fake.add_dataset(project_id=pid, name="seeded", records=[{"input": 1}])
    api.fake.add_records(did, [{"id": "r", "input": 2}])
    assert ids((await api.ok("GET", f"{V1}/projects"))["data"]) == ["p-1"]
    [dataset] = (await api.ok("GET", f"{V1}/{pid}/datasets"))["data"]
    assert (dataset["attributes"]["name"], dataset["attributes"]["current_version"]) == (
        "seeded",
        2,
    )
    records = (await api.ok("GET", f"{V1}/{pid}/datasets/{did}/records"))["data"]
    assert ids(records)[0] == "r" and len(records) == 2
