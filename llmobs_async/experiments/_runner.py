"""The run loop: the task over every row, its evaluators, the push, the summary, the status.

One :class:`Runner` serves ``run`` and ``resume``: it is given the rows to do
as an async iterator of :class:`Work` (read from the records paginator as
the workers need them, so memory stays bounded) and the rows already done.
``concurrency`` workers take rows one by one; each row's span and metrics go
into a bounded buffer (:mod:`._outbox`) that ``events.create_many`` reads in
batches while the run goes, so a slow push holds the workers back instead of
growing memory, and every item ends acknowledged or in ``pushed.failed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Final

import attrs

from .._bulk.results import BulkInterruptedError, BulkProgress, BulkResult
from ..errors import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    LLMObsError,
)
from ..models import Experiment, ExperimentStatus
from ._outbox import Outbox
from ._results import ExperimentRun, RunProgress
from ._rows import ExperimentRow
from ._rowwork import Rows, Settings, Work, row_ids
from ._summarize import Kept, evaluate_summary
from ._threads import ThreadPool

if TYPE_CHECKING:
    from .._resources import Experiments

__all__ = ["Runner"]

PUSH_BATCH: Final = 1000
"""Spans and metrics a push carries at most (and fewer when its JSON would pass 4 MB)."""
FLUSH_EVERY: Final = 2.0
"""Seconds between pushes of a partial batch, so results of slow tasks show up as they come."""
STATUS_TIMEOUT: Final = 10.0
"""Seconds the final status update may take after a cancellation (it is shielded)."""
PUSH_GRACE: Final = 3.0
"""Seconds an interrupted run waits for the rows already done to be pushed."""


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
        shard: tuple[int, int] | None = None,
    ) -> None:
        self.experiments = experiments
        # A shard leaves the experiment running when it ends well: summarize completes it.
        self.shard = shard
        self.read_rows = read_rows
        self.experiment = experiment
        self.s = settings
        self.total = total
        # One thread per worker at most: a worker is in its task or its evaluators, never both.
        self.threads = ThreadPool(settings.concurrency)
        self.rows = Rows(experiment, settings, self.threads)
        self.evaluators = self.rows.evaluators
        # Room for a few batches: workers wait only when the push falls that far behind.
        self.out = Outbox(
            capacity=max(PUSH_BATCH * 4, 8 * settings.concurrency), wake_at=PUSH_BATCH // 2
        )
        self.done = self.task_errors = 0
        self.stored_status = experiment.status  # as the API has it, as far as we know
        self.push = BulkProgress(submitted=0, applied=0, failed=0, retries=0)
        # Only what the summary evaluators need is kept: nothing when there are none.
        self.kept: list[Kept] = []

    # --- the run ---------------------------------------------------------------------

    async def run(self, work: AsyncIterator[Work]) -> ExperimentRun:
        """Do every row of ``work``, push as it goes, summarize, and set the final status.

        API failures end the run ``failed`` and are returned in ``run.error``;
        a cancellation (Ctrl-C) ends it ``interrupted`` and is raised, with
        the account on the exception (:meth:`ExperimentRun.from_exception`).
        """
        pusher = asyncio.create_task(
            self.experiments.events.create_many(
                self.experiment.id, self.out.read(), batch_size=PUSH_BATCH, on_progress=self._pushed
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
            if pushed.stopped is None and pushed.failed:
                pushed = await self._push_again(pushed)
            self.push = BulkProgress(
                submitted=pushed.submitted,
                applied=pushed.applied,
                failed=pushed.failed_count,
                retries=pushed.retries,
            )
            self._progress()
        except BaseException as exc:
            ticker.cancel()
            if worker is not None:
                await _cancelled(worker)
            pushed = await self._drain(pusher, grace=PUSH_GRACE)
            interrupted = not isinstance(exc, Exception)  # cancelled, Ctrl-C
            status = ExperimentStatus.INTERRUPTED if interrupted else ExperimentStatus.FAILED
            run = self._result(status, pushed, summary, summary_errors, exc)
            try:
                run = attrs.evolve(run, experiment=await self._final(run, exc))
            except asyncio.CancelledError:
                run.attach_to(exc)
                raise exc from None
            if isinstance(exc, LLMObsError):
                return run  # the API refused the run: the account says why
            run.attach_to(exc)
            raise
        finally:
            self.threads.shutdown()
        if error is None and pushed.stopped is not None:
            error = pushed.stopped
        if error is None and pushed.failed:
            error = LLMObsError(
                f"{pushed.failed_count} of {pushed.submitted} spans and metrics were not "
                f"recorded; first: {pushed.failed[0].error}"
            )
        status = ExperimentStatus.COMPLETED if error is None else ExperimentStatus.FAILED
        if self.shard is not None and error is None:
            status = ExperimentStatus.RUNNING
        run = self._result(status, pushed, summary, summary_errors, error)
        try:
            return attrs.evolve(run, experiment=await self._final(run, error))
        except asyncio.CancelledError as cancel:  # the run ended, then was cancelled
            run.attach_to(cancel)
            raise

    def _result(
        self,
        status: ExperimentStatus,
        pushed: BulkResult,
        summary: dict[str, Any],
        summary_errors: dict[str, Any],
        error: BaseException | None,
    ) -> ExperimentRun:
        return ExperimentRun(
            experiment=attrs.evolve(
                self.experiment,
                status=status,
                error=None if status is ExperimentStatus.COMPLETED else self.experiment.error,
            ),
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
            self.out.close()
            await asyncio.wait({pusher})

        if not pusher.done():
            ending = asyncio.ensure_future(finish())
            try:
                # Shielded: a second cancellation must not cut the grace short.
                await asyncio.wait_for(asyncio.shield(ending), grace)
            except TimeoutError:
                ending.cancel()
                pusher.cancel()
            except asyncio.CancelledError:
                ending.cancel()
                if grace is None:
                    raise  # cancelled while the push ended: the caller's except path drains
                pusher.cancel()  # cancelled again during the grace: stop now
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

    async def _push_again(self, pushed: BulkResult) -> BulkResult:
        """Send once more the items whose push failed on the way, not by the API's refusal.

        A push that ran out of retries (5xx, dropped connections, a proxy's
        page instead of the answer) says nothing against its items, and the
        work behind them (a task, an LLM judge) is worth one more request:
        without it the run would end ``failed`` and ``resume`` would run those
        rows again. Items the API refused (4xx) are not sent again.
        """
        again = [f for f in pushed.failed if _transient(f.error)]
        if not again:
            return pushed
        kept = [f for f in pushed.failed if not _transient(f.error)]
        second = await self.experiments.events.create_many(
            self.experiment.id,
            [item for failure in again for item in failure.records],
            batch_size=PUSH_BATCH,
        )
        return BulkResult(
            submitted=pushed.submitted,
            applied=pushed.applied + second.applied,
            failed=kept + second.failed,
            retries=pushed.retries + second.retries + second.submitted,
            stopped=second.stopped,
        )

    async def _status(self, status: ExperimentStatus, error: str | None = None) -> None:
        fields: dict[str, Any] = {"status": status}
        if error:
            fields["error"] = error[:1000]
        elif status is ExperimentStatus.COMPLETED and self.experiment.error:
            fields["error"] = ""  # an earlier run's (or shard's) reason no longer holds
        await self.experiments.update(self.experiment.id, read_back=False, **fields)
        self.stored_status = status

    async def _final(self, run: ExperimentRun, error: BaseException | None) -> Experiment:
        """Set the final status with a short, shielded request; the experiment as it ends.

        A cancellation that arrives meanwhile (a second Ctrl-C) does not stop
        the request: it is waited out (``STATUS_TIMEOUT`` at most), then the
        cancellation is raised again, so the experiment is never left running.
        """
        status = ExperimentStatus(run.experiment.status or ExperimentStatus.FAILED)
        reason = None if error is None else (str(error) or type(error).__name__)
        if status is ExperimentStatus.INTERRUPTED:
            reason = "interrupted"
        if status is ExperimentStatus.RUNNING:
            return run.experiment  # a shard that ended well: running, as its start set it
        if self.shard is not None:
            reason = f"shard {self.shard[0]}/{self.shard[1]}: {reason}"
        update = asyncio.ensure_future(self._status(status, reason))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STATUS_TIMEOUT
        cancelled = False
        while not update.done() and loop.time() < deadline:
            try:
                await asyncio.wait({update}, timeout=deadline - loop.time())
            except asyncio.CancelledError:
                cancelled = True
        if not update.done():
            update.cancel()
        if cancelled:
            raise asyncio.CancelledError
        if update.cancelled() or update.exception() is not None:
            # The status could not be set: say what the API has (the last status set).
            return attrs.evolve(self.experiment, status=self.stored_status)
        return run.experiment

    # --- workers ---------------------------------------------------------------------

    async def _work(self, work: AsyncIterator[Work]) -> BaseException | None:
        """Run every row with ``concurrency`` workers; the error that stopped reading, if any.

        The workers take rows from ``work`` themselves, one at a time under a
        lock (a page of records is read by whichever worker needs it): no
        queue between a reader and the workers, no task switch per row.
        """
        taking = asyncio.Lock()
        failure: list[BaseException] = []

        async def worker() -> None:
            while not failure:
                async with taking:
                    try:
                        item = await anext(work)
                    except StopAsyncIteration:
                        return
                    except Exception as exc:  # the records could not be read: finish the rest
                        failure.append(exc)
                        return
                await self._row(item)

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(self.s.concurrency):
                    group.create_task(worker())
        except BaseExceptionGroup as group_error:
            # One worker's exception (on_progress raised, a bug) cancelled the others:
            # raise it as itself, not wrapped in a group.
            raise group_error.exceptions[0] from None
        return failure[0] if failure else None

    async def _row(self, work: Work) -> None:
        scored = work.scored
        if work.skip and scored is not None:
            self._keep(work, scored.output, dict(scored.evaluations))
            return
        if scored is None:
            span_id, trace_id = row_ids(self.experiment.id, work.record_id, work.run_iteration)
            start_ns, clock = time.time_ns(), time.perf_counter_ns()
            output, error = await self.rows.task(work)
            duration = time.perf_counter_ns() - clock
            items: list[Any] = [
                self.rows.span(work, span_id, trace_id, start_ns, duration, output, error)
            ]
            evaluators = self.evaluators if error is None else []
        else:
            span_id, trace_id, output, error = scored.span_id, scored.trace_id, scored.output, None
            items = []
            missing = scored.unscored(e.label for e in self.evaluators)
            evaluators = [e for e in self.evaluators if e.label in missing]
        values: dict[str, Any] = dict(scored.evaluations) if scored is not None else {}
        if evaluators:
            ids = (span_id, trace_id)
            for label, result in await self.rows.evaluate(evaluators, work, output, ids):
                metric, value, _ = self.rows.metric(span_id, trace_id, label, result)
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

    # --- summary, push, progress -----------------------------------------------------

    async def _summarize(self) -> tuple[dict[str, Any], dict[str, Any]]:
        if not self.s.summary_evaluators:
            return {}, {}
        summary, errors, items = await evaluate_summary(
            self.s.summary_evaluators,
            self.kept,
            [e.label for e in self.evaluators],
            self.s.config,
            self.threads,
            self.rows.metric,
        )
        await self.out.put(items)
        return summary, errors

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY)
            self.out.flush()

    def _pushed(self, progress: BulkProgress) -> None:
        # Only noted: the caller's on_progress runs in the workers, where an
        # exception it raises stops the run (inside the push it would stop the push).
        self.push = progress

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
                    retries=self.rows.task_retries + self.push.retries,
                )
            )


def _transient(error: LLMObsError) -> bool:
    """A failure of the way, not of the items: worth one more push."""
    if isinstance(error, APIStatusError):
        return error.status >= 500 or error.status in (408, 429)
    return isinstance(error, APIConnectionError | APIResponseValidationError)


async def _cancelled(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait until it has ended (its rows' tasks in flight are cancelled too)."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
