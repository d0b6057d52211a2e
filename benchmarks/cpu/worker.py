"""One measurement in a fresh process: ``python _worker.py '<json spec>'``.

The spec names the client, the scenario, the server URL, the timed count and
the warm-up count. The worker opens the client, warms up (not measured),
collects garbage, then measures process CPU time (``time.process_time``: user
plus system, all threads) and wall time over the timed batch. It prints one
JSON line and exits 0, or prints a JSON line with ``"error"`` and exits 1.
"""

from __future__ import annotations

import asyncio
import gc
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, see common.py

from common import worker_main

from cpu.clients import ADAPTERS, BenchClient, Call, LLMObs
from cpu.scenarios import BY_NAME, generate_records, make_records

NOT_AVAILABLE = "n/a (update_many not available)"


async def run_batch(call: Call, count: int, concurrency: int) -> int:
    """Send ``count`` calls with ``asyncio.gather``, at most ``concurrency`` at once.

    Every client is driven by this same loop; it returns the items confirmed.
    """
    gate = asyncio.Semaphore(concurrency)

    async def one() -> int:
        async with gate:
            return await call()

    return sum(await asyncio.gather(*(one() for _ in range(count))))


def _timed_start() -> tuple[float, float]:
    gc.collect()
    return time.process_time(), time.perf_counter()


def _elapsed(start: tuple[float, float]) -> dict[str, float]:
    cpu, wall = start
    return {"cpu_s": time.process_time() - cpu, "wall_s": time.perf_counter() - wall}


async def run_burst(
    adapter: type[BenchClient], spec: dict[str, Any], count: int
) -> tuple[int, str]:
    """Send ``count`` calls launched together on a new client (opened and closed here).

    No outer limit: the client's own concurrency limit (``max_concurrency`` for
    llmobs_async, a semaphore for the others) holds what it cannot run yet. Returns the items
    confirmed and the client's version.
    """
    scenario = BY_NAME[spec["scenario"]]
    records = make_records(scenario.records_per_request)
    async with adapter(spec["url"], scenario.concurrency, limit=True) as client:
        call = client.call(scenario, records)
        return sum(await asyncio.gather(*(call() for _ in range(count)))), client.version


async def run_requests(spec: dict[str, Any]) -> dict[str, Any]:
    """Measure a request scenario (``small``, ``records100``, ...) for one client."""
    scenario = BY_NAME[spec["scenario"]]
    adapter = ADAPTERS[spec["client"]]
    if scenario.burst:
        size = min(scenario.burst, spec["count"])
        confirmed, version = await run_burst(adapter, spec, spec["warmup"])
        start = _timed_start()
        for _ in range(spec["count"] // size):
            confirmed += (await run_burst(adapter, spec, size))[0]
        out = _elapsed(start)
        sent = spec["warmup"] + spec["count"] // size * size
        requests = sent - spec["warmup"]
    else:
        records = make_records(scenario.records_per_request)
        async with adapter(spec["url"], scenario.concurrency) as client:
            call = client.call(scenario, records)
            confirmed = await run_batch(call, spec["warmup"], scenario.concurrency)
            start = _timed_start()
            confirmed += await run_batch(call, spec["count"], scenario.concurrency)
            out = _elapsed(start)
            version = client.version
        sent, requests = spec["warmup"] + spec["count"], spec["count"]
    if confirmed != sent * scenario.per_request:
        raise RuntimeError(
            f"responses confirmed {confirmed} items, expected {sent} requests' worth"
        )
    return {**out, "requests": requests, "sent": sent, "version": version}


# --- EXTENSION POINT: streamed bulk updates through client.records.update_many ----------
async def run_bulk(spec: dict[str, Any]) -> dict[str, Any]:
    """Measure ``update_many`` (kind ``bulk``: CPU and rate; kind ``rss``: peak RSS growth).

    ``bulk`` passes a prebuilt list, so building records is not measured;
    ``rss`` passes a generator, so only what the client keeps alive adds to
    the peak. Returns ``{"na": ...}`` when ``update_many`` does not exist yet.
    """
    scenario = BY_NAME[spec["scenario"]]
    async with LLMObs(spec["url"], scenario.concurrency) as client:
        if not client.has_update_many():
            return {"na": NOT_AVAILABLE, "version": client.version}
        if spec["warmup"]:
            await _check_bulk(client, make_records(spec["warmup"]), spec["warmup"])
        records = (
            make_records(spec["count"])
            if scenario.kind == "bulk"
            else generate_records(spec["count"])
        )
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = _timed_start()
        await _check_bulk(client, records, spec["count"])
        out = _elapsed(start)
        rss_growth_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
        version = client.version
    return {**out, "records": spec["count"], "rss_growth_kib": rss_growth_kib, "version": version}


async def _check_bulk(client: LLMObs, records: Any, count: int) -> None:
    result = await client.update_many(records)
    if not result.ok or result.applied != count:
        raise RuntimeError(
            f"update_many: ok={result.ok} applied={result.applied} "
            f"submitted={result.submitted}, expected {count}"
        )


def main(argv: list[str]) -> int:
    """Run the spec given as the first argument; print one JSON line."""
    kind = BY_NAME[json.loads(argv[1])["scenario"]].kind
    return worker_main(run_bulk if kind in ("bulk", "rss") else run_requests, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
