"""The fake's experiments: create (ensure_unique), list filters, empty PATCH, soft delete."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from llmobs_async.testing import FakeLLMObsServer

from .fakev2 import V1, A, Api, doc, ids, records_path


@pytest.fixture
async def api(llmobs_fake: FakeLLMObsServer) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as http:
        yield Api(llmobs_fake, http)


@pytest.fixture
async def where(api: Api) -> tuple[str, str]:
    pid = await api.project()
    did = await api.dataset(pid)
    body = doc("records", {"records": [{"input": 1}]})
    await api.ok("POST", records_path(pid, did), body)  # version 1
    return pid, did


async def create(api: Api, **attributes: Any) -> Any:
    return await api.call("POST", f"{V1}/experiments", doc("experiments", attributes))


async def test_ensure_unique_stamps_the_name_and_keeps_the_given_one_in_experiment(
    api: Api, where: tuple[str, str]
) -> None:
    pid, did = where
    before = int(time.time() * 1000)
    answer = await create(api, name="run", project_id=pid, dataset_id=did, config={})
    assert answer.status == 200
    data = answer.body["data"]
    attributes = data["attributes"]
    match = re.fullmatch(r"run-(\d+)", attributes["name"])
    assert match and before <= int(match[1]) <= int(time.time() * 1000) + 1
    assert attributes["experiment"] == "run" and attributes["dataset_version"] == 1
    assert (attributes["project_id"], attributes["dataset_id"], attributes["run_count"]) == (
        pid,
        did,
        1,
    )
    assert attributes["config"] == {} and "status" not in attributes and "author" in attributes
    second = (await create(api, name="run", project_id=pid)).body["data"]["attributes"]
    assert second["name"] != attributes["name"] and "dataset_id" not in second
    plain = (await create(api, name="fixed", project_id=pid, ensure_unique=False)).body
    assert plain["data"]["attributes"]["name"] == "fixed"


async def test_create_refuses_unknown_ids_and_bad_fields(api: Api, where: tuple[str, str]) -> None:
    pid, did = where
    assert (await create(api, name="r", project_id="nope")).status == 404
    assert (await create(api, name="r", project_id=pid, dataset_id="nope")).status == 404
    cases = [
        ({"project_id": pid}, f"{A}/name"),
        ({"name": "r"}, f"{A}/project_id"),
        (
            {"name": "r", "project_id": pid, "dataset_id": did, "dataset_version": 2},
            f"{A}/dataset_version",
        ),
        ({"name": "r", "project_id": pid, "run_count": 0}, f"{A}/run_count"),
        ({"name": "r", "project_id": pid, "config": []}, f"{A}/config"),
        ({"name": "r", "project_id": pid, "ensure_unique": 1}, f"{A}/ensure_unique"),
    ]
    for attributes, pointer in cases:
        answer = await create(api, **attributes)
        assert (answer.status, answer.pointer) == (400, pointer), attributes
    assert api.fake.experiments == {}


async def test_list_filters(api: Api, where: tuple[str, str]) -> None:
    pid, did = where
    other = await api.project("other")
    made = []
    for index, metadata in enumerate([{"commit": "a", "tags": ["x", "y"]}, {"commit": "b"}, {}]):
        body = (
            await create(
                api,
                name=f"e{index}",
                project_id=pid,
                metadata=metadata,
                **({"dataset_id": did} if index else {}),
            )
        ).body
        made.append(body["data"]["id"])
    await create(api, name="e0", project_id=other)
    path = f"{V1}/experiments"

    async def found(*params: tuple[str, str]) -> list[str]:
        return ids((await api.ok("GET", path, params=list(params)))["data"])

    assert await found(("filter[project_id]", pid)) == made[::-1]
    assert await found(("filter[dataset_id]", did)) == made[:0:-1]
    assert await found(
        ("filter[project_id]", pid), ("filter[id]", made[0]), ("filter[id]", made[2])
    ) == [made[2], made[0]]
    assert await found(("filter[project_id]", pid), ("filter[experiment]", "e1")) == [made[1]]
    assert await found(("filter[id]", made[1])) == [made[1]]  # how ddtrace gets one
    name = api.fake.experiments[made[1]]["name"]
    assert await found(("filter[project_id]", pid), ("filter[name]", name)) == [made[1]]
    contains = json.dumps({"tags": ["y"], "commit": "a"})
    assert await found(("filter[project_id]", pid), ("filter[metadata]", contains)) == [made[0]]
    clamped = await api.ok("GET", path, params={"filter[project_id]": pid, "page[limit]": "9000"})
    assert len(clamped["data"]) == 3 and clamped["meta"] == {"after": ""}
    for params, parameter in [
        ({}, "filter[project_id]"),
        ({"filter[project_id]": pid, "filter[metadata]": "[1]"}, "filter[metadata]"),
        ({"filter[project_id]": pid, "filter[is_deleted]": "maybe"}, "filter[is_deleted]"),
        ({"filter[project_id]": pid, "page[limit]": "0"}, "page[limit]"),
    ]:
        answer = await api.get(path, params)
        assert (answer.status, answer.parameter) == (400, parameter)


async def test_patch_answers_an_empty_200_as_live_unless_asked_to_echo(
    api: Api, where: tuple[str, str]
) -> None:
    eid = (await create(api, name="r", project_id=where[0])).body["data"]["id"]
    path = f"{V1}/experiments/{eid}"
    answer = await api.patch(path, doc("experiments", {"status": "completed"}))
    assert (answer.status, answer.raw) == (200, b"")
    assert api.fake.experiments[eid]["status"] == "completed"
    api.fake.experiment_patch_echo = True
    echoed = await api.patch(path, doc("experiments", {"status": "failed", "error": "boom"}))
    assert echoed.body["data"]["attributes"]["error"] == "boom"
    assert (await api.patch(f"{V1}/experiments/nope", doc("experiments", {}))).status == 404


async def test_delete_is_soft_and_is_deleted_shows_them(api: Api, where: tuple[str, str]) -> None:
    pid = where[0]
    keep, drop = [(await create(api, name=n, project_id=pid)).body["data"]["id"] for n in "ab"]
    path = f"{V1}/experiments/delete"
    unknown = await api.post(path, doc("experiments", {"experiment_ids": [drop, "nope"]}))
    assert (unknown.status, unknown.pointer) == (404, f"{A}/experiment_ids/1")
    assert (await api.post(path, doc("experiments", {"experiment_ids": [drop]}))).status == 204
    assert (await api.post(path, doc("experiments", {"experiment_ids": [drop]}))).status == 204
    listed = await api.ok("GET", f"{V1}/experiments", params={"filter[project_id]": pid})
    assert ids(listed["data"]) == [keep]
    params = {"filter[project_id]": pid, "filter[is_deleted]": "true"}
    [deleted] = (await api.ok("GET", f"{V1}/experiments", params=params))["data"]
    assert deleted["id"] == drop and deleted["attributes"]["deleted_at"].endswith("Z")
