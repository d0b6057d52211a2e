"""Experiment events: the spans and eval metrics pushed to an experiment, read back by span."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

import attrs

from ._paging import SeqIndex
from ._wire import (
    answer_attributes,
    bad_request,
    check_json,
    escape,
    nonempty_str,
    required,
    string_list,
)

METRIC_TYPES = ("score", "categorical", "boolean", "json")
SPAN_STATUSES = ("ok", "error")
DAY_MS = 24 * 60 * 60 * 1000
TIMESTAMP_DETAIL = (
    "Key: 'ExperimentEvalMetricEvent.EvalMetricBase.TimestampMs' Error:Field validation for "
    "'TimestampMs' failed on the 'timestamp_within_24hr' tag"
)
"""The live API's words for a metric ``timestamp_ms`` more than 24 hours from now."""
_NUMBER = (int, float)
METRIC_OPTIONAL: dict[str, type | tuple[type, ...]] = {
    "score_value": _NUMBER,
    "categorical_value": str,
    "boolean_value": bool,
    "json_value": (dict, list),
    "reasoning": str,
    "metadata": dict,
    "error": dict,
    "trace_id": str,
    "experiment_id": str,
    "status": str,
    "eval_source_type": str,
    "tags": list,
}
RECORD_TAG = "dataset_record_id:"
ITERATION_TAG = "run_iteration:"
MetricKey = tuple[str, str, str]
"""``(span_id, label, metric_source)``: what one metric per evaluator per span makes unique."""
RowKey = tuple[str, int]
"""``(dataset_record_id, run_iteration)``: one row of an experiment, one span."""


@attrs.define
class ExperimentEvents:
    """The spans and metrics pushed to one experiment.

    A metric names its span by ``span_id``; a metric whose span was never
    pushed (the live API gets most spans from the span intake, not from this
    endpoint) makes a stub span holding ``span_id`` and ``trace_id``, so that
    no metric is lost from the listing. Metrics with ``metric_source``
    ``"summary"`` or an empty ``span_id`` are summary metrics.

    Every push is counted, so a test can check that nothing was lost or sent
    twice (a retried push whose first answer was lost lands twice, as live)::

        events = fake.events(experiment_id)
        assert len(events.spans) == rows and events.duplicate_spans() == {}
        assert events.duplicate_rows() == {}  # one span per (record, run_iteration)
        assert len(events.metrics) == rows * 2 and events.duplicate_metrics() == {}
    """

    spans: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    """Spans by ``span_id``, as pushed (the last push of a ``span_id`` wins)."""
    metrics: list[dict[str, Any]] = attrs.field(factory=list)
    """Every metric, in push order, with the ``id`` the fake gave it (duplicates kept)."""
    span_pushes: dict[str, int] = attrs.field(factory=dict)
    """How many times each ``span_id`` was pushed (a metric's stub span is not a push)."""
    _by_span: dict[str, list[dict[str, Any]]] = attrs.field(init=False, factory=dict)
    _summary: list[dict[str, Any]] = attrs.field(init=False, factory=list)
    _order: SeqIndex[str] = attrs.field(init=False, factory=SeqIndex)

    def add_span(self, span: Mapping[str, Any]) -> None:
        """Store a checked span."""
        span_id = span["span_id"]
        self.span_pushes[span_id] = self.span_pushes.get(span_id, 0) + 1
        self._put_span(span_id, span)

    def _put_span(self, span_id: str, span: Mapping[str, Any]) -> None:
        if span_id not in self.spans:
            self._order.add(len(self._order) + 1, span_id)
        self.spans[span_id] = dict(span)

    def add_metric(self, metric: Mapping[str, Any], tags: list[str]) -> None:
        """Store a checked metric, with the push's ``tags`` added to its own."""
        span_id = metric["span_id"]
        summary = metric.get("metric_source") == "summary" or not span_id
        stored = {
            "id": str(uuid.uuid4()),
            **metric,
            "metric_source": metric.get("metric_source") or ("summary" if summary else "custom"),
            "tags": list(dict.fromkeys([*(metric.get("tags") or ()), *tags])),
        }
        self.metrics.append(stored)
        if summary:
            self._summary.append(stored)
            return
        if span_id not in self.spans:
            self._put_span(span_id, {"span_id": span_id, "trace_id": metric.get("trace_id")})
        self._by_span.setdefault(span_id, []).append(stored)

    def page(self, before: int | None, limit: int) -> tuple[list[dict[str, Any]], int | None]:
        """A page of spans (newest first), each with its ``eval_metrics``."""
        span_ids, next_seq = self._order.page(before, limit)
        return [self._span_doc(span_id) for span_id in span_ids], next_seq

    def summary_metrics(self) -> list[dict[str, Any]]:
        """The summary metrics, as the API answers them."""
        return [_metric_doc(m) for m in self._summary]

    def metrics_of(self, span_id: str) -> list[dict[str, Any]]:
        """The metrics stored for one span (``""``: the summary metrics), in push order."""
        return list(self._by_span.get(span_id, ())) if span_id else list(self._summary)

    def duplicate_spans(self) -> dict[str, int]:
        """The span ids pushed more than once, with how many times."""
        return {span_id: n for span_id, n in self.span_pushes.items() if n > 1}

    def duplicate_metrics(self) -> dict[MetricKey, list[dict[str, Any]]]:
        """The metrics sharing ``(span_id, label, metric_source)`` with another, by that key."""
        seen: dict[MetricKey, list[dict[str, Any]]] = {}
        for metric in self.metrics:
            key = (metric["span_id"], metric["label"], metric["metric_source"])
            seen.setdefault(key, []).append(metric)
        return {key: found for key, found in seen.items() if len(found) > 1}

    def spans_by_row(self) -> dict[RowKey, list[str]]:
        """Span ids by ``(dataset_record_id, run_iteration)``, read from the spans' tags.

        Spans without a ``dataset_record_id:`` tag are left out; one without a
        ``run_iteration:`` tag is iteration 1 (a value that is no number reads as 0).
        """
        rows: dict[RowKey, list[str]] = {}
        for span_id, span in self.spans.items():
            record_id = _tag(span, RECORD_TAG)
            if record_id is not None:
                iteration = _tag(span, ITERATION_TAG) or "1"
                key = (record_id, int(iteration) if iteration.isdigit() else 0)
                rows.setdefault(key, []).append(span_id)
        return rows

    def duplicate_rows(self) -> dict[RowKey, list[str]]:
        """The rows with more than one span (a task run twice under new span ids)."""
        return {key: ids for key, ids in self.spans_by_row().items() if len(ids) > 1}

    def _span_doc(self, span_id: str) -> dict[str, Any]:
        metrics = [_metric_doc(m) for m in self._by_span.get(span_id, ())]
        span = self.spans[span_id]
        # The live API answers the record a span ran on as a field, read from its tag.
        record_id = _tag(span, RECORD_TAG)
        doc = {"id": span_id, **span, "dataset_record_id": record_id, "eval_metrics": metrics}
        return answer_attributes("events", {k: v for k, v in doc.items() if v is not None})


def _tag(span: Mapping[str, Any], prefix: str) -> str | None:
    """The value of the span's first tag ``prefix<value>``, if it has one."""
    return next((t[len(prefix) :] for t in span.get("tags") or () if t.startswith(prefix)), None)


def _metric_doc(metric: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metric.items() if v is not None and v != []}


def check_events(attributes: Mapping[str, Any]) -> tuple[list[Any], list[Any], list[str]]:
    """Check the attributes of an events push; return its metrics, spans and tags."""
    base = "/data/attributes"
    for key in attributes:
        if key not in ("metrics", "spans", "tags", "scope"):
            raise bad_request(f"unknown attribute {key!r}", f"{base}/{escape(key)}")
    metrics, spans = attributes.get("metrics") or [], attributes.get("spans") or []
    for key, value in (("metrics", metrics), ("spans", spans)):
        if not isinstance(value, list):
            raise bad_request(f"{key} must be an array", f"{base}/{key}")
    tags = string_list(attributes.get("tags") or [], f"{base}/tags")
    if not isinstance(attributes.get("scope", ""), str):
        raise bad_request("scope must be a string", f"{base}/scope")
    now_ms = time.time() * 1000
    for index, metric in enumerate(metrics):
        _check_metric(metric, f"{base}/metrics/{index}", now_ms)
    for index, span in enumerate(spans):
        _check_span(span, f"{base}/spans/{index}")
    return metrics, spans, tags


def _check_metric(metric: Any, pointer: str, now_ms: float) -> None:
    if not isinstance(metric, dict):
        raise bad_request("metric must be an object", pointer)
    for key in ("span_id", "label", "metric_type", "timestamp_ms"):
        required(metric, key, pointer)
    if not isinstance(metric.get("span_id"), str):  # "" is allowed: a summary metric
        raise bad_request("span_id must be a string", f"{pointer}/span_id")
    if metric.get("metric_source") == "custom" and not metric["span_id"]:
        raise bad_request("span_id is required for a custom metric", f"{pointer}/span_id")
    nonempty_str(metric, "label", pointer)
    if metric.get("metric_type") not in METRIC_TYPES:
        detail = f"metric_type must be one of {', '.join(METRIC_TYPES)}"
        raise bad_request(detail, f"{pointer}/metric_type")
    stamp = metric.get("timestamp_ms")
    if not isinstance(stamp, int) or isinstance(stamp, bool):
        raise bad_request("timestamp_ms must be an integer", f"{pointer}/timestamp_ms")
    if abs(stamp - now_ms) > DAY_MS:
        raise bad_request(TIMESTAMP_DETAIL, f"{pointer}/timestamp_ms")
    for key, expected in METRIC_OPTIONAL.items():
        value = metric.get(key)
        if value is not None and (
            not isinstance(value, expected) or (isinstance(value, bool) and expected is not bool)
        ):
            raise bad_request(f"{key} has the wrong type", f"{pointer}/{key}")
    if metric.get("tags") is not None:
        string_list(metric["tags"], f"{pointer}/tags")
    if metric.get("assessment") not in (None, "pass", "fail"):
        raise bad_request("assessment must be pass or fail", f"{pointer}/assessment")
    if metric.get("metric_source") not in (None, "custom", "summary"):
        raise bad_request("metric_source must be custom or summary", f"{pointer}/metric_source")
    check_json(metric, pointer)


def _check_span(span: Any, pointer: str) -> None:
    if not isinstance(span, dict):
        raise bad_request("span must be an object", pointer)
    for key in ("span_id", "trace_id", "name", "project_id", "dataset_id"):
        nonempty_str(span, key, pointer)
    for key in ("start_ns", "duration", "status"):
        required(span, key, pointer)
    for key in ("start_ns", "duration"):
        value = span.get(key)
        kinds = int if key == "start_ns" else _NUMBER
        if not isinstance(value, kinds) or isinstance(value, bool) or value < 0:
            raise bad_request(f"{key} must be a non-negative number", f"{pointer}/{key}")
    if span["duration"] == 0:  # ddtrace: "backend requires non-zero (Go `required` tag)"
        raise bad_request("duration is required and must not be 0", f"{pointer}/duration")
    if span.get("status") not in SPAN_STATUSES:
        raise bad_request("status must be ok or error", f"{pointer}/status")
    if span.get("tags") is not None:
        string_list(span["tags"], f"{pointer}/tags")
    if span.get("meta") is not None and not isinstance(span["meta"], dict):
        raise bad_request("meta must be an object", f"{pointer}/meta")
    check_json(span, pointer)
