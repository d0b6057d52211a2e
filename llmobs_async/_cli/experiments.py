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
from collections.abc import Awaitable, Callable
from typing import Any

from .._client import LLMObsClient
from ..errors import LLMObsError
from .callables import load, load_all
from .common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, make_client, on_ctrl_c, quoted, say
from .compare import Tally, describe, plain
from .output import RunBar, to_jsonable

_RUN_ONLY = ("dataset_version", "config", "description", "runs", "sample_size")
_HOW = ("concurrency", "max_task_retries", "task_timeout")
_RESUME_OPTIONS = (
    ("--concurrency", "concurrency"),
    ("--max-task-retries", "max_task_retries"),
    ("--task-timeout", "task_timeout"),
)


def _code(args: argparse.Namespace) -> dict[str, Any]:
    """The task and evaluators, imported (usage errors name their option)."""
    return {
        "task": load(args.task, "--task"),
        "evaluators": load_all(args.evaluator, "--evaluator", evaluator=True),
        "summary_evaluators": load_all(
            args.summary_evaluator, "--summary-evaluator", evaluator=True
        ),
    }


def _given(args: argparse.Namespace, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


async def experiments_run(args: argparse.Namespace) -> int:
    """``experiments run``: create an experiment, run it, summarise; the exit code."""
    code = _code(args)
    options = _given(args, _RUN_ONLY + _HOW)
    if args.tag:
        options["tags"] = list(args.tag)
    client = make_client(args)

    def start(bar: RunBar) -> Awaitable[Any]:
        return client.experiments.run(
            args.project_id, args.dataset_id, args.name, **code, **options, on_progress=bar
        )

    return await _drive(args, client, start, experiment_id=None)


async def experiments_resume(args: argparse.Namespace) -> int:
    """``experiments resume``: run what an experiment lacks, summarise; the exit code."""
    code = _code(args)
    options = _given(args, _HOW)
    client = make_client(args)

    def start(bar: RunBar) -> Awaitable[Any]:
        return client.experiments.resume(args.id, **code, **options, on_progress=bar)

    return await _drive(args, client, start, experiment_id=args.id)


async def _drive(
    args: argparse.Namespace,
    client: LLMObsClient,
    start: Callable[[RunBar], Awaitable[Any]],
    *,
    experiment_id: str | None,
) -> int:
    """Run the run (``start``), Ctrl-C and all; print its summary; the exit code."""
    terminal = sys.stderr.isatty()
    bar = RunBar(
        sys.stderr, enabled=not args.quiet and (terminal or args.progress), terminal=terminal
    )
    interrupted = False
    started = time.monotonic()
    async with client:
        job = asyncio.ensure_future(start(bar))

        def stop() -> None:
            nonlocal interrupted
            interrupted = True
            bar.close()
            say(
                "interrupted: stopping the run; the experiment is marked interrupted "
                "(Ctrl-C again to quit at once, leaving it running)"
            )
            job.cancel()

        try:
            with on_ctrl_c(stop, again="the experiment may be left 'running'"):
                await asyncio.wait([job])
        finally:
            bar.close()
        run = None if job.cancelled() else _result(job)
        if run is None:
            # Cancelled: the runner marked the experiment and gave up its result.
            return _interrupted(args, experiment_id)
        elapsed = time.monotonic() - started
        evaluators = await _aggregates(run) if _status(run) == "completed" else {}
    return _report(args, run, evaluators, elapsed, interrupted=interrupted)


def _result(job: asyncio.Future[Any]) -> Any:
    error = job.exception()
    if error is not None:
        raise error
    return job.result()


def _status(run: Any) -> str:
    status = run.experiment.status
    return str(getattr(status, "value", status))


async def _aggregates(run: Any) -> dict[str, Tally]:
    """Each evaluator's aggregate over every row of the experiment, read back from the API."""
    tallies: dict[str, Tally] = {}
    try:
        async for row in run.rows():
            for label, value in row.evaluations.items():
                tallies.setdefault(label, Tally()).add(value)
            for label in row.evaluation_errors:
                tallies.setdefault(label, Tally()).add_error()
    except LLMObsError as exc:
        say(f"the evaluators' aggregates could not be read back: {exc}")
    return tallies


def resume_command(args: argparse.Namespace, experiment_id: str) -> str:
    """The ``experiments resume`` line that finishes this run, every needed option in it."""
    words = ["llmobs-async", "experiments", "resume", experiment_id, "--task", args.task]
    for spec in args.evaluator or ():
        words += ["--evaluator", spec]
    for spec in args.summary_evaluator or ():
        words += ["--summary-evaluator", spec]
    for option, name in _RESUME_OPTIONS:
        value = getattr(args, name)
        if value is not None:
            words += [option, f"{value:g}" if isinstance(value, float) else str(value)]
    if args.site is not None:
        words += ["--site", args.site]
    if args.base_url is not None:
        words += ["--base-url", args.base_url]
    if args.max_retries != 5:
        words += ["--max-retries", str(args.max_retries)]
    words += [flag for flag, on in (("--json", args.json), ("--progress", args.progress)) if on]
    return " ".join(quoted(word) for word in words)


def _interrupted(args: argparse.Namespace, experiment_id: str | None) -> int:
    if experiment_id is None:
        say("interrupted before the experiment was created: nothing to resume")
        return EXIT_INTERRUPTED
    line = resume_command(args, experiment_id)
    if args.json:
        doc = {"experiment_id": experiment_id, "status": "interrupted", "resume": line}
        print(json.dumps(doc))
    say(f"experiment {experiment_id} is marked interrupted; finish it with:")
    sys.stderr.write(f"  {line}\n")
    sys.stderr.flush()
    return EXIT_INTERRUPTED


def _pushed(run: Any) -> dict[str, int]:
    """What was pushed: acknowledged, and the failures split into spans and metrics."""
    result = run.pushed
    failed_metrics = sum(
        1 for f in result.failed for rid in f.record_ids if rid is not None and "/" in rid
    )
    return {
        "acknowledged": result.applied,
        "failed": result.failed_count,
        "failed_spans": result.failed_count - failed_metrics,
        "failed_metrics": failed_metrics,
        "retries": result.retries,
    }


def _report(
    args: argparse.Namespace,
    run: Any,
    evaluators: dict[str, Tally],
    elapsed: float,
    *,
    interrupted: bool,
) -> int:
    experiment = run.experiment
    status = _status(run)
    pushed = _pushed(run)
    if args.json:
        doc = {
            "experiment_id": experiment.id,
            "name": experiment.name,
            "status": status,
            "rows": run.rows_total,
            "task_errors": run.task_errors,
            "pushed": pushed,
            "summary": to_jsonable(dict(run.summary)),
            "evaluators": {label: plain(t) for label, t in sorted(evaluators.items())},
            "seconds": round(elapsed, 3),
        }
        if status == "interrupted":
            doc["resume"] = resume_command(args, experiment.id)
        print(json.dumps(doc, ensure_ascii=False, default=str))
    else:
        _print_text(run, status, pushed, evaluators, elapsed)
    for failure in run.pushed.failed[:5]:
        say(f"not recorded: {len(failure.records)} item(s): {failure.error}")
    if status == "interrupted" or interrupted:
        return _interrupted(args, experiment.id) if not args.json else EXIT_INTERRUPTED
    if status != "completed":
        error = getattr(experiment, "error", None)
        say(f"experiment {experiment.id} {status}" + (f": {error}" if error else ""))
        if status == "failed":
            say(f"to run what it lacks: {resume_command(args, experiment.id)}")
        return EXIT_FAILED
    return EXIT_OK


def _print_text(
    run: Any, status: str, pushed: dict[str, int], evaluators: dict[str, Tally], elapsed: float
) -> None:
    experiment = run.experiment
    lines = [
        f"experiment  {experiment.id}  {experiment.name or ''}  {status}",
        f"rows        {run.rows_total:,} in {elapsed:.1f}s; {run.task_errors:,} task errors",
        f"pushed      {pushed['acknowledged']:,} spans and metrics acknowledged; "
        f"{pushed['failed_spans']:,} spans and {pushed['failed_metrics']:,} metrics failed; "
        f"{pushed['retries']:,} retries",
    ]
    width = max((len(label) for label in [*evaluators, *run.summary]), default=0)
    head = "evaluators  "
    for label, tally in sorted(evaluators.items()):
        lines.append(f"{head}{label:<{width}}  {describe(tally)}")
        head = " " * len(head)
    head = "summary     "
    for label, value in run.summary.items():
        shown = "error (the summary evaluator raised)" if value is None else _short(value)
        lines.append(f"{head}{label:<{width}}  {shown}")
        head = " " * len(head)
    print("\n".join(lines), flush=True)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = value if isinstance(value, str) else json.dumps(to_jsonable(value), default=str)
    return text if len(text) <= 120 else text[:117] + "..."
