"""The run loop: the task over every row, its evaluators, the push, the summary, the status.

One :class:`Runner` serves ``run`` and ``resume``: it is given the rows to do
as an async iterator of :class:`Work` (read from the records paginator as
the workers need them, so memory stays bounded) and the rows already done.
``concurrency`` workers take rows one by one; each row's span and metrics go
into a bounded queue that ``events.create_many`` drains in batches while
the run goes, so a slow push holds the workers back instead of growing memory,
and every item ends acknowledged or in ``pushed.failed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Final

import attrs
import backoff

from .. import _json
from .._bulk.results import FLUSH, BulkInterruptedError, BulkProgress, BulkResult
from ..errors import LLMObsError
from ..models import (
    Experiment,
    ExperimentMetric,
    ExperimentSpan,
    ExperimentStatus,
    MetricSource,
    MetricType,
)
from . import _evaluators as ev
from ._results import ExperimentRun, RunProgress
from ._rows import ExperimentRow

if TYPE_CHECKING:
    from .._resources import Experiments

__all__ = ["Runner", "Settings", "Work"]

_END: Final = object()
FLUSH_EVERY: Final = 2.0
"""Seconds between pushes of a partial batch, so results of slow tasks show up as they come."""
STATUS_TIMEOUT: Final = 10.0
"""Seconds the final status update may take after a cancellation (it is shielded)."""
PUSH_GRACE: Final = 3.0
"""Seconds an interrupted run waits for the rows already done to be pushed."""
_PLAIN: Final = (str, int, float, bool, type(None))
_random = random.Random()


@attrs.frozen(kw_only=True)
class Work:
    """One row to do: a record and a run iteration; ``scored`` when only evaluators are missing."""

    index: int
    record_id: str
    run_iteration: int
    input: Any
    expected_output: Any
    metadata: Mapping[str, Any]
    tags: Sequence[str] = ()
    scored: ExperimentRow | None = None
    """Resume: the row's task has run; only the evaluators it misses are run."""
    skip: bool = False
    """Resume: the row is complete; it only counts in the summary (with ``scored``)."""


@attrs.frozen(kw_only=True)
class Settings:
    """What the caller chose for a run (checked by the namespace before anything is sent)."""

    task: Callable[..., Any]
    evaluators: Sequence[Any]
    summary_evaluators: Sequence[Any]
    config: Mapping[str, Any]
    concurrency: int
    max_task_retries: int
    task_timeout: float | None
    on_progress: Callable[[RunProgress], None] | None
    tags: Sequence[str] = ()


def _ids() -> tuple[str, str]:
    # ddtrace's forms: a 64-bit span id in decimal, a 128-bit trace id in hex.
    return str(_random.getrandbits(63) or 1), f"{_random.getrandbits(128):032x}"


class Runner:
    """One run (or resume) of an experiment; see the module docstring."""

    def __init__(
        self,
        experiments: Experiments,
        experiment: Experiment,
        settings: Settings,
        *,
        total: int | None,
        read_rows: Callable[[str], AsyncIterator[ExperimentRow]],
    ) -> None:
        self.experiments = experiments
        self.read_rows = read_rows
        self.experiment = experiment
        self.s = settings
        self.total = total
        self.project_id = experiment.project_id or ""
        self.dataset_id = experiment.dataset_id or ""
        self.task_name = ev.name_of(settings.task)
        self.task_metadata = ev.wants_metadata(settings.task)
        self.labels = [ev.name_of(e) for e in settings.evaluators]
        self.base_tags = [
            f"experiment_id:{experiment.id}",
            f"dataset_id:{self.dataset_id}",
            f"project_id:{self.project_id}",
            *settings.tags,
        ]
        self.executor = ThreadPoolExecutor(
            max_workers=min(settings.concurrency, 64), thread_name_prefix="llmobs-experiment"
        )
        self.out: asyncio.Queue[Any] = asyncio.Queue(maxsize=4 * settings.concurrency)
        self.done = self.task_errors = self.task_retries = 0
        self.push = BulkProgress(submitted=0, applied=0, failed=0, retries=0)
        # Only what the summary evaluators need is kept: nothing when there are none.
        self.kept: list[tuple[int, int, Any, Any, Any, Any, dict[str, Any]]] = []

    # --- the run ---------------------------------------------------------------------

    async def run(self, work: AsyncIterator[Work]) -> ExperimentRun:
        """Do every row of ``work``, push as it goes, summarize, and set the final status.

        API failures end the run ``failed`` and are returned in ``run.error``;
        a cancellation (Ctrl-C) ends it ``interrupted`` and is raised, with
        the account on the exception (:meth:`ExperimentRun.from_exception`).
        """
        pusher = asyncio.create_task(
            self.experiments.events.create_many(
                self.experiment.id, self._items(), batch_size=1000, on_progress=self._pushed
            )
        )
        ticker = asyncio.create_task(self._tick())
        worker: asyncio.Task[BaseException | None] | None = None
        summary: dict[str, Any] = {}
        summary_errors: dict[str, Any] = {}
        error: BaseException | None = None
        try:
            await self._status(ExperimentStatus.RUNNING)
            worker = asyncio.create_task(self._work(work))
            await asyncio.wait({worker, pusher}, return_when=asyncio.FIRST_COMPLETED)
            if not worker.done():  # the push stopped (401, 403): nothing more can land
                await _cancelled(worker)
            else:
                error = worker.result()
                if error is None and not pusher.done():
                    summary, summary_errors = await self._summarize()
            ticker.cancel()
            pushed = await self._drain(pusher, grace=None)
        except BaseException as exc:
            ticker.cancel()
            if worker is not None:
                await _cancelled(worker)
            pushed = await self._drain(pusher, grace=PUSH_GRACE)
            interrupted = not isinstance(exc, Exception)  # cancelled, Ctrl-C
            status = ExperimentStatus.INTERRUPTED if interrupted else ExperimentStatus.FAILED
            run = self._result(status, pushed, summary, summary_errors, exc)
            run = attrs.evolve(run, experiment=await self._final(run, exc))
            if isinstance(exc, LLMObsError):
                return run  # the API refused the run: the account says why
            run.attach_to(exc)
            raise
        finally:
            self.executor.shutdown(wait=False, cancel_futures=True)
        if error is None and pushed.stopped is not None:
            error = pushed.stopped
        if error is None and pushed.failed:
            error = LLMObsError(
                f"{pushed.failed_count} of {pushed.submitted} spans and metrics were not "
                f"recorded; first: {pushed.failed[0].error}"
            )
        status = ExperimentStatus.COMPLETED if error is None else ExperimentStatus.FAILED
        run = self._result(status, pushed, summary, summary_errors, error)
        return attrs.evolve(run, experiment=await self._final(run, error))

    def _result(
        self,
        status: ExperimentStatus,
        pushed: BulkResult,
        summary: dict[str, Any],
        summary_errors: dict[str, Any],
        error: BaseException | None,
    ) -> ExperimentRun:
        return ExperimentRun(
            experiment=attrs.evolve(self.experiment, status=status),
            summary=summary,
            summary_errors=summary_errors,
            pushed=pushed,
            rows_done=self.done,
            task_errors=self.task_errors,
            error=error,
            read_rows=self.read_rows,
        )

    async def _drain(self, pusher: asyncio.Task[BulkResult], *, grace: float | None) -> BulkResult:
        """End the push and return its account; after an interruption, wait ``grace`` at most."""

        async def finish() -> None:
            await self.out.put(_END)
            await asyncio.wait({pusher})

        if not pusher.done():
            ending = asyncio.ensure_future(finish())
            try:
                # Shielded: a second cancellation must not cut the grace short.
                await asyncio.wait_for(asyncio.shield(ending), grace)
            except (TimeoutError, asyncio.CancelledError):
                ending.cancel()
                pusher.cancel()
        try:
            return await pusher
        except BaseException as exc:
            found = BulkResult.from_exception(exc)
            if found is not None:
                return found
            if isinstance(exc, Exception):
                raise
            stopped = BulkInterruptedError("the run was interrupted before its push ended")
            return BulkResult(
                submitted=self.push.submitted,
                applied=self.push.applied,
                failed=[],
                stopped=stopped,
            )

    async def _status(self, status: ExperimentStatus, error: str | None = None) -> None:
        fields: dict[str, Any] = {"status": status}
        if error:
            fields["error"] = error[:1000]
        await self.experiments.update(self.experiment.id, read_back=False, **fields)

    async def _final(self, run: ExperimentRun, error: BaseException | None) -> Experiment:
        """Set the final status with a short, shielded request; the experiment as it ends."""
        status = ExperimentStatus(run.experiment.status or ExperimentStatus.FAILED)
        reason = None if error is None else (str(error) or type(error).__name__)
        if status is ExperimentStatus.INTERRUPTED:
            reason = "interrupted"
        update = asyncio.ensure_future(self._status(status, reason))
        try:
            await asyncio.wait_for(asyncio.shield(update), STATUS_TIMEOUT)
        except (TimeoutError, asyncio.CancelledError, LLMObsError):
            update.cancel()
            return self.experiment  # the status could not be set: say what the API has
        return run.experiment

    # --- workers ---------------------------------------------------------------------

    async def _work(self, work: AsyncIterator[Work]) -> BaseException | None:
        """Run every row with ``concurrency`` workers; the error that stopped reading, if any."""
        queue: asyncio.Queue[Work | None] = asyncio.Queue(maxsize=self.s.concurrency)
        failure: list[BaseException] = []

        async def read() -> None:
            try:
                async for item in work:
                    await queue.put(item)
            except Exception as exc:  # the records could not be read: finish what was read
                failure.append(exc)
            for _ in range(self.s.concurrency):
                await queue.put(None)

        async def worker() -> None:
            while (item := await queue.get()) is not None:
                await self._row(item)

        async with asyncio.TaskGroup() as group:
            group.create_task(read())
            for _ in range(self.s.concurrency):
                group.create_task(worker())
        return failure[0] if failure else None

    async def _row(self, work: Work) -> None:
        scored = work.scored
        if work.skip and scored is not None:
            self._keep(work, scored.output, dict(scored.evaluations))
            return
        if scored is None:
            span_id, trace_id = _ids()
            start_ns, clock = time.time_ns(), time.perf_counter_ns()
            output, error = await self._task(work)
            duration = time.perf_counter_ns() - clock
            items: list[Any] = [
                self._span(work, span_id, trace_id, start_ns, duration, output, error)
            ]
            evaluators = self.s.evaluators if error is None else ()
        else:
            span_id, trace_id, output, error = scored.span_id, scored.trace_id, scored.output, None
            items = []
            evaluators = [
                e
                for e, label in zip(self.s.evaluators, self.labels, strict=True)
                if label not in scored.evaluations or label in scored.evaluation_errors
            ]
        values: dict[str, Any] = dict(scored.evaluations) if scored is not None else {}
        if evaluators:
            context = ev.EvaluatorContext(
                input_data=work.input,
                output_data=output,
                expected_output=work.expected_output,
                metadata={**work.metadata, "experiment_config": dict(self.s.config)},
                span_id=span_id,
                trace_id=trace_id,
            )
            for label, result in await self._evaluate(evaluators, context):
                metric, value = self._metric(span_id, trace_id, label, result)
                items.append(metric)
                values[label] = value
        await self.out.put(items)
        self.done += 1
        if error is not None:
            self.task_errors += 1
        self._keep(work, output, values)
        self._progress()

    def _keep(self, work: Work, output: Any, values: dict[str, Any]) -> None:
        if self.s.summary_evaluators:
            self.kept.append(
                (
                    work.index,
                    work.run_iteration,
                    work.input,
                    output,
                    work.expected_output,
                    work.metadata,
                    values,
                )
            )

    async def _task(self, work: Work) -> tuple[Any, dict[str, str] | None]:
        args: tuple[Any, ...] = (work.input, self.s.config)
        if self.task_metadata:
            args += (work.metadata,)
        attempt = 0
        while True:
            try:
                async with asyncio.timeout(self.s.task_timeout):
                    output = await ev.call(self.s.task, self.executor, *args)
                if not isinstance(output, _PLAIN):
                    _json.encode_json(output)  # an output the API cannot store is the task's error
                return output, None
            except Exception as exc:
                if isinstance(exc, TimeoutError) and not str(exc):
                    exc = TimeoutError(
                        f"the task took longer than task_timeout={self.s.task_timeout} s"
                    )
                if attempt >= self.s.max_task_retries:
                    return None, ev.describe_error(exc)
                attempt += 1
                self.task_retries += 1
                await asyncio.sleep(backoff.full_jitter(min(8.0, 0.5 * 2 ** (attempt - 1))))

    async def _evaluate(
        self, evaluators: Sequence[Any], context: ev.EvaluatorContext
    ) -> list[tuple[str, Any]]:
        """Each evaluator's result or exception: async ones at once, plain ones in one thread."""
        calls = [(ev.name_of(e), *ev.evaluator_call(e, context)) for e in evaluators]
        plain = [(label, fn, args) for label, fn, args in calls if not ev.is_async(fn)]
        awaited = [(label, fn, args) for label, fn, args in calls if ev.is_async(fn)]
        results: dict[str, Any] = {}
        if plain:
            loop = asyncio.get_running_loop()
            for label, value in await loop.run_in_executor(self.executor, _call_all, plain):
                results[label] = value
        if awaited:
            answers = await asyncio.gather(
                *(fn(*args) for _, fn, args in awaited), return_exceptions=True
            )
            for (label, _, _), value in zip(awaited, answers, strict=True):
                if isinstance(value, BaseException) and not isinstance(value, Exception):
                    raise value
                results[label] = value
        return [(label, results[label]) for label, _, _ in calls]

    def _span(
        self,
        work: Work,
        span_id: str,
        trace_id: str,
        start_ns: int,
        duration: int,
        output: Any,
        error: dict[str, str] | None,
    ) -> ExperimentSpan:
        meta: dict[str, Any] = {
            "span.kind": "experiment",
            "input": work.input,
            "output": output,
            "expected_output": work.expected_output,
            "metadata": dict(work.metadata),
        }
        if error is not None:
            meta["error"] = error
        return ExperimentSpan(
            span_id=span_id,
            trace_id=trace_id,
            name=self.task_name,
            project_id=self.project_id,
            dataset_id=self.dataset_id,
            start_ns=start_ns,
            duration=max(duration, 1),  # the API requires a non-zero duration
            status="error" if error else "ok",
            tags=(
                *self.base_tags,
                f"dataset_record_id:{work.record_id}",
                f"run_iteration:{work.run_iteration}",
                *work.tags,
            ),
            meta=meta,
        )

    def _metric(
        self, span_id: str, trace_id: str, label: str, result: Any
    ) -> tuple[ExperimentMetric, Any]:
        base: dict[str, Any] = {
            "span_id": span_id,
            "trace_id": trace_id,
            "label": label,
            "timestamp_ms": time.time_ns() // 1_000_000,
            "metric_source": MetricSource.SUMMARY if not span_id else MetricSource.CUSTOM,
            "experiment_id": self.experiment.id,
        }
        if not isinstance(result, BaseException):
            try:
                fields = ev.metric_value(result)
                return ExperimentMetric(**base, **fields), _value(fields)
            except (TypeError, ValueError, LLMObsError) as exc:
                result = exc
        return ExperimentMetric(
            **base, metric_type=MetricType.CATEGORICAL, error=ev.describe_error(result)
        ), None

    # --- summary, push, progress -----------------------------------------------------

    async def _summarize(self) -> tuple[dict[str, Any], dict[str, Any]]:
        if not self.s.summary_evaluators:
            return {}, {}
        self.kept.sort(key=lambda kept: (kept[0], kept[1]))
        by_label: dict[str, list[Any]] = {label: [] for label in self.labels}
        for *_, values in self.kept:
            for label in by_label:
                by_label[label].append(values.get(label))
        context = ev.SummaryEvaluatorContext(
            inputs=[k[2] for k in self.kept],
            outputs=[k[3] for k in self.kept],
            expected_outputs=[k[4] for k in self.kept],
            evaluation_results=by_label,
            metadata=[{**k[5], "experiment_config": dict(self.s.config)} for k in self.kept],
        )
        summary: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        items: list[Any] = []
        for evaluator in self.s.summary_evaluators:
            label = ev.name_of(evaluator)
            fn, args = ev.summary_call(evaluator, context)
            try:
                result: Any = await ev.call(fn, self.executor, *args)
            except Exception as exc:
                result = exc
            metric, value = self._metric("", "", label, result)
            items.append(metric)
            summary[label] = value
            if metric.error:
                errors[label] = metric.error
        await self.out.put(items)
        return summary, errors

    async def _items(self) -> AsyncIterator[Any]:
        while (items := await self.out.get()) is not _END:
            if items is FLUSH:
                yield FLUSH
                continue
            for item in items:
                yield item

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY)
            await self.out.put(FLUSH)

    def _pushed(self, progress: BulkProgress) -> None:
        self.push = progress
        self._progress()

    def _progress(self) -> None:
        if self.s.on_progress is not None:
            self.s.on_progress(
                RunProgress(
                    experiment_id=self.experiment.id,
                    done=self.done,
                    total=self.total,
                    task_errors=self.task_errors,
                    pushed=self.push.applied,
                    push_failed=self.push.failed,
                    retries=self.task_retries + self.push.retries,
                )
            )


async def _cancelled(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait until it has ended (its rows' tasks in flight are cancelled too)."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


def _value(fields: Mapping[str, Any]) -> Any:
    for key in ("score_value", "boolean_value", "categorical_value", "json_value"):
        if key in fields:
            return fields[key]
    return None


def _call_all(
    calls: list[tuple[str, Callable[..., Any], tuple[Any, ...]]],
) -> list[tuple[str, Any]]:
    """Run plain evaluators one after another in one worker thread; an exception is a result."""
    out: list[tuple[str, Any]] = []
    for label, fn, args in calls:
        try:
            out.append((label, fn(*args)))
        except Exception as exc:  # an evaluator's failure is its metric's error
            out.append((label, exc))
    return out
