"""The summary of an experiment: the summary evaluators over every row, in record order.

:func:`evaluate_summary` is what a run does at its end (the runner calls it
with the rows it kept); :func:`summarize` is ``experiments.summarize``: the
end of a sharded run, done once every shard's rows are stored. It reads
the rows back (waiting for missing ones up to ``wait`` seconds), runs the
summary evaluators over them, pushes their metrics and sets the status
``completed``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import attrs

from .._bulk.events import EncodedEvent
from .._bulk.results import BulkResult
from ..errors import IncompleteExperimentError, LLMObsError
from ..models import Experiment, ExperimentStatus
from . import _evaluators as ev
from ._results import ExperimentRun
from ._rows import ExperimentRow, RowKey, read_rows
from ._rowwork import encode_metric
from ._threads import ThreadPool

if TYPE_CHECKING:
    from .._resources import Experiments

__all__ = ["Kept", "evaluate_summary", "summarize"]

Kept = tuple[int, int, Any, Any, Any, Mapping[str, Any], Mapping[str, Any]]
"""A row as the summary sees it: record index, run iteration, input, output, expected
output, the record's metadata, and each evaluator's value by label."""
Metric = Callable[[str, str, str, Any], tuple[EncodedEvent, Any, Any]]
POLL_FIRST: Final = 1.0
"""Seconds before ``summarize`` reads the rows again when some are missing; doubled each time."""
POLL_MOST: Final = 5.0
SHOWN_MISSING: Final = 100
"""Missing rows named in an :class:`IncompleteExperimentError`'s message (the attribute has all)."""


async def evaluate_summary(
    summary_evaluators: Sequence[Any],
    kept: list[Kept],
    labels: Sequence[str],
    config: Mapping[str, Any],
    threads: ThreadPool,
    metric: Metric,
) -> tuple[dict[str, Any], dict[str, Any], list[Any]]:
    """Each summary evaluator over ``kept`` (sorted here): its value, its error, its metric."""
    kept.sort(key=lambda row: (row[0], row[1]))
    by_label: dict[str, list[Any]] = {label: [] for label in labels}
    for *_, values in kept:
        for label in by_label:
            by_label[label].append(values.get(label))
    context = ev.SummaryEvaluatorContext(
        inputs=[k[2] for k in kept],
        outputs=[k[3] for k in kept],
        expected_outputs=[k[4] for k in kept],
        evaluation_results=by_label,
        metadata=[{**k[5], "experiment_config": dict(config)} for k in kept],
    )
    summary: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    items: list[Any] = []
    for evaluator in summary_evaluators:
        label = ev.name_of(evaluator)
        fn, args = ev.summary_call(evaluator, context)
        try:
            result: Any = await ev.call(fn, threads, *args)
        except Exception as exc:
            result = exc
        item, value, error = metric("", "", label, result)
        items.append(item)
        summary[label] = value
        if error is not None:
            errors[label] = error
    return summary, errors, items


async def summarize(
    experiments: Experiments,
    experiment: Experiment,
    records: AsyncIterable[Any],
    *,
    runs: int,
    sample_size: int | None,
    summary_evaluators: Sequence[Any],
    wait: float,
    read_back: Callable[[str], AsyncIterator[ExperimentRow]],
) -> ExperimentRun:
    """Check every row of ``experiment`` is stored, summarize it, and mark it ``completed``."""
    keep = bool(summary_evaluators)
    wanted: list[tuple[int, Any]] = []  # the records (or, without summary evaluators, ids)
    async for record in records:
        if sample_size is not None and len(wanted) >= sample_size:
            break
        wanted.append((len(wanted), record if keep else record.id))
    expected = [
        RowKey(record.id if keep else record, iteration)
        for _, record in wanted
        for iteration in range(1, runs + 1)
    ]
    rows = await _every_row(experiments, experiment.id, expected, wait)
    task_errors = sum(1 for key in expected if rows[key].status != "ok")
    summary: dict[str, Any] = {}
    summary_errors: dict[str, Any] = {}
    pushed = BulkResult(submitted=0, applied=0, failed=[])
    if keep:
        kept: list[Kept] = []
        for index, r in wanted:
            for n in range(1, runs + 1):
                row = rows[RowKey(r.id, n)]
                kept.append(
                    (index, n, r.input, row.output, r.expected_output, r.metadata, row.evaluations)
                )
        labels = sorted({label for row in rows.values() for label in row.evaluations})
        threads = ThreadPool(1)
        try:
            summary, summary_errors, items = await evaluate_summary(
                summary_evaluators,
                kept,
                labels,
                experiment.config,
                threads,
                lambda *args: encode_metric(experiment.id, *args),
            )
        finally:
            threads.shutdown()
        pushed = await experiments.events.create_many(experiment.id, items)
    error: LLMObsError | None = pushed.stopped
    if error is None and pushed.failed:
        error = LLMObsError(
            f"{pushed.failed_count} of {pushed.submitted} summary metrics were not recorded; "
            f"first: {pushed.failed[0].error}"
        )
    status = ExperimentStatus.COMPLETED if error is None else ExperimentStatus.FAILED
    fields: dict[str, Any] = {"status": status}
    if error is not None:
        fields["error"] = str(error)[:1000]
    elif experiment.error:
        fields["error"] = ""  # a shard's earlier failure, since run again
    await experiments.update(experiment.id, read_back=False, **fields)
    return ExperimentRun(
        experiment=attrs.evolve(experiment, status=status, error=fields.get("error") or None),
        summary=summary,
        summary_errors=summary_errors,
        pushed=pushed,
        rows_done=0,
        task_errors=task_errors,
        error=error,
        read_rows=read_back,
    )


async def _every_row(
    experiments: Experiments, experiment_id: str, expected: list[RowKey], wait: float
) -> dict[RowKey, ExperimentRow]:
    """The stored rows, once every ``expected`` one is there (reading again for ``wait`` s)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    pause = POLL_FIRST
    while True:
        rows, _ = await read_rows(experiments.events.list(experiment_id))
        missing = [key for key in expected if key not in rows]
        if not missing:
            return rows
        left = deadline - loop.time()
        if left <= 0:
            shown = ", ".join(f"{k.record_id}#{k.run_iteration}" for k in missing[:SHOWN_MISSING])
            more = ", ..." if len(missing) > SHOWN_MISSING else ""
            raise IncompleteExperimentError(
                f"experiment {experiment_id}: {len(missing)} of {len(expected)} rows are "
                f"missing (shards not done yet?): {shown}{more}",
                experiment_id=experiment_id,
                missing=missing,
                expected=len(expected),
            )
        await asyncio.sleep(min(pause, left))
        pause = min(pause * 2, POLL_MOST)
