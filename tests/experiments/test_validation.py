"""Bad arguments to ``run`` and ``resume``: a ValidationError naming the field, nothing sent."""

from __future__ import annotations

from typing import Any

import pytest

from llmobs_async import LLMObsClient, errors
from llmobs_async.testing import FakeLLMObsServer

from .common import seed


async def answer(input_data: Any, config: Any) -> str:
    return "a"


def exact(input_data: Any, output_data: Any, expected_output: Any) -> bool:
    return True


class NoEvaluate:
    name = "broken"


class TwoArgumentEvaluate:
    name = "two"

    def evaluate(self, context: Any, extra: Any) -> bool:
        return True


def two_arguments(input_data: Any, output_data: Any) -> bool:
    return True


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"task": "not callable"}, "task"),
        ({"concurrency": 0}, "concurrency"),
        ({"concurrency": True}, "concurrency"),
        ({"runs": 0}, "runs"),
        ({"sample_size": 0}, "sample_size"),
        ({"max_task_retries": -1}, "max_task_retries"),
        ({"task_timeout": 0}, "task_timeout"),
        ({"task_timeout": float("inf")}, "task_timeout"),
        ({"evaluators": exact}, "evaluators"),
        ({"evaluators": [exact, exact]}, "evaluators[1]"),
        ({"evaluators": [NoEvaluate()]}, "evaluators[0]"),
        ({"summary_evaluators": [42]}, "summary_evaluators[0]"),
        ({"config": {"when": object()}}, "config"),
        ({"on_progress": "print"}, "on_progress"),
        # Signatures the runner cannot call would fail every row, after its retries.
        ({"task": lambda input_data: input_data}, "task"),
        ({"task": lambda a, b, c, d: a}, "task"),
        ({"evaluators": [two_arguments]}, "evaluators[0]"),
        ({"evaluators": [TwoArgumentEvaluate()]}, "evaluators[0]"),
        ({"summary_evaluators": [two_arguments]}, "summary_evaluators[0]"),
        ({"evaluators": [TwoArgumentEvaluate]}, "evaluators[0]"),  # the class, not an instance
        ({"tags": "team:ml"}, "tags"),
        ({"tags": [1]}, "tags"),
    ],
)
async def test_bad_run_arguments_are_refused_before_any_request(
    fake: FakeLLMObsServer, client: LLMObsClient, options: dict[str, Any], field: str
) -> None:
    data = seed(fake, 2)
    kwargs: dict[str, Any] = {"task": answer, **options}
    with pytest.raises(errors.ValidationError) as caught:
        await client.experiments.run(data.project_id, data.dataset_id, "bad", **kwargs)
    assert caught.value.field.startswith(field), caught.value.field
    assert fake.requests == []
    assert fake.experiments == {}


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"task": None}, "task"),
        ({"concurrency": -3}, "concurrency"),
        ({"evaluators": [exact, exact]}, "evaluators[1]"),
    ],
)
async def test_bad_resume_arguments_are_refused_before_any_request(
    fake: FakeLLMObsServer, client: LLMObsClient, options: dict[str, Any], field: str
) -> None:
    kwargs: dict[str, Any] = {"task": answer, **options}
    with pytest.raises(errors.ValidationError) as caught:
        await client.experiments.resume("some-experiment", **kwargs)
    assert caught.value.field.startswith(field), caught.value.field
    assert fake.requests == []


async def test_a_task_taking_metadata_and_ddtrace_s_tag_mapping_are_accepted(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    data = seed(fake, 2)

    def with_metadata(input_data: Any, config: Any, metadata: Any) -> str:
        return "a"

    run = await client.experiments.run(
        data.project_id, data.dataset_id, "ok", task=with_metadata, tags={"team": "ml"}
    )
    assert run.ok
    spans = fake.events(run.experiment.id).spans.values()
    assert all("team:ml" in span["tags"] for span in spans) and len(spans) == 2
