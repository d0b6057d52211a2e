"""``client.projects`` against the fake: create (get-or-create), get, list, update, delete."""

from __future__ import annotations

import pytest

from llmobs_async import LLMObsClient, errors, models
from llmobs_async.testing import FakeLLMObsServer

from ..conftest import Seeded


async def test_create_returns_the_project_and_then_the_same_one_by_name(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    created = await client.projects.create("evals", description="nightly")
    again = await client.projects.create("evals")
    assert (created.name, created.description) == ("evals", "nightly")
    assert again.id == created.id and len(fake.projects) == 1
    assert fake.requests[0].json() == {
        "data": {"type": "projects", "attributes": {"name": "evals", "description": "nightly"}}
    }


async def test_create_takes_a_ready_model(fake: FakeLLMObsServer, client: LLMObsClient) -> None:
    project = await client.projects.create(models.ProjectCreate(name="m"))
    assert fake.projects[project.id]["name"] == "m"


@pytest.mark.parametrize("name", ["", "  ", None, 3])
async def test_a_bad_name_is_refused_before_sending(
    fake: FakeLLMObsServer, client: LLMObsClient, name: object
) -> None:
    with pytest.raises(errors.ValidationError) as caught:
        await client.projects.create(name)  # type: ignore[arg-type]
    assert caught.value.field in ("name", "body")
    assert fake.requests == []


async def test_get_reads_one_project_and_a_missing_one_is_not_found(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    project = await client.projects.get(seeded.project_id)
    assert (project.id, project.name) == (seeded.project_id, "proj")
    assert fake.requests[-1].query == {"filter[id]": [seeded.project_id]}
    with pytest.raises(errors.NotFoundError, match="no project with id 'nope'"):
        await client.projects.get("nope")


async def test_list_pages_through_every_project_newest_first(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    ids = [fake.add_project(name=f"p{i}") for i in range(7)]
    listed = [p.id async for p in client.projects.list(page_size=3)]
    assert listed == ids[::-1]
    assert [r.query.get("page[limit]") for r in fake.requests] == [["3"]] * 3


async def test_list_filters_by_name_and_resumes_from_a_cursor(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    for i in range(4):
        fake.add_project(name=f"p{i}")
    [only] = [p async for p in client.projects.list(name="p2")]
    assert only.name == "p2"
    first = await anext(aiter(client.projects.list(page_size=2).pages()))
    assert first.next_cursor is not None
    rest = [p.name async for p in client.projects.list(cursor=first.next_cursor, page_size=2)]
    assert [p.name for p in first.items] + rest == ["p3", "p2", "p1", "p0"]


async def test_update_with_all_fields_and_an_encoded_path(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    project = await client.projects.update(seeded.project_id, name="n", description="d")
    assert (project.name, project.description) == ("n", "d")
    with pytest.raises(errors.NotFoundError):
        await client.projects.update("a/../b", name="x")
    assert fake.requests[-1].path.endswith("/projects/a%2F..%2Fb")


async def test_delete_one_or_many(fake: FakeLLMObsServer, client: LLMObsClient) -> None:
    a, b, c = (fake.add_project(name=n) for n in "abc")
    await client.projects.delete(a)
    await client.projects.delete([b, c])
    assert fake.projects == {}
    assert [r.status for r in fake.requests] == [204, 204]
    assert fake.requests[1].json()["data"]["attributes"] == {"project_ids": [b, c]}


@pytest.mark.parametrize("ids", [[], [""], "", [None]])
async def test_delete_refuses_bad_ids_before_sending(
    fake: FakeLLMObsServer, client: LLMObsClient, ids: object
) -> None:
    with pytest.raises(errors.ValidationError, match="project_ids"):
        await client.projects.delete(ids)  # type: ignore[arg-type]
    assert fake.requests == []
