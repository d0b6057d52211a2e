"""The public test helper ``FakeLLMObsServer``: its contract, as its users rely on it."""

from __future__ import annotations

import asyncio
import copy
import json
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import attrs
import pytest

from llmobs_async import LLMObsClient, errors, models
from llmobs_async.testing import Chaos, FakeLLMObsServer, RecordedRequest

from .conftest import Seeded, client_for

PREFIX = "/api/v2/llm-obs/v1"
KEYS = {"DD-API-KEY": "fake-api-key", "DD-APPLICATION-KEY": "fake-app-key"}
JSON = {"Content-Type": "application/json"}
VALID = {
    "experiments": {"status": "completed"},
    "projects": {"name": "renamed"},
    "records": {"records": [{"id": "rec-1", "expected_output": "yes"}]},
}
TIMESTAMPS = {"created_at", "updated_at"}
RECORD_KEYS = {"id", "dataset_id", "input", "expected_output", "metadata", *TIMESTAMPS}
RATE_HEADERS = [f"X-RateLimit-{h}" for h in ("Limit", "Period", "Remaining", "Reset", "Name")]
Reply = tuple[int, Any, bytes]


def _doc(kind: str, attributes: dict[str, Any]) -> dict[str, Any]:
    return {"data": {"type": kind, "attributes": attributes}}


def _name(name: Any) -> dict[str, Any]:
    return _doc("projects", {"name": name})


def _recs(*records: Any, **extra: Any) -> dict[str, Any]:
    return _doc("records", {"records": list(records), **extra})


def _pick(mapping: Any, *keys: str) -> tuple[Any, ...]:
    return tuple(mapping[k] for k in keys)


async def _send(
    http: aiohttp.ClientSession, url: str, body: Any, headers: dict[str, str] | None = None
) -> Reply:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {**KEYS, **JSON} if headers is None else headers
    async with http.patch(url, data=data, headers=headers) as response:
        return response.status, response.headers, await response.read()


@attrs.frozen
class Env:
    """The ``fake`` and ``seeded`` fixtures plus a raw aiohttp session."""

    fake: FakeLLMObsServer
    seeded: Seeded
    http: aiohttp.ClientSession

    def url(self, kind: str) -> str:
        s, base = self.seeded, self.fake.base_url + PREFIX
        paths = {
            "experiments": f"/experiments/{s.experiment_id}",
            "projects": f"/projects/{s.project_id}",
        }
        return base + paths.get(kind, f"/{s.project_id}/datasets/{s.dataset_id}/records")

    async def patch(self, kind: str, body: Any, headers: dict[str, str] | None = None) -> Reply:
        return await _send(self.http, self.url(kind), body, headers)

    async def rename(self) -> Reply:
        return await self.patch("projects", _name("renamed"))

    def state(self) -> Any:
        f = self.fake
        return copy.deepcopy((f.projects, f.experiments, f.records(self.seeded.dataset_id)))

    def statuses(self) -> list[int]:
        return [r.status for r in self.fake.requests]


@pytest.fixture
async def env(fake: FakeLLMObsServer, seeded: Seeded) -> AsyncIterator[Env]:
    async with aiohttp.ClientSession() as http:
        yield Env(fake, seeded, http)


# --- lifecycle and auth -------------------------------------------------------------------------


async def test_servers_bind_distinct_loopback_ports_and_release_them_on_exit() -> None:
    async with FakeLLMObsServer() as one, FakeLLMObsServer() as two:
        urls = [one.base_url + PREFIX + "/projects/p", two.base_url + PREFIX + "/projects/p"]
        assert one.base_url != two.base_url
        async with aiohttp.ClientSession() as http:
            for fake, url in zip((one, two), urls, strict=True):
                assert re.fullmatch(r"http://127\.0\.0\.1:[1-9]\d*", fake.base_url)
                assert (await _send(http, url, {}, headers={}))[0] == 401
    async with aiohttp.ClientSession() as http:
        for url in urls:
            with pytest.raises(aiohttp.ClientConnectorError):
                await _send(http, url, {})


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
    got, _, body = await env.patch("projects", _name("x"), {**JSON, **headers})
    assert got == status
    assert json.loads(body)["errors"][0]["status"] == str(status)
    assert env.state() == before


async def test_recorded_headers_never_hold_key_values(env: Env) -> None:
    async with client_for(env.fake) as client:
        await client.projects.update(env.seeded.project_id, name="x")
    wrong = {"DD-API-KEY": "leaked-api-key", "DD-APPLICATION-KEY": "leaked-app-key", **JSON}
    await env.patch("projects", _name("y"), wrong)
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
    "wrong-type": ("experiments", _doc("projects", {}), "/data/type"),
    "missing-type": ("records", {"data": {"attributes": VALID["records"]}}, "/data/type"),
    "missing-attributes": ("experiments", {"data": {"type": "experiments"}}, A),
    "unknown-attribute": ("projects", _doc("projects", {"name": "a", "title": "b"}), f"{A}/title"),
    "name-not-string": ("projects", _name(5), f"{A}/name"),
    "bad-status": ("experiments", _doc("experiments", {"status": "done"}), f"{A}/status"),
    "null-status": ("experiments", _doc("experiments", {"status": None}), f"{A}/status"),
    "metadata-not-object": ("experiments", _doc("experiments", {"metadata": [1]}), f"{A}/metadata"),
    "empty-records": ("records", _recs(), R),
    "missing-records": ("records", _doc("records", {}), R),
    "record-without-id": ("records", _recs({"id": "rec-1"}, {"input": 1}), f"{R}/1/id"),
    "record-id-not-string": ("records", _recs({"id": 7}), f"{R}/0/id"),
    "record-not-object": ("records", _recs("rec-1"), f"{R}/0"),
    "record-bad-metadata": ("records", _recs({"id": "rec-1", "metadata": 1}), f"{R}/0/metadata"),
    "record-extra-field": ("records", _recs({"id": "rec-1"}, {"id": "rec-2", "x": 1}), f"{R}/1/x"),
    "records-unknown-attribute": ("records", _recs({"id": "rec-1"}, bogus=1), f"{A}/bogus"),
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
    assert _pick(fake.records(did)["rec-1"], *fields) == ({"i": 1}, "new", {"k": 1})
    nulls = models.RecordUpdate(id="rec-1", input=None, expected_output=None)
    [rec] = await client.records.update(pid, did, [nulls])
    sent = fake.requests[-1].json()["data"]["attributes"]["records"]
    assert sent == [{"id": "rec-1", "input": None, "expected_output": None}]
    assert _pick(fake.records(did)["rec-1"], *fields) == (None, None, {"k": 1})
    assert (rec.input, rec.expected_output, rec.metadata) == (None, None, {"k": 1})
    assert fake.records(did)["rec-2"] == rec_2
    fake.experiments[eid]["metadata"] = {"m": 1}
    await client.experiments.update(eid, status="failed", error="boom")
    experiment = fake.experiments[eid]
    assert _pick(experiment, "status", "error", "metadata") == ("failed", "boom", {"m": 1})
    await client.projects.update(pid, description="d")
    assert _pick(fake.projects[pid], "name", "description") == ("proj", "d")


@pytest.mark.parametrize("kind", ["experiments", "projects", "records"])
async def test_success_responses_have_the_reference_shape_and_a_new_updated_at(
    env: Env, kind: str
) -> None:
    fake, (pid, did, eid) = env.fake, attrs.astuple(env.seeded)
    old = "2000-01-01T00:00:00.000Z"
    for stored in (fake.experiments[eid], fake.projects[pid], fake.records(did)["rec-1"]):
        stored["updated_at"] = old
    status, headers, body = await env.patch(kind, _doc(kind, VALID[kind]))
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    doc = json.loads(body)
    assert set(doc) == {"data"}
    if kind == "records":
        assert len(doc["data"]) == 1 and set(doc["data"][0]) == {"records"}
        [got] = doc["data"][0]["records"]
        assert set(got) == RECORD_KEYS and fake.records(did)["rec-1"] == got
        assert _pick(got, "id", "dataset_id", "expected_output") == ("rec-1", did, "yes")
    else:
        assert set(doc["data"]) == {"id", "type", "attributes"} and doc["data"]["type"] == kind
        assert doc["data"]["id"] == {"projects": pid, "experiments": eid}[kind]
        got = doc["data"]["attributes"]
        if kind == "projects":
            assert set(got) == {"name", "description", *TIMESTAMPS}
            assert got["name"] == "renamed"
        else:
            required = "config created_at dataset_id description metadata name project_id"
            assert set(required.split()) <= set(got) and got["status"] == "completed"
    assert got["updated_at"] != old and got["updated_at"] >= got["created_at"]
    assert got["updated_at"].endswith("Z")


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
    assert fake.requests[0].json() == _name("a")
    assert fake.requests[2].json() == _recs({"id": "rec-2", "input": "x"})
    assert fake.requests_to("/records") == [fake.requests[2]]
    assert fake.requests_to(pid) == [fake.requests[0], fake.requests[2]]
    assert fake.requests_to("/nothing") == []


async def test_requests_are_recorded_in_arrival_order(env: Env) -> None:
    arrived = asyncio.Event()

    def arrive(_: RecordedRequest) -> bool:
        arrived.set()
        return True

    env.fake.inject(delay=0.2, match=arrive)
    first = asyncio.create_task(env.patch("projects", _name("first")))
    await arrived.wait()
    await env.patch("projects", _name("second"))
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


# --- faults -------------------------------------------------------------------------------------


async def test_faults_apply_in_order_to_exactly_the_next_n_requests(env: Env) -> None:
    env.fake.inject(status=500)
    env.fake.inject(status=502, times=2)
    assert [(await env.rename())[0] for _ in range(5)] == [500, 502, 502, 200, 200]
    assert env.statuses() == [500, 502, 502, 200, 200]


J, H = "application/json", "text/html"
DEFAULT_503 = {"errors": [{"status": "503", "title": "Service Unavailable"}]}
ANSWERS = {  # inject() arguments: Content-Type and body answered
    "default-body": ({"status": 503}, J, DEFAULT_503),
    "bytes": ({"status": 503, "body": b"\x00raw"}, J, b"\x00raw"),
    "str": ({"status": 503, "body": "té"}, J, "té".encode()),
    "mapping": ({"status": 500, "body": {"errors": ["x"]}}, J, {"errors": ["x"]}),
    "headers": ({"status": 503, "body": "<p>", "headers": {"Content-Type": H}}, H, b"<p>"),
    "lowercase-header": ({"status": 503, "body": "<p>", "headers": {"content-type": H}}, H, b"<p>"),
}


@pytest.mark.parametrize(("kwargs", "ctype", "expected"), ANSWERS.values(), ids=ANSWERS.keys())
async def test_injected_answers_are_sent_as_given(
    env: Env, kwargs: dict[str, Any], ctype: str, expected: Any
) -> None:
    env.fake.inject(**kwargs)
    status, headers, body = await env.rename()
    assert (status, headers["Content-Type"].split(";")[0]) == (kwargs["status"], ctype)
    assert (json.loads(body) if isinstance(expected, dict) else body) == expected
    assert (await env.rename())[0] == 200


@pytest.mark.parametrize("status", [None, 503])
async def test_inject_html_answers_an_html_page(env: Env, status: int | None) -> None:
    env.fake.inject_html() if status is None else env.fake.inject_html(status=status)
    got, headers, body = await env.rename()
    assert (got, headers["Content-Type"].split(";")[0]) == (status or 502, H)
    assert body.lstrip().lower().startswith(b"<html")


async def test_injected_headers_and_delay(env: Env) -> None:
    env.fake.inject(status=429, headers={"Retry-After": "7", "X-Trace": "t"})
    env.fake.inject(delay=0.15)
    _, headers, _ = await env.rename()
    assert _pick(headers, "Retry-After", "X-Trace") == ("7", "t")
    start = asyncio.get_running_loop().time()
    status, _, _ = await env.rename()
    assert asyncio.get_running_loop().time() - start >= 0.15
    assert status == 200 and env.fake.projects[env.seeded.project_id]["name"] == "renamed"


async def test_drop_disconnects_without_an_answer_or_a_change(env: Env) -> None:
    before = env.state()
    env.fake.inject(drop=True)
    with pytest.raises(aiohttp.ClientConnectionError):  # ServerDisconnectedError is one
        await env.rename()
    assert env.state() == before
    assert (await env.rename())[0] == 200
    env.fake.inject(drop=True)
    async with client_for(env.fake) as client:  # the client retries and succeeds
        assert (await client.projects.update(env.seeded.project_id, name="x")).name == "x"
    assert env.statuses() == [0, 200, 0, 200]


async def test_match_narrows_a_fault_and_unmatched_requests_do_not_consume_it(env: Env) -> None:
    env.fake.inject(status=500, match=lambda r: "/experiments/" in r.path)
    experiment = _doc("experiments", VALID["experiments"])
    assert (await env.rename())[0] == 200
    assert (await env.patch("experiments", experiment))[0] == 500
    assert (await env.patch("experiments", experiment))[0] == 200


async def test_forever_fault_and_chaos_last_until_clear_faults(env: Env) -> None:
    env.fake.inject(status=500, times=None)
    env.fake.chaos = Chaos(error_rate=1.0)
    assert [(await env.rename())[0] for _ in range(6)] == [500] * 6
    env.fake.clear_faults()
    assert env.fake.chaos is None
    assert (await env.rename())[0] == 200


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"reset": 0.5, "times": 2}, ("60", "60", "0", 0.5)),
        ({"reset": 3, "limit": 10, "period": 2.0}, ("10", "2", "0", 3.0)),
    ],
)
async def test_inject_rate_limit_answers_429_with_rate_limit_headers(
    env: Env, kwargs: dict[str, Any], expected: tuple[str, str, str, float]
) -> None:
    env.fake.inject_rate_limit(**kwargs)
    times = kwargs.get("times", 1)
    replies = [await env.rename() for _ in range(times + 1)]
    assert [r[0] for r in replies] == [429] * times + [200]
    _, headers, body = replies[0]
    limit, period, remaining, reset, name = _pick(headers, *RATE_HEADERS)
    assert (limit, period, remaining, float(reset)) == expected and name
    assert all(isinstance(e, str) for e in json.loads(body)["errors"])


REJECTIONS = {
    "id-in-batch": ("rec-3", [{"id": "rec-1", "input": 1}, {"id": "rec-3", "input": 3}], 400),
    "other-status": ("rec-3", [{"id": "rec-3", "input": 3}], 422),
    "non-ascii-id": ("réc-é", [{"id": "réc-é", "input": 1}], 400),
    "id-absent": ("rec-3", [{"id": "rec-1", "input": 1}], None),
    "id-only-as-a-value": ("rec-3", [{"id": "rec-1", "input": "rec-3"}], None),
}


@pytest.mark.parametrize(
    ("record_id", "batch", "status"), REJECTIONS.values(), ids=REJECTIONS.keys()
)
async def test_reject_record_refuses_every_batch_with_that_record_id_and_only_those(
    env: Env, client: LLMObsClient, record_id: str, batch: list[Any], status: int | None
) -> None:
    pid, did = env.seeded.project_id, env.seeded.dataset_id
    env.fake.store.add_records(did, [{"id": "réc-é"}])
    env.fake.reject_record(record_id, status=status or 400)
    before = env.state()
    if status is None:
        await client.records.update(pid, did, batch)
        assert env.fake.records(did)["rec-1"]["input"] == batch[0]["input"]
        return
    for _ in range(3):  # forever, not once
        with pytest.raises(errors.APIStatusError) as info:
            await client.records.update(pid, did, batch)
        assert info.value.status == status
    assert env.state() == before


# --- rate limit mode, chaos, body size ----------------------------------------------------------


async def test_rate_limit_mode_counts_down_and_rejects_past_the_limit() -> None:
    async with FakeLLMObsServer(rate_limit=(5, 1.0)) as fake, aiohttp.ClientSession() as http:
        url, doc = f"{fake.base_url}{PREFIX}/projects/{fake.add_project()}", _doc("projects", {})
        replies = [
            await _send(http, url, doc),
            await _send(http, url, doc, headers=JSON),  # a 401 counts and carries the headers
            await _send(http, f"{fake.base_url}{PREFIX}/projects/nope", doc),
            *[await _send(http, url, doc) for _ in range(4)],
        ]
        assert [r[0] for r in replies] == [200, 401, 404, 200, 200, 429, 429]
        for index, (_, headers, _) in enumerate(replies):
            limit, period, remaining, reset, name = _pick(headers, *RATE_HEADERS)
            assert (limit, period, int(remaining)) == ("5", "1", max(4 - index, 0)) and name
            assert 0 < float(reset) <= 1.0
        assert all(isinstance(e, str) for e in json.loads(replies[-1][2])["errors"])
        assert fake.rate_limit is not None and fake.rate_limit.rejected == 2


async def test_rate_limit_window_resets_so_a_client_job_completes() -> None:
    async with FakeLLMObsServer(rate_limit=(2, 0.1)) as fake:
        pid = fake.add_project()
        async with client_for(fake) as client:
            for i in range(5):
                await client.projects.update(pid, name=f"n{i}")
        statuses = [r.status for r in fake.requests]
        assert fake.projects[pid]["name"] == "n4" and statuses.count(200) == 5
        assert fake.rate_limit is not None and fake.rate_limit.rejected == statuses.count(429)


async def _chaos_statuses(seed: int, n: int) -> list[int]:
    async with FakeLLMObsServer() as fake, aiohttp.ClientSession() as http:
        fake.chaos = Chaos(error_rate=0.2, rate_limit_rate=0.1, drop_rate=0.1, seed=seed)
        url, seen = f"{fake.base_url}{PREFIX}/projects/{fake.add_project()}", []
        for _ in range(n):
            try:
                seen.append((await _send(http, url, _doc("projects", {})))[0])
            except aiohttp.ClientConnectionError:
                seen.append(0)
        assert seen == [r.status for r in fake.requests]
        return seen


async def test_chaos_is_reproducible_per_seed_and_near_its_rates() -> None:
    first, again, other = [await _chaos_statuses(seed, 200) for seed in (7, 7, 8)]
    assert first == again and first != other
    counts = Counter(first)
    assert set(counts) == {0, 200, 429, 503}
    # 10% drops, 10% 429, 20% 503 of 200: each within about 3 standard deviations.
    assert 8 <= counts[0] <= 34 and 8 <= counts[429] <= 34 and 22 <= counts[503] <= 58


async def test_body_over_max_body_bytes_is_413() -> None:
    async with FakeLLMObsServer(max_body_bytes=300) as fake, aiohttp.ClientSession() as http:
        pid = fake.add_project()
        url, size = f"{fake.base_url}{PREFIX}/projects/{pid}", 300 - len(json.dumps(_name("")))
        at_limit = json.dumps(_name("x" * size)).encode()
        assert len(at_limit) == 300
        assert (await _send(http, url, at_limit))[0] == 200
        status, _, body = await _send(http, url, json.dumps(_name("y" * (size + 1))).encode())
        assert status == 413 and json.loads(body)["errors"][0]["status"] == "413"
        assert fake.projects[pid]["name"] == "x" * size
