"""A bulk job: load a large generated dataset, then correct every record, and account for each.

    python examples/bulk_job.py                    # the built-in fake API, with faults
    python examples/bulk_job.py --records 500000   # bigger: memory stays flat
    DD_API_KEY=... DD_APP_KEY=... python examples/bulk_job.py --records 1000   # your org

The records come from a generator, so nothing holds them all: ``create_many``
adds them as one new dataset version, ``update_many`` rewrites their expected
outputs, and each returns a ``BulkResult`` that accounts for every record
(applied, or failed with its typed error). Against the fake, the server answers
some requests 503 or 429 and drops connections, and refuses one record outright:
the job rides out the faults and reports that one record, and only it, as failed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

from llmobs_async import BulkProgress, BulkResult, LLMObsClient
from llmobs_async.errors import APIStatusError
from llmobs_async.testing import Chaos, FakeLLMObsServer

REJECTED = "row-13"  # the fake refuses this record, to show how one failure is reported


@asynccontextmanager
async def connect(base_url: str | None) -> AsyncIterator[tuple[LLMObsClient, bool]]:
    """The real API when keys are set (or ``base_url`` given), else the fake with faults on."""
    if base_url or os.environ.get("DD_API_KEY"):
        async with LLMObsClient(base_url=base_url) as client:
            yield client, False
        return
    async with FakeLLMObsServer() as fake:
        fake.chaos = Chaos(error_rate=0.05, rate_limit_rate=0.03, drop_rate=0.02, seed=1)
        fake.reject_record(REJECTED)
        print(f"no DD_API_KEY: using the fake API on {fake.base_url}, with faults")
        async with LLMObsClient(
            base_url=fake.base_url, api_key=fake.api_key, app_key=fake.app_key
        ) as client:
            yield client, True


def new_records(count: int) -> Iterator[dict[str, Any]]:
    """What a file or a database cursor would give: one record at a time."""
    for n in range(count):
        yield {
            "id": f"row-{n}",
            "input": {"question": f"What is {n} + {n}?"},
            "expected_output": str(n + n),
            "tags": ["source:generated"],
        }


def corrections(count: int) -> Iterator[dict[str, Any]]:
    """Updates by id: only the fields given change (absent is not null)."""
    for n in range(count):
        yield {"id": f"row-{n}", "expected_output": f"{n + n} (checked)"}


def progress(total: int) -> Callable[[BulkProgress], None]:
    """An ``on_progress`` callback printing a line every tenth of the job."""
    step = max(total // 10, 1)
    next_at = [step]

    def report(p: BulkProgress) -> None:
        if p.applied + p.failed >= next_at[0]:
            next_at[0] += step
            print(f"  ... {p.applied:,} applied, {p.failed:,} failed, {p.retries:,} retries")

    return report


def report(what: str, result: BulkResult, seconds: float) -> None:
    """Print the account of one job: every record read is applied or failed."""
    print(
        f"{what}: submitted {result.submitted:,}, applied {result.applied:,}, "
        f"failed {result.failed_count:,}, retries {result.retries:,} "
        f"in {seconds:.1f}s ({result.submitted / max(seconds, 1e-9):,.0f} records/s)"
    )
    causes: dict[str, list[str | None]] = {}  # the error's text -> the records it failed
    for failure in result.failed:
        error = failure.error
        detail = (
            error.errors[0].detail if isinstance(error, APIStatusError) and error.errors else ""
        )
        causes.setdefault(f"{type(error).__name__} {detail or error}", []).extend(
            failure.record_ids
        )
    for cause, ids in sorted(causes.items(), key=lambda item: -len(item[1]))[:5]:
        print(f"  {len(ids):,} failed ({', '.join(map(str, ids[:3]))}): {cause}")
    if result.stopped is not None:
        print(f"  the job stopped early: {result.stopped}")
    accounted = result.applied + sum(len(f.records) for f in result.failed)
    assert accounted == result.submitted, "a record went unaccounted for"


async def main(count: int, base_url: str | None) -> int:
    """Create ``count`` records as one dataset version, then update them all."""
    async with connect(base_url) as (client, fake):
        project = await client.projects.create("examples")
        dataset = await client.datasets.create(project.id, f"bulk-{time.time_ns()}")

        started = time.monotonic()
        created = await client.records.create_many(
            project.id, dataset.id, new_records(count), on_progress=progress(count)
        )
        report("create_many", created, time.monotonic() - started)

        started = time.monotonic()
        updated = await client.records.update_many(
            project.id, dataset.id, corrections(count), on_progress=progress(count)
        )
        report("update_many", updated, time.monotonic() - started)

        versions = await client.datasets.versions(project.id, dataset.id)
        print(f"dataset {dataset.id}: {len(versions)} version(s) after both jobs")

    expected_failures = {REJECTED} if fake and count > 13 else set()
    ok = all(
        set(r.failed_ids) == expected_failures
        and r.applied == count - len(expected_failures)
        and r.submitted == count
        for r in (created, updated)
    )
    print("every record accounted for" if ok else "UNEXPECTED: see the failures above")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="A bulk job that accounts for every record.")
    parser.add_argument("--records", type=int, default=50_000, help="how many (50,000)")
    parser.add_argument("--base-url", help="an API origin, e.g. http://127.0.0.1:8126")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.records, args.base_url)))
