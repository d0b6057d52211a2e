"""One process of a shared-limiter test: ``python -m tests.limiter_worker '<json spec>'``.

It opens a client with the Redis store, makes the limiter, waits for a line on
stdin (so that all processes start together), makes ``calls`` chat calls to the
provider through the limiter and prints one JSON line: the statuses and the
limiter's stats.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import aiohttp

from llmobs_async import LLMObsClient


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Make ``calls`` calls through the limiter ``name``."""
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    async with (
        LLMObsClient(
            api_key="k", app_key="a", base_url="http://127.0.0.1:9", rate_limit_store=spec["redis"]
        ) as client,
        aiohttp.ClientSession() as http,
    ):
        limiter = client.rate_limiter(spec["name"], requests=spec["requests"], per=spec["per"])

        async def call() -> int:
            async with (
                limiter.acquire(),
                http.post(f"{spec['url']}/v1/chat/completions", json=body) as response,
            ):
                await response.read()
                return response.status

        print("READY", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        statuses = await asyncio.gather(*(call() for _ in range(spec["calls"])))
        stats = limiter.stats
    return {"statuses": statuses, "acquired": stats.acquired, "waited": stats.waited}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(json.loads(sys.argv[1])))), flush=True)
