"""Worker process of the experiments benchmark: one experiment, by hand or by the runner.

``python benchmarks/experiments/worker.py '<json spec>'`` prints one JSON line: the
experiment id, makespan, CPU and peak RSS growth (see ``common.worker_main``). The spec:
``client`` (``handrolled`` or ``runner``), ``url``, ``project_id``, ``dataset_id``,
``concurrency``, ``chunk`` (hand-rolled push size).
"""

from __future__ import annotations

import asyncio
import random
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, see common.py

from common import worker_main

from experiments.scenario import answer, as_async, closeness, exact_match
from llmobs_async import LLMObsClient, errors

KEYS = {"api_key": "fake-api-key", "app_key": "fake-app-key"}


async def handrolled(client: LLMObsClient, spec: dict[str, Any]) -> dict[str, Any]:
    """The floor: what a user writes with plain asyncio and ``events.create``.

    A semaphore of ``concurrency`` over the records as ``records.list`` yields them (a
    record waits for a slot before it is read further, so memory stays flat), the task,
    both evaluators inline, the span and metrics in ddtrace's shapes, pushed by
    ``chunk`` items as they accumulate, each push retried until accepted.
    """
    project_id, dataset_id = spec["project_id"], spec["dataset_id"]
    experiment = await client.experiments.create(project_id, dataset_id, "handrolled")
    experiment_id = experiment.id
    await client.experiments.update(experiment_id, status="running")
    slots = asyncio.Semaphore(spec["concurrency"])
    spans: list[dict[str, Any]] = []
    metrics: list[dict[str, Any]] = []
    pushes: set[asyncio.Task[None]] = set()
    push_slots = asyncio.Semaphore(4)
    tags = [f"experiment_id:{experiment_id}", f"dataset_id:{dataset_id}"]
    counts = {"pushes": 0, "retries": 0}

    async def push(chunk_spans: list[dict[str, Any]], chunk_metrics: list[dict[str, Any]]) -> None:
        async with push_slots:
            for attempt in range(30):
                try:
                    counts["pushes"] += 1
                    await client.experiments.events.create(
                        experiment_id, spans=chunk_spans, metrics=chunk_metrics
                    )
                    return
                except errors.RateLimitError as exc:
                    wait = exc.retry_after if exc.retry_after is not None else 0.1
                except (errors.APIStatusError, errors.APIConnectionError) as exc:
                    if isinstance(exc, errors.APIStatusError) and exc.status < 500:
                        raise
                    wait = random.uniform(0, min(2.0, 0.1 * 2**attempt))
                counts["retries"] += 1
                await asyncio.sleep(wait)
            raise RuntimeError("a push failed 30 times")

    def flush() -> None:
        nonlocal spans, metrics
        task = asyncio.create_task(push(spans, metrics))
        pushes.add(task)
        task.add_done_callback(pushes.discard)
        spans, metrics = [], []

    async def row(record: Any) -> None:
        try:
            start_ns = time.time_ns()
            error = None
            try:
                output = await answer(record.input, {})
            except Exception as exc:
                output = None
                stack = traceback.format_exc()
                error = {"message": str(exc), "type": type(exc).__name__, "stack": stack}
            duration = time.time_ns() - start_ns
            span_id = str(random.getrandbits(64))
            trace_id = f"{random.getrandbits(128):032x}"
            meta: dict[str, Any] = {
                "span.kind": "experiment",
                "input": record.input,
                "output": output,
                "expected_output": record.expected_output,
                "metadata": record.metadata,
            }
            if error:
                meta["error"] = error
            spans.append(
                {
                    "span_id": span_id,
                    "trace_id": trace_id,
                    "name": "answer",
                    "project_id": project_id,
                    "dataset_id": dataset_id,
                    "start_ns": start_ns,
                    "duration": duration,
                    "status": "error" if error else "ok",
                    "tags": [*tags, f"dataset_record_id:{record.id}", "run_iteration:1"],
                    "meta": meta,
                }
            )
            now_ms = int(time.time() * 1000)
            base = {"span_id": span_id, "timestamp_ms": now_ms}
            metrics.append(
                {
                    **base,
                    "label": "exact_match",
                    "metric_type": "boolean",
                    "boolean_value": exact_match(record.input, output, record.expected_output),
                }
            )
            metrics.append(
                {
                    **base,
                    "label": "closeness",
                    "metric_type": "score",
                    "score_value": closeness(record.input, output, record.expected_output),
                }
            )
            if len(spans) + len(metrics) >= spec["chunk"]:
                flush()
        finally:
            slots.release()

    rows: set[asyncio.Task[None]] = set()
    async for record in client.records.list(project_id, dataset_id, page_size=1000):
        await slots.acquire()
        task = asyncio.create_task(row(record))
        rows.add(task)
        task.add_done_callback(rows.discard)
    while rows:
        await asyncio.gather(*rows)
    if spans or metrics:
        flush()
    while pushes:
        await asyncio.gather(*pushes)
    await client.experiments.update(experiment_id, status="completed")
    return {"experiment_id": experiment_id, **counts}


async def runner(client: LLMObsClient, spec: dict[str, Any]) -> dict[str, Any]:
    """``client.experiments.run`` with the same task and evaluators (or their async twins)."""
    evaluators = [exact_match, closeness]
    if spec.get("async_evaluators"):
        evaluators = [as_async(e) for e in evaluators]
    run = await client.experiments.run(
        spec["project_id"],
        spec["dataset_id"],
        "runner",
        task=answer,
        evaluators=evaluators,
        concurrency=spec["concurrency"],
    )
    pushed = run.pushed
    if not run.ok:
        status = run.experiment.status
        raise RuntimeError(f"the run ended {status}: {run.error!r}; pushed {pushed!r}")
    return {
        "experiment_id": run.experiment.id,
        "ok": run.ok,
        "rows_done": run.rows_done,
        "task_errors": run.task_errors,
        "pushed_applied": pushed.applied,
        "pushed_failed": pushed.failed_count,
        "retries": pushed.retries,
    }


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Open the client, then time the experiment: wall clock, process CPU, peak RSS growth."""
    how = handrolled if spec["client"] == "handrolled" else runner
    # The hand-rolled loop retries on its own; the runner uses the client's policy.
    retries = {"max_retries": 0} if spec["client"] == "handrolled" else {}
    async with LLMObsClient(base_url=spec["url"], **KEYS, **retries) as client:
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        cpu, wall = time.process_time(), time.monotonic()
        if spec.get("profile"):
            import cProfile

            profiler = cProfile.Profile(time.process_time)  # CPU, not waiting
            profiler.enable()
        result = await how(client, spec)
        wall, cpu = time.monotonic() - wall, time.process_time() - cpu
        if spec.get("profile"):
            profiler.disable()
            profiler.dump_stats(spec["profile"])
        rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    return {**result, "wall_s": wall, "cpu_s": cpu, "rss_growth_mib": rss_growth / 1024}


if __name__ == "__main__":
    sys.exit(worker_main(run, sys.argv))
