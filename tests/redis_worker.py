"""One process of a shared-store test: ``python -m tests.redis_worker '<json spec>'``.

It opens its own client with the store, waits for a line on stdin (so that
all processes start together), updates its slice of the records with
``update_many`` and prints one JSON line: what was applied, the store's
round trips, and its first and last instants (``time.monotonic``).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from llmobs_async import LLMObsClient, RedisRateLimitStore


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Update records ``first`` .. ``first + count - 1`` in batches of ``batch``."""
    store = RedisRateLimitStore(spec["redis"]) if spec.get("redis") else None
    records = [
        {"id": f"rec-{i}", "input": {"by": spec["name"]}}
        for i in range(spec["first"], spec["first"] + spec["count"])
    ]
    async with LLMObsClient(
        base_url=spec["url"],
        api_key=spec["api_key"],
        app_key=spec["app_key"],
        rate_limit_store=store,
    ) as client:
        print("READY", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        start = time.monotonic()
        result = await client.records.update_many(
            spec["project_id"], spec["dataset_id"], records, batch_size=spec["batch"]
        )
        end = time.monotonic()
    if store is not None:
        await store.aclose()
    return {
        "applied": result.applied,
        "failed": result.failed_count,
        "round_trips": store.round_trips if store is not None else 0,
        "start": start,
        "end": end,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(json.loads(sys.argv[1])))), flush=True)
