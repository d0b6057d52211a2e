"""What the runner's tests share: a seeded dataset, the fake's stored events, events faults."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import attrs

from llmobs_async.testing import Chaos, FakeLLMObsServer, Fault, RecordedRequest

T = TypeVar("T")
WAIT = 10.0
"""Seconds a test waits for a state before it fails (never reached when the runner works)."""


@attrs.frozen
class Data:
    """A seeded project and dataset, and its records as seeded."""

    project_id: str
    dataset_id: str
    records: dict[str, dict[str, Any]]
    """Records by id: ``input``, ``expected_output``, ``metadata``."""


def record(i: int) -> dict[str, Any]:
    """Record ``rec-i``: the question ``q`` is i, the expected answer is ``str(2 * i)``."""
    return {
        "id": f"rec-{i}",
        "input": {"q": i},
        "expected_output": str(2 * i),
        "metadata": {"n": i, "parity": "even" if i % 2 == 0 else "odd"},
    }


def seed(fake: FakeLLMObsServer, n: int, make: Callable[[int], dict[str, Any]] = record) -> Data:
    """A project with one dataset of ``n`` records (``rec-0`` .. ``rec-{n-1}``)."""
    project_id = fake.add_project(name="proj", description="")
    records = [make(i) for i in range(n)]
    dataset_id = fake.add_dataset(project_id=project_id, records=records)
    return Data(project_id, dataset_id, {r["id"]: r for r in records})


def only_experiment(fake: FakeLLMObsServer) -> tuple[str, dict[str, Any]]:
    """The one experiment in the fake (the runner created it): its id and attributes."""
    [(eid, attributes)] = fake.experiments.items()
    return eid, attributes


def is_events_push(r: RecordedRequest) -> bool:
    """``POST .../experiments/{id}/events``."""
    return r.method == "POST" and r.url_path.endswith("/events")


def is_records_read(r: RecordedRequest) -> bool:
    """``GET .../datasets/{id}/records`` (a page of records)."""
    return r.method == "GET" and r.url_path.endswith("/records")


def events_pushes(fake: FakeLLMObsServer) -> list[RecordedRequest]:
    return [r for r in fake.requests if is_events_push(r)]


def tag(tags: Iterable[str] | None, key: str) -> str | None:
    """The value of ``key:value`` in ``tags`` (the first), or ``None``."""
    prefix = f"{key}:"
    return next((t[len(prefix) :] for t in tags or () if t.startswith(prefix)), None)


def spans(fake: FakeLLMObsServer, eid: str) -> list[dict[str, Any]]:
    """Every span stored for experiment ``eid``."""
    return list(fake.events(eid).spans.values())


def pair(span: dict[str, Any]) -> tuple[str | None, int | None]:
    """A span's (dataset_record_id, run_iteration), read from its tags."""
    tags = span.get("tags")
    iteration = tag(tags, "run_iteration")
    return tag(tags, "dataset_record_id"), None if iteration is None else int(iteration)


def spans_by_pair(
    fake: FakeLLMObsServer, eid: str
) -> dict[tuple[str | None, int | None], list[Any]]:
    found: dict[tuple[str | None, int | None], list[Any]] = {}
    for span in spans(fake, eid):
        found.setdefault(pair(span), []).append(span)
    return found


def metrics(fake: FakeLLMObsServer, eid: str, *, summary: bool = False) -> list[dict[str, Any]]:
    """The row metrics (or the summary metrics) stored for ``eid``, in push order."""
    return [
        m
        for m in fake.events(eid).metrics
        if (m.get("metric_source") == "summary" or not m["span_id"]) == summary
    ]


def metric_counts(fake: FakeLLMObsServer, eid: str) -> Counter[tuple[str, str]]:
    """How many metrics are stored per (span_id, label)."""
    return Counter((m["span_id"], m["label"]) for m in metrics(fake, eid))


def value(metric: dict[str, Any]) -> Any:
    """A stored metric's value, from the field its ``metric_type`` names."""
    return metric.get(f"{metric['metric_type']}_value")


def observe(fake: FakeLLMObsServer, seen: Callable[[RecordedRequest], None]) -> None:
    """Call ``seen`` on every request as it arrives, before the fake answers it.

    A fault that never applies: its ``match`` is called for each request.
    """

    def match(r: RecordedRequest) -> bool:
        seen(r)
        return False

    fake.inject(times=None, match=match)


def chaos_on_events(fake: FakeLLMObsServer, chaos: Chaos) -> None:
    """``chaos`` on events pushes alone (``fake.chaos`` would hit every request).

    Each push draws once from ``chaos``; the fault drawn (503, 429 with a
    short reset, or a dropped connection) answers it.
    """
    drawn: dict[int, Fault | None] = {}

    def pick(r: RecordedRequest) -> Fault | None:
        if id(r) not in drawn:  # the fake keeps every request: ids stay unique
            drawn[id(r)] = chaos.draw() if is_events_push(r) else None
        return drawn[id(r)]

    def kind(want: str) -> Callable[[RecordedRequest], bool]:
        def match(r: RecordedRequest) -> bool:
            fault = pick(r)
            if fault is None:
                return False
            got = "drop" if fault.drop else str(fault.status)
            return got == want

        return match

    fake.inject(drop=True, times=None, match=kind("drop"))
    fake.inject_rate_limit(times=None, reset=chaos.reset, limit=1000, period=1.0, match=kind("429"))
    fake.inject(status=503, times=None, match=kind("503"))


async def wait(awaitable: Awaitable[T]) -> T:
    """``awaitable`` within :data:`WAIT` seconds: a broken runner fails the test, not hangs it."""
    return await asyncio.wait_for(awaitable, WAIT)
