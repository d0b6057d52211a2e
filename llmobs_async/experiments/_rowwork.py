"""One row of a run: the task with its retries and timeout, the evaluators, the span and metrics.

:class:`Rows` turns a :class:`Work` (a record and a run iteration) into
what is pushed for it: one span in ddtrace's shape (``meta.span.kind``
``"experiment"``, the ``experiment_id:``, ``dataset_id:``,
``dataset_record_id:`` and ``run_iteration:`` tags) and one metric per
evaluator. Errors are results: a task that still fails after its retries
gives a span with ``status: "error"`` and its error; an evaluator that
raises gives a metric with ``error`` set.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import attrs
import backoff

from .. import _json
from .._bulk.events import EncodedEvent
from ..errors import LLMObsError, ValidationError
from ..models import Experiment, ExperimentMetric
from . import _evaluators as ev
from ._results import RunProgress
from ._rows import ExperimentRow
from ._threads import ThreadPool

__all__ = ["Rows", "Settings", "Work", "encode_metric", "row_ids", "shard_of"]

_PLAIN: Final = (str, int, float, bool, type(None))


@attrs.define(kw_only=True)
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


def row_ids(experiment_id: str, record_id: str, run_iteration: int) -> tuple[str, str]:
    """The span and trace ids of a row: the same every time the row runs.

    ddtrace's forms (a 64-bit span id in decimal, a 128-bit trace id in hex),
    derived from the row rather than drawn at random, so that a row run again
    (by ``resume``, after its task failed or its span's push was lost)
    replaces its span instead of adding a second one where the API keys spans
    by id, as the fake does.
    """
    digest = hashlib.blake2b(
        f"{experiment_id}\x00{record_id}\x00{run_iteration}".encode(), digest_size=24
    ).digest()
    span = int.from_bytes(digest[:8], "big") >> 1
    return str(span or 1), digest[8:].hex()


def shard_of(record_id: str, n: int) -> int:
    """The shard (``0`` to ``n - 1``) that runs record ``record_id`` in a run split ``n`` ways.

    A stable hash of the record id alone (the first 8 bytes of its BLAKE2b
    digest, big-endian, modulo ``n``): every process, machine and Python
    version splits a dataset the same way, whatever order the records are
    read in. Every run iteration of a record is in its record's shard.
    ``experiments.run(experiment_id=..., shard=(i, n))`` runs the records
    with ``shard_of(record.id, n) == i``::

        sizes = Counter(shard_of(r.id, 8) async for r in client.records.list(p, d))
    """
    digest = hashlib.blake2b(record_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n


class Rows:
    """What one run does to each row; shared by its workers."""

    def __init__(self, experiment: Experiment, settings: Settings, threads: ThreadPool) -> None:
        self.experiment = experiment
        self.s = settings
        self.threads = threads
        self.project_id = experiment.project_id or ""
        self.dataset_id = experiment.dataset_id or ""
        self.task_name = ev.name_of(settings.task)
        self.task_metadata = ev.wants_metadata(settings.task)
        self.task_awaited = ev.is_async(settings.task)
        self.evaluators = [ev.Evaluator.of(e) for e in settings.evaluators]
        self.base_tags = [
            f"experiment_id:{experiment.id}",
            f"dataset_id:{self.dataset_id}",
            f"project_id:{self.project_id}",
            *settings.tags,
        ]
        self.task_retries = 0

    async def task(self, work: Work) -> tuple[Any, dict[str, str] | None]:
        args: tuple[Any, ...] = (work.input, self.s.config)
        if self.task_metadata:
            args += (work.metadata,)
        attempt = 0
        while True:
            try:
                if self.s.task_timeout is None:
                    output = await ev.call(
                        self.s.task, self.threads, *args, awaited=self.task_awaited
                    )
                else:
                    async with asyncio.timeout(self.s.task_timeout):
                        output = await ev.call(
                            self.s.task, self.threads, *args, awaited=self.task_awaited
                        )
                break
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
        if not isinstance(output, _PLAIN):
            # An output the API cannot store is the task's error; running the task
            # again would give the same output, so it is not retried.
            try:
                _json.encode_json(output)
            except ValidationError as exc:
                return None, ev.describe_error(exc.prefixed("output"))
        return output, None

    async def evaluate(
        self, evaluators: Sequence[ev.Evaluator], work: Work, output: Any, ids: tuple[str, str]
    ) -> list[tuple[str, Any]]:
        """Each evaluator's result or exception: async ones at once, plain ones in one thread."""
        context = None
        if any(e.takes_context for e in evaluators):  # an object's evaluate(context)
            context = ev.EvaluatorContext(
                input_data=work.input,
                output_data=output,
                expected_output=work.expected_output,
                metadata={**work.metadata, "experiment_config": dict(self.s.config)},
                span_id=ids[0],
                trace_id=ids[1],
            )
        args = (work.input, output, work.expected_output)
        results: dict[str, Any] = {}
        plain = [
            (e.label, e.function, (context,) if e.takes_context else args)
            for e in evaluators
            if not e.awaited
        ]
        if plain:
            for label, value in await self.threads.run(_call_all, plain):
                results[label] = value
        awaited = [e for e in evaluators if e.awaited]
        if awaited:
            answers = await asyncio.gather(
                *(e.function(*((context,) if e.takes_context else args)) for e in awaited),
                return_exceptions=True,
            )
            for evaluator, value in zip(awaited, answers, strict=True):
                if isinstance(value, BaseException) and not isinstance(value, Exception):
                    raise value
                results[evaluator.label] = value
        return [(e.label, results[e.label]) for e in evaluators]

    def span(
        self,
        work: Work,
        span_id: str,
        trace_id: str,
        start_ns: int,
        duration: int,
        output: Any,
        error: dict[str, str] | None,
    ) -> EncodedEvent:
        """The row's span, checked and encoded (only the task's data needs checking)."""
        meta: dict[str, Any] = {
            "span.kind": "experiment",
            "input": work.input,
            "output": output,
            "expected_output": work.expected_output,
            "metadata": dict(work.metadata),
        }
        if error is not None:
            meta["error"] = error
        span = {
            "span_id": span_id,
            "trace_id": trace_id,
            "name": self.task_name,
            "project_id": self.project_id,
            "dataset_id": self.dataset_id,
            "start_ns": start_ns,
            "duration": max(duration, 1),  # the API requires a non-zero duration
            "status": "error" if error else "ok",
            "tags": [
                *self.base_tags,
                f"dataset_record_id:{work.record_id}",
                f"run_iteration:{work.run_iteration}",
                *work.tags,
            ],
            "meta": meta,
        }
        return EncodedEvent(False, span_id, _json.encode_json(span))

    def metric(
        self, span_id: str, trace_id: str, label: str, result: Any
    ) -> tuple[EncodedEvent, Any, dict[str, str] | None]:
        """The metric of one evaluator's result (see :func:`encode_metric`)."""
        return encode_metric(self.experiment.id, span_id, trace_id, label, result)


def encode_metric(
    experiment_id: str, span_id: str, trace_id: str, label: str, result: Any
) -> tuple[EncodedEvent, Any, dict[str, str] | None]:
    """The metric of one evaluator's result: encoded, its value, and its error if it has one.

    A result no metric can hold (NaN, an object, an ``EvaluatorResult``
    with a bad field) is the evaluator's error, like an exception. An empty
    ``span_id`` makes a summary metric.
    """
    metric: dict[str, Any] = {
        "span_id": span_id,
        "trace_id": trace_id,
        "label": label,
        "timestamp_ms": time.time_ns() // 1_000_000,
        "metric_source": "custom" if span_id else "summary",
        "experiment_id": experiment_id,
    }
    event_id = f"{span_id}/{label}"
    if not isinstance(result, BaseException):
        try:
            fields = ev.metric_value(result)
            if ev.is_result(result):
                ExperimentMetric(**metric, **fields)  # checks reasoning, assessment, tags...
            fields["metric_type"] = fields["metric_type"].value
            encoded = _json.encode_json({**metric, **fields})
            return EncodedEvent(True, event_id, encoded), _value(fields), None
        except (TypeError, ValueError, LLMObsError) as exc:
            result = exc
    error = ev.describe_error(result)
    metric.update(metric_type="categorical", error=error)
    return EncodedEvent(True, event_id, _json.encode_json(metric)), None, error


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
