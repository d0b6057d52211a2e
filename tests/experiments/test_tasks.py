"""Tasks: async and sync (in threads, never on the loop), concurrency, timeout, retries."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from typing import Any

from llmobs_async import LLMObsClient
from llmobs_async.testing import FakeLLMObsServer

from .common import (
    metrics,
    seed,
    spans,
    spans_by_pair,
    value,
    wait,
)


def exact(input_data: Any, output_data: Any, expected_output: Any) -> bool:
    return bool(output_data == expected_output)


async def test_concurrency_is_reached_and_never_exceeded(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    data = seed(fake, 40)
    in_flight = peak = 0
    full = asyncio.Event()
    gate = asyncio.Event()

    async def task(input_data: dict[str, Any], config: Any) -> int:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        if in_flight == 4:
            full.set()
        try:
            await gate.wait()
            # Stay in flight across a few loop turns, so that overlap shows after the gate too.
            for _ in range(3):
                await asyncio.sleep(0)
            return int(input_data["q"])
        finally:
            in_flight -= 1

    running = asyncio.create_task(
        client.experiments.run(data.project_id, data.dataset_id, "c4", task=task, concurrency=4)
    )
    await wait(full.wait())
    # Give an over-eager runner every chance to start a fifth task.
    for _ in range(50):
        await asyncio.sleep(0)
    assert peak == 4
    gate.set()
    run = await wait(running)
    assert run.ok and run.rows_done == 40
    assert peak == 4


async def test_sync_task_and_evaluators_run_off_the_loop_and_never_stall_a_coroutine(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    data = seed(fake, 6)
    loop = asyncio.get_running_loop()
    started = asyncio.Event()
    released = threading.Event()
    threads: list[threading.Thread] = []

    def task(input_data: dict[str, Any], config: Any) -> bool:
        threads.append(threading.current_thread())
        loop.call_soon_threadsafe(started.set)
        # Only a coroutine on the loop sets it: a task run on the loop thread
        # would block the loop here and time out (False).
        return released.wait(timeout=2)

    def checked(input_data: Any, output_data: Any, expected_output: Any) -> bool:
        threads.append(threading.current_thread())
        time.sleep(0.05)  # a blocking evaluator must not stall the loop either
        return bool(output_data)

    async def releaser() -> None:
        await started.wait()
        released.set()

    helper = asyncio.create_task(releaser())
    run = await wait(
        client.experiments.run(
            data.project_id, data.dataset_id, "sync", task=task, evaluators=[checked]
        )
    )
    await helper
    assert run.ok
    assert threads and all(t is not threading.main_thread() for t in threads)
    assert [value(m) for m in metrics(fake, run.experiment.id)] == [True] * 6
    assert all(s["meta"]["output"] is True for s in spans(fake, run.experiment.id))


async def test_sync_tasks_run_concurrency_at_a_time_in_threads(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    data = seed(fake, 9)
    lock = threading.Lock()
    in_flight = peak = 0
    # Three tasks must be in flight together to pass the barrier; a fourth never is.
    barrier = threading.Barrier(3, timeout=5)

    def task(input_data: dict[str, Any], config: Any) -> int:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        try:
            barrier.wait()
            return 1
        finally:
            with lock:
                in_flight -= 1

    run = await wait(
        client.experiments.run(
            data.project_id,
            data.dataset_id,
            "threads",
            task=task,
            concurrency=3,
            max_task_retries=0,
        )
    )
    assert run.ok and run.task_errors == 0
    assert peak == 3


async def test_task_timeout_makes_an_error_row_and_cancels_the_task(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    data = seed(fake, 4)
    cancelled: list[int] = []
    never = asyncio.Event()

    async def hangs_on_2(input_data: dict[str, Any], config: Any) -> str:
        if input_data["q"] != 2:
            return "ok"
        try:
            await never.wait()
        finally:
            cancelled.append(input_data["q"])
        return "late"

    run = await wait(
        client.experiments.run(
            data.project_id,
            data.dataset_id,
            "timeout",
            task=hangs_on_2,
            task_timeout=0.05,
            max_task_retries=0,
        )
    )
    assert cancelled == [2]
    assert run.experiment.status == "completed" and run.task_errors == 1
    rows = {row.record_id: row async for row in run.rows()}
    assert rows["rec-2"].status == "error" and rows["rec-2"].error is not None
    assert "timeout" in rows["rec-2"].error["type"].lower()
    assert all(rows[f"rec-{i}"].status == "ok" for i in (0, 1, 3))


async def test_task_retries_a_flaky_task_and_reports_one_that_always_fails(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    data = seed(fake, 6)
    calls: Counter[int] = Counter()

    async def task(input_data: dict[str, Any], config: Any) -> str:
        q = input_data["q"]
        calls[q] += 1
        if q == 1 and calls[q] <= 2:
            raise ConnectionError("model overloaded")
        if q == 4:
            raise ValueError(f"cannot answer {q}")
        return str(2 * q)

    run = await wait(
        client.experiments.run(
            data.project_id,
            data.dataset_id,
            "retries",
            task=task,
            evaluators=[exact],
            max_task_retries=2,
        )
    )
    assert calls == {0: 1, 1: 3, 2: 1, 3: 1, 4: 3, 5: 1}
    assert run.experiment.status == "completed" and run.task_errors == 1 and run.rows_done == 6
    by_pair = spans_by_pair(fake, run.experiment.id)
    assert all(len(found) == 1 for found in by_pair.values()) and len(by_pair) == 6
    [flaky] = by_pair[("rec-1", 1)]
    assert flaky["status"] == "ok" and flaky["meta"]["output"] == "2"
    [failed] = by_pair[("rec-4", 1)]
    assert failed["status"] == "error"
    error = failed["meta"]["error"]
    assert error["type"] == "ValueError" and error["message"] == "cannot answer 4"
    assert "cannot answer" in error["stack"] and "Traceback" in error["stack"]
    rows = {row.record_id: row async for row in run.rows()}
    assert rows["rec-4"].status == "error"
    assert rows["rec-4"].error is not None and rows["rec-4"].error["type"] == "ValueError"
    assert rows["rec-1"].status == "ok" and rows["rec-1"].error is None


async def test_an_output_the_api_cannot_store_is_an_error_row_without_calling_the_task_again(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    # The same output comes back on every call: retrying only pays for the task
    # (an LLM call) again. Retries are for a task that raised.
    data = seed(fake, 2)
    calls: Counter[int] = Counter()

    async def task(input_data: dict[str, Any], config: Any) -> Any:
        calls[input_data["q"]] += 1
        return {"answer": object()} if input_data["q"] == 1 else "fine"

    run = await wait(
        client.experiments.run(
            data.project_id, data.dataset_id, "unstorable", task=task, max_task_retries=2
        )
    )
    assert calls == {0: 1, 1: 1}
    assert run.task_errors == 1 and run.experiment.status == "completed"
    rows = {row.record_id: row async for row in run.rows()}
    assert rows["rec-1"].status == "error" and rows["rec-1"].error is not None
    assert "answer" in rows["rec-1"].error["message"]  # names the field it cannot store


async def test_sync_tasks_that_hang_past_task_timeout_do_not_starve_the_rows_after_them(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    # A thread cannot be cancelled: a sync task stuck in a call without a timeout
    # keeps its thread after task_timeout. Two such rows with concurrency=2 must
    # not leave the other rows without a thread (each would time out waiting).
    data = seed(fake, 8)
    unblock = threading.Event()

    def task(input_data: dict[str, Any], config: Any) -> str:
        if input_data["q"] in (6, 5):  # read second and third: records come newest first
            unblock.wait(timeout=10)
            return "late"
        return "ok"

    try:
        run = await wait(
            client.experiments.run(
                data.project_id,
                data.dataset_id,
                "stuck",
                task=task,
                concurrency=2,
                task_timeout=0.5,
                max_task_retries=0,
            )
        )
    finally:
        unblock.set()
    rows = {row.record_id: row.status async for row in run.rows()}
    assert rows == {f"rec-{i}": "error" if i in (5, 6) else "ok" for i in range(8)}
    assert run.task_errors == 2
