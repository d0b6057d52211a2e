"""An experiment's rows read back from its events: one per (record, run_iteration).

The API keeps every span and metric pushed, so a re-sent push or a resumed
run can leave more than one span for a row, or more than one metric for a
label. Reading them back keeps one of each: the span whose task succeeded,
else the latest; per label, the latest metric. Summary metrics likewise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import attrs

from ..models import EvalMetric, SpanResult
from ..pagination import AsyncPaginator, EventsPage
from ._evaluators import value_of

__all__ = ["ExperimentRow", "RowKey", "latest_metrics", "read_rows", "tag_value"]


class RowKey(NamedTuple):
    """A row of an experiment: the dataset record and the run it belongs to (from 1)."""

    record_id: str
    run_iteration: int


@attrs.frozen(kw_only=True)
class ExperimentRow:
    """One (record, run_iteration) of an experiment: what the task was given, gave and scored."""

    record_id: str
    run_iteration: int
    """Which of the experiment's ``runs`` this is, from 1."""
    input: Any = None
    output: Any = None
    expected_output: Any = None
    metadata: Mapping[str, Any] = attrs.field(factory=dict)
    evaluations: Mapping[str, Any] = attrs.field(factory=dict)
    """Each evaluator's value by label (``None`` where the evaluator failed)."""
    evaluation_errors: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)
    """The error (``message``, ``type``, ``stack``) of each evaluator that raised."""
    eval_metrics: Mapping[str, EvalMetric] = attrs.field(factory=dict, repr=False)
    """The metrics as stored, by label (reasoning, assessment, metadata, tags)."""
    error: Mapping[str, Any] | None = None
    """The task's error (``message``, ``type``, ``stack``) after its retries, or ``None``."""
    status: str = "ok"
    """``"ok"``, or ``"error"`` when the task failed."""
    span_id: str = ""
    trace_id: str = ""
    start_ns: int | None = None
    duration: float | None = None

    def unscored(self, labels: Iterable[str]) -> list[str]:
        """Of ``labels``, those this row has no value for: never scored, or the evaluator failed."""
        return [
            label
            for label in labels
            if label not in self.evaluations or label in self.evaluation_errors
        ]

    @property
    def key(self) -> RowKey:
        """``(record_id, run_iteration)``: how rows of two experiments are matched."""
        return RowKey(self.record_id, self.run_iteration)


def tag_value(tags: Iterable[str], name: str) -> str | None:
    """The value of the first ``name:value`` tag, or ``None``."""
    prefix = name + ":"
    for tag in tags:
        if tag.startswith(prefix):
            return tag[len(prefix) :]
    return None


def latest_metrics(metrics: Iterable[EvalMetric]) -> dict[str, EvalMetric]:
    """One metric per label: the latest (a re-sent push can store one twice)."""
    out: dict[str, EvalMetric] = {}
    for metric in metrics:
        if metric.label is None:
            continue
        seen = out.get(metric.label)
        if seen is None or (metric.timestamp_ms or 0) >= (seen.timestamp_ms or 0):
            out[metric.label] = metric
    return out


def _row(span: SpanResult) -> ExperimentRow | None:
    record_id = span.dataset_record_id or tag_value(span.tags, "dataset_record_id")
    iteration = tag_value(span.tags, "run_iteration") or "1"
    if not record_id or not iteration.isdigit():
        return None  # not a span the runner made (a stub, another tool's span)
    meta = span.meta
    metrics = latest_metrics(span.eval_metrics)
    error = meta.get("error")
    return ExperimentRow(
        record_id=record_id,
        run_iteration=int(iteration),
        input=meta.get("input"),
        output=meta.get("output"),
        expected_output=meta.get("expected_output"),
        metadata=meta.get("metadata") or {},
        evaluations={label: value_of(m) for label, m in metrics.items()},
        evaluation_errors={
            label: m.extra["error"]
            for label, m in metrics.items()
            if isinstance(m.extra.get("error"), Mapping)
        },
        eval_metrics=metrics,
        error=error if isinstance(error, Mapping) and error else None,
        status=span.status or "ok",
        span_id=span.span_id or span.id or "",
        trace_id=span.trace_id or "",
        start_ns=span.start_ns,
        duration=span.duration,
    )


def _better(new: ExperimentRow, old: ExperimentRow) -> bool:
    if (new.status == "ok") != (old.status == "ok"):
        return new.status == "ok"
    if new.status == "ok" and len(new.evaluations) != len(old.evaluations):
        return len(new.evaluations) > len(old.evaluations)
    return (new.start_ns or 0) >= (old.start_ns or 0)


async def read_rows(
    events: AsyncPaginator[SpanResult],
) -> tuple[dict[RowKey, ExperimentRow], dict[str, EvalMetric]]:
    """Every row of an experiment, and its summary metrics by label, from its events."""
    rows: dict[RowKey, ExperimentRow] = {}
    summary: list[EvalMetric] = []
    async for page in events.pages():
        if isinstance(page, EventsPage):
            summary.extend(page.summary_metrics)
        for span in page.items:
            row = _row(span)
            if row is None:
                continue
            seen = rows.get(row.key)
            if seen is None or _better(row, seen):
                rows[row.key] = row
    return rows, latest_metrics(summary)
