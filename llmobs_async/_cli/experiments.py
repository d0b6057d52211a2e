"""``experiments run`` and ``experiments resume``: the runner from the shell.

The task and evaluators are imported first (:mod:`.callables`): a spec that
does not import is a usage error before any request. The run shows its
progress on stderr (:class:`.output.RunBar`) and ends with a summary on
stdout (text, or one JSON object with ``--json``).

Ctrl-C cancels the run: the runner marks the experiment ``interrupted`` (a
short shielded request) and stops its tasks; the command then prints the
``experiments resume`` line that finishes it, with every option it needs,
and exits 130. A second Ctrl-C quits at once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from .._client import LLMObsClient
from ..errors import LLMObsError
from ..experiments import ExperimentRun
from ..experiments._compare import compare_rows
from .again import check_join, format_shard, resume_command, summarize_command
from .callables import load, load_all
from .common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, make_client, on_ctrl_c, say
from .compare import describe, plain
from .output import RunBar, to_jsonable
from .tally import Tally, observe

Aggregates = dict[str, tuple[str | None, Any]]
"""Each evaluator's label: its metric type and its aggregate (a ``MetricAggregate`` or a Tally)."""
_RUN_ONLY = ("dataset_version", "config", "description", "runs", "sample_size")
_HOW = ("concurrency", "max_task_retries", "task_timeout")


def _code(args: argparse.Namespace) -> dict[str, Any]:
    """The task and evaluators, imported (usage errors name their option)."""
    code = {
        "task": load(args.task, "--task"),
        "evaluators": load_all(args.evaluator, "--evaluator", evaluator=True),
        "summary_evaluators": load_all(
            args.summary_evaluator, "--summary-evaluator", evaluator=True
        ),
    }
    # The runner names its arguments, and an evaluator by its place in the list.
    args.cli_names = {name: "--" + name.replace("_", "-") for name in _RUN_ONLY + _HOW}
    args.cli_names.update(
        task="--task",
        tags="--tag",
        experiment_id="--experiment-id",
        shard="--shard",
        summary_evaluators="--summary-evaluator",
    )
    for field, option, specs in (
        ("evaluators", "--evaluator", args.evaluator),
        ("summary_evaluators", "--summary-evaluator", args.summary_evaluator),
    ):
        for index, spec in enumerate(specs or ()):
            args.cli_names[f"{field}[{index}]"] = f"{option} {spec}"
    return code


def _given(args: argparse.Namespace, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


async def experiments_run(args: argparse.Namespace) -> int:
    """``experiments run``: create (or join) an experiment, run it, summarise; the exit code."""
    code = _code(args)
    check_join(args, _RUN_ONLY)
    joined = args.experiment_id is not None
    tallies: dict[str, Tally] | None = None
    if not joined or args.shard is not None:  # a whole join's aggregates are read back
        code["evaluators"], tallies = observe(code["evaluators"])
    options = _given(args, _RUN_ONLY + _HOW)
    if args.tag:
        options["tags"] = list(args.tag)
    client = make_client(args)

    def start(bar: RunBar) -> Awaitable[ExperimentRun]:
        if joined:
            return client.experiments.run(
                experiment_id=args.experiment_id, shard=args.shard, **code, on_progress=bar
            )
        return client.experiments.run(
            args.project_id, args.dataset_id, args.name, **code, **options, on_progress=bar
        )

    return await _drive(args, client, start, tallies)


async def experiments_resume(args: argparse.Namespace) -> int:
    """``experiments resume``: run what an experiment lacks, summarise; the exit code."""
    code = _code(args)
    options = _given(args, _HOW)
    client = make_client(args)

    def start(bar: RunBar) -> Awaitable[ExperimentRun]:
        return client.experiments.resume(args.id, **code, **options, on_progress=bar)

    return await _drive(args, client, start, None)


async def _drive(
    args: argparse.Namespace,
    client: LLMObsClient,
    start: Callable[[RunBar], Awaitable[ExperimentRun]],
    tallies: dict[str, Tally] | None,
) -> int:
    """Run the run (``start``), Ctrl-C and all; print its summary; the exit code.

    ``tallies`` counted the evaluators' values as the run went; without them
    (a resume, whose aggregates cover the rows of earlier runs too) they are
    read back from the API.
    """
    terminal = sys.stderr.isatty()
    show = not args.quiet and (terminal or args.progress)
    bar = RunBar(sys.stderr, enabled=show, terminal=terminal)
    stopped: list[ExperimentRun | None] = []

    async def run() -> ExperimentRun:
        try:
            return await start(bar)
        except asyncio.CancelledError as exc:
            # The runner marked the experiment interrupted and left its account here.
            stopped.append(ExperimentRun.from_exception(exc))
            raise

    started = time.monotonic()
    interrupted = False
    async with client:
        job = asyncio.ensure_future(run())

        def stop() -> None:
            nonlocal interrupted
            interrupted = True
            bar.close()
            say(
                "interrupted: stopping the run and marking the experiment interrupted "
                "(Ctrl-C again to quit at once)"
            )
            job.cancel()

        try:
            with on_ctrl_c(stop, again=lambda: _quitting(args, bar)):
                await asyncio.wait([job])
        finally:
            bar.close()
            if not job.done():  # never leave the run going behind an error of our own
                job.cancel()
                await asyncio.wait([job])
        if job.cancelled():
            account = stopped[0] if stopped else None
            if account is None:
                return _not_started(args, bar)
            result = account
        else:
            result = job.result()  # an error before the experiment existed is raised here
        if tallies is None:
            aggregates = await read_back(result) if result.ok else {}
        else:
            for tally in tallies.values():
                tally.add_error(result.task_errors)  # rows never scored
            aggregates = {
                label: (t.metric_type, t) for label, t in tallies.items() if t.count + t.errors
            }
    _report(args, result, aggregates, time.monotonic() - started)
    return _exit_code(args, result, interrupted=interrupted)


def _quitting(args: argparse.Namespace, bar: RunBar) -> str:
    """What a second Ctrl-C says: the experiment may stay ``running``; how to finish it."""
    experiment_id = bar.experiment_id or getattr(args, "id", None)
    if experiment_id is None:
        return "quitting at once"
    return (
        f"quitting at once; experiment {experiment_id} may be left running. Finish it with:\n"
        f"  {resume_command(args, experiment_id)}"
    )


def _not_started(args: argparse.Namespace, bar: RunBar) -> int:
    """Ctrl-C before the runner had an account: say what there is to resume, if anything."""
    experiment_id = bar.experiment_id or getattr(args, "id", None)
    if experiment_id is None:
        say("interrupted before the experiment was created: nothing was run")
    else:
        say(f"interrupted; finish experiment {experiment_id} with:")
        sys.stderr.write(f"  {resume_command(args, experiment_id)}\n")
    return EXIT_INTERRUPTED


async def read_back(run: ExperimentRun) -> Aggregates:
    """Each evaluator's aggregate over every row of the experiment, read back from the API."""
    try:
        rows = {row.key: row async for row in run.rows()}
    except LLMObsError as exc:
        say(f"the evaluators' aggregates could not be read back: {exc}")
        return {}
    experiment_id = run.experiment.id
    metrics = compare_rows(experiment_id, experiment_id, rows, rows).metrics
    return {label: (m.metric_type, m.candidate) for label, m in metrics.items()}


def _shard_done(args: argparse.Namespace, run: ExperimentRun) -> bool:
    """A shard that ended well: every row of its recorded, the experiment left running."""
    return (
        getattr(args, "shard", None) is not None
        and run.error is None
        and _status(run) == ("running")
    )


def _status(run: ExperimentRun) -> str:
    status = run.experiment.status
    return str(getattr(status, "value", status))


def _exit_code(args: argparse.Namespace, run: ExperimentRun, *, interrupted: bool) -> int:
    """0 completed, 130 interrupted (Ctrl-C, even if the status could not be set), else 1."""
    status = _status(run)
    experiment_id = run.experiment.id
    if status == "completed" or _shard_done(args, run):
        return EXIT_OK
    shard = getattr(args, "shard", None)
    finish = "finish it with:"
    if shard is not None:
        finish = f"run shard {format_shard(shard)} again (it skips the rows done) with:"
    if status == "interrupted":
        say(f"experiment {experiment_id} is marked interrupted; {finish}")
    elif interrupted:
        say(f"interrupted; experiment {experiment_id} could not be marked so; {finish}")
    else:
        why = f": {run.error}" if run.error is not None else ""
        say(f"experiment {experiment_id} {status}{why}")
        say("to run what it lacks once the cause is fixed:")
    sys.stderr.write(f"  {resume_command(args, experiment_id)}\n")
    sys.stderr.flush()
    return EXIT_INTERRUPTED if status == "interrupted" or interrupted else EXIT_FAILED


def _pushed(run: ExperimentRun) -> dict[str, int]:
    """What was pushed: acknowledged, and the failures split into spans and metrics."""
    result = run.pushed
    # A metric's id is span_id/label (a summary metric's, /label); a span's has no slash.
    failed_metrics = sum(
        1 for f in result.failed for rid in f.record_ids if rid is not None and "/" in rid
    )
    return {
        "acknowledged": result.applied,
        "failed_spans": result.failed_count - failed_metrics,
        "failed_metrics": failed_metrics,
        "retries": result.retries,
    }


def _report(
    args: argparse.Namespace,
    run: ExperimentRun,
    aggregates: Aggregates,
    elapsed: float,
) -> None:
    experiment = run.experiment
    status = _status(run)
    pushed = _pushed(run)
    if args.json:
        doc: dict[str, Any] = {
            "experiment_id": experiment.id,
            "name": experiment.name,
            "status": status,
            "rows_done": run.rows_done,
            "task_errors": run.task_errors,
            "pushed": pushed,
            **scores_doc(run, aggregates),
            "error": _error(run),
            "seconds": round(elapsed, 3),
        }
        if getattr(args, "shard", None) is not None:
            doc["shard"] = format_shard(args.shard)
            if _shard_done(args, run):
                doc["summarize"] = summarize_command(args, experiment.id)
        if status != "completed" and not _shard_done(args, run):
            doc["resume"] = resume_command(args, experiment.id)
        print(json.dumps(doc, ensure_ascii=False, default=str), flush=True)
    else:
        _print_text(run, status, pushed, aggregates, elapsed)
        if _shard_done(args, run):
            print(
                f"shard       {format_shard(args.shard)} done; once every shard is done, "
                f"complete the experiment with: {summarize_command(args, experiment.id)}",
                flush=True,
            )
    for failure in run.pushed.failed[:5]:
        say(f"not recorded: {len(failure.records):,} item(s): {failure.error}")


def _print_text(
    run: ExperimentRun,
    status: str,
    pushed: dict[str, int],
    aggregates: Aggregates,
    elapsed: float,
) -> None:
    experiment = run.experiment
    lines = [
        f"experiment  {experiment.id}  {experiment.name or ''}  {status}",
        f"rows        {run.rows_done:,} run in {elapsed:.1f}s; {run.task_errors:,} task errors",
        f"pushed      {pushed['acknowledged']:,} spans and metrics acknowledged; "
        f"{pushed['failed_spans']:,} spans and {pushed['failed_metrics']:,} metrics "
        f"not recorded; {pushed['retries']:,} retries",
    ]
    print("\n".join(lines + score_lines(run, aggregates)), flush=True)


def score_lines(run: ExperimentRun, aggregates: Aggregates) -> list[str]:
    """The summary's lines of the evaluators' aggregates and the summary evaluators' values."""
    lines = []
    width = max((len(label) for label in [*aggregates, *run.summary]), default=0)
    head = "evaluators  "
    for label, (kind, aggregate) in sorted(aggregates.items()):
        lines.append(f"{head}{label:<{width}}  {kind or '':<11}  {describe(aggregate)}")
        head = " " * len(head)
    head = "summary     "
    for label, value in run.summary.items():
        error = run.summary_errors.get(label)
        shown = _short(value) if error is None else f"error: {_error_text(error)}"
        lines.append(f"{head}{label:<{width}}  {shown}")
        head = " " * len(head)
    return lines


def scores_doc(run: ExperimentRun, aggregates: Aggregates) -> dict[str, Any]:
    """The same in JSON: ``summary``, ``summary_errors`` and ``evaluators``."""
    return {
        "summary": to_jsonable(dict(run.summary)),
        "summary_errors": to_jsonable(dict(run.summary_errors)),
        "evaluators": {
            label: {"metric_type": kind, **plain(aggregate)}
            for label, (kind, aggregate) in sorted(aggregates.items())
        },
    }


def _error(run: ExperimentRun) -> str | None:
    if _status(run) == "interrupted":
        return "interrupted"
    return None if run.error is None else str(run.error) or type(run.error).__name__


def _error_text(error: Any) -> str:
    if isinstance(error, Mapping):
        kind, message = error.get("type"), error.get("message")
        return f"{kind}: {message}" if kind and message else str(message or kind or error)
    return str(error)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = value if isinstance(value, str) else json.dumps(to_jsonable(value), default=str)
    return text if len(text) <= 120 else text[:117] + "..."
