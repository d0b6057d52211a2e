"""A CI gate: compare a candidate experiment with a baseline, fail the build on a regression.

    python examples/ci_gate.py                            # the fake: both runs made here
    python examples/ci_gate.py --candidate-model adder-v3 # a candidate that regresses
    python examples/ci_gate.py BASE_ID CANDIDATE_ID --fail-on-regression exact_match
                                                          # two experiments of your org
                                                          # (DD_API_KEY, DD_APP_KEY set)

With two experiment ids it only compares them. Without, it makes a dataset of
sums and runs ``adder-v1`` (the baseline) and the candidate model on it with
``client.experiments.run``. Then ``client.experiments.compare`` matches the
rows of both by record and run iteration and gives, per metric label, both
aggregates and which rows improved, regressed, stayed unchanged, changed
(categories) or are missing from one side. The program prints that and exits
1 when a label named by ``--fail-on-regression`` (default: exact_match) has a
regressed row, 2 when it cannot judge (a label neither experiment has, or a
run that did not complete), else 0.
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

from llmobs_async import Comparison, EvaluatorResult, LLMObsClient
from llmobs_async.experiments import MetricAggregate
from llmobs_async.testing import Chaos, FakeLLMObsServer

WRONG_ON_MULTIPLES_OF = {"adder-v1": 7, "adder-v2": None, "adder-v3": 11}
"""The models: v1 gets multiples of 7 wrong, v2 none, v3 multiples of 11."""


@asynccontextmanager
async def connect(base_url: str | None) -> AsyncIterator[LLMObsClient]:
    """The real API when keys are set (or ``base_url`` given), else the fake with faults on."""
    if base_url or os.environ.get("DD_API_KEY"):
        async with LLMObsClient(base_url=base_url) as client:
            yield client
        return
    async with FakeLLMObsServer() as fake:
        fake.chaos = Chaos(error_rate=0.05, rate_limit_rate=0.03, drop_rate=0.02, seed=5)
        print(f"no DD_API_KEY: using the fake API on {fake.base_url}, with faults")
        async with LLMObsClient(
            base_url=fake.base_url, api_key=fake.api_key, app_key=fake.app_key
        ) as client:
            yield client


async def adder(input_data: dict[str, int], config: dict[str, Any]) -> str:
    """The system under evaluation: ``config["model"]`` says which multiples it gets wrong."""
    a, b = input_data["a"], input_data["b"]
    every = WRONG_ON_MULTIPLES_OF[config["model"]]
    return str(a + b + (1 if every and a % every == 0 else 0))


def exact_match(input_data: Any, output_data: str, expected_output: str) -> bool:
    """Boolean: the answer is the expected one."""
    return output_data == expected_output


def closeness(input_data: Any, output_data: str, expected_output: str) -> EvaluatorResult:
    """Score: 1 when exact, less the further off."""
    off = abs(int(output_data) - int(expected_output))
    return EvaluatorResult(1 / (1 + off), reasoning=f"off by {off}")


def verdict(input_data: Any, output_data: str, expected_output: str) -> str:
    """Categorical: right, or how it is wrong (categories have no order: changed, not worse)."""
    off = int(output_data) - int(expected_output)
    return "right" if off == 0 else "one too many" if off == 1 else "wrong"


async def run_both(client: LLMObsClient, records: int, candidate: str) -> tuple[str, str] | None:
    """Run the baseline and the candidate on one new dataset; their ids, or None if one failed."""
    project = await client.projects.create("examples")
    dataset = await client.datasets.create(project.id, f"sums-{time.time_ns()}")
    questions = (
        {"input": {"a": n, "b": 2 * n}, "expected_output": str(3 * n)} for n in range(records)
    )
    (await client.records.create_many(project.id, dataset.id, questions)).raise_for_failures()
    ids = []
    for name, model in (("baseline", "adder-v1"), ("candidate", candidate)):
        run = await client.experiments.run(
            project.id,
            dataset.id,
            name,
            task=adder,
            evaluators=[exact_match, closeness, verdict],
            config={"model": model},
        )
        print(f"{name} ({model}): {run.experiment.id} {run.experiment.status}")
        if not run.ok:
            print(f"the {name} run did not complete: {run.error}")
            return None
        ids.append(run.experiment.id)
    return ids[0], ids[1]


def _aggregate(a: MetricAggregate) -> str:
    if a.true_rate is not None:
        value = f"true rate {a.true_rate:.1%}"
    elif a.mean is not None:
        value = f"mean {a.mean:.3f}"
    elif a.categories:
        value = ", ".join(f"{name} {n}" for name, n in sorted(a.categories.items()))
    else:
        value = "no values"
    return f"{value} ({a.count} scored, {a.errors} errors)"


def report(diff: Comparison) -> None:
    """Per label: both aggregates, and how many rows moved which way."""
    for label, m in diff.metrics.items():
        print(f"{label} ({m.metric_type}):")
        print(f"  baseline  {_aggregate(m.baseline)}")
        print(f"  candidate {_aggregate(m.candidate)}")
        print(
            f"  rows: {len(m.improved)} improved, {len(m.regressed)} regressed, "
            f"{len(m.unchanged)} unchanged, {len(m.changed)} changed, {len(m.missing)} missing"
        )


def gate(diff: Comparison, labels: Sequence[str]) -> int:
    """0 when no label regressed, 1 when one did, 2 for a label neither experiment has."""
    code = 0
    for label in labels:
        try:
            regressed = diff.regressed(label)
        except KeyError:  # a typo in a CI gate must not pass silently
            have = ", ".join(diff.metrics)
            print(f"gate: no metric {label!r} in either experiment (they have: {have})")
            return 2
        if regressed:
            rows = diff.metrics[label].regressed
            first = ", ".join(f"{key.record_id} (run {key.run_iteration})" for key in rows[:3])
            print(f"gate: {label} regressed on {len(rows)} rows, e.g. {first}")
            code = 1
        else:
            print(f"gate: {label} did not regress")
    return code


async def main(args: argparse.Namespace) -> int:
    """Run (or take) the two experiments, compare them, judge."""
    labels = args.fail_on_regression or ["exact_match"]
    async with connect(args.base_url) as client:
        if args.experiments:
            ids: tuple[str, str] | None = (args.experiments[0], args.experiments[1])
        else:
            ids = await run_both(client, args.records, args.candidate_model)
        if ids is None:
            return 2
        diff = await client.experiments.compare(*ids)
        print(f"compare {diff.baseline_id} -> {diff.candidate_id}")
        report(diff)
        return gate(diff, labels)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Fail a build when an experiment regressed.")
    parser.add_argument("experiments", nargs="*", help="BASELINE_ID CANDIDATE_ID (else run both)")
    parser.add_argument("--fail-on-regression", action="append", metavar="LABEL")
    parser.add_argument("--candidate-model", default="adder-v2", choices=WRONG_ON_MULTIPLES_OF)
    parser.add_argument("--records", type=int, default=200, help="dataset size (200)")
    parser.add_argument("--base-url", help="an API origin, e.g. http://127.0.0.1:8126")
    args = parser.parse_args()
    if len(args.experiments) not in (0, 2):
        parser.error("give two experiment ids (baseline, candidate) or none")
    sys.exit(asyncio.run(main(args)))
