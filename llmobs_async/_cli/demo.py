"""``llmobs-async demo``: the whole workflow against the built-in fake API, faults and all.

Starts the fake API in this process and runs what an evaluation pipeline
does: get or create a project, create a dataset, add every record in one job
(``create_many``), pull them back and check each one, update them all
(``update_many``), create an experiment on the dataset's version, push its
spans and metrics, read them back, mark it completed, then list it and read
it back. Along the way the fake answers 503s, 429s with rate-limit headers
and drops connections; the client must ride them out and lose nothing.
Every step is checked; any discrepancy makes the verdict FAILED (exit 1).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import Any

from .._bulk.results import BulkResult
from .._client import LLMObsClient
from ..models import UNSET, Dataset, DatasetRecord, Project
from ..testing import Chaos, FakeLLMObsServer
from .output import CountBar, ProgressBar

_SPANS_A_PUSH = 250


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
        await self.experiment(project, dataset, ids)

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

    async def experiment(self, project: Project, dataset: Dataset, ids: list[str]) -> None:
        """Create an experiment on the dataset's version, push results, read back, complete."""
        client = self.client
        version = (await client.datasets.get(project.id, dataset.id)).current_version
        self.check(version is not None, "the dataset has no current version")
        exp = await client.experiments.create(
            project.id,
            dataset.id,
            "demo-run",
            dataset_version=UNSET if version is None else version,
            config={"model": "adder"},
        )
        print(f"6. experiment {exp.name!r} {exp.id} on dataset version {version}")
        self.check(exp.dataset_version == version, f"experiment on version {exp.dataset_version}")
        spans = min(len(ids), 2000)
        started = time.monotonic()
        pushes = 0
        for chunk in _chunks(range(spans), _SPANS_A_PUSH):
            span_list, metrics = _results(project.id, dataset.id, ids, chunk)
            if chunk.start == 0:  # one experiment-level (summary) metric, on no span
                metrics.append(_metric("", "accuracy", score_value=1.0))
            await client.experiments.events.create(exp.id, spans=span_list, metrics=metrics)
            pushes += 1
        print(
            f"7. events: {spans:,} spans and {2 * spans + 1:,} metrics pushed in {pushes} "
            f"requests ({time.monotonic() - started:.1f}s)"
        )
        read = summary = complete = 0
        async for page in client.experiments.events.list(exp.id, page_size=500).pages():
            summary += len(getattr(page, "summary_metrics", ()))
            for span in page.items:
                read += 1
                labels = sorted(m.label or "" for m in span.eval_metrics)
                complete += labels == ["correct", "score"]
        print(f"   read back {read:,} spans, each with its metrics, and the summary metric")
        self.check(read == spans and complete == spans, f"{spans - complete:,} spans lost")
        self.check(summary >= 1, "the summary metric was lost")
        done = await client.experiments.update(exp.id, status="completed")
        listed = [e.id async for e in client.experiments.list(project_id=project.id)]
        got = await client.experiments.get(exp.id)
        print(
            f"8. experiment marked {done.status} (the API answers an empty 200; read back), "
            f"listed, and read by id: {got.status}"
        )
        self.check(done.status == "completed" == got.status, f"status is {got.status}")
        self.check(listed.count(exp.id) == 1, "the experiment is not listed once")

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


def _chunks(numbers: range, size: int) -> Iterator[range]:
    for start in range(numbers.start, numbers.stop, size):
        yield range(start, min(start + size, numbers.stop))


def _metric(span_id: str, label: str, **value: Any) -> dict[str, Any]:
    kind = "score" if "score_value" in value else "boolean"
    stamp = int(time.time() * 1000)  # the API refuses a timestamp more than 24 h away
    return {"span_id": span_id, "label": label, "metric_type": kind, "timestamp_ms": stamp, **value}


def _results(
    project_id: str, dataset_id: str, ids: list[str], chunk: range
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A span per record (the run's answer) and two metrics per span."""
    now = time.time_ns()
    spans, metrics = [], []
    for n in chunk:
        span_id = f"span-{n}"
        spans.append(
            {
                "span_id": span_id,
                "trace_id": f"trace-{n}",
                "name": "adder",
                "project_id": project_id,
                "dataset_id": dataset_id,
                "start_ns": now,
                "duration": 1_500_000,
                "status": "ok",
                "meta": {"input": {"question": f"What is {n} + {n}?"}, "output": str(2 * n)},
                "tags": [f"dataset_record_id:{ids[n]}"],
            }
        )
        metrics.append(_metric(span_id, "correct", boolean_value=True))
        metrics.append(_metric(span_id, "score", score_value=1.0))
    return spans, metrics


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
