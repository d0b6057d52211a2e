"""Multi-tenant agents: one connection pool, one ``with_options`` view per tenant.

    python examples/multi_tenant.py              # the built-in fake API, three tenants

An agent platform serves several customers, each with its own Datadog keys.
It opens one ``LLMObsClient`` (one pool of connections, one limit on requests
in flight) and gives each tenant a view, ``client.with_options(api_key=...,
app_key=...)``: cheap, sharing the pool, each key pair with its own rate gate,
so one tenant's 429s never slow down another. Closing a view does nothing;
closing the client closes the pool for all of them.

Each tenant runs a few agents at once; every agent saves the conversations it
wants evaluated as records of its tenant's dataset. Against the fake (which
accepts every tenant's keys), some requests are answered 503 or 429 with
``X-RateLimit-*`` headers, and some connections are dropped.
With real keys, give each tenant's pair as ``TENANT_<NAME>_API_KEY`` and
``TENANT_<NAME>_APP_KEY``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from llmobs_async import LLMObsClient
from llmobs_async.testing import Chaos, FakeLLMObsServer

TENANTS = ("acme", "globex", "initech")
MAX_IN_FLIGHT = 8  # for all tenants together


@asynccontextmanager
async def open_pool() -> AsyncIterator[tuple[LLMObsClient, dict[str, tuple[str, str]]]]:
    """The shared client, and each tenant's (api_key, app_key)."""
    if os.environ.get("DD_API_KEY"):
        keys = {
            t: (
                os.environ[f"TENANT_{t.upper()}_API_KEY"],
                os.environ[f"TENANT_{t.upper()}_APP_KEY"],
            )
            for t in TENANTS
        }
        async with LLMObsClient(max_concurrency=MAX_IN_FLIGHT) as client:
            yield client, keys
        return
    async with FakeLLMObsServer() as fake:
        keys = {t: (f"{t}-api-key", f"{t}-app-key") for t in TENANTS}
        for api_key, app_key in keys.values():
            fake.add_keys(api_key, app_key)
        # Faults for everyone: the client retries them, and each tenant's 429s pause
        # only that tenant's rate gate (a gate per key pair), never the others'.
        fake.chaos = Chaos(error_rate=0.05, rate_limit_rate=0.05, drop_rate=0.02, seed=5)
        print(f"no DD_API_KEY: using the fake API on {fake.base_url}, tenants {', '.join(TENANTS)}")
        async with LLMObsClient(
            base_url=fake.base_url,
            api_key=fake.api_key,
            app_key=fake.app_key,
            max_concurrency=MAX_IN_FLIGHT,
        ) as client:
            yield client, keys
        seen = [r.status for r in fake.requests]
        print(
            f"the fake answered {len(seen)} requests: {seen.count(429)} x 429, "
            f"{seen.count(503)} x 503, {seen.count(0)} dropped; the client retried them"
        )


async def agent(tenant: LLMObsClient, project_id: str, dataset_id: str, n: int, turns: int) -> int:
    """One agent: each turn of its conversation that should be evaluated becomes a record."""
    saved = 0
    for turn in range(turns):
        question = f"agent {n}, turn {turn}: what is {n} * {turn}?"
        answer = str(n * turn)  # the agent's work would happen here
        await tenant.records.create(
            project_id,
            dataset_id,
            [{"input": {"question": question}, "expected_output": answer, "tags": [f"agent:{n}"]}],
        )
        saved += 1
    return saved


async def run_tenant(
    tenant: LLMObsClient, name: str, agents: int, turns: int
) -> tuple[str, int, float]:
    """A tenant's project and dataset, its agents running at once, and the records read back."""
    started = time.monotonic()
    project = await tenant.projects.create(f"{name}-agents")
    dataset = await tenant.datasets.create(project.id, f"conversations-{time.time_ns()}")
    await asyncio.gather(*(agent(tenant, project.id, dataset.id, n, turns) for n in range(agents)))
    stored = [r async for r in tenant.records.list(project.id, dataset.id)]
    return name, len(stored), time.monotonic() - started


async def main(agents: int, turns: int) -> int:
    """Every tenant at once over one pool; each must find all its agents' records."""
    async with open_pool() as (client, keys):
        views = {
            name: client.with_options(api_key=api_key, app_key=app_key)
            for name, (api_key, app_key) in keys.items()
        }
        results = await asyncio.gather(
            *(run_tenant(view, name, agents, turns) for name, view in views.items())
        )
    ok = True
    for name, stored, seconds in results:
        print(f"tenant {name}: {agents} agents saved {stored} records in {seconds:.2f}s")
        ok = ok and stored == agents * turns
    print("every tenant has all its records" if ok else "RECORDS MISSING")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Agents of several tenants over one pool.")
    parser.add_argument("--agents", type=int, default=4, help="agents per tenant (4)")
    parser.add_argument("--turns", type=int, default=5, help="records each agent saves (5)")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.agents, args.turns)))
