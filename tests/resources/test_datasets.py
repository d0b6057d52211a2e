"""``client.datasets`` against the fake: create, get, list, update, delete, versions."""

from __future__ import annotations

import pytest

from llmobs_async import LLMObsClient, errors, models
from llmobs_async.testing import FakeLLMObsServer

from ..conftest import Seeded


async def test_create_makes_an_empty_dataset_at_version_0(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    ds = await client.datasets.create(
        seeded.project_id, "qa", description="questions", metadata={"team": "ml"}
    )
    assert (ds.name, ds.description, ds.metadata) == ("qa", "questions", {"team": "ml"})
    assert (ds.project_id, ds.current_version, ds.dataset_type) == (seeded.project_id, 0, "user")
    assert ds.created_at is not None and ds.created_at.tzinfo is not None
    assert fake.requests[-1].json() == {
        "data": {
            "type": "datasets",
            "attributes": {"name": "qa", "description": "questions", "metadata": {"team": "ml"}},
        }
    }


async def test_create_from_a_model_and_a_name_clash_is_a_conflict(
    client: LLMObsClient, seeded: Seeded
) -> None:
    await client.datasets.create(seeded.project_id, models.DatasetCreate(name="dup"))
    with pytest.raises(errors.ConflictError):
        await client.datasets.create(seeded.project_id, "dup")


async def test_create_in_an_unknown_project_is_not_found(client: LLMObsClient) -> None:
    with pytest.raises(errors.NotFoundError):
        await client.datasets.create("no-such-project", "x")


@pytest.mark.parametrize(
    ("kwargs", "field"), [({"metadata": [1]}, "metadata"), ({"description": 3}, "description")]
)
async def test_bad_fields_are_refused_before_sending(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded, kwargs: dict, field: str
) -> None:
    before = len(fake.requests)
    with pytest.raises(errors.ValidationError) as caught:
        await client.datasets.create(seeded.project_id, "x", **kwargs)
    assert caught.value.field == field and len(fake.requests) == before


async def test_get_and_list_with_filters_and_pages(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    more = [fake.add_dataset(project_id=seeded.project_id, name=f"d{i}") for i in range(5)]
    got = await client.datasets.get(seeded.project_id, more[2])
    assert (got.id, got.name) == (more[2], "d2")
    listed = [d.id async for d in client.datasets.list(seeded.project_id, page_size=2)]
    assert listed == [*more[::-1], seeded.dataset_id]
    [named] = [d async for d in client.datasets.list(seeded.project_id, name="d4")]
    assert named.id == more[4]
    with pytest.raises(errors.NotFoundError):
        await client.datasets.get(seeded.project_id, "missing")


async def test_update_changes_only_what_is_given_and_refuses_an_empty_update(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    ds = await client.datasets.update(seeded.project_id, seeded.dataset_id, description="new")
    assert ds.description == "new" and ds.id == seeded.dataset_id
    model = await client.datasets.update(
        seeded.project_id, seeded.dataset_id, models.DatasetUpdate(metadata={"k": 1})
    )
    assert (model.description, model.metadata) == ("new", {"k": 1})
    before = len(fake.requests)
    with pytest.raises(errors.ValidationError, match="empty update"):
        await client.datasets.update(seeded.project_id, seeded.dataset_id)
    assert len(fake.requests) == before


async def test_delete_and_versions(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    await client.records.create(seeded.project_id, seeded.dataset_id, [{"input": "q"}])
    versions = await client.datasets.versions(seeded.project_id, seeded.dataset_id)
    numbers = [v.version_number for v in versions]
    assert max(numbers) == fake.store.datasets[seeded.dataset_id].version and len(numbers) >= 2
    assert all(v.dataset_id == seeded.dataset_id for v in versions)
    await client.datasets.delete(seeded.project_id, seeded.dataset_id)
    assert [d async for d in client.datasets.list(seeded.project_id)] == []
    assert fake.requests[-2].status == 204


async def test_ids_in_paths_are_encoded(fake: FakeLLMObsServer, client: LLMObsClient) -> None:
    with pytest.raises(errors.NotFoundError):
        await client.datasets.versions("p/x", "../d")
    assert fake.requests[-1].url_path.endswith("/v1/p%2Fx/datasets/..%2Fd/versions")
    with pytest.raises(errors.ValidationError, match="dataset_id"):
        await client.datasets.versions("p", "..")


async def test_create_exist_ok_returns_the_dataset_of_that_name_unchanged(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    first = await client.datasets.create(seeded.project_id, "qa", description="first")
    again = await client.datasets.create(
        seeded.project_id, "qa", description="second", exist_ok=True
    )
    assert (again.id, again.description) == (first.id, "first")
    named = [ds for ds in fake.datasets.values() if ds.attributes.get("name") == "qa"]
    assert len(named) == 1


async def test_create_exist_ok_still_raises_what_is_not_a_name_clash(
    client: LLMObsClient,
) -> None:
    with pytest.raises(errors.NotFoundError):
        await client.datasets.create("no-such-project", "x", exist_ok=True)
