"""``client.experiments`` against the fake: create, get, list, update (with read-back), delete."""

from __future__ import annotations

import pickle

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


def _reads(fake: FakeLLMObsServer) -> list[str]:
    return [r.method for r in fake.requests if r.method == "GET"]


async def test_update_retries_a_read_back_that_shows_the_old_values(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    fake.lag_experiment_lists(reads=2)  # the next two lists show the experiment as it is now
    exp = await client.experiments.update(seeded.experiment_id, status="completed", description="")
    assert exp.status is ExperimentStatus.COMPLETED
    assert len(_reads(fake)) == 3


async def test_update_retries_a_read_back_that_leaves_the_experiment_out(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    fake.lag_experiment_lists(reads=3)
    eid = fake.add_experiment(project_id=seeded.project_id)  # not in the lagging list yet
    exp = await client.experiments.update(eid, metadata={"k": (1, 2)}, name="n")
    assert (exp.id, exp.metadata, exp.name) == (eid, {"k": [1, 2]}, "n")
    assert len(_reads(fake)) == 4


async def test_a_failed_read_back_says_the_write_landed(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    fake.inject(status=503, times=None, match=lambda r: r.method == "GET")
    with pytest.raises(errors.ReadBackError) as caught:
        await client.experiments.update(seeded.experiment_id, status="completed")
    exc = caught.value
    assert fake.experiments[seeded.experiment_id]["status"] == "completed"  # it landed
    assert not isinstance(exc, errors.APIStatusError)
    assert isinstance(exc.__cause__, errors.ServerError)
    assert exc.experiment_id == seeded.experiment_id and exc.read is None
    assert exc.written == models.ExperimentUpdate(status="completed")
    assert "was updated (status), but reading it back failed: 503" in str(exc)
    back = pickle.loads(pickle.dumps(exc))
    assert (back.experiment_id, back.written) == (exc.experiment_id, exc.written)
    assert str(back) == str(exc)


async def test_a_read_back_that_keeps_lagging_is_bounded_and_says_the_write_landed(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    fake.lag_experiment_lists(reads=1000)
    with pytest.raises(errors.ReadBackError) as caught:
        await client.experiments.update(seeded.experiment_id, status="failed", error="boom")
    exc = caught.value
    assert len(_reads(fake)) == 6  # bounded
    assert fake.experiments[seeded.experiment_id]["status"] == "failed"
    assert exc.read is not None and exc.read.status is not ExperimentStatus.FAILED
    assert "showed other values for status" in str(exc)
    fake.lag_experiment_lists(reads=1000)
    eid = fake.add_experiment(project_id=seeded.project_id)
    with pytest.raises(errors.ReadBackError, match="left it out") as caught:
        await client.experiments.update(eid, name="x")
    assert caught.value.read is None and fake.experiments[eid]["name"] == "x"


async def test_read_back_false_sends_one_request(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    fake.inject(status=503, times=None, match=lambda r: r.method == "GET")  # never read
    result = await client.experiments.update(
        seeded.experiment_id, status="completed", read_back=False
    )
    assert result is None  # the live API's empty 200 carries no experiment
    assert [r.method for r in fake.requests] == ["PATCH"]
    assert fake.experiments[seeded.experiment_id]["status"] == "completed"
    fake.experiment_patch_echo = True  # an answer that carries it is returned
    echoed = await client.experiments.update(seeded.experiment_id, name="e", read_back=False)
    assert echoed is not None and echoed.name == "e"


async def test_a_read_back_that_leaves_a_field_out_is_not_a_lag() -> None:
    """The live API leaves fields out of its answers; only a value shown and different lags."""
    from aiohttp import web

    listed = {"id": "e1", "type": "experiments", "attributes": {"name": "n"}}  # no status

    async def patch(request: web.Request) -> web.Response:
        return web.Response(status=200)  # the live API's empty 200

    async def lists(request: web.Request) -> web.Response:
        return web.json_response({"data": [listed], "meta": {"after": ""}})

    app = web.Application()
    app.router.add_patch("/api/v2/llm-obs/v1/experiments/e1", patch)
    app.router.add_get("/api/v2/llm-obs/v1/experiments", lists)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        async with LLMObsClient(base_url=f"http://{host}:{port}", api_key="k", app_key="a") as c:
            exp = await c.experiments.update("e1", status="failed", error="boom", metadata={"a": 1})
        assert exp.id == "e1" and exp.status is None
    finally:
        await runner.cleanup()
