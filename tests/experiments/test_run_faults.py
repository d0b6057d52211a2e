"""``experiments.run`` under faults on the events push: nothing lost, nothing doubled.

Every (record, run_iteration) must end with exactly one span in the fake and
each evaluator with one metric on it; a push whose answer was lost after it
landed may store a metric twice, and the rows read back still hold one value
per label. A refused item is isolated and reported; a 401 stops the run.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from llmobs_async import EvaluatorResult, LLMObsClient, errors
from llmobs_async.testing import Chaos, FakeLLMObsServer

from .common import (
    Data,
    chaos_on_events,
    events_pushes,
    is_events_push,
    metric_counts,
    metrics,
    only_experiment,
    seed,
    spans,
    spans_by_pair,
    value,
    wait,
)

LABELS = ("exact", "length")


async def answer(input_data: dict[str, Any], config: Any) -> str:
    return str(2 * input_data["q"])


def exact(input_data: Any, output_data: Any, expected_output: Any) -> bool:
    return bool(output_data == expected_output)


async def length(input_data: Any, output_data: Any, expected_output: Any) -> int:
    return len(output_data)


def assert_all_landed(
    fake: FakeLLMObsServer, data: Data, eid: str, runs: int = 1, landed_anyway: int | None = None
) -> None:
    """One span per pair, each fully pushed; each label stored once per push of it that landed.

    A push lands when it is answered 202, or when a fault replaced its answer
    after carrying it out (``applied=True``): ``landed_anyway`` is that answer's
    status (0: dropped).
    """
    by_pair = spans_by_pair(fake, eid)
    want = {(rid, i) for rid in data.records for i in range(1, runs + 1)}
    assert set(by_pair) == want, set(by_pair) ^ want  # a stub span has no tags: a lost span
    assert [p for p, found in by_pair.items() if len(found) != 1] == []
    counts = metric_counts(fake, eid)
    span_ids = {s["span_id"] for s in spans(fake, eid)}
    assert set(counts) == {(sid, label) for sid in span_ids for label in LABELS}
    landed = {202} if landed_anyway is None else {202, landed_anyway}
    assert counts == carried(fake, landed)  # stored once per push of it that landed


def carried(fake: FakeLLMObsServer, statuses: set[int]) -> Counter[tuple[str, str]]:
    """(span_id, label) of the metrics in events pushes answered with ``statuses``, counted."""
    found: Counter[tuple[str, str]] = Counter()
    for r in events_pushes(fake):
        if r.status in statuses:
            for m in r.json()["data"]["attributes"].get("metrics") or ():
                found[(m["span_id"], m["label"])] += 1
    return found


async def test_503_429_and_dropped_connections_lose_and_double_nothing(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    data = seed(fake, 200)  # 1,200 spans and metrics: more than one batch
    # The first pushes meet one fault of each kind for sure, then chaos goes on.
    fake.inject(status=503, match=is_events_push)
    fake.inject_rate_limit(reset=0.01, limit=1000, period=1.0, match=is_events_push)
    fake.inject(drop=True, match=is_events_push)
    chaos_on_events(fake, Chaos(error_rate=0.15, rate_limit_rate=0.1, drop_rate=0.1, reset=0.01))
    run = await wait(
        client.experiments.run(
            data.project_id,
            data.dataset_id,
            "chaos",
            task=answer,
            evaluators=[exact, length],
            runs=2,
            concurrency=20,
        )
    )
    statuses = Counter(r.status for r in events_pushes(fake))
    assert statuses[503] >= 1 and statuses[429] >= 1 and statuses[0] >= 1, statuses
    eid, stored = only_experiment(fake)
    assert_all_landed(fake, data, eid, runs=2)
    assert set(metric_counts(fake, eid).values()) == {1}
    assert stored["status"] == "completed" and run.ok
    assert run.pushed.failed == [] and run.pushed.applied == run.pushed.submitted == 400 * 3
    assert run.pushed.retries >= 3
    rows = [row async for row in run.rows()]
    assert len(rows) == 400
    assert all(set(row.evaluations) == set(LABELS) for row in rows)


@pytest.mark.parametrize(
    "lost",
    [
        pytest.param({"status": 503}, id="503-after-landing"),
        pytest.param({"drop": True}, id="dropped-after-landing"),
    ],
)
async def test_an_answer_lost_after_landing_doubles_only_its_metrics_and_rows_stay_one(
    fake: FakeLLMObsServer, client: LLMObsClient, lost: dict[str, Any]
) -> None:
    data = seed(fake, 60)
    fake.inject(applied=True, match=is_events_push, times=2, **lost)
    run = await wait(
        client.experiments.run(
            data.project_id, data.dataset_id, "lost", task=answer, evaluators=[exact, length]
        )
    )
    eid, stored = only_experiment(fake)
    status = lost.get("status", 0)
    assert carried(fake, {status}), "the fault never met a push that carried metrics"
    assert_all_landed(fake, data, eid, landed_anyway=status)
    assert stored["status"] == "completed" and run.ok and run.pushed.failed == []
    rows = [row async for row in run.rows()]
    assert sorted(r.record_id for r in rows) == sorted(data.records)
    for row in rows:
        assert row.evaluations == {"exact": True, "length": len(row.output)}


async def test_a_refused_metric_is_isolated_reported_and_fails_the_experiment(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    data = seed(fake, 40)
    marker = "reasoning-the-api-refuses"

    def judge(input_data: Any, output_data: Any, expected_output: Any) -> EvaluatorResult:
        reasoning = marker if input_data["q"] == 17 else "fine"
        return EvaluatorResult(0.5, reasoning=reasoning)

    # The API refuses any push that carries this metric (as it refuses a bad record).
    detail = {"errors": [{"status": "400", "title": "Bad Request", "detail": "reasoning refused"}]}
    fake.inject(
        status=400,
        body=detail,
        times=None,
        match=lambda r: is_events_push(r) and marker.encode() in r.body,
    )
    run = await wait(
        client.experiments.run(
            data.project_id, data.dataset_id, "refused", task=answer, evaluators=[exact, judge]
        )
    )
    eid, stored = only_experiment(fake)
    [failure] = run.pushed.failed
    by_record = {rid: found[0] for (rid, _), found in spans_by_pair(fake, eid).items()}
    bad_span = by_record["rec-17"]["span_id"]
    assert failure.record_ids == (f"{bad_span}/judge",)
    assert isinstance(failure.error, errors.APIStatusError) and failure.error.status == 400
    assert run.pushed.applied == run.pushed.submitted - 1 == 40 * 3 - 1
    # Everything else landed: every span, every other metric.
    assert set(by_record) == set(data.records)
    counts = metric_counts(fake, eid)
    assert (bad_span, "judge") not in counts
    assert len(counts) == 40 * 2 - 1 and set(counts.values()) == {1}
    # An item was not recorded: the experiment failed (the contract's "failed").
    assert stored["status"] == "failed" and run.experiment.status == "failed" and not run.ok
    assert "not recorded" in stored["error"]


async def test_an_oversized_metric_is_reported_and_the_rest_lands(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    data = seed(fake, 10)

    def trace_dump(input_data: Any, output_data: Any, expected_output: Any) -> dict[str, Any]:
        # One evaluator dumps a whole trace: 6 MB, larger than any request the API takes.
        if input_data["q"] == 3:
            return {"trace": "x" * (6 * 1024 * 1024)}
        return {"trace": "short"}

    run = await wait(
        client.experiments.run(
            data.project_id, data.dataset_id, "huge", task=answer, evaluators=[trace_dump]
        )
    )
    eid, stored = only_experiment(fake)
    [failure] = run.pushed.failed
    by_record = {rid: found[0] for (rid, _), found in spans_by_pair(fake, eid).items()}
    assert failure.record_ids == (f"{by_record['rec-3']['span_id']}/trace_dump",)
    # Refused before sending (over max_batch_bytes) or by the API (413): reported either way.
    assert isinstance(failure.error, errors.ValidationError | errors.PayloadTooLargeError)
    assert set(by_record) == set(data.records)
    assert sorted(value(m)["trace"] for m in metrics(fake, eid)) == ["short"] * 9
    assert stored["status"] == "failed" and not run.ok


async def test_a_401_on_the_events_push_stops_the_run_fails_it_and_reports_every_item(
    fake: FakeLLMObsServer, client: LLMObsClient
) -> None:
    data = seed(fake, 50)
    fake.inject(status=401, times=None, match=is_events_push)
    run = await wait(
        client.experiments.run(
            data.project_id, data.dataset_id, "unauthorized", task=answer, evaluators=[exact]
        )
    )
    eid, stored = only_experiment(fake)
    assert stored["status"] == "failed" and run.experiment.status == "failed" and not run.ok
    assert stored["error"]  # says why
    assert isinstance(run.pushed.stopped, errors.AuthenticationError)
    assert run.pushed.applied == 0
    assert run.pushed.failed_count == run.pushed.submitted > 0
    assert spans(fake, eid) == [] and metrics(fake, eid) == []
    # A 401 is for good: no push is retried.
    assert all(r.status == 401 for r in events_pushes(fake))
