"""``experiments.events.create_many``: spans and metrics pushed as a bulk job, and ``FLUSH``."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from llmobs_async import FLUSH, BulkProgress, LLMObsClient, models
from llmobs_async.errors import BadRequestError, ValidationError
from llmobs_async.testing import FakeLLMObsServer, RecordedRequest

from ..conftest import Seeded


def _span(seeded: Seeded, n: int) -> dict[str, Any]:
    return {
        "span_id": f"s{n}",
        "trace_id": f"t{n}",
        "name": "task",
        "project_id": seeded.project_id,
        "dataset_id": seeded.dataset_id,
        "start_ns": time.time_ns(),
        "duration": 1000,
        "status": "ok",
        "tags": [f"dataset_record_id:rec-{n}", "run_iteration:1"],
    }


def _metric(n: int, label: str = "exact", **extra: Any) -> dict[str, Any]:
    return {
        "span_id": f"s{n}",
        "label": label,
        "metric_type": "boolean",
        "boolean_value": n % 2 == 0,
        "timestamp_ms": int(time.time() * 1000),
        **extra,
    }


def _pushes(fake: FakeLLMObsServer) -> list[dict[str, Any]]:
    return [
        json.loads(r.body)["data"]["attributes"]
        for r in fake.requests
        if r.method == "POST" and r.url_path.endswith("/events")
    ]


async def test_spans_and_metrics_go_in_batches_and_all_land(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    items: list[Any] = []
    for n in range(25):
        items += [_span(seeded, n), _metric(n)]
    items.append(
        models.ExperimentMetric(
            span_id="",
            label="accuracy",
            metric_type="score",
            score_value=0.5,
            timestamp_ms=int(time.time() * 1000),
            metric_source="summary",
        )
    )
    result = await client.experiments.events.create_many(
        seeded.experiment_id, items, batch_size=10, tags=["team:ml"]
    )
    assert result.ok and result.applied == result.submitted == 51
    pushes = _pushes(fake)
    assert [len(p.get("spans", [])) + len(p["metrics"]) for p in pushes] == [10] * 5 + [1]
    assert all(p["tags"] == ["team:ml"] and p["scope"] == "experiments" for p in pushes)
    stored = fake.events(seeded.experiment_id)
    assert len(stored.spans) == 25
    assert len(stored.metrics) == 26
    assert [m["label"] for m in stored.summary_metrics()] == ["accuracy"]


async def test_a_bad_item_is_reported_with_its_field_and_the_rest_is_sent(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    stale = _metric(1, timestamp_ms=int(time.time() * 1000) - 3 * 86_400_000)
    items = [_span(seeded, 1), _metric(1, label="ok"), stale, {"label": "x"}]
    result = await client.experiments.events.create_many(seeded.experiment_id, items)
    assert result.applied == 2 and result.failed_count == 2
    fields = sorted(f.error.field for f in result.failed if isinstance(f.error, ValidationError))
    assert fields == ["items[2].timestamp_ms", "items[3].span_id"]
    assert [f.positions for f in result.failed] == [(2,), (3,)]
    assert len(fake.events(seeded.experiment_id).metrics) == 1


async def test_an_item_the_api_refuses_is_isolated_by_its_pointer(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    # The API refuses any push holding the metric labelled "judge" (the second
    # metric of the body): only that metric is reported, everything else lands.
    def holds_judge(request: RecordedRequest) -> bool:
        return b'"label":"judge"' in request.body

    fake.inject(
        status=400,
        body={
            "errors": [
                {
                    "title": "Bad Request",
                    "detail": "bad metric",
                    "source": {"pointer": "/data/attributes/metrics/1"},
                }
            ]
        },
        times=None,
        match=holds_judge,
    )
    items = [_span(seeded, 1), _metric(1), _metric(1, label="judge"), _span(seeded, 2), _metric(2)]
    result = await client.experiments.events.create_many(seeded.experiment_id, items)
    assert result.applied == 4
    [failure] = result.failed
    assert failure.record_ids == ("s1/judge",) and failure.positions == (2,)
    assert isinstance(failure.error, BadRequestError)
    stored = fake.events(seeded.experiment_id)
    assert sorted(m["label"] for m in stored.metrics) == ["exact", "exact"]
    assert set(stored.spans) == {"s1", "s2"}


async def test_flush_sends_a_partial_batch_before_the_input_ends(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    first_push_landed = asyncio.Event()

    def progress(p: BulkProgress) -> None:
        if p.applied == 2:
            first_push_landed.set()

    async def trickle() -> AsyncIterator[Any]:
        yield _span(seeded, 1)
        yield _metric(1)
        yield FLUSH
        # The input goes on only once the first two items were acknowledged:
        # without FLUSH they would wait for a full batch, and this would hang.
        await first_push_landed.wait()
        yield FLUSH  # an empty batch: nothing is sent
        yield _span(seeded, 2)

    result = await asyncio.wait_for(
        client.experiments.events.create_many(
            seeded.experiment_id, trickle(), batch_size=100, on_progress=progress
        ),
        10,
    )
    assert first_push_landed.is_set()
    assert result.ok and result.submitted == result.applied == 3
    assert [len(p.get("spans", [])) + len(p["metrics"]) for p in _pushes(fake)] == [2, 1]


async def test_create_many_refuses_a_bad_source_before_sending(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    for bad in ("not a list", {"span_id": "s1"}, 42):
        with pytest.raises(ValidationError) as caught:
            await client.experiments.events.create_many(seeded.experiment_id, bad)  # type: ignore[arg-type]
        assert caught.value.field == "items"
    assert not fake.requests
