"""``client.experiments.events`` against the fake: push spans and metrics, read them back."""

from __future__ import annotations

import time
from typing import Any

import pytest

from llmobs_async import EventsPage, LLMObsClient, errors, models
from llmobs_async.testing import FakeLLMObsServer

from ..conftest import Seeded

NOW_MS = int(time.time() * 1000)


def span(seeded: Seeded, i: int) -> dict[str, Any]:
    return {
        "span_id": f"s{i}",
        "trace_id": f"t{i}",
        "name": "task",
        "project_id": seeded.project_id,
        "dataset_id": seeded.dataset_id,
        "start_ns": NOW_MS * 1_000_000,
        "duration": 1_500_000,
        "status": "ok",
        "meta": {"input": {"q": i}, "output": "a"},
    }


async def test_push_then_list_spans_with_their_metrics_and_the_summary(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    eid = seeded.experiment_id
    await client.experiments.events.create(
        eid,
        spans=[span(seeded, i) for i in range(3)],
        metrics=[
            models.ExperimentMetric(
                span_id="s1", label="acc", metric_type="score", timestamp_ms=NOW_MS, score_value=0.9
            ),
            {
                "span_id": "",
                "label": "avg",
                "metric_type": "score",
                "timestamp_ms": NOW_MS,
                "score_value": 0.5,
            },
        ],
        tags=["run:1"],
    )
    pushed = fake.requests[-1]
    assert pushed.status == 202
    data = pushed.json()["data"]
    assert data["type"] == "experiments" and data["attributes"]["scope"] == "experiments"
    spans = [s async for s in client.experiments.events.list(eid, page_size=2)]
    assert sorted(s.span_id or "" for s in spans) == ["s0", "s1", "s2"]
    [s1] = [s for s in spans if s.span_id == "s1"]
    assert [(m.label, m.score_value) for m in s1.eval_metrics] == [("acc", 0.9)]
    pages = [p async for p in client.experiments.events.list(eid).pages()]
    assert isinstance(pages[0], EventsPage)
    assert [m.label for m in pages[0].summary_metrics] == ["avg"]


@pytest.mark.parametrize(
    ("metric", "field"),
    [
        ({"timestamp_ms": NOW_MS - 25 * 3600 * 1000}, "metrics[0].timestamp_ms"),
        ({"timestamp_ms": NOW_MS + 25 * 3600 * 1000}, "metrics[0].timestamp_ms"),
        ({"metric_type": "grade"}, "metrics[0].metric_type"),
        ({"score_value": None, "metric_type": "boolean"}, "metrics[0].boolean_value"),
        ({"assessment": "maybe"}, "metrics[0].assessment"),
    ],
)
async def test_bad_metrics_are_refused_before_sending(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded, metric: dict, field: str
) -> None:
    good = {
        "span_id": "s",
        "label": "l",
        "metric_type": "score",
        "timestamp_ms": NOW_MS,
        "score_value": 1.0,
    }
    bad = {k: v for k, v in {**good, **metric}.items() if v is not None}
    with pytest.raises(errors.ValidationError) as caught:
        await client.experiments.events.create(seeded.experiment_id, metrics=[bad])
    assert caught.value.field == field and fake.requests == []


async def test_a_bad_span_or_an_empty_push_is_refused_before_sending(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    with pytest.raises(errors.ValidationError) as caught:
        await client.experiments.events.create(
            seeded.experiment_id, spans=[{**span(seeded, 0), "status": "meh"}]
        )
    assert caught.value.field == "spans[0].status"
    with pytest.raises(errors.ValidationError) as caught:  # the API requires a non-zero duration
        await client.experiments.events.create(
            seeded.experiment_id, spans=[{**span(seeded, 0), "duration": 0}]
        )
    assert caught.value.field == "spans[0].duration"
    with pytest.raises(errors.ValidationError, match="at least one"):
        await client.experiments.events.create(seeded.experiment_id)
    assert fake.requests == []


async def test_the_server_s_24_hour_rule_is_the_same_as_the_client_s(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    # Just inside the client's window is accepted by the fake, as by the live API.
    inside = NOW_MS - 23 * 3600 * 1000
    await client.experiments.events.create(
        seeded.experiment_id,
        metrics=[
            {
                "span_id": "s",
                "label": "l",
                "metric_type": "categorical",
                "timestamp_ms": inside,
                "categorical_value": "good",
            }
        ],
    )
    assert fake.requests[-1].status == 202
    assert fake.events(seeded.experiment_id).metrics[0]["categorical_value"] == "good"


def ddtrace_summary_push(experiment_id: str, project_id: str) -> dict[str, Any]:
    """ddtrace's summary-metric push as recorded from the live API (API-REFERENCE 2.5)."""
    return {
        "data": {
            "type": "experiments",
            "attributes": {
                "scope": "experiments",
                "metrics": [
                    {
                        "metric_source": "summary",
                        "span_id": "",
                        "trace_id": "",
                        "timestamp_ms": int(time.time() * 1000),  # the recording's is too old
                        "metric_type": "score",
                        "label": "dummy_summary_evaluator",
                        "score_value": 4,
                        "error": None,
                        "tags": [],
                        "experiment_id": experiment_id,
                    }
                ],
                "tags": [
                    "ddtrace.version:1.2.3",
                    f"project_id:{project_id}",
                    f"experiment_id:{experiment_id}",
                    "run_id:8f1e0c5a-2b7d-4e61-9a3c-5d4f6b7a8c9e",
                    "run_iteration:1",
                ],
            },
        }
    }


async def test_ddtrace_s_recorded_summary_push_is_sent_as_is_and_listed_as_a_summary(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    eid = seeded.experiment_id
    recorded = ddtrace_summary_push(eid, seeded.project_id)
    attributes = recorded["data"]["attributes"]
    await client.experiments.events.create(
        eid, metrics=attributes["metrics"], tags=attributes["tags"]
    )
    assert fake.requests[-1].status == 202
    assert fake.requests[-1].json() == recorded  # byte for byte ddtrace's body, as JSON
    [stored] = fake.events(eid).metrics
    assert stored["metric_source"] == "summary" and stored["error"] is None
    pages = [p async for p in client.experiments.events.list(eid).pages()]
    assert [p.items for p in pages] == [[]]  # a summary metric makes no span
    [summary] = pages[0].summary_metrics
    assert (summary.label, summary.metric_source, summary.score_value) == (
        "dummy_summary_evaluator",
        "summary",
        4.0,
    )
    assert summary.span_id == "" and summary.trace_id == ""
    assert f"experiment_id:{eid}" in summary.tags


async def test_a_span_reads_back_with_its_record_and_its_metrics_errors(
    fake: FakeLLMObsServer, client: LLMObsClient, seeded: Seeded
) -> None:
    eid = seeded.experiment_id
    failed = {"message": "judge timed out", "type": "TimeoutError", "stack": "Traceback ..."}
    run_span = {**span(seeded, 1), "tags": [f"experiment_id:{eid}", "dataset_record_id:rec-4"]}
    await client.experiments.events.create(
        eid,
        spans=[run_span],
        metrics=[
            models.ExperimentMetric(
                span_id="s1", trace_id="t1", label="judge", metric_type="score",
                timestamp_ms=NOW_MS, metric_source="custom", error=failed, status="ERROR",
            ),
            models.ExperimentMetric(
                span_id="s1", trace_id="t1", label="exact", metric_type="boolean",
                timestamp_ms=NOW_MS, metric_source="custom", boolean_value=True, error=None,
            ),
        ],
    )  # fmt: skip
    [row] = [s async for s in client.experiments.events.list(eid)]
    assert (row.span_id, row.dataset_record_id) == ("s1", "rec-4")
    judge, exact = row.eval_metrics
    assert (judge.extra, judge.status, judge.score_value) == ({"error": failed}, "ERROR", None)
    assert (exact.extra, exact.boolean_value, exact.metric_source) == ({}, True, "custom")
