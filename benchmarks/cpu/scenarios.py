"""The benchmark scenarios and the request data every client sends."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

FLOOR, LLMOBS, OFFICIAL = "floor", "llmobs_async", "official"
CLIENTS = (FLOOR, LLMOBS, OFFICIAL)

EXPERIMENT_ID = "exp-bench-1"
PROJECT_ID = "proj-bench-1"
DATASET_ID = "ds-bench-1"
STATUS = "completed"
METADATA = {"run": 3}

# Kinds: "experiment" and "records" send one request per call, for every client;
# "bulk" and "rss" stream records through llmobs_async's update_many (extension points).
REQUEST_KINDS = ("experiment", "records")


@dataclasses.dataclass(frozen=True)
class Scenario:
    """One workload: what is sent, how often, and how many at once.

    ``count`` is the number of timed requests per round, or of records for
    the bulk kinds. ``rounds`` overrides ``--rounds`` when set.

    ``burst`` set: the calls are launched the way a web app launches them, all
    at once (``burst`` tasks created together; the client's own concurrency
    limit holds them), each burst on a new client, as a service meets its
    first traffic; ``count`` is then a multiple of ``burst``. Unset: a batch,
    at most ``concurrency`` calls handed to the client at a time.
    """

    name: str
    kind: str
    concurrency: int
    count: int
    warmup: int
    smoke_count: int
    records_per_request: int = 0
    rounds: int | None = None
    clients: tuple[str, ...] = CLIENTS
    burst: int = 0

    @property
    def per_request(self) -> int:
        """Items each successful call confirms (echoed records, or 1 experiment)."""
        return self.records_per_request or 1


SCENARIOS = (
    # All at once: 2,000 calls launched together, as a web app does.
    Scenario(
        "small",
        "experiment",
        concurrency=32,
        count=6000,
        warmup=2000,
        smoke_count=20,
        burst=2000,
    ),
    Scenario(
        "records100",
        "records",
        concurrency=16,
        count=600,
        warmup=100,
        smoke_count=20,
        records_per_request=100,
        burst=300,
    ),
    # One batch at a time: never more calls in the client than it runs at once.
    Scenario("small_batched", "experiment", concurrency=32, count=5000, warmup=500, smoke_count=20),
    Scenario(
        "records100_batched",
        "records",
        concurrency=16,
        count=600,
        warmup=50,
        smoke_count=20,
        records_per_request=100,
    ),
    # --- EXTENSION POINTS: client.records.update_many(project_id, dataset_id, iterable) ---
    # Run only against llmobs_async; reported "n/a (update_many not available)" until
    # the method exists. See _clients.LLMObs.update_many and _worker.run_bulk.
    Scenario(
        "update_many_100k",
        "bulk",
        concurrency=16,
        count=100_000,
        warmup=2_000,
        smoke_count=2_000,
        clients=(LLMOBS,),
    ),
    Scenario(
        "update_many_rss_1m",
        "rss",
        concurrency=16,
        count=1_000_000,
        warmup=2_000,
        smoke_count=5_000,
        rounds=1,
        clients=(LLMOBS,),
    ),
)
BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}


def make_record(index: int) -> dict[str, Any]:
    """One record update: a small dict input, a string expected_output, small metadata."""
    return {
        "id": f"rec-{index}",
        "input": {"question": f"What is {index} + {index}?", "context": "arithmetic"},
        "expected_output": str(2 * index),
        "metadata": {"source": "bench", "difficulty": index % 3},
    }


def make_records(count: int) -> list[dict[str, Any]]:
    """The first ``count`` records, built eagerly (the same for every client)."""
    return [make_record(index) for index in range(count)]


def generate_records(count: int) -> Iterator[dict[str, Any]]:
    """The first ``count`` records, built lazily so none is kept alive by the caller."""
    return (make_record(index) for index in range(count))
