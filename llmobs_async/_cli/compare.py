"""``experiments compare``: two experiments metric by metric, and the CI gate on regressions.

Also the words for an aggregate (:func:`describe`, :func:`plain`), which
``experiments run`` uses for its evaluators.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..errors import ValidationError
from .common import EXIT_FAILED, EXIT_OK, make_client, say


def describe(aggregate: Any) -> str:
    """An aggregate in a few words: ``true 93.0% (n=100)``, ``mean 0.812 (n=99, 2 errors)``."""
    parts = []
    if aggregate.true_rate is not None:
        parts.append(f"true {aggregate.true_rate:.1%}")
    if aggregate.mean is not None:
        parts.append(f"mean {aggregate.mean:.4g}")
    if aggregate.categories:
        ranked = sorted(aggregate.categories.items(), key=lambda kv: (-kv[1], kv[0]))
        shown = ", ".join(f"{name} {count:,}" for name, count in ranked[:3])
        parts.append(shown + (f", +{len(ranked) - 3} more" if len(ranked) > 3 else ""))
    counts = f"n={aggregate.count:,}"
    if aggregate.errors:
        counts += f", {aggregate.errors:,} errors"
    return " ".join([*parts, f"({counts})"])


def plain(aggregate: Any) -> dict[str, Any]:
    """An aggregate as JSON-ready data."""
    doc: dict[str, Any] = {"count": aggregate.count, "errors": aggregate.errors}
    for name in ("mean", "true_rate"):
        value = getattr(aggregate, name, None)
        if value is not None:
            doc[name] = value
    if aggregate.categories:
        doc["categories"] = dict(aggregate.categories)
    return doc


_COLUMNS = ("improved", "regressed", "unchanged", "changed", "missing")


def _keys(keys: Any) -> list[list[Any]]:
    return [[key.record_id, key.run_iteration] for key in keys]


def _row_names(keys: Any, show: int) -> str:
    names = [f"{key.record_id} (run {key.run_iteration})" for key in list(keys)[:show]]
    more = len(keys) - len(names)
    return ", ".join(names) + (f", and {more:,} more" if more > 0 else "")


def _gate(args: argparse.Namespace, diff: Any) -> list[str]:
    """The gated labels that fail: regressed, or with no metric at all in the candidate.

    A label neither experiment has is a usage error: a gate with a typo in it
    would otherwise pass every build.
    """
    failing = []
    for label in dict.fromkeys(args.fail_on_regression or ()):
        metric = diff.metrics.get(label)
        if metric is None:
            known = ", ".join(sorted(diff.metrics)) or "none"
            raise ValidationError(
                "--fail-on-regression",
                f"no metric {label!r} in either experiment (labels: {known})",
            )
        if diff.regressed(label) or metric.candidate.count == 0:
            failing.append(label)
    return failing


async def experiments_compare(args: argparse.Namespace) -> int:
    """``experiments compare``: per label, both aggregates and the row counts; the exit code."""
    async with make_client(args) as client:
        diff = await client.experiments.compare(args.baseline, args.candidate)
    failing = _gate(args, diff)
    labels = sorted(diff.metrics)
    if args.json:
        metrics = {}
        for label in labels:
            m = diff.metrics[label]
            doc: dict[str, Any] = {
                "metric_type": m.metric_type,
                "baseline": plain(m.baseline),
                "candidate": plain(m.candidate),
            }
            doc.update({name: len(getattr(m, name)) for name in _COLUMNS})
            doc["regressed_rows"] = _keys(m.regressed)
            doc["missing_rows"] = _keys(m.missing)
            metrics[label] = doc
        out = {
            "baseline": args.baseline,
            "candidate": args.candidate,
            "metrics": metrics,
            "failed": failing,
        }
        print(json.dumps(out, ensure_ascii=False, default=str))
    else:
        _print_table(args, diff, labels)
    for label in failing:
        metric = diff.metrics[label]
        if metric.candidate.count == 0:
            say(f"{label}: the candidate has no {label!r} metric (gated by --fail-on-regression)")
        else:
            say(
                f"{label}: {len(metric.regressed):,} rows regressed (gated by --fail-on-regression)"
            )
    return EXIT_FAILED if failing else EXIT_OK


def _print_table(args: argparse.Namespace, diff: Any, labels: list[str]) -> None:
    print(f"baseline  {args.baseline}\ncandidate {args.candidate}")
    if not labels:
        print("no metrics in either experiment")
        return
    head = ("metric", "type", "baseline", "candidate", *_COLUMNS)
    rows: list[tuple[str, ...]] = [head]
    for label in labels:
        m = diff.metrics[label]
        counts = tuple(f"{len(getattr(m, name)):,}" for name in _COLUMNS)
        rows.append(
            (label, str(m.metric_type), describe(m.baseline), describe(m.candidate), *counts)
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    for row in rows:
        cells = [
            cell.ljust(width) if i < 4 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())
    for label in labels:
        regressed = diff.metrics[label].regressed
        if regressed and args.show:
            print(f"{label} regressed on: {_row_names(regressed, args.show)}")
