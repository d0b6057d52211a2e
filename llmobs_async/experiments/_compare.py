"""Two experiments side by side: per metric label, both aggregates and which rows moved.

Rows are matched by ``dataset_record_id`` and ``run_iteration``
(:class:`RowKey`). For a score, higher is better; for a boolean, ``True`` is
better. Categorical and json values have no order: a different value counts
as ``changed``, never as improved or regressed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import attrs

from ._rows import ExperimentRow, RowKey

__all__ = ["Comparison", "MetricAggregate", "MetricComparison", "compare_rows"]


@attrs.frozen(kw_only=True)
class MetricAggregate:
    """One metric label over the rows of one experiment."""

    count: int
    """Rows with a value for this label."""
    errors: int
    """Rows where the evaluator failed (or the task did, so it was not scored)."""
    mean: float | None = None
    """Mean of a score."""
    true_rate: float | None = None
    """Share of ``True`` for a boolean."""
    categories: Mapping[str, int] = attrs.field(factory=dict)
    """Count of each value of a categorical metric."""


@attrs.frozen(kw_only=True)
class MetricComparison:
    """One label in both experiments: aggregates, and the rows that moved."""

    label: str
    metric_type: str
    """``score``, ``boolean``, ``categorical`` or ``json`` (as the candidate has it)."""
    baseline: MetricAggregate
    candidate: MetricAggregate
    improved: tuple[RowKey, ...] = ()
    regressed: tuple[RowKey, ...] = ()
    unchanged: tuple[RowKey, ...] = ()
    changed: tuple[RowKey, ...] = ()
    """Categorical or json values that differ (they have no order)."""
    missing: tuple[RowKey, ...] = ()
    """Rows with a value in one experiment only (a row missing, a task or evaluator failed)."""


@attrs.frozen(kw_only=True)
class Comparison:
    """``experiments.compare(baseline_id, candidate_id)``: every metric label of both."""

    baseline_id: str
    candidate_id: str
    metrics: Mapping[str, MetricComparison]
    rows_only_in_baseline: tuple[RowKey, ...] = ()
    rows_only_in_candidate: tuple[RowKey, ...] = ()

    @property
    def regressions(self) -> dict[str, tuple[RowKey, ...]]:
        """The labels with a regressed row, and those rows."""
        return {label: m.regressed for label, m in self.metrics.items() if m.regressed}

    def regressed(self, label: str) -> bool:
        """True when the candidate is worse than the baseline on some row for ``label``.

        A label neither experiment has is an error (a typo in a CI gate must
        not pass silently): ``KeyError``.
        """
        return bool(self.metrics[label].regressed)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "score"
    if isinstance(value, str):
        return "categorical"
    return "json"


def _aggregate(rows: Mapping[RowKey, ExperimentRow], label: str) -> MetricAggregate:
    values = [
        row.evaluations[label] for row in rows.values() if row.evaluations.get(label) is not None
    ]
    errors = sum(1 for row in rows.values() if row.evaluations.get(label) is None)
    scores = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    booleans = [v for v in values if isinstance(v, bool)]
    categories = Counter(v for v in values if isinstance(v, str))
    return MetricAggregate(
        count=len(values),
        errors=errors,
        mean=sum(scores) / len(scores) if scores else None,
        true_rate=sum(booleans) / len(booleans) if booleans else None,
        categories=dict(categories),
    )


def _order(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return None


def compare_rows(
    baseline_id: str,
    candidate_id: str,
    baseline: Mapping[RowKey, ExperimentRow],
    candidate: Mapping[RowKey, ExperimentRow],
) -> Comparison:
    """Compare the rows of two experiments (read back with ``read_rows``)."""
    labels: dict[str, None] = {}
    for rows in (baseline, candidate):
        for row in rows.values():
            labels.update(dict.fromkeys(row.evaluations))
    keys = sorted(set(baseline) | set(candidate))
    metrics = {}
    for label in labels:
        moved: dict[str, list[RowKey]] = {
            "improved": [],
            "regressed": [],
            "unchanged": [],
            "changed": [],
            "missing": [],
        }
        kind = None
        for key in keys:
            old_row, new_row = baseline.get(key), candidate.get(key)
            old = old_row.evaluations.get(label) if old_row is not None else None
            new = new_row.evaluations.get(label) if new_row is not None else None
            if new is not None:
                kind = _kind(new)
            elif old is not None and kind is None:
                kind = _kind(old)
            if old is None or new is None:
                if old is not None or new is not None:
                    moved["missing"].append(key)
                continue
            a, b = _order(old), _order(new)
            if a is None or b is None:
                moved["unchanged" if old == new else "changed"].append(key)
            else:
                moved["improved" if b > a else "regressed" if b < a else "unchanged"].append(key)
        metrics[label] = MetricComparison(
            label=label,
            metric_type=kind or "categorical",
            baseline=_aggregate(baseline, label),
            candidate=_aggregate(candidate, label),
            **{name: tuple(found) for name, found in moved.items()},
        )
    return Comparison(
        baseline_id=baseline_id,
        candidate_id=candidate_id,
        metrics=metrics,
        rows_only_in_baseline=tuple(k for k in keys if k not in candidate),
        rows_only_in_candidate=tuple(k for k in keys if k not in baseline),
    )
