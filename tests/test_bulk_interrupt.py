"""An interrupted bulk job (cancel, asyncio.timeout) still accounts for every record read."""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Iterator
from typing import Any

import pytest

from llmobs_async import BulkInterruptedError, BulkResult
from llmobs_async.testing import FakeLLMObsServer

from .conftest import client_for
from .fakehttp import hold_after
from .test_bulk import check, seed, updates

CONCURRENCY, BATCH, ANSWERED = 4, 100, 6


def stored_new(fake: FakeLLMObsServer, dataset_id: str, n: int) -> set[int]:
    stored = fake.records(dataset_id)
    return {i for i in range(n) if stored[f"rec-{i}"]["expected_output"] == f"new-{i}"}


def assert_interrupted_account(
    result: BulkResult | None, fake: FakeLLMObsServer, dataset_id: str, total: int
) -> None:
    assert result is not None
    check(result)
    assert isinstance(result.stopped, BulkInterruptedError)
    assert result.applied == ANSWERED * BATCH
    assert result.submitted < total
    assert result.failed == result.unsent  # nothing was refused: all of it is unsent
    assert all(isinstance(f.error, BulkInterruptedError) for f in result.failed)
    # Applied (as the server holds them) and unsent are disjoint and cover what was read.
    applied = stored_new(fake, dataset_id, total)
    unsent = {p for f in result.failed for p in f.positions}
    assert len(applied) == result.applied
    assert not applied & unsent
    assert applied | unsent == set(range(result.submitted))
    assert {f"rec-{p}" for p in unsent} == {rid for f in result.failed for rid in f.record_ids}


@pytest.mark.parametrize("how", ["cancel", "timeout"])
async def test_an_interrupted_job_leaves_its_account_on_the_exception(
    fake: FakeLLMObsServer, how: str
) -> None:
    total = 100_000
    project_id, dataset_id = seed(fake, total)
    held = hold_after(fake, ANSWERED, CONCURRENCY)
    async with client_for(fake, max_concurrency=CONCURRENCY) as client:
        job = client.records.update_many(
            project_id, dataset_id, updates(range(total)), batch_size=BATCH
        )
        caught: BaseException
        if how == "cancel":
            task = asyncio.create_task(job)
            await held.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError) as cancelled:
                await task
            caught = cancelled.value
        else:

            async def expire_when_held(deadline: asyncio.Timeout) -> None:
                await held.wait()
                deadline.reschedule(asyncio.get_running_loop().time())

            async def run_until_held() -> None:
                async with asyncio.timeout(None) as deadline:
                    trigger = asyncio.create_task(expire_when_held(deadline))
                    await job
                await trigger  # pragma: no cover - the timeout fires first

            with pytest.raises(TimeoutError) as timed_out:
                await run_until_held()
            caught = timed_out.value
        result = BulkResult.from_exception(caught)
        assert_interrupted_account(result, fake, dataset_id, total)
        assert result is not None
        assert pickle.loads(pickle.dumps(result)).submitted == result.submitted
        # The client is whole again: its slots are back, and it still works.
        assert client._pool.semaphore._value == CONCURRENCY
        fake.clear_faults()
        again = check(
            await client.records.update_many(
                project_id, dataset_id, (r for f in result.failed for r in f.records)
            )
        )
        assert again.ok and again.applied == result.failed_count


async def test_an_exception_without_a_job_has_no_result() -> None:
    assert BulkResult.from_exception(asyncio.CancelledError()) is None
    assert BulkResult.from_exception(TimeoutError()) is None


class Broken(Exception):
    pass


async def test_an_input_that_raises_leaves_a_complete_account(fake: FakeLLMObsServer) -> None:
    project_id, dataset_id = seed(fake, 1000)

    def source() -> Iterator[dict[str, Any]]:
        yield from updates(range(250))
        raise Broken("truncated")

    async with client_for(fake) as client:
        with pytest.raises(Broken) as info:
            await client.records.update_many(project_id, dataset_id, source(), batch_size=100)
    result = BulkResult.from_exception(info.value)
    assert result is not None
    assert (result.submitted, result.applied, result.failed) == (250, 250, [])
