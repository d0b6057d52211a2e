"""``llmobs-async demo``: the library end to end against the built-in fake API.

Starts the fake API in-process, runs the three single updates through a 503
and a 429, then ``update_many`` over every record of a dataset while the fake
injects 429s with rate-limit headers, 503s and dropped connections, and
finally checks the fake's state record by record.
"""

from __future__ import annotations

import sys
import time

from .._client import LLMObsClient
from ..testing import Chaos, FakeLLMObsServer
from .output import ProgressBar, print_json


def _expected(i: int) -> str:
    return f"answer {i} (demo)"


async def run_demo(*, records: int = 20_000) -> int:
    """Run the demo; return 0 if the fake API holds every update, else 1."""
    async with FakeLLMObsServer() as fake:
        project_id = fake.add_project(name="demo project")
        dataset_id = fake.add_dataset(project_id=project_id, records=records)
        experiment_id = fake.add_experiment(project_id=project_id, dataset_id=dataset_id)
        print(
            f"fake LLM Observability API on {fake.base_url}: 1 project, 1 experiment, "
            f"1 dataset of {records:,} records"
        )
        async with LLMObsClient(
            base_url=fake.base_url, api_key=fake.api_key, app_key=fake.app_key
        ) as client:
            print("\n-- three single updates (through a 503 and a 429, retried)")
            fake.inject(status=503)
            fake.inject_rate_limit(reset=0.2, limit=1000, period=1.0)
            print_json(
                await client.experiments.update(
                    experiment_id, status="completed", metadata={"run": 3}
                )
            )
            print_json(await client.projects.update(project_id, description="nightly evals"))
            print_json(
                await client.records.update(
                    project_id, dataset_id, [{"id": "rec-1", "expected_output": None}]
                )
            )

            print(
                f"\n-- update_many over {records:,} records "
                "(fake injects 429s, 503s and dropped connections)",
                flush=True,
            )
            fake.chaos = Chaos(error_rate=0.08, rate_limit_rate=0.05, drop_rate=0.03, seed=7)
            fake.inject(drop=True)  # at least one dropped connection, whatever the dice say
            show = sys.stderr.isatty()
            bar = ProgressBar(sys.stderr, total=records, enabled=show)
            started = time.monotonic()
            updates = (
                {"id": f"rec-{i}", "expected_output": _expected(i), "metadata": {"demo": True}}
                for i in range(records)
            )
            result = await client.records.update_many(
                project_id, dataset_id, updates, batch_size=250, on_progress=bar
            )
            bar.close()
            elapsed = time.monotonic() - started
            fake.chaos = None
        answered = [r.status for r in fake.requests_to("/records")]
        stored = fake.records(dataset_id)
        wrong = [i for i in range(records) if stored[f"rec-{i}"]["expected_output"] != _expected(i)]
    print(
        f"submitted {result.submitted:,}, applied {result.applied:,}, "
        f"failed {result.failed_count:,}, retries {result.retries:,} in {elapsed:.1f}s "
        f"({result.applied / elapsed:,.0f} records/s)"
    )
    print(
        f"the fake API answered {len(answered)} record requests: {answered.count(200)} OK, "
        f"{answered.count(429)} x 429, {answered.count(503)} x 503, "
        f"{answered.count(0)} dropped connections"
    )
    if result.ok and not wrong:
        print(f"checked the fake API's state: all {records:,} records hold their new values")
        return 0
    print(f"FAILED: {result.failed_count:,} records reported failed, {len(wrong):,} not stored")
    return 1
