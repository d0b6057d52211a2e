"""``llmobs-async demo``: the whole workflow against the built-in fake API, faults and all.

Starts the fake API in this process and runs what an evaluation pipeline
does: get or create a project, create a dataset, add every record in one job
(``create_many``), pull them back and check each one, update them all
(``update_many``), then run an experiment over them with
``experiments.run``, interrupt a second run and resume it, and compare the
two (:mod:`.demo_experiments`). Along the way the fake answers 503s, 429s with rate-limit headers
and drops connections; the client must ride them out and lose nothing.
Every step is checked; any discrepancy makes the verdict FAILED (exit 1).
"""

from __future__ import annotations

import sys
import time
from typing import Any

from .._bulk.results import BulkResult
from .._client import LLMObsClient
from ..models import Dataset, DatasetRecord, Project
from ..testing import Chaos, FakeLLMObsServer
from . import demo_experiments
from .output import CountBar, ProgressBar


def _new_record(n: int) -> dict[str, Any]:
    return {
        "input": {"question": f"What is {n} + {n}?"},
        "expected_output": str(2 * n),
        "metadata": {"n": n},
        "tags": ["source:demo"],
    }


def _reviewed(n: int) -> str:
    return f"{2 * n} (reviewed)"


class _Demo:
    """The steps, the client and the fake they share, and what went wrong so far."""

    def __init__(self, fake: FakeLLMObsServer, client: LLMObsClient, records: int) -> None:
        self.fake = fake
        self.client = client
        self.records = records
        self.problems: list[str] = []
        self.tty = sys.stderr.isatty()

    def check(self, ok: bool, problem: str) -> None:
        """Note ``problem`` unless ``ok``."""
        if not ok:
            self.problems.append(problem)
            print(f"   !! {problem}")

    async def run(self) -> None:
        """Every step in order; each adds what it finds wrong to ``problems``."""
        project = await self.project()
        dataset = await self.dataset(project)
        await self.create_records(project, dataset)
        ids = await self.pull_and_verify(project, dataset)
        await self.update_records(project, dataset, ids)
        await demo_experiments.experiments(self, project, dataset)

    async def project(self) -> Project:
        """Get-or-create a project, through a 503."""
        self.fake.inject(status=503)
        project = await self.client.projects.create("demo evals", description="nightly")
        again = await self.client.projects.create("demo evals")
        print(f"1. project 'demo evals' {project.id}: created through a 503, found again by name")
        self.check(again.id == project.id, "creating the project again made a second one")
        return project

    async def dataset(self, project: Project) -> Dataset:
        """Create an empty dataset, through a 429 with rate-limit headers."""
        self.fake.inject_rate_limit(reset=0.2, limit=1000, period=1.0)
        dataset = await self.client.datasets.create(
            project.id, "qa-demo", description="arithmetic", metadata={"owner": "demo"}
        )
        print(f"2. dataset 'qa-demo' {dataset.id}: created through a 429 (version 0, empty)")
        self.check(not dataset.current_version, f"a new dataset at {dataset.current_version}")
        return dataset

    async def create_records(self, project: Project, dataset: Dataset) -> None:
        """``create_many`` every record while the fake misbehaves: one new dataset version."""
        self.chaos(seed=7)
        result = await self._bulk(
            "created",
            self.client.records.create_many(
                project.id,
                dataset.id,
                (_new_record(n) for n in range(self.records)),
                batch_size=500,
                on_progress=self._bar("created"),
            ),
        )
        versions = await self.client.datasets.versions(project.id, dataset.id)
        print(f"   the job made {len(versions)} dataset version(s)")
        self.check(result.ok and result.applied == self.records, "records were not all created")
        self.check(len(versions) == 1, f"{len(versions)} versions instead of one for the job")

    async def pull_and_verify(self, project: Project, dataset: Dataset) -> list[str]:
        """Pull every record back (through the faults) and check each; return the ids by n."""
        pulled = await self._pull(project, dataset, "4. records.list")
        ids: list[str | None] = [None] * self.records
        wrong = 0
        for record in pulled:
            n = record.metadata.get("n")
            if not isinstance(n, int) or not 0 <= n < self.records or ids[n] is not None:
                wrong += 1
                continue
            ids[n] = record.id
            expected = _new_record(n)
            if (record.input, record.expected_output, list(record.tags)) != (
                expected["input"],
                expected["expected_output"],
                expected["tags"],
            ):
                wrong += 1
        found = [rid for rid in ids if rid is not None]
        unique = len(set(found)) == len(found)
        self.check(len(found) == self.records, f"{self.records - len(found):,} records missing")
        self.check(not wrong and unique, f"{wrong:,} records wrong or repeated")
        if len(found) == self.records and not wrong and unique:
            print(f"   checked all {self.records:,}: ids unique, content as created")
        return found

    async def update_records(self, project: Project, dataset: Dataset, ids: list[str]) -> None:
        """``update_many`` every record by the ids just pulled, then pull again and check."""
        updates = (
            {"id": rid, "expected_output": _reviewed(n), "metadata": {"n": n, "reviewed": True}}
            for n, rid in enumerate(ids)
        )
        result = await self._bulk(
            "updated",
            self.client.records.update_many(
                project.id, dataset.id, updates, batch_size=500, on_progress=self._bar("updated")
            ),
        )
        self.check(result.ok and result.applied == len(ids), "records were not all updated")
        pulled = await self._pull(project, dataset, "   pulled again")
        stale = sum(
            1
            for r in pulled
            if r.expected_output != _reviewed(r.metadata.get("n", -1))
            or r.metadata.get("reviewed") is not True
        )
        self.check(len(pulled) == len(ids) and not stale, f"{stale:,} records not updated")
        if len(pulled) == len(ids) and not stale:
            print(f"   checked all {len(ids):,}: every record holds its update")

    # --- helpers ---------------------------------------------------------------------

    def chaos(self, *, seed: int) -> None:
        """From now on the fake answers some requests 429 or 503, or drops them."""
        self.fake.chaos = Chaos(error_rate=0.06, rate_limit_rate=0.04, drop_rate=0.03, seed=seed)
        self.fake.inject(drop=True)  # at least one dropped connection, whatever the dice say

    def _bar(self, verb: str) -> ProgressBar:
        self._progress = ProgressBar(sys.stderr, total=self.records, enabled=self.tty, verb=verb)
        return self._progress

    async def _bulk(self, verb: str, job: Any) -> BulkResult:
        started = time.monotonic()
        step = "3. create_many" if verb == "created" else "5. update_many"
        print(f"{step}: {self.records:,} records (429s, 503s and dropped connections)", flush=True)
        result: BulkResult = await job
        self._progress.close()
        elapsed = time.monotonic() - started
        print(
            f"   {verb} {result.applied:,} of {result.submitted:,} in {elapsed:.1f}s "
            f"({result.applied / elapsed:,.0f} records/s), {result.retries:,} retries, "
            f"{result.failed_count:,} failed"
        )
        return result

    async def _pull(self, project: Project, dataset: Dataset, what: str) -> list[DatasetRecord]:
        bar = CountBar(sys.stderr, what="pulled", enabled=self.tty)
        started, pages = time.monotonic(), 0
        pulled: list[DatasetRecord] = []
        async for page in self.client.records.list(project.id, dataset.id, page_size=1000).pages():
            pulled.extend(page.items)
            pages += 1
            bar(len(pulled), pages)
        bar.close()
        elapsed = time.monotonic() - started
        print(f"{what}: {len(pulled):,} records in {pages} pages ({elapsed:.1f}s)")
        return pulled


async def run_demo(*, records: int = 20_000) -> int:
    """Run the demo; return 0 if every step checks out, else 1."""
    started = time.monotonic()
    async with FakeLLMObsServer() as fake:
        print(f"fake LLM Observability API on {fake.base_url}, in this process")
        async with LLMObsClient(
            base_url=fake.base_url, api_key=fake.api_key, app_key=fake.app_key
        ) as client:
            demo = _Demo(fake, client, records)
            await demo.run()
        answered = [r.status for r in fake.requests]
    ok = sum(1 for status in answered if 200 <= status < 300)
    print(
        f"the fake API answered {len(answered):,} requests: {ok:,} OK, "
        f"{answered.count(429)} x 429, {answered.count(503)} x 503, "
        f"{answered.count(0)} dropped connections"
    )
    elapsed = time.monotonic() - started
    if demo.problems:
        print(f"verdict: FAILED ({len(demo.problems)} problems) in {elapsed:.1f}s")
        return 1
    print(f"verdict: OK, every step checked ({records:,} records) in {elapsed:.1f}s")
    return 0
