"""The experiment every client runs: its records, task and evaluators.

Standard library only: the ddtrace worker imports it from ddtrace's own venv.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

PROJECT_NAME = "bench-experiments"
DATASET_NAME = "bench-dataset"
BIG_DATASET_NAME = "bench-dataset-big"
TASK_SECONDS = 0.020
EVALUATORS = ("exact_match", "closeness")
"""The labels of the two evaluators' metrics: a boolean and a score."""


def make_records(count: int) -> Iterator[dict[str, Any]]:
    """The dataset: a question, its expected answer and a little metadata."""
    for i in range(count):
        yield {
            "id": f"rec-{i:06d}",
            "input": {"question": f"What is {i} plus one?", "n": i},
            "expected_output": str(i + 1),
            "metadata": {"difficulty": "easy" if i % 3 else "hard"},
        }


async def answer(input_data: dict[str, Any], config: dict[str, Any]) -> str:
    """The task: a model call that takes 20 ms (right nine times in ten)."""
    await asyncio.sleep(TASK_SECONDS)
    n = int(input_data["n"])
    return str(n + 1) if n % 10 else str(n)


def exact_match(input_data: Any, output_data: Any, expected_output: Any) -> bool:
    """Boolean evaluator: the answer is exactly the expected one."""
    return bool(output_data == expected_output)


def closeness(input_data: Any, output_data: Any, expected_output: Any) -> float:
    """Score evaluator: 1.0 for the right number, less the further off it is."""
    try:
        off = abs(int(output_data) - int(expected_output))
    except (TypeError, ValueError):
        return 0.0
    return 1.0 / (1.0 + off)


def as_async(evaluator: Callable[[Any, Any, Any], Any]) -> Callable[..., Awaitable[Any]]:
    """The same evaluator as ``async def`` (same name, so the same metric label)."""

    async def evaluate(input_data: Any, output_data: Any, expected_output: Any) -> Any:
        return evaluator(input_data, output_data, expected_output)

    evaluate.__name__ = evaluator.__name__
    return evaluate
