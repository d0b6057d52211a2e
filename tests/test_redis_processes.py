"""Several processes, each with its own client, share one org's limit through a real Redis.

The fake API runs in this process (its fixed window is the one limit all of
them spend); the clients run in ``python -m tests.redis_worker`` processes.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
from pathlib import Path
from typing import Any

from llmobs_async.testing import FakeLLMObsServer

from .redisserver import RedisServer

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = 4
PER_PROCESS = 12
LIMIT, PERIOD = 10, 1.0
DEADLINE_S = 60.0


async def run_workers(fake: FakeLLMObsServer, specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Start one worker per spec, let them go together, and return their JSON results."""
    processes = []
    for spec in specs:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.redis_worker",
            json.dumps(spec),
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        processes.append(process)
    try:
        async with asyncio.timeout(DEADLINE_S):
            for process in processes:
                assert process.stdout is not None
                assert (await process.stdout.readline()).strip() == b"READY"
            for process in processes:
                assert process.stdin is not None
                process.stdin.write(b"GO\n")
                await process.stdin.drain()
            outputs = [await process.communicate() for process in processes]
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
    for process in processes:
        assert process.returncode == 0
    return [json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outputs]


def job(fake: FakeLLMObsServer, redis: str | None, records: int) -> list[dict[str, Any]]:
    """The specs of PROCESSES workers, each updating its own slice of ``records``."""
    project_id = fake.add_project(name="p", description="")
    dataset_id = fake.add_dataset(project_id=project_id, records=records)
    share = records // PROCESSES
    return [
        {
            "redis": redis,
            "url": fake.base_url,
            "api_key": fake.api_key,
            "app_key": fake.app_key,
            "project_id": project_id,
            "dataset_id": dataset_id,
            "first": index * share,
            "count": share,
            "batch": 1,
            "name": f"worker-{index}",
        }
        for index in range(PROCESSES)
    ]


async def test_processes_sharing_a_store_stay_under_the_limit(redis_server: RedisServer) -> None:
    """Four processes, one Redis, one limit: no 429, every record applied, near the limit's pace."""
    records = PROCESSES * PER_PROCESS
    async with FakeLLMObsServer(rate_limit=(LIMIT, PERIOD)) as fake:
        # Each job's read of its dataset's version is limited apart, as live.
        fake.rate_limited = lambda r: r.method != "GET"
        specs = job(fake, redis_server.url, records)
        results = await run_workers(fake, specs)
        assert fake.rate_limit is not None
        assert fake.rate_limit.rejected == 0
        assert sum(r["applied"] for r in results) == records
        assert all(r["failed"] == 0 for r in results)
        stored = fake.records(specs[0]["dataset_id"])
        for spec in specs:
            for i in range(spec["first"], spec["first"] + spec["count"]):
                assert stored[f"rec-{i}"]["input"] == {"by": spec["name"]}
        makespan = max(r["end"] for r in results) - min(r["start"] for r in results)
        # The limit allows this many windows; a job started inside one needs at most that.
        assert makespan <= math.ceil(records / LIMIT) * PERIOD + 0.5
        assert all(r["round_trips"] > 0 for r in results)
        # Every request went out through the fake's one window: none was sent blind.
        assert len([r for r in fake.requests if r.method != "GET"]) == records  # + version reads
