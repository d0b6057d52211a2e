"""The task and evaluators of the sharded example: one LLM call per record, one shared budget.

Every worker process imports this module (``--task examples/sharded/task.py:task``).
The limiter is made here, once per process; it shares its window through the Redis
that ``LLMOBS_RATE_LIMIT_STORE`` names, so all the workers together stay under the
provider's limit. Without that variable each process paces itself alone.

The provider is any OpenAI-compatible endpoint at ``PROVIDER_URL``, limited to
``PROVIDER_LIMIT`` (``calls/seconds``); the example starts a
:class:`llmobs_async.testing.FakeProvider` that answers 429 beyond its limit. With the
OpenAI SDK the call would be ``AsyncOpenAI(max_retries=0).chat.completions.create``:
its own retries would not know about the other processes; the limiter does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import aiohttp

from llmobs_async import RateLimiter

PROVIDER_URL = os.environ.get("PROVIDER_URL", "http://127.0.0.1:8000")
_CALLS, _SECONDS = os.environ.get("PROVIDER_LIMIT", "120/10").split("/")
MAX_ATTEMPTS = 20

limiter = RateLimiter("fake-llm:chat", requests=int(_CALLS), per=float(_SECONDS))


class RateLimited(Exception):
    """The provider said 429. ``status_code`` and ``headers`` are what the limiter reads."""

    status_code = 429

    def __init__(self, headers: Mapping[str, str]) -> None:
        super().__init__("the provider answered 429")
        self.headers = dict(headers)


async def complete(session: aiohttp.ClientSession, prompt: str) -> str:
    """One chat completion, inside the shared budget; a 429 pauses every worker."""
    body = {"model": "fake-small", "messages": [{"role": "user", "content": prompt}]}
    async with (
        limiter.acquire(),
        session.post(f"{PROVIDER_URL}/v1/chat/completions", json=body) as response,
    ):
        if response.status == 429:
            raise RateLimited(response.headers)  # leaving acquire() backs off every process
        response.raise_for_status()
        answer: dict[str, Any] = await response.json()
    content: str = answer["choices"][0]["message"]["content"]
    return content


async def task(input_data: Mapping[str, Any], config: Mapping[str, Any]) -> str:
    """Ask the provider; after a 429, wait out the pause the limiter set and ask again."""
    async with aiohttp.ClientSession() as session:
        for _ in range(MAX_ATTEMPTS - 1):
            try:
                return await complete(session, str(input_data["question"]))
            except RateLimited:
                continue
        return await complete(session, str(input_data["question"]))


def answered(input_data: Any, output_data: Any, expected_output: Any) -> bool:
    """Boolean: the provider gave an answer (its echo of the question)."""
    return bool(output_data) and str(input_data["question"]) in str(output_data)


def answered_rate(
    inputs: list[Any], outputs: list[Any], expected_outputs: list[Any], evaluators_results: Any
) -> float:
    """Summary: the share of rows answered, over every shard's rows."""
    values = evaluators_results.get("answered", [])
    return sum(1 for v in values if v) / len(values) if values else 0.0
