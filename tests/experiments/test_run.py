"""``experiments.run``: tasks and evaluators of every kind, what is pushed, and the run's knobs.

Everything is read back from what the fake stored (its events), not from the
runner's own report.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import Counter
from typing import Any

from llmobs_async import EvaluatorResult, LLMObsClient
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
    value,
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


async def test_each_return_type_maps_to_its_metric_type_and_fields(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    data = seed(fake, 4)

    def flag(input_data: Any, output_data: Any, expected_output: Any) -> bool:
        return True

    def count(input_data: Any, output_data: Any, expected_output: Any) -> int:
        return 3

    def ratio(input_data: Any, output_data: Any, expected_output: Any) -> float:
        return 0.25

    def tone(input_data: Any, output_data: Any, expected_output: Any) -> str:
        return "neutral"

    def details(input_data: Any, output_data: Any, expected_output: Any) -> dict[str, Any]:
        return {"tokens": 7, "words": ["a", "b"]}

    async def judged(input_data: Any, output_data: Any, expected_output: Any) -> EvaluatorResult:
        return EvaluatorResult(
            0.75,
            reasoning="close enough",
            assessment="pass",
            metadata={"judge": "v2"},
            tags={"kind": "rich"},
        )

    evaluators = [flag, count, ratio, tone, details, judged]
    run = await client.experiments.run(
        data.project_id, data.dataset_id, "types", task=answer, evaluators=evaluators
    )
    assert run.ok
    stored = metrics(fake, run.experiment.id)
    assert len(stored) == 4 * len(evaluators)
    by_label: dict[str, list[dict[str, Any]]] = {}
    for m in stored:
        by_label.setdefault(m["label"], []).append(m)
    expected = {
        "flag": ("boolean", True),
        "count": ("score", 3),
        "ratio": ("score", 0.25),
        "tone": ("categorical", "neutral"),
        "details": ("json", {"tokens": 7, "words": ["a", "b"]}),
        "judged": ("score", 0.75),
    }
    assert sorted(by_label) == sorted(expected)
    for label, (metric_type, want) in expected.items():
        assert [(m["metric_type"], value(m)) for m in by_label[label]] == [(metric_type, want)] * 4
    for m in by_label["judged"]:
        assert (m["reasoning"], m["assessment"], m["metadata"]) == (
            "close enough",
            "pass",
            {"judge": "v2"},
        )
        assert "kind:rich" in m["tags"]
    async for row in run.rows():
        assert row.evaluations == {label: want for label, (_, want) in expected.items()}
        assert row.evaluation_errors == {}


async def test_a_list_returned_by_an_evaluator_is_a_json_metric_that_lands(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    # The contract: dict/list -> json. The API's json_value is an object, so a
    # list must be carried in one; it must not be refused.
    data = seed(fake, 3)

    def words(input_data: Any, output_data: Any, expected_output: Any) -> list[str]:
        return ["x", "y"]

    run = await client.experiments.run(
        data.project_id, data.dataset_id, "lists", task=answer, evaluators=[words]
    )
    assert run.pushed.failed == [] and run.ok
    stored = metrics(fake, run.experiment.id)
    assert [m["metric_type"] for m in stored] == ["json"] * 3


async def test_class_evaluators_use_name_and_evaluate_with_a_context(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    data = seed(fake, 5)
    contexts: list[Any] = []

    class Closeness:
        name = "closeness"

        def evaluate(self, context: Any) -> float:
            contexts.append(context)
            return 1.0 if context.output_data == context.expected_output else 0.0

    class AsyncLength:
        def __init__(self) -> None:
            self.name = "length"

        async def evaluate(self, context: Any) -> int:
            return len(context.output_data)

    run = await client.experiments.run(
        data.project_id,
        data.dataset_id,
        "classes",
        task=answer,
        evaluators=[Closeness(), AsyncLength()],
        config={"model": "m1"},
    )
    assert run.ok
    labels = Counter(m["label"] for m in metrics(fake, run.experiment.id))
    assert labels == {"closeness": 5, "length": 5}
    assert len(contexts) == 5
    by_span = {s["span_id"]: s for s in spans(fake, run.experiment.id)}
    for context in contexts:
        rid = tag(by_span[context.span_id]["tags"], "dataset_record_id")
        assert rid is not None
        rec = data.records[rid]
        assert context.input_data == rec["input"]
        assert context.expected_output == rec["expected_output"]
        assert context.output_data == by_span[context.span_id]["meta"]["output"]
        assert context.trace_id == by_span[context.span_id]["trace_id"]


async def test_summary_evaluators_see_every_row_and_are_pushed_as_summary_metrics(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    data = seed(fake, 12)
    seen: dict[str, Any] = {}

    def accuracy(
        inputs: list[Any], outputs: list[Any], expected_outputs: list[Any], evaluators_results: Any
    ) -> float:
        seen.update(
            inputs=inputs, outputs=outputs, expected=expected_outputs, results=evaluators_results
        )
        return sum(evaluators_results["exact"]) / len(inputs)

    async def verdict(
        inputs: list[Any], outputs: list[Any], expected_outputs: list[Any], evaluators_results: Any
    ) -> str:
        return "ship" if all(evaluators_results["exact"]) else "hold"

    class Total:
        name = "total"

        def evaluate(self, context: Any) -> int:
            return len(context.inputs)

    run = await client.experiments.run(
        data.project_id,
        data.dataset_id,
        "summary",
        task=answer,
        evaluators=[exact],
        summary_evaluators=[accuracy, verdict, Total()],
    )
    # q in 0..11: wrong for 0, 4 and 8.
    assert run.summary == {"accuracy": 9 / 12, "verdict": "hold", "total": 12}
    assert len(seen["inputs"]) == len(seen["outputs"]) == len(seen["expected"]) == 12
    # Row i of every list is the same row.
    for inp, out, exp, ok in zip(
        seen["inputs"], seen["outputs"], seen["expected"], seen["results"]["exact"], strict=True
    ):
        assert exp == str(2 * inp["q"]) and ok is (out == exp)
    summary = metrics(fake, run.experiment.id, summary=True)
    assert sorted((m["label"], m["metric_type"], value(m)) for m in summary) == [
        ("accuracy", "score", 0.75),
        ("total", "score", 12),
        ("verdict", "categorical", "hold"),
    ]
    assert all(m["metric_source"] == "summary" and m["span_id"] == "" for m in summary)


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


async def test_an_evaluator_that_raises_gives_an_error_metric_and_the_run_goes_on(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    data = seed(fake, 5)

    def picky(input_data: Any, output_data: Any, expected_output: Any) -> float:
        if input_data["q"] == 3:
            raise KeyError("missing rubric")
        return 1.0

    run = await client.experiments.run(
        data.project_id, data.dataset_id, "picky", task=answer, evaluators=[picky, exact]
    )
    assert run.experiment.status == "completed"
    stored = metrics(fake, run.experiment.id)
    assert len(stored) == 10  # every evaluator, every row: the error is a metric too
    errored = [m for m in stored if m.get("error")]
    [bad] = errored
    assert bad["label"] == "picky" and "missing rubric" in bad["error"]["message"]
    rows = {row.record_id: row async for row in run.rows()}
    assert rows["rec-3"].evaluations["picky"] is None
    assert "missing rubric" in rows["rec-3"].evaluation_errors["picky"]["message"]
    assert rows["rec-3"].evaluations["exact"] is True
    assert rows["rec-2"].evaluations["picky"] == 1.0


# --- a ddtrace user's functions, written as in ddtrace's docs, run unchanged ---------------------


def generate_answer(question: str) -> str:
    return {"What is 2+2?": "4", "What is the capital of France?": "Paris"}.get(question, "?")


def qa_task(input_data, config):  # type: ignore[no-untyped-def]
    # Your LLM application logic
    return generate_answer(input_data["question"])


def exact_match_evaluator(input_data, output_data, expected_output):  # type: ignore[no-untyped-def]
    """Checks if output exactly matches expected output."""
    matches = output_data == expected_output
    return EvaluatorResult(
        value=matches,
        reasoning="Exact match" if matches else "Output differs from expected",
        assessment="pass" if matches else "fail",
        metadata={"comparison_type": "exact"},
        tags={"evaluator": "exact_match"},
    )


class SemanticSimilarityEvaluator:
    """Evaluates semantic similarity between output and expected output."""

    def __init__(self, threshold: float = 0.8):  # type: ignore[no-untyped-def]
        self.name = "semantic_similarity"
        self.threshold = threshold

    def evaluate(self, context):  # type: ignore[no-untyped-def]
        score = 1.0 if context.output_data == context.expected_output else 0.0
        return EvaluatorResult(
            value=score,
            reasoning=f"Similarity score: {score:.2f}",
            assessment="pass" if score >= self.threshold else "fail",
            metadata={"threshold": self.threshold},
            tags={"type": "semantic"},
        )


class AverageScoreEvaluator:
    """Computes average score across all evaluation results."""

    def __init__(self, target_evaluator: str):  # type: ignore[no-untyped-def]
        self.name = "average_score"
        self.target_evaluator = target_evaluator

    def evaluate(self, context):  # type: ignore[no-untyped-def]
        scores = context.evaluation_results.get(self.target_evaluator, [])
        if not scores:
            return None
        return sum(scores) / len(scores)


def pass_rate(inputs, outputs, expected_outputs, evaluators_results):  # type: ignore[no-untyped-def]
    return sum(evaluators_results["exact_match_evaluator"]) / len(inputs)


def qa_record(i: int) -> dict[str, Any]:
    questions = [("What is 2+2?", "4"), ("What is the capital of France?", "Paris"), ("Why?", "42")]
    question, expected = questions[i]
    return {"id": f"qa-{i}", "input": {"question": question}, "expected_output": expected}


async def test_ddtrace_documented_functions_run_unchanged(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    data = seed(fake, 3, qa_record)
    run = await client.experiments.run(
        data.project_id,
        data.dataset_id,
        "qa_experiment",
        task=qa_task,
        evaluators=[SemanticSimilarityEvaluator(threshold=0.7), exact_match_evaluator],
        summary_evaluators=[AverageScoreEvaluator("semantic_similarity"), pass_rate],
    )
    assert run.ok
    assert run.summary == {"average_score": 2 / 3, "pass_rate": 2 / 3}
    stored = metrics(fake, run.experiment.id)
    exact_metrics = [m for m in stored if m["label"] == "exact_match_evaluator"]
    assert sorted(m["boolean_value"] for m in exact_metrics) == [False, True, True]
    for m in exact_metrics:
        assert m["assessment"] == ("pass" if m["boolean_value"] else "fail")
        assert m["metadata"] == {"comparison_type": "exact"}
        assert "evaluator:exact_match" in m["tags"]
    similarity = [m for m in stored if m["label"] == "semantic_similarity"]
    assert sorted(m["score_value"] for m in similarity) == [0.0, 1.0, 1.0]
    assert all("type:semantic" in m["tags"] for m in similarity)


async def test_a_task_with_a_metadata_parameter_gets_the_records_metadata(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    data = seed(fake, 4)
    got: dict[int, Any] = {}

    def task(input_data, config, metadata):  # type: ignore[no-untyped-def]
        got[input_data["q"]] = (config, metadata)
        return metadata["parity"]

    run = await client.experiments.run(
        data.project_id, data.dataset_id, "meta", task=task, config={"model": "m"}
    )
    assert run.ok
    assert got == {i: ({"model": "m"}, data.records[f"rec-{i}"]["metadata"]) for i in range(4)}
    stored = spans(fake, run.experiment.id)
    outputs = {tag(s["tags"], "dataset_record_id"): s["meta"]["output"] for s in stored}
    assert outputs == {f"rec-{i}": "even" if i % 2 == 0 else "odd" for i in range(4)}


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


async def test_an_evaluator_returning_none_is_a_metric_without_a_value_not_an_error(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    # ddtrace documents None as a supported return value (its AverageScoreEvaluator
    # returns None when there is nothing to average): no value, and no error.
    data = seed(fake, 3)

    def abstain(input_data: Any, output_data: Any, expected_output: Any) -> None:
        return None

    def nothing(
        inputs: list[Any], outputs: list[Any], expected_outputs: list[Any], evaluators_results: Any
    ) -> None:
        return None

    run = await client.experiments.run(
        data.project_id,
        data.dataset_id,
        "abstain",
        task=answer,
        evaluators=[abstain],
        summary_evaluators=[nothing],
    )
    assert run.ok and run.summary == {"nothing": None} and run.summary_errors == {}
    stored = metrics(fake, run.experiment.id) + metrics(fake, run.experiment.id, summary=True)
    assert len(stored) == 4
    assert [m.get("error") for m in stored] == [None] * 4
    async for row in run.rows():
        assert row.evaluations == {"abstain": None} and row.evaluation_errors == {}


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


async def test_a_summary_evaluator_that_raises_is_none_with_an_error_metric(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    data = seed(fake, 3)

    def ratio(inputs: Any, outputs: Any, expected_outputs: Any, evaluators_results: Any) -> float:
        return 1 / 0

    def size(inputs: Any, outputs: Any, expected_outputs: Any, evaluators_results: Any) -> int:
        return len(inputs)

    run = await client.experiments.run(
        data.project_id, data.dataset_id, "sumfail", task=answer, summary_evaluators=[ratio, size]
    )
    assert run.ok and run.summary == {"ratio": None, "size": 3}
    assert run.summary_errors["ratio"]["type"] == "ZeroDivisionError"
    by_label = {m["label"]: m for m in metrics(fake, run.experiment.id, summary=True)}
    assert by_label["ratio"]["error"]["type"] == "ZeroDivisionError"
    assert by_label["ratio"]["span_id"] == "" and value(by_label["size"]) == 3
