"""Records are read through the paginator as the run needs them, not all up front."""

from __future__ import annotations

from typing import Any

from llmobs_async import LLMObsClient
from llmobs_async.testing import FakeLLMObsServer, RecordedRequest

from .common import is_records_read, observe, seed, wait


async def test_a_page_is_read_only_when_the_rows_before_it_are_done(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    data = seed(fake, 2500)
    done = 0
    reads: list[tuple[int, int]] = []  # (page size asked, rows done) at each page read

    def seen(r: RecordedRequest) -> None:
        if is_records_read(r):
            limit = r.query.get("page[limit]")
            reads.append((int(limit[0]) if limit else 1000, done))

    observe(fake, seen)

    async def task(input_data: dict[str, Any], config: Any) -> int:
        nonlocal done
        done += 1
        return 1

    run = await wait(
        client.experiments.run(data.project_id, data.dataset_id, "lazy", task=task, concurrency=10)
    )
    assert run.ok and run.rows_done == 2500
    assert len(reads) >= 3
    for page, (size, rows_done) in enumerate(reads):
        # Reading page k+2 while page k's rows are pending holds three pages at once;
        # allow one page read ahead, and slack for the rows still in flight.
        slack = max(size // 2, 10)
        assert rows_done >= (page - 1) * size - slack, (page, reads)


async def test_sample_size_reads_no_page_past_the_sample(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    data = seed(fake, 2500)

    async def task(input_data: dict[str, Any], config: Any) -> int:
        return 1

    run = await wait(
        client.experiments.run(data.project_id, data.dataset_id, "few", task=task, sample_size=5)
    )
    assert run.rows_done == 5
    assert len([r for r in fake.requests if is_records_read(r)]) == 1
