"""The public test helper ``FakeLLMObsServer``: its contract, as its users rely on it."""

from __future__ import annotations

import asyncio
import copy
import gc
import json
import re
import socket
from collections.abc import Callable
from typing import Any

import aiohttp
import attrs
import pytest
from aiohttp import web

from llmobs_async import LLMObsClient, errors, models
from llmobs_async.testing import FakeLLMObsServer, RecordedRequest
from llmobs_async.testing._store import AUTHOR_ID

from .conftest import Seeded, client_for
from .fakehttp import (
    JSON,
    KEYS,
    PREFIX,
    RECORD_KEYS,
    TIMESTAMPS,
    VALID,
    Env,
    jsonapi,
    name_doc,
    pick,
    recs,
    send,
)
from .test_cli import _cli

# --- lifecycle and auth -------------------------------------------------------------------------


async def test_servers_bind_distinct_loopback_ports_and_release_them_on_exit() -> None:
    async with FakeLLMObsServer() as one, FakeLLMObsServer() as two:
        urls = [one.base_url + PREFIX + "/projects/p", two.base_url + PREFIX + "/projects/p"]
        assert one.base_url != two.base_url
        async with aiohttp.ClientSession() as http:
            for fake, url in zip((one, two), urls, strict=True):
                assert re.fullmatch(r"http://127\.0\.0\.1:[1-9]\d*", fake.base_url)
                assert (await send(http, url, {}, headers={}))[0] == 401
    async with aiohttp.ClientSession() as http:
        for url in urls:
            with pytest.raises(aiohttp.ClientConnectorError):
                await send(http, url, {})


def runners() -> int:
    gc.collect()
    return sum(isinstance(o, web.AppRunner) for o in gc.get_objects())


async def test_a_second_start_keeps_the_one_server() -> None:
    before = runners()
    async with FakeLLMObsServer() as fake:
        url = fake.base_url
        assert await fake.start() is fake  # as `fake-server` does before `async with`
        assert fake.base_url == url and runners() == before + 1
    assert runners() == before


async def test_a_start_on_a_busy_port_fails_and_keeps_no_runner() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        fake = FakeLLMObsServer(port=port)
        before = runners()
        with pytest.raises(OSError, match=str(port)):
            await fake.start()
        assert runners() == before  # set up, never listened: cleaned up, not kept
        assert fake.base_url == ""
        await fake.stop()  # nothing left to stop, and no error


@pytest.mark.parametrize("port", ["busy", "70000", "-1"])
async def test_the_fake_server_command_on_a_port_it_cannot_take_says_so_in_one_line(
    port: str,
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        if port == "busy":  # as 8126, the default, is where a Datadog agent runs
            port = str(busy.getsockname()[1])
        run = await _cli(None, "fake-server", "--port", port, "--records", "1")
    assert run.code == 2
    assert run.out == ""
    [line] = run.err.splitlines()
    assert line.startswith("llmobs-async: error: --port: ") and port in line


async def test_a_bodyless_request_reads_as_no_json(fake: FakeLLMObsServer) -> None:
    async with client_for(fake) as client:
        [_ async for _ in client.projects.list()]
    [listing] = fake.requests
    assert listing.body == b"" and listing.json() is None


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"DD-APPLICATION-KEY": "fake-app-key"}, 401),
        ({"DD-API-KEY": "fake-api-key"}, 401),
        ({}, 401),
        ({"DD-API-KEY": "wrong", "DD-APPLICATION-KEY": "fake-app-key"}, 403),
        ({"DD-API-KEY": "fake-api-key", "DD-APPLICATION-KEY": "wrong"}, 403),
        ({**KEYS, "Content-Type": "text/plain"}, 415),
    ],
)
async def test_auth_is_checked_and_a_refusal_changes_nothing(
    env: Env, headers: dict[str, str], status: int
) -> None:
    before = env.state()
    got, _, body = await env.patch("projects", name_doc("x"), {**JSON, **headers})
    assert got == status
    assert json.loads(body)["errors"][0]["status"] == str(status)
    assert env.state() == before


async def test_recorded_headers_never_hold_key_values(env: Env) -> None:
    async with client_for(env.fake) as client:
        await client.projects.update(env.seeded.project_id, name="x")
    wrong = {"DD-API-KEY": "leaked-api-key", "DD-APPLICATION-KEY": "leaked-app-key", **JSON}
    await env.patch("projects", name_doc("y"), wrong)
    assert env.statuses() == [200, 403]
    secrets = [*KEYS.values(), "leaked-api-key", "leaked-app-key"]
    for request in env.fake.requests:
        sent = {k.lower(): v for k, v in request.headers.items()}
        assert {"dd-api-key", "dd-application-key"} <= set(sent)
        assert not any(s in v for s in secrets for v in sent.values())
    assert not any(s in repr(env.fake.requests) for s in secrets)


# --- validation ---------------------------------------------------------------------------------

A, R = "/data/attributes", "/data/attributes/records"
NAN_METADATA = b'{"data":{"type":"experiments","attributes":{"metadata":{"a/b":NaN}}}}'
INVALID = {
    "not-json": ("projects", b"{not json", None),
    "empty-body": ("projects", b"", None),
    "missing-data": ("projects", {"type": "projects"}, "/data"),
    "data-not-object": ("projects", {"data": ["projects"]}, "/data"),
    "wrong-type": ("experiments", jsonapi("projects", {}), "/data/type"),
    "missing-type": ("records", {"data": {"attributes": VALID["records"]}}, "/data/type"),
    "missing-attributes": ("experiments", {"data": {"type": "experiments"}}, A),
    "unknown-attribute": (
        "projects",
        jsonapi("projects", {"name": "a", "title": "b"}),
        f"{A}/title",
    ),
    "name-not-string": ("projects", name_doc(5), f"{A}/name"),
    "bad-status": ("experiments", jsonapi("experiments", {"status": "done"}), f"{A}/status"),
    "null-status": ("experiments", jsonapi("experiments", {"status": None}), f"{A}/status"),
    "metadata-not-object": (
        "experiments",
        jsonapi("experiments", {"metadata": [1]}),
        f"{A}/metadata",
    ),
    "empty-records": ("records", recs(), R),
    "missing-records": ("records", jsonapi("records", {}), R),
    "record-without-id": ("records", recs({"id": "rec-1"}, {"input": 1}), f"{R}/1/id"),
    "record-id-not-string": ("records", recs({"id": 7}), f"{R}/0/id"),
    "record-not-object": ("records", recs("rec-1"), f"{R}/0"),
    "record-bad-metadata": ("records", recs({"id": "rec-1", "metadata": 1}), f"{R}/0/metadata"),
    "record-extra-field": ("records", recs({"id": "rec-1"}, {"id": "rec-2", "x": 1}), f"{R}/1/x"),
    "records-unknown-attribute": ("records", recs({"id": "rec-1"}, bogus=1), f"{A}/bogus"),
    "pointer-escapes-slash": ("experiments", NAN_METADATA, f"{A}/metadata/a~1b"),
}


@pytest.mark.parametrize(("kind", "body", "pointer"), INVALID.values(), ids=INVALID.keys())
async def test_invalid_bodies_are_400_with_a_pointer_and_change_nothing(
    env: Env, kind: str, body: Any, pointer: str | None
) -> None:
    before = env.state()
    status, _, answer = await env.patch(kind, body)
    [error] = json.loads(answer)["errors"]
    assert (status, error["status"]) == (400, "400")
    if pointer is not None:
        assert error["source"]["pointer"] == pointer
    assert env.state() == before


RECS = VALID["records"]["records"]
NOT_FOUND: dict[str, Callable[[LLMObsClient, Seeded], Any]] = {
    "experiment": lambda c, s: c.experiments.update("nope", status="completed"),
    "project": lambda c, s: c.projects.update("nope", name="x"),
    "records-project": lambda c, s: c.records.update("nope", s.dataset_id, RECS),
    "dataset": lambda c, s: c.records.update(s.project_id, "nope", RECS),
    "dataset-of-other-project": lambda c, s: c.records.update(s.project_id, "ds-other", RECS),
    "record-in-batch": lambda c, s: c.records.update(
        s.project_id, s.dataset_id, [{"id": i, "input": 1} for i in ("rec-1", "nope", "rec-2")]
    ),
}


@pytest.mark.parametrize("call", NOT_FOUND.values(), ids=NOT_FOUND.keys())
async def test_unknown_ids_are_404_and_a_batch_is_all_or_nothing(
    env: Env, client: LLMObsClient, call: Callable[[LLMObsClient, Seeded], Any]
) -> None:
    other = env.fake.add_project()
    env.fake.add_dataset(project_id=other, id="ds-other", records=[{"id": "rec-1"}])
    before = env.state()
    with pytest.raises(errors.NotFoundError) as info:
        await call(client, env.seeded)
    assert info.value.errors[0].status == "404"
    assert env.statuses() == [404]
    assert env.state() == before


# --- PATCH semantics ----------------------------------------------------------------------------


async def test_absent_fields_are_untouched_and_null_sets_null(
    env: Env, client: LLMObsClient
) -> None:
    fake, (pid, did, eid) = env.fake, attrs.astuple(env.seeded)
    fake.records(did)["rec-1"].update(expected_output="old", metadata={"k": 1})
    rec_2 = copy.deepcopy(fake.records(did)["rec-2"])
    fields = ("input", "expected_output", "metadata")
    await client.records.update(pid, did, [{"id": "rec-1", "expected_output": "new"}])
    assert pick(fake.records(did)["rec-1"], *fields) == ({"i": 1}, "new", {"k": 1})
    nulls = models.RecordUpdate(id="rec-1", input=None, expected_output=None)
    [rec] = await client.records.update(pid, did, [nulls])
    sent = fake.requests[-1].json()["data"]["attributes"]["records"]
    assert sent == [{"id": "rec-1", "input": None, "expected_output": None}]
    assert pick(fake.records(did)["rec-1"], *fields) == (None, None, {"k": 1})
    assert (rec.input, rec.expected_output, rec.metadata) == (None, None, {"k": 1})
    assert fake.records(did)["rec-2"] == rec_2
    fake.experiments[eid]["metadata"] = {"m": 1}
    await client.experiments.update(eid, status="failed", error="boom")
    experiment = fake.experiments[eid]
    assert pick(experiment, "status", "error", "metadata") == ("failed", "boom", {"m": 1})
    await client.projects.update(pid, description="d")
    assert pick(fake.projects[pid], "name", "description") == ("proj", "d")


@pytest.mark.parametrize("kind", ["experiments", "projects", "records"])
async def test_success_responses_have_the_live_shape_and_a_new_updated_at(
    env: Env, kind: str
) -> None:
    fake, (pid, did, eid) = env.fake, attrs.astuple(env.seeded)
    fake.experiment_patch_echo = True  # the live API answers empty; see test_fake_v2_*
    old = "2000-01-01T00:00:00.000Z"
    for stored in (fake.experiments[eid], fake.projects[pid], fake.records(did)["rec-1"]):
        stored["updated_at"] = old
    status, headers, body = await env.patch(kind, jsonapi(kind, VALID[kind]))
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    doc = json.loads(body)
    assert set(doc) == {"data"}
    if kind == "records":
        [resource] = doc["data"]
        assert set(resource) == {"id", "type", "attributes"}
        assert pick(resource, "id", "type") == ("rec-1", "datasets")
        got = resource["attributes"]
        stored = fake.records(did)["rec-1"]
        assert set(got) == RECORD_KEYS - {"id", "metadata", "tags"}  # empty: left out
        assert got == {**{k: stored[k] for k in got if k != "version"}, "version": 2}
        assert pick(got, "dataset_id", "expected_output") == (did, "yes")
        assert fake.store.datasets[did].version == 2  # seeded as 1, then this change
        assert got["author"] == {"id": AUTHOR_ID}
    else:
        assert set(doc["data"]) == {"id", "type", "attributes"} and doc["data"]["type"] == kind
        assert doc["data"]["id"] == {"projects": pid, "experiments": eid}[kind]
        got = doc["data"]["attributes"]
        assert got["author"] == {"id": AUTHOR_ID}
        if kind == "projects":
            assert set(got) == {"author", "name", *TIMESTAMPS}  # the empty description is left out
            assert got["name"] == "renamed"
        else:
            required = "config created_at dataset_id metadata name project_id"
            assert set(required.split()) <= set(got) and got["status"] == "completed"
            assert "description" not in got and "error" not in got
    assert got["updated_at"] != old and got["updated_at"] >= got["created_at"]
    assert got["updated_at"].endswith("Z")


EMPTY_LEFT_OUT = {
    "expected_output": (None, "yes"),
    "metadata": ({}, {"k": 1}),
    "tags": ([], ["team:ml"]),
}


@pytest.mark.parametrize("key", EMPTY_LEFT_OUT)
async def test_records_leave_out_empty_fields_and_keep_the_others(
    env: Env, client: LLMObsClient, key: str
) -> None:
    pid, did = env.seeded.project_id, env.seeded.dataset_id
    empty, full = EMPTY_LEFT_OUT[key]
    env.fake.store.add_records(did, [{"id": "e", key: empty}, {"id": "f", key: full}])
    status, _, body = await env.patch("records", recs({"id": "e"}, {"id": "f"}))
    [e, f] = (r["attributes"] for r in json.loads(body)["data"])
    assert status == 200 and key not in e and f[key] == full
    assert "input" in e and e["input"] is None  # input is always sent, even null
    [rec_e, rec_f] = await client.records.update(pid, did, [{"id": "e"}, {"id": "f"}])
    assert getattr(rec_f, key) == (tuple(full) if key == "tags" else full)
    assert getattr(rec_e, key) == {"expected_output": None, "metadata": {}, "tags": ()}[key]


async def test_records_carry_canonical_id_and_each_change_makes_a_new_version(
    env: Env, client: LLMObsClient
) -> None:
    pid, did = env.seeded.project_id, env.seeded.dataset_id
    env.fake.store.add_records(did, [{"id": "mine", "canonical_id": "c-1", "tags": ["a:b"]}])
    version = env.fake.store.datasets[did].version
    [first] = await client.records.update(pid, did, [{"id": "mine", "input": 1}])
    [second] = await client.records.update(pid, did, [{"id": "mine", "input": 2}])
    assert (first.canonical_id, first.tags, first.version) == ("c-1", ("a:b",), version + 1)
    assert second.version == version + 2
    generated = env.fake.records(did)["rec-1"]["canonical_id"]
    assert generated != env.fake.records(did)["rec-2"]["canonical_id"]
    [rec_1] = await client.records.update(pid, did, [{"id": "rec-1"}])
    assert rec_1.canonical_id == generated and rec_1.author == models.Author(id=AUTHOR_ID)


# --- recording ----------------------------------------------------------------------------------


async def test_requests_are_recorded_with_method_path_body_and_status(
    env: Env, client: LLMObsClient
) -> None:
    fake, pid, did = env.fake, env.seeded.project_id, env.seeded.dataset_id
    await client.projects.update(pid, name="a")
    with pytest.raises(errors.NotFoundError):
        await client.experiments.update("missing", status="failed")
    await client.records.update(pid, did, [{"id": "rec-2", "input": "x"}])
    assert [(r.method, r.path, r.status) for r in fake.requests] == [
        ("PATCH", f"{PREFIX}/projects/{pid}", 200),
        ("PATCH", f"{PREFIX}/experiments/missing", 404),
        ("PATCH", f"{PREFIX}/{pid}/datasets/{did}/records", 200),
    ]
    assert fake.requests[0].json() == name_doc("a")
    assert fake.requests[2].json() == recs({"id": "rec-2", "input": "x"})
    assert fake.requests_to("/records") == [fake.requests[2]]
    assert fake.requests_to(pid) == [fake.requests[0], fake.requests[2]]
    assert fake.requests_to("/nothing") == []


async def test_requests_are_recorded_in_arrival_order(env: Env) -> None:
    arrived = asyncio.Event()

    def arrive(_: RecordedRequest) -> bool:
        arrived.set()
        return True

    env.fake.inject(delay=0.2, match=arrive)
    first = asyncio.create_task(env.patch("projects", name_doc("first")))
    await arrived.wait()
    await env.patch("projects", name_doc("second"))
    await first
    names = [r.json()["data"]["attributes"]["name"] for r in env.fake.requests]
    assert names == ["first", "second"]


async def test_a_request_the_client_gave_up_on_is_still_recorded(env: Env) -> None:
    env.fake.inject(delay=0.5)
    async with client_for(env.fake, timeout=0.05, max_retries=1) as client:
        await client.projects.update(env.seeded.project_id, name="after timeout")
    assert len(env.fake.requests_to("/projects/")) == 2
    assert env.fake.requests[-1].status == 200


@pytest.mark.parametrize(("concurrent", "expected"), [(True, 8), (False, 1)])
async def test_max_in_flight_reflects_real_concurrency(
    env: Env, concurrent: bool, expected: int
) -> None:
    env.fake.inject(delay=0.2 if concurrent else 0.01, times=8)
    if concurrent:
        replies = await asyncio.gather(*(env.rename() for _ in range(8)))
    else:
        replies = [await env.rename() for _ in range(8)]
    assert [r[0] for r in replies] == [200] * 8
    assert env.fake.max_in_flight == expected
