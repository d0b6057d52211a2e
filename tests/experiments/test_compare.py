"""``experiments.compare``: per-label aggregates; rows improved, regressed, unchanged, missing.

The two experiments' events are pushed by hand (``events.create``), so the
expected numbers are known exactly and compare is tested apart from run.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from llmobs_async import Comparison, LLMObsClient
from llmobs_async.experiments import RowKey
from llmobs_async.testing import FakeLLMObsServer

from .common import seed

NOW_MS = int(time.time() * 1000)

# record -> (exact, score, tone); None: the metric is an error; a missing record: no row.
BASELINE: dict[str, tuple[Any, Any, Any]] = {
    "rec-0": (True, 0.5, "good"),
    "rec-1": (False, 0.5, "bad"),
    "rec-2": (True, 0.9, "good"),
    "rec-3": (True, 0.1, "good"),
    "rec-4": (False, 0.3, "bad"),
}
CANDIDATE: dict[str, tuple[Any, Any, Any]] = {
    "rec-0": (True, 0.5, "good"),  # unchanged everywhere
    "rec-1": (True, 0.7, "good"),  # improved, improved, changed
    "rec-2": (False, 0.2, "good"),  # regressed, regressed, unchanged
    # rec-3: missing from the candidate
    "rec-4": (False, None, "bad"),  # unchanged, score errored, unchanged
    "rec-5": (True, 1.0, "meh"),  # only in the candidate: missing too
}


async def push(
    client: LLMObsClient, fake: FakeLLMObsServer, project_id: str, dataset_id: str, rows: Any
) -> str:
    eid = fake.add_experiment(project_id=project_id, dataset_id=dataset_id, status="completed")
    spans, metrics = [], []
    for n, (rid, (exact, score, tone)) in enumerate(rows.items()):
        span_id, trace_id = str(1000 + n), f"{n:032x}"
        spans.append(
            {
                "span_id": span_id,
                "trace_id": trace_id,
                "name": "task",
                "project_id": project_id,
                "dataset_id": dataset_id,
                "start_ns": NOW_MS * 1_000_000,
                "duration": 1_000,
                "status": "ok",
                "tags": [
                    f"experiment_id:{eid}",
                    f"dataset_id:{dataset_id}",
                    f"dataset_record_id:{rid}",
                    "run_iteration:1",
                ],
                "meta": {"span.kind": "experiment", "input": {"r": rid}, "output": rid},
            }
        )
        base = {"span_id": span_id, "trace_id": trace_id, "timestamp_ms": NOW_MS}
        metrics.append({**base, "label": "exact", "metric_type": "boolean", "boolean_value": exact})
        if score is None:
            metrics.append(
                {
                    **base,
                    "label": "score",
                    "metric_type": "score",
                    "error": {"message": "judge down"},
                }
            )
        else:
            metrics.append({**base, "label": "score", "metric_type": "score", "score_value": score})
        metrics.append(
            {**base, "label": "tone", "metric_type": "categorical", "categorical_value": tone}
        )
    await client.experiments.events.create(eid, spans=spans, metrics=metrics)
    return eid


@pytest.fixture
async def diff(fake: FakeLLMObsServer, client: LLMObsClient) -> Comparison:
    data = seed(fake, 6)
    baseline = await push(client, fake, data.project_id, data.dataset_id, BASELINE)
    candidate = await push(client, fake, data.project_id, data.dataset_id, CANDIDATE)
    return await client.experiments.compare(baseline, candidate)


def keys(*records: str) -> set[RowKey]:
    return {RowKey(r, 1) for r in records}


async def test_boolean_true_rates_and_row_changes(diff: Comparison) -> None:
    exact = diff.metrics["exact"]
    assert (exact.label, exact.metric_type) == ("exact", "boolean")
    assert exact.baseline.count == 5 and exact.baseline.true_rate == pytest.approx(3 / 5)
    assert exact.candidate.count == 5 and exact.candidate.true_rate == pytest.approx(3 / 5)
    assert set(exact.improved) == keys("rec-1")
    assert set(exact.regressed) == keys("rec-2")
    assert set(exact.unchanged) == keys("rec-0", "rec-4")
    assert set(exact.missing) == keys("rec-3", "rec-5")
    assert exact.changed == ()  # booleans have an order: improved or regressed, never "changed"
    assert exact.baseline.mean is None and exact.baseline.categories in (None, {})


async def test_score_means_errors_and_row_changes(diff: Comparison) -> None:
    score = diff.metrics["score"]
    assert score.metric_type == "score"
    assert score.baseline.mean == pytest.approx((0.5 + 0.5 + 0.9 + 0.1 + 0.3) / 5)
    assert score.baseline.errors == 0
    # The errored metric counts as an error, not as a value of the mean.
    assert score.candidate.mean == pytest.approx((0.5 + 0.7 + 0.2 + 1.0) / 4)
    assert score.candidate.errors == 1
    assert set(score.improved) == keys("rec-1")
    assert set(score.regressed) == keys("rec-2")
    assert keys("rec-0") <= set(score.unchanged)
    assert not keys("rec-4") & (set(score.improved) | set(score.regressed))
    assert set(score.missing) >= keys("rec-3", "rec-5")


async def test_categorical_counts_and_changes(diff: Comparison) -> None:
    tone = diff.metrics["tone"]
    assert tone.metric_type == "categorical"
    assert tone.baseline.categories == {"good": 3, "bad": 2}
    assert tone.candidate.categories == {"good": 3, "bad": 1, "meh": 1}
    assert set(tone.changed) == keys("rec-1")
    assert set(tone.unchanged) == keys("rec-0", "rec-2", "rec-4")
    assert set(tone.missing) == keys("rec-3", "rec-5")


async def test_regressions_name_the_labels_that_regressed(diff: Comparison) -> None:
    assert {label: set(rows) for label, rows in diff.regressions.items()} == {
        "exact": keys("rec-2"),
        "score": keys("rec-2"),
    }
    assert diff.regressed("exact") and diff.regressed("score")
    assert not diff.regressed("tone")


async def test_a_metric_stored_twice_counts_once(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    # A push resent after its answer was lost stores its metrics twice.
    data = seed(fake, 6)
    baseline = await push(client, fake, data.project_id, data.dataset_id, BASELINE)
    candidate = await push(client, fake, data.project_id, data.dataset_id, BASELINE)
    again = list(fake.events(candidate).metrics)
    for metric in again:
        stored = {k: v for k, v in metric.items() if k not in ("id", "tags")}
        fake.events(candidate).add_metric(stored, [])
    diff = await client.experiments.compare(baseline, candidate)
    for label in ("exact", "score", "tone"):
        comparison = diff.metrics[label]
        assert comparison.candidate.count == comparison.baseline.count == 5
        assert set(comparison.unchanged) == keys(*BASELINE)
        assert comparison.improved == comparison.regressed == comparison.missing == ()
    assert diff.regressions == {}


async def test_two_runs_of_the_runner_compare_row_by_row(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    data = seed(fake, 8)

    async def good(input_data: dict[str, Any], config: Any) -> str:
        return str(2 * input_data["q"])

    async def worse(input_data: dict[str, Any], config: Any) -> str:
        q = input_data["q"]
        return "?" if q in (2, 5) else str(2 * q)

    def exact(input_data: Any, output_data: Any, expected_output: Any) -> bool:
        return bool(output_data == expected_output)

    base = await client.experiments.run(
        data.project_id, data.dataset_id, "base", task=good, evaluators=[exact], runs=2
    )
    cand = await client.experiments.run(
        data.project_id, data.dataset_id, "cand", task=worse, evaluators=[exact], runs=2
    )
    diff = await client.experiments.compare(base.experiment.id, cand.experiment.id)
    exact_diff = diff.metrics["exact"]
    regressed = {RowKey(f"rec-{q}", i) for q in (2, 5) for i in (1, 2)}
    assert set(exact_diff.regressed) == regressed and diff.regressed("exact")
    assert len(exact_diff.unchanged) == 12 and exact_diff.improved == exact_diff.missing == ()
    assert exact_diff.baseline.true_rate == 1.0
    assert exact_diff.candidate.true_rate == pytest.approx(12 / 16)


async def test_a_row_with_a_failed_span_and_a_good_one_is_read_once_as_the_good_one(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    # An API that keeps every span pushed holds both when a failed row was run
    # again under a new span id (another tool's resume, an older runner), and
    # lists them in no promised order: the failed one first, or last.
    data = seed(fake, 2)
    eid = fake.add_experiment(project_id=data.project_id, dataset_id=data.dataset_id)

    def span(span_id: str, rid: str, ok: bool) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "span.kind": "experiment",
            "input": {},
            "output": "a" if ok else None,
        }
        if not ok:
            meta["error"] = {"message": "model down", "type": "RuntimeError", "stack": ""}
        return {
            "span_id": span_id,
            "trace_id": f"{int(span_id):032x}",
            "name": "task",
            "project_id": data.project_id,
            "dataset_id": data.dataset_id,
            "start_ns": NOW_MS * 1_000_000 + int(span_id),
            "duration": 1_000,
            "status": "ok" if ok else "error",
            "tags": [f"dataset_record_id:{rid}", "run_iteration:1"],
            "meta": meta,
        }

    def score(span_id: str) -> dict[str, Any]:
        return {
            "span_id": span_id,
            "label": "exact",
            "metric_type": "boolean",
            "boolean_value": True,
            "timestamp_ms": NOW_MS,
        }

    create = client.experiments.events.create
    await create(eid, spans=[span("1", "rec-0", ok=False)])  # failed, then good
    await create(eid, spans=[span("2", "rec-0", ok=True)], metrics=[score("2")])
    await create(
        eid, spans=[span("3", "rec-1", ok=True)], metrics=[score("3")]
    )  # good, then failed
    await create(eid, spans=[span("4", "rec-1", ok=False)])
    rows = {row.record_id: row async for row in client.experiments.rows(eid)}
    assert {rid: (r.status, r.span_id, r.evaluations) for rid, r in rows.items()} == {
        "rec-0": ("ok", "2", {"exact": True}),
        "rec-1": ("ok", "3", {"exact": True}),
    }
