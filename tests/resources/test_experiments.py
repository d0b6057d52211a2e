"""``client.experiments`` against the fake: create, get, list, update (with read-back), delete."""

from __future__ import annotations

import pytest

from llmobs_async import LLMObsClient, errors, models
from llmobs_async.models import ExperimentStatus
from llmobs_async.testing import FakeLLMObsServer

from ..conftest import Seeded


async def test_create_with_every_field(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    exp = await client.experiments.create(
        seeded.project_id,
        seeded.dataset_id,
        "run",
        dataset_version=1,
        description="d",
        config={"model": "m"},
        metadata={"commit": "abc"},
        ensure_unique=True,
        run_count=2,
    )
    assert exp.experiment == "run" and exp.name is not None and exp.name.startswith("run-")
    assert (exp.project_id, exp.dataset_id, exp.dataset_version) == (
        seeded.project_id,
        seeded.dataset_id,
        1,
    )
    assert (exp.config, exp.metadata, exp.run_count) == ({"model": "m"}, {"commit": "abc"}, 2)
    sent = fake.requests[-1].json()["data"]
    assert sent["type"] == "experiments" and sent["attributes"]["ensure_unique"] is True


async def test_create_from_a_model_keeps_the_name_without_ensure_unique(
    client: LLMObsClient, seeded: Seeded
) -> None:
    body = models.ExperimentCreate(name="exact", project_id=seeded.project_id, ensure_unique=False)
    exp = await client.experiments.create(body)
    assert exp.name == "exact"


@pytest.mark.parametrize(
    ("args", "kwargs", "field"),
    [
        (("p", "d"), {}, "name"),
        (("p", "d", ""), {}, "name"),
        (("p", "d", "n"), {"dataset_version": -1}, "dataset_version"),
        (("p", "d", "n"), {"run_count": 0}, "run_count"),
        (("p", "d", "n"), {"ensure_unique": "yes"}, "ensure_unique"),
    ],
)
async def test_create_refuses_bad_fields_before_sending(
    fake: FakeLLMObsServer, client: LLMObsClient, args: tuple, kwargs: dict, field: str
) -> None:
    with pytest.raises(errors.ValidationError) as caught:
        await client.experiments.create(*args, **kwargs)
    assert caught.value.field == field and fake.requests == []


async def test_get_list_and_filters(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    pid, did = seeded.project_id, seeded.dataset_id
    a = await client.experiments.create(
        pid, did, "a", metadata={"commit": "1"}, ensure_unique=False
    )
    b = await client.experiments.create(
        pid, did, "b", metadata={"commit": "2"}, ensure_unique=False
    )
    assert (await client.experiments.get(a.id)).name == "a"
    listed = [e.id async for e in client.experiments.list(project_id=pid, page_size=1)]
    assert listed == [b.id, a.id, seeded.experiment_id]
    [by_meta] = [e async for e in client.experiments.list(project_id=pid, metadata={"commit": "2"})]
    assert by_meta.id == b.id
    [by_name] = [e async for e in client.experiments.list(dataset_id=did, name="a")]
    assert by_name.id == a.id
    with pytest.raises(errors.ValidationError, match="project_id"):
        client.experiments.list()
    with pytest.raises(errors.NotFoundError):
        await client.experiments.get("missing")


async def test_update_reads_the_experiment_back_after_an_empty_200(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    exp = await client.experiments.update(seeded.experiment_id, status="completed", error="none")
    assert exp.status is ExperimentStatus.COMPLETED and exp.error == "none"
    patch, get = fake.requests[-2:]
    assert (patch.method, patch.status, get.method) == ("PATCH", 200, "GET")
    fake.experiment_patch_echo = True  # a server that answers with the experiment: no read-back
    before = len(fake.requests)
    await client.experiments.update(seeded.experiment_id, status="failed")
    assert len(fake.requests) == before + 1


async def test_delete_soft_deletes_and_deleted_lists_them(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    await client.experiments.delete(seeded.experiment_id)
    assert [e async for e in client.experiments.list(project_id=seeded.project_id)] == []
    [gone] = [e async for e in client.experiments.list(project_id=seeded.project_id, deleted=True)]
    assert gone.id == seeded.experiment_id and gone.deleted_at is not None
