"""The status is honest: running, then completed, failed or interrupted; never left running."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from llmobs_async import LLMObsClient, errors
from llmobs_async.testing import FakeLLMObsServer, RecordedRequest

from .common import is_records_read, only_experiment, seed, wait


async def test_running_while_the_run_goes_then_completed(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    data = seed(fake, 8)
    started = asyncio.Event()
    gate = asyncio.Event()

    async def task(input_data: dict[str, Any], config: Any) -> int:
        started.set()
        await gate.wait()
        return 1

    running = asyncio.create_task(
        client.experiments.run(data.project_id, data.dataset_id, "live", task=task)
    )
    await wait(started.wait())
    eid, stored = only_experiment(fake)
    assert stored["status"] == "running"
    assert (await client.experiments.get(eid)).status == "running"
    gate.set()
    run = await wait(running)
    assert stored["status"] == "completed" == run.experiment.status
    assert (await client.experiments.get(eid)).status == "completed"


async def test_cancelled_mid_run_is_interrupted_and_tasks_in_flight_are_cancelled(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    data = seed(fake, 30)
    full = asyncio.Event()
    never = asyncio.Event()
    started = finished = 0

    async def task(input_data: dict[str, Any], config: Any) -> int:
        nonlocal started, finished
        started += 1
        if started == 5:
            full.set()
        try:
            await never.wait()
        finally:
            finished += 1
        return 1

    running = asyncio.create_task(
        client.experiments.run(
            data.project_id, data.dataset_id, "stopped", task=task, concurrency=5
        )
    )
    await wait(full.wait())
    _, stored = only_experiment(fake)
    assert stored["status"] == "running"
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await wait(running)
    assert stored["status"] == "interrupted"
    # Every task the run started was cancelled with it: its finally ran.
    assert started == finished == 5


async def test_interrupted_even_when_the_status_request_meets_a_slow_server(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    # The status is set with a short, shielded request: a cancelled run still sets it
    # when the fake takes a moment to answer the PATCH.
    data = seed(fake, 10)
    started = asyncio.Event()

    async def task(input_data: dict[str, Any], config: Any) -> int:
        started.set()
        await asyncio.Event().wait()
        return 1

    running = asyncio.create_task(
        client.experiments.run(data.project_id, data.dataset_id, "slow-patch", task=task)
    )
    await wait(started.wait())
    fake.inject(delay=0.05, match=lambda r: r.method == "PATCH", times=None)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await wait(running)
    _, stored = only_experiment(fake)
    assert stored["status"] == "interrupted"


@pytest.mark.parametrize("status", [400, 403, 404])
async def test_a_records_read_that_fails_for_good_fails_the_experiment(
    fake: FakeLLMObsServer, client: LLMObsClient, status: int
) -> None:
    # Two pages of records (the fake's page is 1,000): the second read fails, mid-run.
    data = seed(fake, 1500)
    fake.inject(status=status, times=None, after=1, match=is_records_read)

    async def task(input_data: dict[str, Any], config: Any) -> int:
        return 1

    outcome: Any
    try:
        outcome = await wait(
            client.experiments.run(data.project_id, data.dataset_id, "broken", task=task)
        )
    except errors.APIStatusError as exc:
        outcome = exc
    _, stored = only_experiment(fake)
    assert stored["status"] == "failed"
    if isinstance(outcome, errors.APIStatusError):
        assert outcome.status == status
    else:
        assert outcome.experiment.status == "failed" and not outcome.ok
    assert len([r for r in fake.requests if is_records_read(r)]) == 2  # not retried


async def test_a_second_cancel_during_the_status_request_still_leaves_it_interrupted(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    # An impatient caller cancels twice (Ctrl-C, then a shutdown timeout): the
    # shielded status request must still land, or the experiment stays "running".
    data = seed(fake, 10)
    started = asyncio.Event()
    patching = asyncio.Event()

    async def task(input_data: dict[str, Any], config: Any) -> int:
        started.set()
        await asyncio.Event().wait()
        return 1

    def is_final_patch(r: RecordedRequest) -> bool:
        final = r.method == "PATCH" and b"interrupted" in r.body
        if final:
            patching.set()
        return final

    running = asyncio.create_task(
        client.experiments.run(data.project_id, data.dataset_id, "twice", task=task)
    )
    await wait(started.wait())
    fake.inject(delay=0.2, match=is_final_patch, times=None)
    running.cancel()
    await wait(patching.wait())
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await wait(running)
    _, stored = only_experiment(fake)
    assert stored["status"] == "interrupted"
