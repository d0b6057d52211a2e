"""The paginator against a loopback server whose pages and cursors the test controls.

The fake server's own paging is tested in ``tests/resources``; here the server
is a small aiohttp app so a test can send any cursor, repeat one, or fail a page.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from llmobs_async import AsyncPaginator, LLMObsClient, Page, errors
from llmobs_async.models import DatasetRecord
from llmobs_async.testing import FakeLLMObsServer

from .test_cli import _cli

Answer = Callable[[web.Request], web.StreamResponse]
KEYS = {"api_key": "pager-api-key", "app_key": "pager-app-key"}


class Pager:
    """A records list of ``total`` records in pages of ``size``; cursors are ``c<offset>``."""

    def __init__(self, total: int, size: int) -> None:
        self.total = total
        self.size = size
        self.seen: list[dict[str, str]] = []
        """The query of every request, in order."""
        self.last_after: Any = ""
        """``meta.after`` of the last page (``""`` like the live API; None: null; ...)."""
        self.override: Callable[[web.Request, int], web.StreamResponse | None] | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        query = dict(request.query)
        self.seen.append(query)
        start = int(query.get("page[cursor]", "c0")[1:])
        if self.override is not None:
            answer = self.override(request, len(self.seen))
            if answer is not None:
                return answer
        size = int(query.get("page[limit]", self.size))
        ids = range(start, min(start + size, self.total))
        doc: dict[str, Any] = {
            "data": [
                {"id": f"rec-{i}", "type": "datasets", "attributes": {"input": i}} for i in ids
            ]
        }
        end = start + size
        if end < self.total:
            doc["meta"] = {"after": f"c{end}"}
        elif self.last_after != "missing":
            doc["meta"] = {"after": self.last_after}
        return web.json_response(doc)


@pytest.fixture
async def pager() -> AsyncIterator[tuple[Pager, LLMObsClient]]:
    state = Pager(total=95, size=10)
    app = web.Application()
    app.router.add_get("/api/v2/llm-obs/v1/{p}/datasets/{d}/records", state.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    async with LLMObsClient(base_url=f"http://{host}:{port}", **KEYS) as client:
        object.__setattr__(client._transport.retry, "initial", 0.001)
        yield state, client
    await runner.cleanup()


def listing(client: LLMObsClient, **kwargs: Any) -> AsyncPaginator[DatasetRecord]:
    return client.records.list("p", "d", **kwargs)


async def test_a_list_sends_nothing_until_iterated_and_fetches_pages_as_used(pager) -> None:
    server, client = pager
    records = listing(client)
    assert server.seen == []
    iterator = aiter(records)
    first = await anext(iterator)
    assert first.id == "rec-0" and len(server.seen) == 1
    for _ in range(9):
        await anext(iterator)
    assert len(server.seen) == 1  # the second page only when the first is used up
    assert (await anext(iterator)).id == "rec-10" and len(server.seen) == 2


@pytest.mark.parametrize("last", ["", None, "missing"], ids=["empty", "null", "absent"])
async def test_every_item_once_and_the_pull_ends_on_an_empty_null_or_absent_cursor(
    pager, last: Any
) -> None:
    server, client = pager
    server.last_after = last
    ids = [r.id async for r in listing(client)]
    assert ids == [f"rec-{i}" for i in range(95)]
    assert len(server.seen) == 10


async def test_pages_carry_their_items_and_the_next_cursor(pager) -> None:
    _, client = pager
    pages = [page async for page in listing(client, page_size=40).pages()]
    assert [len(p.items) for p in pages] == [40, 40, 15]
    assert [p.next_cursor for p in pages] == ["c40", "c80", None]
    assert all(isinstance(p, Page) for p in pages)


async def test_cursor_resumes_and_filters_and_page_size_go_on_every_page(pager) -> None:
    server, client = pager
    ids = [r.id async for r in listing(client, cursor="c80", page_size=7, version=3, tags=["a:b"])]
    assert ids == [f"rec-{i}" for i in range(80, 95)]
    assert server.seen == [
        {"filter[tags]": "a:b", "filter[version]": "3", "page[limit]": "7", "page[cursor]": c}
        for c in ("c80", "c87", "c94")
    ]


async def test_each_iteration_starts_again_from_its_first_cursor(pager) -> None:
    _, client = pager
    records = listing(client, cursor="c90")
    assert [r.id async for r in records] == [r.id async for r in records]


async def test_a_repeated_cursor_is_an_error_not_an_endless_loop(pager) -> None:
    server, client = pager

    def stuck(request: web.Request, _: int) -> web.StreamResponse | None:
        if request.query.get("page[cursor]") == "c20":
            return web.json_response({"data": [{"id": "again"}], "meta": {"after": "c20"}})
        return None

    server.override = stuck
    got: list[str] = []

    async def pull() -> None:
        async for record in listing(client):
            got.append(record.id)

    with pytest.raises(errors.PaginationError) as caught:
        await pull()
    assert caught.value.cursor == "c20"
    assert got[-1] == "again" and len(got) == 21  # what came before is delivered
    assert len(server.seen) <= 4


async def test_a_resumed_pull_on_a_stuck_cursor_delivers_its_page_once(pager) -> None:
    """The cursor a pull starts from counts as seen: a server that answers it again is stuck."""
    server, client = pager

    def stuck(request: web.Request, _: int) -> web.StreamResponse | None:
        if request.query.get("page[cursor]") == "c20":
            return web.json_response({"data": [{"id": "again"}], "meta": {"after": "c20"}})
        return None

    server.override = stuck
    pages: list[list[str]] = []

    async def pull() -> None:
        async for page in listing(client, cursor="c20").pages():
            pages.append([r.id for r in page.items])

    with pytest.raises(errors.PaginationError) as caught:
        await pull()
    assert caught.value.cursor == "c20"
    assert pages == [["again"]]
    assert len(server.seen) == 1


async def test_the_cli_resuming_on_a_stuck_cursor_appends_its_page_once(
    fake: FakeLLMObsServer, tmp_path: Path
) -> None:
    project_id = fake.add_project()
    dataset_id = fake.add_dataset(project_id=project_id, records=3)
    out = tmp_path / "records.jsonl"
    out.write_bytes(b'{"id": "before"}\n')
    page = {
        "data": [{"id": f"rec-{i}", "type": "datasets", "attributes": {}} for i in range(3)],
        "meta": {"after": "stuck"},
    }
    fake.inject(
        status=200, body=page, times=None, match=lambda r: r.query.get("page[cursor]") == ["stuck"]
    )
    args = ("records", "list", "--project-id", project_id, "--dataset-id", dataset_id)
    run = await _cli(fake, *args, "-o", str(out), "--cursor", "stuck", "--append")
    assert run.code == 1 and "second time" in run.err and "Traceback" not in run.err
    lines = [json.loads(line)["id"] for line in out.read_bytes().splitlines()]
    assert lines == ["before", "rec-0", "rec-1", "rec-2"]


@pytest.mark.parametrize(
    "fault",
    [
        lambda: web.json_response(
            {"errors": [{"title": "Too Many"}]}, status=429, headers={"X-RateLimit-Reset": "0.05"}
        ),
        lambda: web.Response(status=503, text="<html><title>down</title></html>"),
        "drop",
    ],
    ids=["429", "503", "dropped"],
)
async def test_a_failed_page_mid_pull_is_retried_and_the_pull_is_complete(pager, fault) -> None:
    server, client = pager

    def fail_once(request: web.Request, count: int) -> web.StreamResponse | None:
        if count not in (4, 7):
            return None
        if fault == "drop":
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        return fault()

    server.override = fail_once
    ids = [r.id async for r in listing(client)]
    assert ids == [f"rec-{i}" for i in range(95)]
    assert len(server.seen) == 12


async def test_a_page_that_is_not_a_list_fails_clearly(pager) -> None:
    server, client = pager
    server.override = lambda request, count: web.json_response({"data": {"id": "x"}})
    with pytest.raises(errors.APIResponseValidationError, match="data is not a list"):
        [r async for r in listing(client)]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"page_size": 0}, "page_size"),
        ({"page_size": 5001}, "page_size"),
        ({"page_size": True}, "page_size"),
        ({"cursor": ""}, "cursor"),
        ({"version": -1}, "version"),
        ({"tags": [""]}, "tags"),
    ],
)
async def test_bad_list_arguments_are_refused_before_anything_is_sent(
    pager, kwargs: dict[str, Any], field: str
) -> None:
    server, client = pager
    with pytest.raises(errors.ValidationError) as caught:
        listing(client, **kwargs)
    assert caught.value.field == field
    assert server.seen == []
