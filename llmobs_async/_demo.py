"""``llmobs-async demo``: the library end to end against the built-in fake API."""

from __future__ import annotations

import json
import sys
from typing import Any

import attrs

from ._client import LLMObsClient
from .testing import FakeLLMObsServer


def _show(title: str, value: Any) -> None:
    print(f"\n== {title}")
    print(json.dumps(_plain(value), indent=2, default=str))


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if attrs.has(type(value)):
        return attrs.asdict(value, recurse=True)
    return value


async def run_demo() -> int:
    """Seed a fake API, run the three updates through faults, and check the result."""
    async with FakeLLMObsServer() as fake:
        project_id = fake.add_project(name="demo project")
        dataset_id = fake.add_dataset(project_id=project_id, records=3)
        experiment_id = fake.add_experiment(project_id=project_id, dataset_id=dataset_id)
        print(f"fake LLM Observability API listening on {fake.base_url}")
        # A flaky start: one 503 and one 429 with rate-limit headers, retried.
        fake.inject(status=503)
        fake.inject_rate_limit(reset=0.2, limit=100, period=1.0)
        async with LLMObsClient(
            base_url=fake.base_url, api_key=fake.api_key, app_key=fake.app_key
        ) as client:
            experiment = await client.experiments.update(
                experiment_id, status="completed", metadata={"run": 3}
            )
            _show("experiments.update", experiment)
            project = await client.projects.update(project_id, description="nightly evals")
            _show("projects.update", project)
            records = await client.records.update(
                project_id,
                dataset_id,
                [{"id": "rec-1", "expected_output": None}, {"id": "rec-2", "input": {"q": "hi"}}],
            )
            _show("records.update", records)
        statuses = [r.status for r in fake.requests]
        print(f"\nrequests the fake API answered: {statuses}")
        ok = (
            fake.experiments[experiment_id]["status"] == "completed"
            and fake.projects[project_id]["description"] == "nightly evals"
            and fake.records(dataset_id)["rec-2"]["input"] == {"q": "hi"}
        )
    print("all updates applied" if ok else "MISMATCH: the fake API does not hold the updates")
    sys.stdout.flush()
    return 0 if ok else 1
