"""The fake server's faults: injected answers, drops, rate limits, chaos and body size."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import aiohttp
import pytest

from llmobs_async import LLMObsClient, errors
from llmobs_async.testing import Chaos, FakeLLMObsServer

from .conftest import client_for
from .fakehttp import (
    JSON,
    PREFIX,
    RATE_HEADERS,
    VALID,
    Env,
    jsonapi,
    name_doc,
    pick,
    send,
)

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
    assert pick(headers, "Retry-After", "X-Trace") == ("7", "t")
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
    experiment = jsonapi("experiments", VALID["experiments"])
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


async def test_chaos_match_faults_only_its_route_and_others_draw_nothing(env: Env) -> None:
    experiment = jsonapi("experiments", VALID["experiments"])

    def only_experiments() -> Chaos:
        return Chaos(error_rate=0.5, seed=3, match=lambda r: "/experiments/" in r.path)

    env.fake.chaos = only_experiments()
    alone = [(await env.patch("experiments", experiment))[0] for _ in range(8)]
    env.fake.chaos = only_experiments()
    mixed = []
    for _ in range(8):
        assert (await env.rename())[0] == 200  # another route: never faulted
        mixed.append((await env.patch("experiments", experiment))[0])
    assert mixed == alone  # the same seed, the same faults: renames drew nothing
    assert set(alone) == {200, 503}


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
    limit, period, remaining, reset, name = pick(headers, *RATE_HEADERS)
    assert (limit, period, remaining, float(reset)) == expected and name
    assert all(isinstance(e, str) for e in json.loads(body)["errors"])


async def test_inject_rate_limit_applies_only_to_requests_it_matches(env: Env) -> None:
    env.fake.inject_rate_limit(times=2, match=lambda r: "/experiments/" in r.path)
    finish = jsonapi("experiments", VALID["experiments"])
    order = ["projects", "experiments", "projects", "experiments", "experiments"]
    statuses = [
        (await env.patch(kind, finish if kind == "experiments" else name_doc("x")))[0]
        for kind in order
    ]
    assert statuses == [200, 429, 200, 429, 200]
    assert env.fake.requests[1].status == 429 and "/experiments/" in env.fake.requests[1].path


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
        url, doc = f"{fake.base_url}{PREFIX}/projects/{fake.add_project()}", jsonapi("projects", {})
        replies = [
            await send(http, url, doc),
            await send(http, url, doc, headers=JSON),  # a 401 counts and carries the headers
            await send(http, f"{fake.base_url}{PREFIX}/projects/nope", doc),
            *[await send(http, url, doc) for _ in range(4)],
        ]
        assert [r[0] for r in replies] == [200, 401, 404, 200, 200, 429, 429]
        for index, (_, headers, _) in enumerate(replies):
            limit, period, remaining, reset, name = pick(headers, *RATE_HEADERS)
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
                seen.append((await send(http, url, jsonapi("projects", {})))[0])
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
        url, size = f"{fake.base_url}{PREFIX}/projects/{pid}", 300 - len(json.dumps(name_doc("")))
        at_limit = json.dumps(name_doc("x" * size)).encode()
        assert len(at_limit) == 300
        assert (await send(http, url, at_limit))[0] == 200
        status, _, body = await send(http, url, json.dumps(name_doc("y" * (size + 1))).encode())
        assert status == 413 and json.loads(body)["errors"][0]["status"] == "413"
        assert fake.projects[pid]["name"] == "x" * size
