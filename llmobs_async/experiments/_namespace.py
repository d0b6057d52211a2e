"""``client.experiments``: the resource's calls, and ``run``, ``resume``, ``compare``, ``rows``.

The runner is a layer above the resources: it reads records through the
records paginator, pushes through ``events.create_many`` and sets the status
with ``update``, so everything it sends goes through the one request loop,
the rate gate and the bulk accounting.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from typing import Any, Final

import attrs

from .._resources import Datasets, Records
from .._resources import Experiments as _Experiments
from ..errors import ValidationError
from ..models import UNSET
from . import _checks as checks
from . import _evaluators as ev
from ._compare import Comparison, compare_rows
from ._results import ExperimentRun, RunProgress
from ._rows import ExperimentRow, RowKey, read_rows
from ._rowwork import Work
from ._runner import Runner

__all__ = ["Experiments"]

RECORDS_PAGE: Final = 1000
"""Records a page: asked for, because the API may otherwise send a whole dataset in one."""
_OWN_TAGS = ("experiment_id:", "dataset_id:", "project_id:", "dataset_record_id:", "run_iteration:")


class Experiments(_Experiments):
    """Experiments: create, get, list, update, delete, their ``events``; and the runner."""

    __slots__ = ("_datasets", "_records")

    def __init__(
        self,
        transport: Any,  # the resource's transport, passed through untouched
        *,
        records: Records | None = None,
        datasets: Datasets | None = None,
    ) -> None:
        super().__init__(transport)
        # The client passes its own namespaces; a copy over another transport
        # (with_raw_response) makes its own.
        self._records = Records(transport) if records is None else records
        self._datasets = Datasets(transport) if datasets is None else datasets

    async def run(
        self,
        project_id: str,
        dataset_id: str,
        name: str,
        /,
        *,
        task: Callable[..., Any],
        evaluators: Sequence[Any] = (),
        summary_evaluators: Sequence[Any] = (),
        dataset_version: int | None = None,
        config: Mapping[str, Any] | None = None,
        description: str | None = None,
        tags: Sequence[str] | Mapping[str, Any] = (),
        runs: int = 1,
        concurrency: int = 10,
        max_task_retries: int = 2,
        task_timeout: float | None = None,
        sample_size: int | None = None,
        on_progress: Callable[[RunProgress], None] | None = None,
    ) -> ExperimentRun:
        """Create an experiment on a dataset, run ``task`` over every record, score it, push it all.

        ``task(input_data, config)`` and ``evaluator(input_data, output_data,
        expected_output)`` are ddtrace's signatures, ``async def`` or plain
        (plain ones run in a thread pool of ``concurrency`` threads, never on
        the event loop). A task that raises is retried ``max_task_retries``
        times with backoff, then its row carries the error and the run goes
        on; an evaluator that raises gives a metric with ``error`` set.
        Spans and metrics are pushed in batches while the run goes. The
        experiment is ``running`` meanwhile and ends ``completed``, ``failed``
        (an item was not recorded, or the API refused the run: see
        ``run.error``) or ``interrupted`` (cancelled or Ctrl-C; the
        :class:`CancelledError` carries the account, see
        :meth:`ExperimentRun.from_exception`, and :meth:`resume` finishes it).
        Records are read page by page as the workers need them, and the
        dataset version is pinned, so a resume sees the same records.
        """
        settings = checks.settings(
            task,
            evaluators,
            summary_evaluators,
            config or {},
            concurrency,
            max_task_retries,
            task_timeout,
            on_progress,
            tags,
        )
        checks.count("runs", runs, 1)
        if sample_size is not None:
            checks.count("sample_size", sample_size, 1)
        if dataset_version is None:
            dataset = await self._datasets.get(project_id, dataset_id)
            dataset_version = dataset.current_version
        experiment = await self.create(
            project_id,
            dataset_id,
            name,
            dataset_version=UNSET if dataset_version is None else dataset_version,
            description=UNSET if description is None else description,
            config=dict(settings.config),
            metadata={} if sample_size is None else {"sample_size": sample_size},
            run_count=runs,
        )
        records = self._records.list(
            project_id, dataset_id, version=dataset_version, page_size=RECORDS_PAGE
        )
        total = None if sample_size is None else sample_size * runs
        runner = Runner(self, experiment, settings, total=total, read_rows=self.rows)
        return await runner.run(_work(records, runs, sample_size, {}, ()))

    async def resume(
        self,
        experiment_id: str,
        /,
        *,
        task: Callable[..., Any],
        evaluators: Sequence[Any] = (),
        summary_evaluators: Sequence[Any] = (),
        concurrency: int = 10,
        max_task_retries: int = 2,
        task_timeout: float | None = None,
        on_progress: Callable[[RunProgress], None] | None = None,
    ) -> ExperimentRun:
        """Finish an interrupted or failed run in the same experiment.

        Reads the experiment (dataset version, config, runs, sample size) and
        its events back; runs the task only for the (record, run_iteration)
        rows with no span or whose task failed; runs the evaluators a row
        misses (or that failed) on its stored output without running its task
        again; recomputes the summary over every row. The status ends as in
        :meth:`run`. ``run.rows_done`` counts the rows this call did.
        """
        probe = checks.settings(
            task,
            evaluators,
            summary_evaluators,
            {},
            concurrency,
            max_task_retries,
            task_timeout,
            on_progress,
            (),
        )
        experiment = await self.get(experiment_id)
        if not experiment.project_id or not experiment.dataset_id:
            raise ValidationError(
                "experiment_id", "the experiment has no project or dataset to read records from"
            )
        settings = attrs.evolve(probe, config=dict(experiment.config))
        rows, _ = await read_rows(self.events.list(experiment_id))
        sample = experiment.metadata.get("sample_size")
        sample_size = sample if isinstance(sample, int) and sample > 0 else None
        records = self._records.list(
            experiment.project_id,
            experiment.dataset_id,
            version=experiment.dataset_version,
            page_size=RECORDS_PAGE,
        )
        labels = [ev.name_of(e) for e in settings.evaluators]
        runner = Runner(self, experiment, settings, total=None, read_rows=self.rows)
        return await runner.run(
            _work(records, experiment.run_count or 1, sample_size, rows, labels)
        )

    async def rows(self, experiment_id: str) -> AsyncIterator[ExperimentRow]:
        """Every row of an experiment, read back from its events: one per record and run.

        Where a resumed run or a re-sent push left more than one span for a
        row, the one whose task succeeded (else the latest) is given; per
        label, the latest metric. The rows are read whole before the first
        is given (they arrive in no useful order), sorted by record id and run.
        """
        rows, _ = await read_rows(self.events.list(experiment_id))
        for key in sorted(rows):
            yield rows[key]

    async def compare(self, baseline_id: str, candidate_id: str) -> Comparison:
        """Two experiments row by row: per label, both aggregates and the rows that moved."""
        (base, _), (cand, _) = await asyncio.gather(
            read_rows(self.events.list(baseline_id)), read_rows(self.events.list(candidate_id))
        )
        return compare_rows(baseline_id, candidate_id, base, cand)


async def _work(
    records: Any,
    runs: int,
    sample_size: int | None,
    done: Mapping[RowKey, ExperimentRow],
    labels: Collection[str],
) -> AsyncIterator[Work]:
    """The rows to do, record by record, as the workers take them."""
    index = 0
    async for record in records:
        if sample_size is not None and index >= sample_size:
            break
        tags = tuple(t for t in record.tags if ":" in t and not t.startswith(_OWN_TAGS))
        for iteration in range(1, runs + 1):
            row = done.get(RowKey(record.id, iteration))
            scored = row if row is not None and row.status == "ok" else None  # its task ran
            yield Work(
                index=index,
                record_id=record.id,
                run_iteration=iteration,
                input=record.input,
                expected_output=record.expected_output,
                metadata=record.metadata,
                tags=tags,
                scored=scored,
                skip=scored is not None and not scored.unscored(labels),
            )
        index += 1
