"""An evaluation pipeline: a task over a dataset, scored, pushed, summarized, read back.

    python examples/eval_pipeline.py             # the built-in fake API, with faults
    DD_API_KEY=... DD_APP_KEY=... python examples/eval_pipeline.py   # your org

It makes a dataset of sums (``records.create_many``: one dataset version),
then ``client.experiments.run`` does the rest: it creates the experiment on
that version, runs the task on every record (20 at a time), scores each
answer with two evaluators, pushes a span per record and a metric per
evaluator in batches while it goes, computes the summary and marks the
experiment completed. The program prints the summary, the account of what was
pushed, and a few rows read back with ``run.rows()``; it exits 1 unless the
run completed. Against the fake, the server answers some requests 503 or 429
and drops connections along the way: nothing is lost.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from llmobs_async import EvaluatorResult, LLMObsClient
from llmobs_async.testing import Chaos, FakeLLMObsServer


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


# The task and evaluators have ddtrace's signatures: they would run unchanged under
# LLMObs.experiment. Plain functions run in a thread pool, async ones on the loop.


async def adder(input_data: dict[str, int], config: dict[str, Any]) -> str:
    """The system under evaluation; here, an adder that gets multiples of 7 wrong."""
    await asyncio.sleep(config["latency"])  # a model call would be awaited here
    a, b = input_data["a"], input_data["b"]
    return str(a + b + (1 if a % 7 == 0 else 0))


def exact_match(input_data: Any, output_data: str, expected_output: str) -> bool:
    """A boolean metric: the answer is the expected one."""
    return output_data == expected_output


async def closeness(input_data: Any, output_data: str, expected_output: str) -> EvaluatorResult:
    """A score metric with its reasoning: 1 when exact, less the further off."""
    off = abs(int(output_data) - int(expected_output))
    return EvaluatorResult(1 / (1 + off), reasoning=f"off by {off}")


def accuracy(
    inputs: list[Any],
    outputs: list[Any],
    expected_outputs: list[Any],
    evaluators_results: dict[str, list[Any]],
) -> float:
    """The summary: the share of exact answers (a row whose task failed counts as wrong)."""
    return sum(1 for value in evaluators_results["exact_match"] if value) / max(1, len(inputs))


async def main(count: int, base_url: str | None) -> int:
    """Build the dataset, run the experiment, report it, read a few rows back."""
    async with connect(base_url) as client:
        project = await client.projects.create("examples")
        dataset = await client.datasets.create(project.id, f"sums-{time.time_ns()}")
        questions = (
            {"input": {"a": n, "b": 2 * n}, "expected_output": str(3 * n)} for n in range(count)
        )
        created = await client.records.create_many(project.id, dataset.id, questions)
        created.raise_for_failures()
        print(f"dataset {dataset.name}: {created.applied:,} records")

        started = time.monotonic()
        run = await client.experiments.run(
            project.id,
            dataset.id,
            "adder-eval",
            task=adder,
            evaluators=[exact_match, closeness],
            summary_evaluators=[accuracy],
            config={"model": "adder-v1", "latency": 0.01},
            concurrency=20,
        )
        elapsed = time.monotonic() - started
        print(
            f"experiment {run.experiment.name} ({run.experiment.id}): "
            f"{run.experiment.status} in {elapsed:.1f}s"
        )
        print(f"rows: {run.rows_done:,} run, {run.task_errors} task errors")
        print(f"summary: accuracy {run.summary['accuracy']:.1%}")
        pushed = run.pushed
        print(
            f"pushed: {pushed.submitted:,} spans and metrics submitted, {pushed.applied:,} "
            f"acknowledged, {pushed.failed_count} failed ({pushed.retries} requests retried)"
        )
        if run.error is not None:
            print(f"error: {run.error}")

        read = wrong = 0
        examples: list[str] = []
        async for row in run.rows():  # read back from the API, one per record
            read += 1
            if not row.evaluations.get("exact_match"):
                wrong += 1
                if len(examples) < 3:
                    reasoning = row.eval_metrics["closeness"].reasoning
                    examples.append(
                        f"  {row.input} -> {row.output!r}, expected {row.expected_output!r}: "
                        f"closeness {row.evaluations['closeness']:.2f} ({reasoning})"
                    )
        print(f"read back {read:,} rows; {wrong} wrong, for example:")
        print("\n".join(examples))
        print(f"experiment {run.experiment.id} ended {run.experiment.status}")
    return 0 if run.ok and read == run.rows_done else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="An evaluation pipeline on the runner.")
    parser.add_argument("--records", type=int, default=1_000, help="dataset size (1,000)")
    parser.add_argument("--base-url", help="an API origin, e.g. http://127.0.0.1:8126")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.records, args.base_url)))
