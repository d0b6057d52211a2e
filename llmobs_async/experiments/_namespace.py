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
from ..models import UNSET, Experiment
from . import _checks as checks
from . import _evaluators as ev
from ._compare import Comparison, compare_rows
from ._results import ExperimentRun, RunProgress
from ._rows import ExperimentRow, RowKey, read_rows
from ._rowwork import Settings, Work, shard_of
from ._runner import Runner
from ._summarize import summarize

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
        project_id: str | None = None,
        dataset_id: str | None = None,
        name: str | None = None,
        /,
        *,
        experiment_id: str | None = None,
        shard: tuple[int, int] | None = None,
        task: Callable[..., Any],
        evaluators: Sequence[Any] = (),
        summary_evaluators: Sequence[Any] = (),
        dataset_version: int | None = None,
        config: Mapping[str, Any] | None = None,
        description: str | None = None,
        tags: Sequence[str] | Mapping[str, Any] = (),
        runs: int | None = None,
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

        ``experiment_id`` (instead of the three positionals) joins an
        experiment made beforehand with :meth:`create`: its dataset version,
        config, ``run_count`` and ``metadata`` (``sample_size``, ``tags``) are
        its own, rows already done are skipped (as :meth:`resume` does), and
        the others are run. With ``shard=(i, n)`` too, only the records with
        ``shard_of(record.id, n) == i`` are run, so n workers running the same
        code with their own ``i`` share one experiment, and a restarted worker
        does not redo its finished rows. A shard that ends well leaves the
        experiment ``running``; :meth:`summarize` completes it.
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
        split = checks.shard(shard)
        if experiment_id is not None:
            _joining(project_id, dataset_id, name, split, summary_evaluators)
            for field, value in (
                ("config", config),
                ("dataset_version", dataset_version),
                ("description", description),
                ("tags", tags or None),
                ("runs", runs),
                ("sample_size", sample_size),
            ):
                if value is not None:
                    raise ValidationError(
                        field, "is set when the experiment is created, not with experiment_id"
                    )
            return await self._rejoin(experiment_id, settings, split, joined=True)
        if split is not None:
            raise ValidationError(
                "shard",
                "a sharded run joins an experiment created beforehand: create it with "
                "experiments.create and pass experiment_id",
            )
        new = (("project_id", project_id), ("dataset_id", dataset_id), ("name", name))
        for field, value in new:
            if value is None:
                raise ValidationError(
                    field, "is required, or experiment_id to join an experiment made beforehand"
                )
        assert project_id is not None and dataset_id is not None and name is not None
        runs = 1 if runs is None else checks.count("runs", runs, 1)
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
        return await self._rejoin(experiment_id, probe, None, joined=False)

    async def summarize(
        self,
        experiment_id: str,
        /,
        *,
        summary_evaluators: Sequence[Any] = (),
        wait: float = 30.0,
    ) -> ExperimentRun:
        """Complete an experiment whose rows were run by shards: summary, status ``completed``.

        Reads the experiment and its records (its pinned version, its
        ``sample_size`` and ``run_count``) and the rows stored. While rows are
        missing (shards still running, or the events list lagging) it reads
        them again, every 1 s growing to 5 s, for up to ``wait`` seconds (30 by
        default: the live events list can lag the pushes by seconds, so a
        summarize right after the shards end would otherwise miss rows); if
        some are still missing it raises
        :class:`~llmobs_async.errors.IncompleteExperimentError` (listing them)
        and leaves the experiment as it is. Otherwise the summary evaluators
        run over every row in record order, their metrics are pushed, and the
        experiment is set ``completed`` (``failed`` if a metric was not
        recorded). ``run.task_errors`` counts the rows whose task failed.
        """
        checks.evaluator_list("summary_evaluators", summary_evaluators)
        seconds = checks.wait(wait)
        experiment = await self._joinable(experiment_id)
        runs, sample_size = _runs_and_sample(experiment)
        return await summarize(
            self,
            experiment,
            await self._records_of(experiment),
            runs=runs,
            sample_size=sample_size,
            summary_evaluators=summary_evaluators,
            wait=seconds,
            read_back=self.rows,
        )

    async def _joinable(self, experiment_id: str) -> Experiment:
        experiment = await self.get(experiment_id)
        if not experiment.project_id or not experiment.dataset_id:
            raise ValidationError(
                "experiment_id", "the experiment has no project or dataset to read records from"
            )
        return experiment

    async def _records_of(self, experiment: Experiment, *, pin: bool = True) -> Any:
        """The records of the experiment's dataset version (the current one, pinned, if none)."""
        assert experiment.project_id and experiment.dataset_id
        version = experiment.dataset_version
        if version is None and pin:
            dataset = await self._datasets.get(experiment.project_id, experiment.dataset_id)
            version = dataset.current_version
        return self._records.list(
            experiment.project_id, experiment.dataset_id, version=version, page_size=RECORDS_PAGE
        )

    async def _rejoin(
        self,
        experiment_id: str,
        probe: Settings,
        split: tuple[int, int] | None,
        *,
        joined: bool,
    ) -> ExperimentRun:
        """``resume``, or ``run(experiment_id=...)`` (``joined``): the rows an experiment lacks."""
        experiment = await self._joinable(experiment_id)
        settings = attrs.evolve(probe, config=dict(experiment.config))
        tags = experiment.metadata.get("tags")
        if joined and isinstance(tags, list) and all(isinstance(t, str) for t in tags):
            settings = attrs.evolve(settings, tags=tuple(tags))
        rows, _ = await read_rows(self.events.list(experiment_id))
        runs, sample_size = _runs_and_sample(experiment)
        records = await self._records_of(experiment, pin=joined)
        labels = [ev.name_of(e) for e in settings.evaluators]
        total = sample_size * runs if joined and split is None and sample_size else None
        runner = Runner(self, experiment, settings, total=total, read_rows=self.rows, shard=split)
        return await runner.run(_work(records, runs, sample_size, rows, labels, split))

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
    shard: tuple[int, int] | None = None,
) -> AsyncIterator[Work]:
    """The rows to do, record by record, as the workers take them (only ``shard``'s, if given).

    ``sample_size`` counts records before the split: the shards together do the unsharded sample.
    """
    index = -1
    async for record in records:
        index += 1
        if sample_size is not None and index >= sample_size:
            break
        if shard is not None and shard_of(record.id, shard[1]) != shard[0]:
            continue
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


def _runs_and_sample(experiment: Experiment) -> tuple[int, int | None]:
    """The experiment's ``run_count`` and ``metadata["sample_size"]`` (``None``: every record)."""
    sample = experiment.metadata.get("sample_size")
    sample_size = sample if isinstance(sample, int) and sample > 0 else None
    return experiment.run_count or 1, sample_size


def _joining(
    project_id: str | None,
    dataset_id: str | None,
    name: str | None,
    split: tuple[int, int] | None,
    summary_evaluators: Sequence[Any],
) -> None:
    """Check a ``run(experiment_id=...)`` names no new experiment (and a shard no summary)."""
    if (project_id, dataset_id, name) != (None, None, None):
        raise ValidationError(
            "experiment_id",
            "give either project_id, dataset_id and name (a new experiment) or "
            "experiment_id (join one made with experiments.create), not both",
        )
    if split is not None and summary_evaluators:
        raise ValidationError(
            "summary_evaluators",
            "not with shard: a shard sees only its rows: pass them to experiments.summarize",
        )
