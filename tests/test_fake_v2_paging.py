"""The fake's cursor pages: exact under inserts and deletes, fast at 100,000, faults mid-pull."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from llmobs_async.testing import FakeLLMObsServer, RecordedRequest

from .fakev2 import V1, Api, doc, ids, records_path


@pytest.fixture
async def api(llmobs_fake: FakeLLMObsServer) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as http:
        yield Api(llmobs_fake, http)


def seeded(api: Api, records: int) -> tuple[str, str]:
    pid = api.fake.add_project()
    return pid, api.fake.add_dataset(project_id=pid, records=records)


async def test_a_100000_record_pull_returns_every_id_once_newest_first(api: Api) -> None:
    where = seeded(api, 100_000)
    items, pages = await api.pull(records_path(*where))
    got = ids(items)
    assert pages == 100  # 1000 a page by default
    assert got[0] == "rec-99999" and got[-1] == "rec-0"
    assert len(got) == len(set(got)) == 100_000
    assert set(got) == {f"rec-{i}" for i in range(100_000)}


async def test_cursors_stay_exact_while_records_come_and_go(api: Api) -> None:
    where = seeded(api, 60)
    path, seen, cursor, deleted = records_path(*where), [], "", set()
    for turn in range(100):
        params = {"page[limit]": "7", **({"page[cursor]": cursor} if cursor else {})}
        page = await api.ok("GET", path, params=params)
        seen += ids(page["data"])
        cursor = page["meta"]["after"]
        if not cursor:
            break
        new = [{"id": f"new-{turn}-{i}", "input": i} for i in range(3)]
        await api.ok("POST", path, doc("records", {"records": new}))
        # The oldest records come last: rec-{turn} is not returned yet; seen[turn] is.
        doomed = [f"rec-{turn}", seen[turn]]
        drop = doc("records", {"record_ids": doomed})
        await api.ok("POST", records_path(*where, "/records/delete"), drop)
        deleted.update(doomed)
    present_throughout = [f"rec-{i}" for i in range(59, -1, -1) if f"rec-{i}" not in deleted]
    assert len(seen) == len(set(seen))  # nothing twice
    assert [rid for rid in seen if rid not in deleted] == present_throughout
    assert not any(rid.startswith("new-") for rid in seen)


async def test_project_and_experiment_pages_ignore_items_made_during_the_pull(api: Api) -> None:
    first = [api.fake.add_project(name=f"p{i}") for i in range(5)]
    page = await api.ok("GET", f"{V1}/projects", params={"page[limit]": "2"})
    for i in range(3):
        await api.project(f"late{i}")
    rest, _ = await api.pull(f"{V1}/projects", {"page[limit]": "2"}, page["meta"]["after"])
    assert ids(page["data"]) + ids(rest) == first[::-1]
    made = [api.fake.add_experiment(project_id=first[0]) for _ in range(3)]
    params = {"filter[project_id]": first[0], "page[limit]": "1"}
    head = await api.ok("GET", f"{V1}/experiments", params=params)
    api.fake.add_experiment(project_id=first[0])
    tail, _ = await api.pull(f"{V1}/experiments", params, head["meta"]["after"])
    assert ids(head["data"]) + ids(tail) == made[::-1]


async def test_bad_cursors_and_limits_are_400_naming_the_parameter(api: Api) -> None:
    one, other = seeded(api, 5), seeded(api, 5)
    page = await api.ok("GET", records_path(*one), params={"page[limit]": "2"})
    cursor = page["meta"]["after"]
    assert cursor and (await api.get(records_path(*one), {"page[cursor]": cursor})).status == 200
    cases = [
        (records_path(*one), {"page[cursor]": "!!garbled!!"}, "page[cursor]"),
        (records_path(*one), {"page[cursor]": cursor[:-2]}, "page[cursor]"),
        (records_path(*other), {"page[cursor]": cursor}, "page[cursor]"),  # another list's
        (f"{V1}/projects", {"page[cursor]": cursor}, "page[cursor]"),
        (records_path(*one), {"page[limit]": "0"}, "page[limit]"),
        (records_path(*one), {"page[limit]": "5001"}, "page[limit]"),
        (f"{V1}/projects", {"page[limit]": "ten"}, "page[limit]"),
    ]
    for path, params, parameter in cases:
        answer = await api.get(path, params)
        assert (answer.status, answer.parameter) == (400, parameter), params
        assert answer.error["title"] == "Bad Request"
    whole = await api.ok("GET", records_path(*one), params={"page[limit]": "5000"})
    assert len(whole["data"]) == 5


async def test_default_page_sizes(api: Api) -> None:
    where = seeded(api, 1500)
    for _ in range(149):
        api.fake.add_project()
    assert len((await api.ok("GET", records_path(*where)))["data"]) == 1000
    assert len((await api.ok("GET", f"{V1}/projects"))["data"]) == 100


def listing(request: RecordedRequest) -> bool:
    return request.method == "GET" and request.url_path.endswith("/records")


async def test_faults_land_mid_pull_and_a_retry_of_the_same_cursor_completes_it(api: Api) -> None:
    where = seeded(api, 50)
    # ``after`` counts the matching requests that reach a fault, not those an earlier
    # fault took: the 3rd request fails, the 5th is dropped, the 8th is rate limited.
    api.fake.inject(status=503, after=2, match=listing)
    api.fake.inject(drop=True, after=3, match=listing)
    api.fake.inject_rate_limit(after=5, match=listing)
    got, cursor, statuses = [], "", []
    while True:
        params = {"page[limit]": "5", **({"page[cursor]": cursor} if cursor else {})}
        try:
            answer = await api.get(records_path(*where), params)
        except aiohttp.ClientConnectionError:
            statuses.append(0)
            continue
        statuses.append(answer.status)
        if answer.status != 200:
            continue
        got += ids(answer.body["data"])
        cursor = answer.body["meta"]["after"]
        if not cursor:
            break
    answered = [r.status for r in api.fake.requests]
    assert answered == [200, 200, 503, 200, 0, 200, 200, 429, *[200] * 5]
    assert statuses.count(200) == 10  # aiohttp itself may resend the dropped GET
    assert got == [f"rec-{i}" for i in range(49, -1, -1)]
    retried = [r for r in api.fake.requests if r.status in (0, 503, 429)]
    assert retried[0].query["page[cursor]"] == api.fake.requests[3].query["page[cursor]"]
    assert api.fake.requests[0].query == {"page[limit]": ["5"]}
