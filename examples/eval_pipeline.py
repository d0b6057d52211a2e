"""An evaluation pipeline: run a task over a dataset, push the results as an experiment.

    python examples/eval_pipeline.py             # the built-in fake API, with faults
    DD_API_KEY=... DD_APP_KEY=... python examples/eval_pipeline.py   # your org

The steps, with the client's public calls only: get or create a project, make
a dataset of questions (``create_many``: one dataset version), create an
experiment on that version, run the task on every record, push a span per
record with its evaluation metrics through ``experiments.events.create`` (in
chunks), read the results back, and mark the experiment completed (or failed,
with the error, if the task blew up). Against the fake, the server answers
some requests 503 or 429 and drops connections along the way.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from llmobs_async import LLMObsClient, models
from llmobs_async.testing import Chaos, FakeLLMObsServer

SPANS_PER_PUSH = 200  # one events request carries this many spans and their metrics


@asynccontextmanager
async def connect(base_url: str | None) -> AsyncIterator[LLMObsClient]:
    """The real API when keys are set (or ``base_url`` given), else the fake with faults on."""
    if base_url or os.environ.get("DD_API_KEY"):
        async with LLMObsClient(base_url=base_url) as client:
            yield client
        return
    async with FakeLLMObsServer() as fake:
        fake.chaos = Chaos(error_rate=0.05, rate_limit_rate=0.03, drop_rate=0.02, seed=3)
        print(f"no DD_API_KEY: using the fake API on {fake.base_url}, with faults")
        async with LLMObsClient(
            base_url=fake.base_url, api_key=fake.api_key, app_key=fake.app_key
        ) as client:
            yield client


def task(question: dict[str, Any]) -> str:
    """The system under evaluation; here, an adder that gets multiples of 7 wrong."""
    a, b = question["a"], question["b"]
    return str(a + b + (1 if a % 7 == 0 else 0))


def result_of(
    record: models.DatasetRecord, project_id: str, dataset_id: str
) -> tuple[models.ExperimentSpan, list[models.ExperimentMetric]]:
    """Run the task on one record: its span, and the metrics that grade it."""
    started = time.time_ns()
    output = task(record.input)
    duration = time.time_ns() - started
    span_id = f"span-{record.id}"
    span = models.ExperimentSpan(
        span_id=span_id,
        trace_id=f"trace-{record.id}",
        name="adder",
        project_id=project_id,
        dataset_id=dataset_id,
        start_ns=started,
        duration=duration,
        status="ok",
        meta={"input": record.input, "output": output, "expected_output": record.expected_output},
        tags=[f"dataset_record_id:{record.id}"],
    )
    now_ms = time.time_ns() // 1_000_000  # the API refuses a timestamp more than 24 h away
    correct = output == record.expected_output
    metrics = [
        models.ExperimentMetric(
            span_id=span_id,
            label="exact_match",
            metric_type="boolean",
            boolean_value=correct,
            timestamp_ms=now_ms,
        ),
        models.ExperimentMetric(
            span_id=span_id,
            label="score",
            metric_type="score",
            score_value=1.0 if correct else 0.0,
            timestamp_ms=now_ms,
        ),
    ]
    return span, metrics


async def push(client: LLMObsClient, experiment_id: str, results: Sequence[Any]) -> None:
    """Send spans and metrics in chunks: one request each, retried through faults."""
    for start in range(0, len(results), SPANS_PER_PUSH):
        chunk = results[start : start + SPANS_PER_PUSH]
        await client.experiments.events.create(
            experiment_id,
            spans=[span for span, _ in chunk],
            metrics=[metric for _, metrics in chunk for metric in metrics],
        )


async def main(count: int, base_url: str | None) -> int:
    """Build the dataset, run the experiment, grade it, report accuracy."""
    async with connect(base_url) as client:
        project = await client.projects.create("examples")
        dataset = await client.datasets.create(project.id, f"sums-{time.time_ns()}")
        questions = (
            {"input": {"a": n, "b": 2 * n}, "expected_output": str(3 * n)} for n in range(count)
        )
        created = await client.records.create_many(project.id, dataset.id, questions)
        created.raise_for_failures()
        dataset = await client.datasets.get(project.id, dataset.id)
        version = dataset.current_version
        print(f"dataset {dataset.name}: {created.applied:,} records, version {version}")

        experiment = await client.experiments.create(
            project.id,
            dataset.id,
            "adder-eval",
            dataset_version=models.UNSET if version is None else version,
            config={"model": "adder-v1"},
        )
        print(f"experiment {experiment.name} ({experiment.id}) created on version {version}")
        try:
            results = [
                result_of(record, project.id, dataset.id)
                async for record in client.records.list(project.id, dataset.id)
            ]
            await push(client, experiment.id, results)
        except Exception as exc:
            await client.experiments.update(experiment.id, status="failed", error=str(exc))
            raise

        spans = correct = 0
        async for span in client.experiments.events.list(experiment.id):
            spans += 1
            correct += any(m.label == "exact_match" and m.boolean_value for m in span.eval_metrics)
        done = await client.experiments.update(
            experiment.id, status="completed", metadata={"accuracy": correct / max(spans, 1)}
        )
        print(f"pushed and read back {spans:,} spans; accuracy {correct / max(spans, 1):.1%}")
        print(f"experiment {done.id} marked {done.status}")
    return 0 if spans == count and done.status == "completed" else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="An evaluation pipeline pushing an experiment.")
    parser.add_argument("--records", type=int, default=1_000, help="dataset size (1,000)")
    parser.add_argument("--base-url", help="an API origin, e.g. http://127.0.0.1:8126")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.records, args.base_url)))
