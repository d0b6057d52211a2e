"""Evaluators of every kind: return types to metric types, objects, summaries, errors."""

from __future__ import annotations

from collections import Counter
from typing import Any

from llmobs_async import EvaluatorResult, LLMObsClient
from llmobs_async.testing import FakeLLMObsServer

from .common import (
    metrics,
    seed,
    spans,
    tag,
    value,
)


async def answer(input_data: dict[str, Any], config: dict[str, Any] | None) -> str:
    """Right for every record but those whose ``q`` is a multiple of 4."""
    q = input_data["q"]
    return str(2 * q + (1 if q % 4 == 0 else 0))


def exact(input_data: Any, output_data: Any, expected_output: Any) -> bool:
    return bool(output_data == expected_output)


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
