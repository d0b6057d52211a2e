"""The demo's experiments: a run, a run interrupted and resumed, and their comparison.

Everything goes through ``client.experiments.run``, ``resume`` and
``compare`` while the fake answers 503s, 429s and drops connections. Each
step is checked against what the fake stored: one span per record, one
metric per evaluator per span, nothing lost, nothing twice.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from typing import Any, Protocol

from .._bulk.results import BulkProgress
from .._client import LLMObsClient
from ..experiments import ExperimentRun, RunProgress
from ..models import Dataset, Project
from ..testing import FakeLLMObsServer
from .output import ProgressBar


class _Demo(Protocol):
    """What the steps use of the demo (``demo._Demo``): the client, the fake, the checks."""

    client: LLMObsClient
    fake: FakeLLMObsServer
    records: int
    tty: bool

    def check(self, ok: bool, problem: str) -> None:
        """Note ``problem`` unless ``ok``."""


_ROWS = 5_000
"""The experiments run on the first 5,000 records (``sample_size``): the demo stays quick."""
_WRONG_EVERY = 97
"""The candidate model gets every 97th record wrong: the regressions compare must find."""


async def adder(input_data: Any, config: Any, metadata: Any) -> str:
    """The demo's "model": answers ``What is n + n?`` (ddtrace's task signature, with metadata)."""
    await asyncio.sleep(config["latency"])
    n = metadata["n"]
    if config["model"] == "adder-v2" and n % _WRONG_EVERY == 0:
        return f"{2 * n + 1} (reviewed)"
    return f"{2 * n} (reviewed)"


def exact(input_data: Any, output_data: Any, expected_output: Any) -> bool:
    """1 when the answer is the expected one."""
    return bool(output_data == expected_output)


async def length_ratio(input_data: Any, output_data: Any, expected_output: Any) -> float:
    """A score: how long the answer is against the expected one."""
    return len(str(output_data)) / max(1, len(str(expected_output)))


def accuracy(
    inputs: list[Any], outputs: list[Any], expected_outputs: list[Any], evaluators_results: Any
) -> float:
    """The summary: the share of exact answers."""
    return sum(1 for v in evaluators_results["exact"] if v) / max(1, len(inputs))


async def experiments(demo: _Demo, project: Project, dataset: Dataset) -> None:
    """Steps 6 to 8: run the baseline, interrupt and resume the candidate, compare them."""
    client = demo.client
    rows = min(demo.records, _ROWS)
    started = time.monotonic()
    print(f"6. experiments.run 'baseline': {rows:,} records, 2 evaluators, a summary")
    base = await _run(demo, project, dataset, "baseline", "adder", rows, None)
    elapsed = time.monotonic() - started
    print(
        f"   {base.experiment.status} in {elapsed:.1f}s: {base.rows_done:,} rows, "
        f"{base.pushed.applied:,} spans and metrics acknowledged, "
        f"{base.pushed.failed_count} lost; accuracy {base.summary.get('accuracy')}"
    )
    _check_stored(demo, base, rows)
    stop_at = rows // 2
    print(f"7. experiments.run 'candidate', interrupted after {stop_at:,} rows, then resumed")
    try:
        await _run(demo, project, dataset, "candidate", "adder-v2", rows, stop_at)
    except asyncio.CancelledError as exc:
        cut = ExperimentRun.from_exception(exc)
        if cut is None:
            raise
    else:
        demo.check(False, "the candidate run was not interrupted")
        return
    stored = await client.experiments.get(cut.experiment.id)
    print(
        f"   interrupted: {cut.rows_done:,} rows done, {cut.pushed.applied:,} items pushed; "
        f"the experiment reads {str(stored.status)!r}"
    )
    demo.check(stored.status == "interrupted", f"the interrupted run reads {stored.status}")
    again = await client.experiments.resume(
        cut.experiment.id,
        task=adder,
        evaluators=[exact, length_ratio],
        summary_evaluators=[accuracy],
        concurrency=100,
    )
    print(
        f"   resumed: {again.experiment.status}, {again.rows_done:,} rows run (only those "
        f"missing); accuracy over every row {again.summary.get('accuracy')}"
    )
    demo.check(again.rows_done <= rows - cut.rows_done + 100, "resume re-ran done rows")
    _check_stored(demo, again, rows)
    diff = await client.experiments.compare(base.experiment.id, again.experiment.id)
    exact_diff = diff.metrics["exact"]
    wrong = len(range(0, rows, _WRONG_EVERY)) if rows == demo.records else None
    print(
        f"8. compare: exact true-rate {exact_diff.baseline.true_rate:.4f} -> "
        f"{exact_diff.candidate.true_rate:.4f}, {len(exact_diff.regressed)} rows regressed, "
        f"{len(exact_diff.unchanged):,} unchanged, {len(exact_diff.missing)} missing"
    )
    # The sample is the first records the list gives (newest first): count its wrong ones.
    if wrong is None:
        sampled = [r async for r in client.experiments.rows(base.experiment.id)]
        wrong = sum(1 for r in sampled if r.metadata.get("n", 1) % _WRONG_EVERY == 0)
    demo.check(len(exact_diff.regressed) == wrong, f"{len(exact_diff.regressed)} regressions")
    demo.check(not exact_diff.missing, f"{len(exact_diff.missing)} rows missing in compare")


async def _run(
    demo: _Demo,
    project: Project,
    dataset: Dataset,
    name: str,
    model: str,
    rows: int,
    stop_at: int | None,
) -> ExperimentRun:
    bar = ProgressBar(sys.stderr, total=rows, enabled=demo.tty, verb="scored")
    reached = asyncio.Event()

    def progress(p: RunProgress) -> None:
        bar(
            BulkProgress(
                submitted=p.done,
                applied=p.done - p.task_errors,
                failed=p.task_errors,
                retries=p.retries,
            )
        )
        if stop_at is not None and p.done >= stop_at:
            reached.set()

    run = asyncio.ensure_future(
        demo.client.experiments.run(
            project.id,
            dataset.id,
            name,
            task=adder,
            evaluators=[exact, length_ratio],
            summary_evaluators=[accuracy],
            config={"model": model, "latency": 0.002},
            concurrency=100,
            sample_size=rows,
            on_progress=progress,
        )
    )
    try:
        if stop_at is not None:
            await asyncio.wait(
                {run, asyncio.ensure_future(reached.wait())}, return_when=asyncio.FIRST_COMPLETED
            )
            run.cancel()  # as Ctrl-C would
        return await run
    finally:
        bar.close()


def _check_stored(demo: _Demo, run: ExperimentRun, records: int) -> None:
    """What the fake stored: one ok span per record, each with its two metrics, once."""
    events = demo.fake.events(run.experiment.id)
    per_record = Counter(
        tag
        for span in events.spans.values()
        for tag in span.get("tags", ())
        if tag.startswith("dataset_record_id:") and span.get("status") == "ok"
    )
    labels = Counter((m["span_id"], m["label"]) for m in events.metrics if m["span_id"])
    spans_ok = len(per_record) == records and set(per_record.values()) == {1}
    metrics_ok = set(labels.values()) == {1} and len(labels) == 2 * records
    print(
        f"   the fake holds {len(per_record):,} records with one span each and "
        f"{len(labels):,} metrics, each once"
    )
    demo.check(run.ok, f"the run ended {run.experiment.status}: {run.error}")
    demo.check(spans_ok, "a record has no span, or more than one")
    demo.check(metrics_ok, "a metric is missing or stored twice")
