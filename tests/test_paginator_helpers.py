"""What a paginator offers besides ``async for``: a list, one page, and a clear misuse error."""

from __future__ import annotations

import pytest

from llmobs_async import LLMObsClient, errors
from llmobs_async.testing import FakeLLMObsServer

from .conftest import Seeded


async def test_to_list_collects_every_item_across_pages(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    fake.add_records(seeded.dataset_id, [{"input": i} for i in range(25)])
    records = await client.records.list(seeded.project_id, seeded.dataset_id, page_size=7).to_list()
    assert len(records) == 35  # 10 seeded + 25
    assert len({r.id for r in records}) == 35
    assert len(fake.requests_to("/records")) == 5  # ceil(35 / 7)


async def test_to_list_with_a_limit_stops_fetching_once_it_has_them(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    pager = client.records.list(seeded.project_id, seeded.dataset_id, page_size=4)
    assert len(await pager.to_list(limit=5)) == 5
    assert len(fake.requests_to("/records")) == 2
    assert await pager.to_list(limit=0) == []
    assert len(fake.requests_to("/records")) == 2


@pytest.mark.parametrize("limit", [-1, 1.5, True, "3"])
async def test_to_list_refuses_a_bad_limit_naming_it(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded, limit: object
) -> None:
    with pytest.raises(errors.ValidationError, match="limit"):
        await client.projects.list().to_list(limit=limit)  # type: ignore[arg-type]
    assert fake.requests == []


async def test_page_reads_one_page_and_its_cursor_reads_the_next(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    first = await client.records.list(seeded.project_id, seeded.dataset_id, page_size=6).page()
    assert len(first.items) == 6 and first.next_cursor is not None
    second = await client.records.list(
        seeded.project_id, seeded.dataset_id, page_size=6, cursor=first.next_cursor
    ).page()
    assert len(second.items) == 4 and second.next_cursor is None
    assert {r.id for r in first.items}.isdisjoint(r.id for r in second.items)
    assert len(fake.requests_to("/records")) == 2


async def test_awaiting_or_iterating_synchronously_says_use_async_for(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    pager = client.projects.list()
    with pytest.raises(TypeError, match="use `async for"):
        list(pager)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="use `async for"):
        for _ in pager:  # type: ignore[attr-defined]
            pass
    with pytest.raises(TypeError, match="use `async for"):
        await pager  # type: ignore[misc]
    assert fake.requests == []
