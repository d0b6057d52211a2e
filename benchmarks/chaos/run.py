"""Chaos at scale: 1,000,000 records through ``update_many`` against a misbehaving fake.

Usage: ``python benchmarks/chaos.py [--records N] [--seed S] [--output FILE]``
(``make bench`` runs it with the defaults).

The fake API (``llmobs_async.testing.FakeLLMObsServer``) runs in its own
process, so the client's memory is measured alone. It answers 10% of requests
503, 5% 429 with ``X-RateLimit-*`` headers, drops 2% of connections, and one
record in 10,000 does not exist in the dataset (the API answers 404 for any
batch that carries it). The job must lose nothing: every other record is
stored with its new value, each bad record is reported failed alone, and
``applied + failed == submitted``. Peak RSS growth of the client process must
stay under 100 MB. Exits 1 if any check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

BAD_EVERY = 10_000
RSS_BUDGET_MIB = 100
ERROR_RATE, RATE_LIMIT_RATE, DROP_RATE = 0.10, 0.05, 0.02


def _is_bad(i: int) -> bool:
    return i % BAD_EVERY == 4_321  # inside a batch: found by splitting, not by luck


def _value(i: int) -> str:
    return f"chaos {i}"


async def _serve(records: int, seed: int, rates: tuple[float, float, float]) -> None:
    """The fake API process: seed, serve, and check the stored values when asked."""
    from llmobs_async.testing import Chaos, FakeLLMObsServer

    async with FakeLLMObsServer() as fake:
        project_id = fake.add_project()
        dataset_id = fake.add_dataset(
            project_id=project_id,
            records=({"id": f"rec-{i}"} for i in range(records) if not _is_bad(i)),
        )
        fake.chaos = Chaos(
            error_rate=rates[0],
            rate_limit_rate=rates[1],
            drop_rate=rates[2],
            seed=seed,
        )
        print(json.dumps({"url": fake.base_url, "project": project_id, "dataset": dataset_id}))
        print(json.dumps({"key": fake.api_key, "app": fake.app_key}), flush=True)
        statuses: dict[str, int] = {}

        def count(upto: int) -> None:
            # Counts answers and forgets the bodies: the log would hold every record.
            for request in fake.requests[:upto]:
                key = str(request.status or "dropped")
                statuses[key] = statuses.get(key, 0) + 1
            del fake.requests[:upto]

        async def trim() -> None:
            while True:
                await asyncio.sleep(1)
                count(max(len(fake.requests) - 256, 0))  # the newest may be unanswered

        trimmer = asyncio.create_task(trim())
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.readline)  # the client is done
        trimmer.cancel()
        count(len(fake.requests))
        fake.chaos = None
        stored = fake.records(dataset_id)
        wrong = sum(
            1
            for i in range(records)
            if not _is_bad(i) and stored[f"rec-{i}"]["expected_output"] != _value(i)
        )
        print(json.dumps({"wrong": wrong, "statuses": statuses}), flush=True)


async def _job(where: dict[str, str], keys: dict[str, str], records: int) -> dict[str, Any]:
    """Run the job in this process; return its result and what it cost."""
    from llmobs_async import LLMObsClient

    def updates() -> Iterator[dict[str, Any]]:
        for i in range(records):
            yield {"id": f"rec-{i}", "expected_output": _value(i), "metadata": {"n": i}}

    # 10% 503s compound: eight retries keep a batch from giving up (0.17**9 ~ 1e-7).
    async with LLMObsClient(
        base_url=where["url"], api_key=keys["key"], app_key=keys["app"], max_retries=8
    ) as client:
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        cpu, wall = time.process_time(), time.monotonic()
        result = await client.records.update_many(where["project"], where["dataset"], updates())
        wall, cpu = time.monotonic() - wall, time.process_time() - cpu
        rss_growth_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    return {"result": result, "wall": wall, "cpu": cpu, "rss_growth_mib": rss_growth_kib / 1024}


def _run(args: argparse.Namespace) -> int:
    server = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve",
            str(args.records),
            "--seed",
            str(args.seed),
            "--rates",
            ",".join(map(str, args.rates)),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdin is not None and server.stdout is not None
    try:
        where = json.loads(server.stdout.readline())
        keys = json.loads(server.stdout.readline())
        run = asyncio.run(_job(where, keys, args.records))
        server.stdin.write("check\n")
        server.stdin.flush()
        check = json.loads(server.stdout.readline())
    finally:
        server.kill()
        server.wait()

    result, wall, rss_growth_mib = run["result"], run["wall"], run["rss_growth_mib"]
    bad = {f"rec-{i}" for i in range(args.records) if _is_bad(i)}
    lost = result.submitted - result.applied - result.failed_count
    alone = all(
        len(f.records) == 1 and getattr(f.error, "status", None) == 404 for f in result.failed
    )
    figures = {
        "records": args.records,
        "submitted": result.submitted,
        "applied": result.applied,
        "failed": result.failed_count,
        "bad_records": len(bad),
        "lost": lost,
        "stored_wrong": check["wrong"],
        "retries": result.retries,
        "requests_by_status": check["statuses"],
        "requests": sum(check["statuses"].values()),
        "wall_s": round(wall, 1),
        "cpu_s": round(run["cpu"], 1),
        "records_per_s": round(result.applied / wall),
        "peak_rss_growth_mib": round(rss_growth_mib, 1),
    }
    checks = {
        "0 lost": lost == 0 and check["wrong"] == 0,
        "every good record applied": result.applied == args.records - len(bad),
        "exactly the bad records failed, each alone with 404": set(result.failed_ids) == bad
        and alone,
        f"peak RSS growth < {RSS_BUDGET_MIB} MB": rss_growth_mib < RSS_BUDGET_MIB,
    }
    print(json.dumps(figures, indent=2))
    for name, ok in checks.items():
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
    if args.output:
        with open(args.output, "w") as out:
            json.dump({"figures": figures, "checks": checks}, out, indent=2)
    return 0 if all(checks.values()) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--rates",
        type=lambda text: tuple(float(r) for r in text.split(",")),
        default=(ERROR_RATE, RATE_LIMIT_RATE, DROP_RATE),
        help="503, 429 and dropped-connection rates (0.1,0.05,0.02)",
    )
    parser.add_argument("--output", help="also write the figures here as JSON")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        asyncio.run(_serve(args.serve, args.seed, args.rates))
        return 0
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())
