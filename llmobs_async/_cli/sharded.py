"""``experiments create`` and ``experiments summarize``: a sharded run from the shell.

``create`` makes the experiment every shard joins (``experiments run
--experiment-id ID --shard I/N``) and prints its id, so a shell can keep it
(``EXP=$(llmobs-async experiments create ...)``); the dataset version is
pinned then, so every shard reads the same records. ``summarize`` checks
every row is stored, runs the summary evaluators and marks the experiment
``completed``; while rows are missing it exits 1 naming a few of them.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from ..errors import IncompleteExperimentError
from ..experiments import ExperimentRun
from ..models import UNSET
from .callables import load_all
from .common import EXIT_FAILED, EXIT_OK, make_client, say
from .experiments import Aggregates, read_back, score_lines, scores_doc
from .output import print_json

__all__ = ["experiments_create", "experiments_summarize"]

_SHOWN = 5
"""Missing rows a refused summarize names."""


async def experiments_create(args: argparse.Namespace) -> int:
    """``experiments create``: make the experiment shards join; print its id (or it, --json)."""
    metadata: dict[str, Any] = {}
    if args.sample_size is not None:
        metadata["sample_size"] = args.sample_size
    if args.tag:
        metadata["tags"] = list(args.tag)
    async with make_client(args) as client:
        version = args.dataset_version
        if version is None:  # pinned now: every shard reads the same records
            dataset = await client.datasets.get(args.project_id, args.dataset_id)
            version = dataset.current_version
        experiment = await client.experiments.create(
            args.project_id,
            args.dataset_id,
            args.name,
            dataset_version=UNSET if version is None else version,
            description=UNSET if args.description is None else args.description,
            config=args.config or {},
            metadata=metadata,
            run_count=args.runs or 1,
        )
    if args.json:
        print_json(experiment)
    else:
        print(experiment.id, flush=True)
    return EXIT_OK


async def experiments_summarize(args: argparse.Namespace) -> int:
    """``experiments summarize``: complete a sharded experiment; the exit code."""
    evaluators = load_all(args.summary_evaluator, "--summary-evaluator", evaluator=True)
    args.cli_names = {"wait": "--wait", "summary_evaluators": "--summary-evaluator"}
    for index, spec in enumerate(args.summary_evaluator or ()):
        args.cli_names[f"summary_evaluators[{index}]"] = f"--summary-evaluator {spec}"
    started = time.monotonic()
    async with make_client(args) as client:
        try:
            run = await client.experiments.summarize(
                args.id, summary_evaluators=evaluators, wait=args.wait
            )
        except IncompleteExperimentError as exc:
            _incomplete(args, exc)
            return EXIT_FAILED
        aggregates = await read_back(run) if run.ok else {}
    _report(args, run, aggregates, time.monotonic() - started)
    if not run.ok:
        say(f"experiment {run.experiment.id} {_status(run)}: {run.error}")
        return EXIT_FAILED
    return EXIT_OK


def _status(run: ExperimentRun) -> str:
    status = run.experiment.status
    return str(getattr(status, "value", status))


def _incomplete(args: argparse.Namespace, exc: IncompleteExperimentError) -> None:
    shown = [f"{key[0]} (run {key[1]})" for key in exc.missing[:_SHOWN]]
    more = ", ..." if len(exc.missing) > _SHOWN else ""
    say(
        f"experiment {exc.experiment_id} is not complete: {len(exc.missing):,} of "
        f"{exc.expected:,} rows are missing: {', '.join(shown)}{more}"
    )
    say(
        "run the shards that lack them (a restarted shard skips its rows done), "
        "or summarize again with a longer --wait"
    )
    if args.json:
        doc = {
            "experiment_id": exc.experiment_id,
            "status": "incomplete",
            "expected": exc.expected,
            "missing": len(exc.missing),
            "missing_rows": [list(key) for key in exc.missing[:_SHOWN]],
        }
        print(json.dumps(doc, ensure_ascii=False), flush=True)


def _report(
    args: argparse.Namespace, run: ExperimentRun, aggregates: Aggregates, elapsed: float
) -> None:
    experiment = run.experiment
    status = _status(run)
    if args.json:
        doc: dict[str, Any] = {
            "experiment_id": experiment.id,
            "name": experiment.name,
            "status": status,
            "task_errors": run.task_errors,
            **scores_doc(run, aggregates),
            "error": None if run.error is None else str(run.error),
            "seconds": round(elapsed, 3),
        }
        print(json.dumps(doc, ensure_ascii=False, default=str), flush=True)
        return
    lines = [
        f"experiment  {experiment.id}  {experiment.name or ''}  {status}",
        f"rows        every row recorded; {run.task_errors:,} task errors",
    ]
    print("\n".join(lines + score_lines(run, aggregates)), flush=True)
