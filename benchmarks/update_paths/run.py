"""update_many's two paths: the records PATCH (a version per batch) and batch_update (one per job).

Runs the fake API in its own process (a fresh one per run) with a service
time on every request (the ``--latency``), updates ``--records`` records with each path, and prints
records/s, the requests each sent and the dataset versions each made::

    python benchmarks/update_paths.py --records 10000 --latency 0.05 --repeat 3

The PATCH path is the engine with ``_bulk.operations.records_patch`` (what update_many
used before 0.3); ``batch_update`` is ``client.records.update_many`` as it is
now; ``apply_many`` (``--paths``) sends the same updates as a mixed job.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from llmobs_async import LLMObsClient, _routes
from llmobs_async._bulk import operations
from llmobs_async._resources._record_changes import run_job

ROOT = Path(__file__).resolve().parents[2]

SERVER = """
import asyncio, json, sys
from llmobs_async.testing import FakeLLMObsServer

async def serve():
    records, latency = int(sys.argv[1]), float(sys.argv[2])
    async with FakeLLMObsServer() as fake:
        pid = fake.add_project()
        did = fake.add_dataset(project_id=pid, records=records)
        fake.inject(delay=latency, times=None)  # the service time of every request
        print(json.dumps([fake.base_url, fake.api_key, fake.app_key, pid, did]), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        writes = [r for r in fake.requests if r.method != "GET"]
        print(json.dumps([len(fake.requests), len(writes), fake.datasets[did].version - 1]))

asyncio.run(serve())
"""


async def one_run(path: str, args: argparse.Namespace) -> dict[str, Any]:
    """One job against a fresh fake in its own process (its CPU is not the client's)."""
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SERVER,
        str(args.records),
        str(args.latency),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert server.stdout is not None and server.stdin is not None
    base_url, api_key, app_key, pid, did = json.loads(await server.stdout.readline())
    updates = [
        {"id": f"rec-{i}", "expected_output": {"answer": i, "run": path}}
        for i in range(args.records)
    ]
    async with LLMObsClient(
        base_url=base_url, api_key=api_key, app_key=app_key, max_concurrency=args.concurrency
    ) as client:
        started, cpu = time.perf_counter(), time.process_time()
        if path == "PATCH":
            route = _routes.UPDATE_RECORDS.compile(project_id=pid, dataset_id=did)
            result = await run_job(
                client._transport,
                operations.records_patch(route),
                updates,
                batch_size=args.batch_size,
                max_batch_bytes=5_000_000,
                on_progress=None,
                name="update_many",
            )
        elif path == "apply_many":  # the same updates as changes of a mixed job
            changes = [{"op": "update", **u} for u in updates]
            result = await client.records.apply_many(pid, did, changes, batch_size=args.batch_size)
        else:
            result = await client.records.update_many(pid, did, updates, batch_size=args.batch_size)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert result.ok and result.applied == args.records, result
    server.stdin.close()
    requests, writes, versions = json.loads(await server.stdout.readline())
    await server.wait()
    return {
        "seconds": elapsed,
        "cpu": cpu,
        "requests": requests,
        "writes": writes,
        "versions": versions,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, nargs="+", default=[1000, 100])
    parser.add_argument("--latency", type=float, default=0.05, help="service time, seconds")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--paths", nargs="+", default=["PATCH", "batch_update"],
        choices=["PATCH", "batch_update", "apply_many"],
    )  # fmt: skip
    args = parser.parse_args()
    print(
        f"{args.records:,} records, {args.latency * 1000:g} ms service time, "
        f"max_concurrency {args.concurrency}, median of {args.repeat}\n"
    )
    print(
        "| batch size | path | seconds | records/s | client CPU s "
        "| requests (writes + reads) | versions made |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|")
    sizes = args.batch_size
    for size in sizes:
        args.batch_size = size
        for path in args.paths:
            runs = [await one_run(path, args) for _ in range(args.repeat)]
            seconds = statistics.median(r["seconds"] for r in runs)
            cpu = statistics.median(r["cpu"] for r in runs)
            print(
                f"| {size:,} | {path} | {seconds:.3f} | {args.records / seconds:,.0f} | {cpu:.3f} "
                f"| {runs[0]['writes']} + {runs[0]['requests'] - runs[0]['writes']} "
                f"| {runs[0]['versions']} |"
            )


if __name__ == "__main__":
    asyncio.run(main())
