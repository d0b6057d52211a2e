"""The fake's experiment events: pushes checked as live (type, 24-hour rule), read back by span."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from llmobs_async.testing import FakeLLMObsServer

from .fakev2 import V1, V3, A, Api, doc

LIVE_DETAIL = (
    "Key: 'ExperimentEvalMetricEvent.EvalMetricBase.TimestampMs' Error:Field validation for "
    "'TimestampMs' failed on the 'timestamp_within_24hr' tag"
)
HOUR_MS = 3600 * 1000


@pytest.fixture
async def api(llmobs_fake: FakeLLMObsServer) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as http:
        yield Api(llmobs_fake, http)


@pytest.fixture
async def eid(api: Api) -> str:
    pid = await api.project()
    body = doc("experiments", {"name": "run", "project_id": pid})
    return (await api.ok("POST", f"{V1}/experiments", body))["data"]["id"]


def metric(span_id: str, label: str = "acc", **extra: Any) -> dict[str, Any]:
    now = int(time.time() * 1000)
    return {
        "span_id": span_id,
        "label": label,
        "metric_type": "score",
        "timestamp_ms": now,
        "score_value": 1.0,
        **extra,
    }


def span(span_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "span_id": span_id, "trace_id": "t-" + span_id, "name": "task", "project_id": "p",
        "dataset_id": "d", "start_ns": 1_705_314_600_000_000_000, "duration": 1_500_000_000,
        "status": "ok", **extra,
    }  # fmt: skip


async def push(api: Api, eid: str, type_: str = "experiments", **attributes: Any) -> Any:
    return await api.post(f"{V1}/experiments/{eid}/events", doc(type_, attributes))


async def test_pushed_spans_come_back_with_their_metrics_and_summaries_apart(
    api: Api, eid: str
) -> None:
    answer = await push(
        api,
        eid,
        scope="experiments",
        tags=["run:1"],
        spans=[span("s1", meta={"input": "q"}), span("s2")],
        metrics=[
            metric("s1"),
            metric(
                "s1", "len", metric_type="categorical", categorical_value="long", score_value=None
            ),
            metric("", "mean", metric_source="summary"),
            metric("s9", trace_id="t9"),
        ],
    )
    assert (answer.status, answer.raw) == (202, b"")
    body = await api.ok("GET", f"{V3}/experiments/{eid}/events")
    assert (body["data"]["id"], body["data"]["type"], body["meta"]) == (
        eid,
        "experiment_events",
        {"after": ""},
    )
    spans = body["data"]["attributes"]["spans"]
    assert [s["span_id"] for s in spans] == ["s9", "s2", "s1"]  # newest first; s9: a metric's stub
    s9, s2, s1 = spans
    assert [m["label"] for m in s1["eval_metrics"]] == ["acc", "len"]
    assert s1["id"] == "s1" and s1["meta"] == {"input": "q"} and s1["duration"] == 1_500_000_000
    assert "eval_metrics" not in s2 and s9["trace_id"] == "t9"
    first = s1["eval_metrics"][0]
    assert first["metric_source"] == "custom" and first["tags"] == ["run:1"] and first["id"]
    assert "categorical_value" not in first and "score_value" not in s1["eval_metrics"][1]
    [summary] = body["data"]["attributes"]["summary_metrics"]
    assert (summary["label"], summary["metric_source"]) == ("mean", "summary")
    assert len(api.fake.events(eid).metrics) == 4


async def test_the_spec_type_events_is_refused_as_live(api: Api, eid: str) -> None:
    answer = await push(api, eid, "events", metrics=[metric("s")])
    assert (answer.status, answer.pointer) == (400, "/data/type")
    assert api.fake.events(eid).metrics == []


@pytest.mark.parametrize("hours", [-25, 25])
async def test_a_timestamp_more_than_24_hours_away_is_refused_with_the_live_words(
    api: Api, eid: str, hours: int
) -> None:
    late = int(time.time() * 1000) + hours * HOUR_MS
    answer = await push(api, eid, metrics=[metric("a"), metric("b", timestamp_ms=late)])
    assert (answer.status, answer.pointer) == (400, f"{A}/metrics/1/timestamp_ms")
    assert answer.error["detail"] == LIVE_DETAIL and api.fake.events(eid).metrics == []
    near = int(time.time() * 1000) - 23 * HOUR_MS
    assert (await push(api, eid, metrics=[metric("c", timestamp_ms=near)])).status == 202


BAD = {
    "metric-no-label": ({"metrics": [{**metric("s"), "label": ""}]}, f"{A}/metrics/0/label"),
    "metric-no-span": (
        {"metrics": [{k: v for k, v in metric("s").items() if k != "span_id"}]},
        f"{A}/metrics/0/span_id",
    ),
    "metric-type": ({"metrics": [metric("s", metric_type="number")]}, f"{A}/metrics/0/metric_type"),
    "metric-stamp": ({"metrics": [metric("s", timestamp_ms="now")]}, f"{A}/metrics/0/timestamp_ms"),
    "metric-score": ({"metrics": [metric("s", score_value="1")]}, f"{A}/metrics/0/score_value"),
    "assessment": ({"metrics": [metric("s", assessment="ok")]}, f"{A}/metrics/0/assessment"),
    "span-status": ({"spans": [span("s", status="done")]}, f"{A}/spans/0/status"),
    "span-trace": ({"spans": [span("s"), span("t", trace_id="")]}, f"{A}/spans/1/trace_id"),
    "span-start": ({"spans": [span("s", start_ns=1.5)]}, f"{A}/spans/0/start_ns"),
    "unknown": ({"metrics": [], "extra": 1}, f"{A}/extra"),
    "span-duration-0": ({"spans": [span("s", duration=0)]}, f"{A}/spans/0/duration"),
    "custom-metric-no-span": (
        {"metrics": [metric("", metric_source="custom")]},
        f"{A}/metrics/0/span_id",
    ),
    "metric-source": (
        {"metrics": [metric("s", metric_source="x")]},
        f"{A}/metrics/0/metric_source",
    ),
    "metric-status": ({"metrics": [metric("s", status=1)]}, f"{A}/metrics/0/status"),
}


@pytest.mark.parametrize(("attributes", "pointer"), BAD.values(), ids=BAD.keys())
async def test_bad_events_are_400_with_a_pointer(
    api: Api, eid: str, attributes: dict[str, Any], pointer: str
) -> None:
    answer = await push(api, eid, **attributes)
    assert (answer.status, answer.pointer) == (400, pointer)


async def test_events_page_over_spans_and_unknown_experiments_are_404(api: Api, eid: str) -> None:
    await push(api, eid, spans=[span(f"s{i}") for i in range(7)], metrics=[metric("", "mean")])
    pages, cursor = [], ""
    while True:
        params = {"page[limit]": "3", **({"page[cursor]": cursor} if cursor else {})}
        body = await api.ok("GET", f"{V3}/experiments/{eid}/events", params=params)
        attributes = body["data"]["attributes"]
        pages.append(
            ([s["span_id"] for s in attributes["spans"]], len(attributes["summary_metrics"]))
        )
        cursor = body["meta"]["after"]
        if not cursor:
            break
    assert pages == [(["s6", "s5", "s4"], 1), (["s3", "s2", "s1"], 0), (["s0"], 0)]
    assert (await api.get(f"{V3}/experiments/nope/events")).status == 404
    assert (await push(api, "nope", metrics=[metric("s")])).status == 404


async def test_a_runner_s_push_reads_back_in_the_live_shapes(api: Api, eid: str) -> None:
    tags = [f"experiment_id:{eid}", "dataset_record_id:rec-3", "run_iteration:2"]
    failed = {"message": "boom", "type": "ValueError", "stack": "Traceback ..."}
    await push(
        api,
        eid,
        spans=[span("11", tags=tags, meta={"span.kind": "experiment", "input": 1}), span("12")],
        metrics=[
            metric("11", metric_source="custom", trace_id="t-11", status="OK", error=None),
            metric("11", "judge", metric_source="custom", score_value=None, error=failed),
            metric(
                "",
                "mean",
                metric_source="summary",
                trace_id="",
                metric_type="json",
                score_value=None,
                json_value=[1, 2],
            ),
        ],
    )
    body = await api.ok("GET", f"{V3}/experiments/{eid}/events")
    twelve, eleven = body["data"]["attributes"]["spans"]
    assert eleven["dataset_record_id"] == "rec-3" and eleven["tags"] == tags
    assert "dataset_record_id" not in twelve  # no tag, no record: null fields are left out
    acc, judge = eleven["eval_metrics"]
    assert (acc["metric_source"], acc["status"], acc["trace_id"]) == ("custom", "OK", "t-11")
    assert "error" not in acc and judge["error"] == failed
    [mean] = body["data"]["attributes"]["summary_metrics"]
    assert (mean["metric_source"], mean["json_value"], mean["span_id"]) == ("summary", [1, 2], "")


async def test_every_push_is_counted_so_duplicates_show(api: Api, eid: str) -> None:
    batch = {"spans": [span("s1"), span("s2")], "metrics": [metric("s1"), metric("s2")]}
    await push(api, eid, **batch)
    events = api.fake.events(eid)
    assert (events.duplicate_spans(), events.duplicate_metrics()) == ({}, {})
    await push(api, eid, spans=[span("s2")], metrics=[metric("s2"), metric("", "avg")])
    assert events.duplicate_spans() == {"s2": 2} and len(events.spans) == 2
    assert list(events.duplicate_metrics()) == [("s2", "acc", "custom")]
    assert len(events.metrics) == 4 and [m["label"] for m in events.metrics_of("")] == ["avg"]
    assert [m["id"] for m in events.metrics_of("s2")] == [
        m["id"] for m in events.duplicate_metrics()[("s2", "acc", "custom")]
    ]


async def test_a_row_run_twice_under_new_span_ids_shows_as_a_duplicate_row(
    api: Api, eid: str
) -> None:
    def run(span_id: str, record: str, iteration: int) -> dict[str, Any]:
        tags = [f"dataset_record_id:{record}", f"run_iteration:{iteration}"]
        return span(span_id, tags=tags)

    await push(api, eid, spans=[run("1", "r1", 1), run("2", "r1", 2), run("3", "r2", 1)])
    await push(api, eid, spans=[run("4", "r1", 2), span("5")])  # r1 #2 again; 5: no record
    events = api.fake.events(eid)
    assert events.duplicate_spans() == {}  # every span id is new...
    assert events.duplicate_rows() == {("r1", 2): ["2", "4"]}  # ...but one row ran twice
    assert sorted(events.spans_by_row()) == [("r1", 1), ("r1", 2), ("r2", 1)]


async def test_the_events_list_can_lag_the_pushes_as_the_live_index_does(
    api: Api, eid: str
) -> None:
    async def listed() -> list[str]:
        body = await api.ok("GET", f"{V3}/experiments/{eid}/events")
        return [s["span_id"] for s in body["data"]["attributes"]["spans"]]

    await push(api, eid, spans=[span("s1")])
    api.fake.lag_event_lists(2)
    await push(api, eid, spans=[span("s2")], metrics=[metric("s1")])
    assert await listed() == ["s1"] and await listed() == ["s1"]  # two stale reads
    assert await listed() == ["s2", "s1"] and len(api.fake.events(eid).spans) == 2
