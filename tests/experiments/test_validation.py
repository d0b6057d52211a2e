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
