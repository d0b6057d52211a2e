"""``experiments.run``: one span per row and one metric per evaluator, their shapes, the knobs.

Everything is read back from what the fake stored (its events), not from the
runner's own report.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from llmobs_async import LLMObsClient
from llmobs_async.testing import FakeLLMObsServer, RecordedRequest

from .common import (
    is_events_push,
    metric_counts,
    metrics,
    observe,
    only_experiment,
    seed,
    spans,
    spans_by_pair,
    tag,
    wait,
)


async def answer(input_data: dict[str, Any], config: dict[str, Any] | None) -> str:
    """Right for every record but those whose ``q`` is a multiple of 4."""
    q = input_data["q"]
    return str(2 * q + (1 if q % 4 == 0 else 0))


def exact(input_data: Any, output_data: Any, expected_output: Any) -> bool:
    return bool(output_data == expected_output)


async def test_200_records_async_task_every_pair_one_span_one_metric_per_evaluator(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    data = seed(fake, 200)
    run = await client.experiments.run(
        data.project_id, data.dataset_id, "nightly", task=answer, evaluators=[exact]
    )
    eid, stored = only_experiment(fake)
    assert run.experiment.id == eid
    assert stored["status"] == run.experiment.status == "completed"
    assert run.ok and run.rows_done == 200 and run.task_errors == 0
    by_pair = spans_by_pair(fake, eid)
    assert sorted(by_pair) == sorted((rid, 1) for rid in data.records)
    assert all(len(found) == 1 for found in by_pair.values())
    counts = metric_counts(fake, eid)
    assert sorted(counts) == sorted((s["span_id"], "exact") for s in spans(fake, eid))
    assert set(counts.values()) == {1}
    # The values are the evaluator's, on the right span.
    for span in spans(fake, eid):
        rid = tag(span["tags"], "dataset_record_id")
        assert rid is not None
        q = data.records[rid]["input"]["q"]
        [metric] = [m for m in metrics(fake, eid) if m["span_id"] == span["span_id"]]
        assert metric["boolean_value"] is (q % 4 != 0)
    assert run.pushed.ok and run.pushed.applied == run.pushed.submitted == 400


async def test_results_are_pushed_while_the_run_goes(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    # The last record's task waits until the fake holds the spans of the others:
    # a runner that pushes only at the end never lets it finish.
    data = seed(fake, 4)
    others = {f"rec-{i}" for i in range(1, 4)}
    landed = asyncio.Event()
    carried: set[str | None] = set()

    def seen(r: RecordedRequest) -> None:
        if is_events_push(r):
            for span in r.json()["data"]["attributes"].get("spans") or ():
                carried.add(tag(span.get("tags"), "dataset_record_id"))
            if others <= carried:
                landed.set()

    observe(fake, seen)

    async def task(input_data: dict[str, Any], config: Any) -> str:
        if input_data["q"] == 0:  # read last: records come newest first
            await landed.wait()
        return "done"

    run = await wait(
        client.experiments.run(data.project_id, data.dataset_id, "streamed", task=task)
    )
    assert run.ok and len(spans(fake, run.experiment.id)) == 4


async def test_an_empty_dataset_completes_with_no_rows(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    data = seed(fake, 0)
    calls = 0

    async def task(input_data: Any, config: Any) -> str:
        nonlocal calls
        calls += 1
        return "x"

    run = await client.experiments.run(
        data.project_id, data.dataset_id, "empty", task=task, evaluators=[exact]
    )
    assert calls == 0 and run.rows_done == 0
    assert run.ok and only_experiment(fake)[1]["status"] == "completed"
    assert [row async for row in run.rows()] == []


async def test_pushed_span_and_metric_shapes(fake: FakeLLMObsServer, client: LLMObsClient) -> None:
    data = seed(fake, 3)
    before_ns = time.time_ns()
    run = await client.experiments.run(
        data.project_id, data.dataset_id, "shapes", task=answer, evaluators=[exact]
    )
    eid = run.experiment.id
    for span in spans(fake, eid):
        rid = tag(span["tags"], "dataset_record_id")
        assert rid in data.records
        rec = data.records[rid]
        assert span["name"] == "answer"  # the task's __name__
        assert (span["project_id"], span["dataset_id"]) == (data.project_id, data.dataset_id)
        assert span["status"] == "ok"
        assert re.fullmatch(r"[0-9]+", span["span_id"]) and int(span["span_id"]) < 2**64
        assert re.fullmatch(r"[0-9a-f]{32}", span["trace_id"])
        assert before_ns - 60 * 10**9 <= span["start_ns"] <= time.time_ns()
        assert span["duration"] >= 0
        for key, want in [
            ("experiment_id", eid),
            ("dataset_id", data.dataset_id),
            ("dataset_record_id", rid),
            ("run_iteration", "1"),
        ]:
            assert tag(span["tags"], key) == want, (key, span["tags"])
        meta = span["meta"]
        assert meta["span.kind"] == "experiment"
        assert meta["input"] == rec["input"]
        assert meta["expected_output"] == rec["expected_output"]
        assert meta["output"] == await answer(rec["input"], None)
        assert "error" not in meta or not meta["error"]
        [metric] = [m for m in metrics(fake, eid) if m["span_id"] == span["span_id"]]
        assert metric["trace_id"] == span["trace_id"]
        assert (metric["label"], metric["metric_type"]) == ("exact", "boolean")
        assert metric["metric_source"] == "custom"
        assert abs(metric["timestamp_ms"] - time.time() * 1000) < 60_000
        assert not metric.get("error")


async def test_runs_3_makes_3_spans_per_record_with_iterations_1_to_3(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    data = seed(fake, 7)
    run = await client.experiments.run(
        data.project_id, data.dataset_id, "thrice", task=answer, evaluators=[exact], runs=3
    )
    assert run.ok and run.rows_done == 21
    by_pair = spans_by_pair(fake, run.experiment.id)
    assert sorted(by_pair) == sorted((rid, i) for rid in data.records for i in (1, 2, 3))
    assert all(len(found) == 1 for found in by_pair.values())
    assert len(metrics(fake, run.experiment.id)) == 21
    assert fake.experiments[run.experiment.id]["run_count"] == 3
    rows = [row async for row in run.rows()]
    assert sorted((r.record_id, r.run_iteration) for r in rows) == sorted(by_pair)


async def test_sample_size_runs_the_first_n_records_only(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    data = seed(fake, 30)
    first = [r.id async for r in client.records.list(data.project_id, data.dataset_id)][:5]
    progress: list[Any] = []
    run = await client.experiments.run(
        data.project_id,
        data.dataset_id,
        "sample",
        task=answer,
        evaluators=[exact],
        sample_size=5,
        on_progress=progress.append,
    )
    assert run.ok and run.rows_done == 5
    assert sorted(rid for rid, _ in spans_by_pair(fake, run.experiment.id)) == sorted(first)
    assert progress and all(p.total == 5 for p in progress)


async def test_on_progress_counts_grow_to_the_total(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    data = seed(fake, 25)
    progress: list[Any] = []

    async def flaky(input_data: dict[str, Any], config: Any) -> str:
        if input_data["q"] == 3:
            raise ValueError("no answer")
        return "ok"

    run = await client.experiments.run(
        data.project_id,
        data.dataset_id,
        "progress",
        task=flaky,
        evaluators=[exact],
        max_task_retries=0,
        on_progress=progress.append,
    )
    assert progress
    done = [p.done for p in progress]
    assert done == sorted(done) and done[-1] == 25
    pushed = [p.pushed for p in progress]
    assert pushed == sorted(pushed)
    assert progress[-1].task_errors == 1 == run.task_errors
    assert progress[-1].pushed == run.pushed.applied == 25 + 24  # the failed row has no metric
    assert all(p.total is None for p in progress)  # unknown without sample_size


async def test_the_experiment_is_created_with_the_runs_settings(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    data = seed(fake, 2)
    run = await client.experiments.run(
        data.project_id,
        data.dataset_id,
        "settings",
        task=answer,
        config={"model": "gpt-4o"},
        description="nightly eval",
        runs=2,
    )
    _, stored = only_experiment(fake)
    assert stored["experiment"] == "settings" and stored["config"] == {"model": "gpt-4o"}
    assert stored["description"] == "nightly eval" and stored["run_count"] == 2
    assert stored["dataset_id"] == data.dataset_id and stored["project_id"] == data.project_id
    assert run.experiment.config == {"model": "gpt-4o"}
