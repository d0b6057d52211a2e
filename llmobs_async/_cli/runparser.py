"""The grammar of ``experiments run``, ``resume``, ``create``, ``summarize`` and ``compare``.

Kept apart from :mod:`.parser` (which calls :func:`add`) because the runner's
options are many. An option the user leaves out is ``None`` and is not
passed on, so the runner's own defaults apply and the resume line repeats
only what was typed.
"""

from __future__ import annotations

import argparse
from typing import Any

from . import compare, experiments, sharded
from .callables import config_option


def _count(low: int) -> Any:
    """An argparse type: an integer of at least ``low``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}; got {value}")
        return value

    return parse


def _seconds(*, zero: bool) -> Any:
    """An argparse type: a finite number of seconds, > 0 (or >= 0 with ``zero``)."""
    least = ">= 0" if zero else "> 0"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not (value >= 0.0 if zero else value > 0.0) or not value < float("inf"):
            raise argparse.ArgumentTypeError(f"must be a number of seconds {least}; got {text}")
        return value

    return parse


def _shard(text: str) -> tuple[int, int]:
    """``--shard I/N``: shard I (from 0) of N."""
    i, slash, n = text.partition("/")
    try:
        shard = int(i), int(n)
    except ValueError:
        shard = (-1, 0)
    if not slash or not 0 <= shard[0] < shard[1]:
        raise argparse.ArgumentTypeError(f"must be I/N with 0 <= I < N, e.g. 3/8; got {text!r}")
    return shard


def _callables(parser: argparse.ArgumentParser, *, task_required: bool = True) -> None:
    """What runs: the task and the evaluators, each ``MODULE:FUNCTION``."""
    code = parser.add_argument_group(
        "what runs (MODULE:FUNCTION: a dotted module found from the current directory, "
        "or a path/to/file.py; async or plain functions, ddtrace's signatures)"
    )
    code.add_argument(
        "--task",
        required=task_required,
        metavar="MODULE:FUNCTION",
        help="the task: task(input_data, config), or with a third parameter named metadata",
    )
    code.add_argument(
        "--evaluator",
        action="append",
        metavar="MODULE:FUNCTION",
        help="an evaluator: fn(input_data, output_data, expected_output), or an object "
        "with name and evaluate(context); its label is its name (repeat for more)",
    )
    code.add_argument(
        "--summary-evaluator",
        action="append",
        metavar="MODULE:FUNCTION",
        help="a summary evaluator: fn(inputs, outputs, expected_outputs, "
        "evaluators_results) (repeat for more)",
    )


def _how(parser: argparse.ArgumentParser) -> None:
    """How it runs: concurrency, retries, timeout, and what is shown."""
    how = parser.add_argument_group("how it runs")
    how.add_argument("--concurrency", type=_count(1), metavar="N", help="rows run at once (10)")
    how.add_argument(
        "--max-task-retries",
        type=_count(0),
        metavar="N",
        help="retries of a task that raises, with backoff; then the row carries the error (2)",
    )
    how.add_argument(
        "--task-timeout",
        type=_seconds(zero=False),
        metavar="SECONDS",
        help="a task running longer fails with a timeout (none)",
    )
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument(
        "--progress",
        action="store_true",
        help="show progress on stderr even when it is not a terminal (a line a second)",
    )
    shown.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument(
        "--json", action="store_true", help="print the summary as one JSON object on stdout"
    )


def add(group: Any, api: argparse.ArgumentParser) -> None:
    """Add ``run``, ``resume`` and ``compare`` to the ``experiments`` subcommands."""
    run = group.add_parser(
        "run",
        parents=[api],
        help="create an experiment (or join one: --experiment-id, --shard) and run a task "
        "and evaluators over a dataset",
        description="Create an experiment, run the task over every record of the dataset "
        "(--runs times each), score each output with the evaluators, push every span and "
        "metric, and print a summary. A task that fails after its retries is a row with an "
        "error, not a failed run. Ctrl-C marks the experiment interrupted and prints the "
        "'experiments resume' command that finishes it. With --experiment-id (an experiment "
        "made with 'experiments create') the run joins it instead and runs only the rows it "
        "lacks; with --shard I/N too, only the records of shard I of N: N workers share one "
        "experiment, and 'experiments summarize' completes it.",
        epilog="Exit status: 0 completed (task errors included: they are rows; a shard: "
        "its rows recorded), 1 the experiment failed (a span or metric was not recorded, or "
        "the run could not finish), 2 usage error (nothing was sent), 130 interrupted.",
    )
    run.add_argument("--project-id")
    run.add_argument("--dataset-id")
    run.add_argument("--name", help="the experiment's name")
    join = run.add_argument_group("or join an experiment made with 'experiments create'")
    join.add_argument(
        "--experiment-id",
        metavar="ID",
        help="run the rows this experiment lacks, with its dataset version, config and runs",
    )
    join.add_argument(
        "--shard",
        type=_shard,
        metavar="I/N",
        help="only the records of shard I of N (from 0/N): a stable hash of the record id",
    )
    _callables(run)
    _definition(run.add_argument_group("the experiment (not with --experiment-id)"))
    _how(run)
    run.set_defaults(run=experiments.experiments_run)

    resume = group.add_parser(
        "resume",
        parents=[api],
        help="finish an interrupted or failed experiment: only the rows it lacks",
        description="Run the rows of EXPERIMENT_ID that have no span or whose task "
        "failed, score the outputs that miss an evaluator's metric (without running their "
        "task again), and recompute the summary over every row. The dataset version, "
        "config and runs are the experiment's own.",
        epilog="Exit status as for 'experiments run'.",
    )
    resume.add_argument("id", metavar="EXPERIMENT_ID")
    _callables(resume)
    _how(resume)
    resume.set_defaults(run=experiments.experiments_resume)

    _sharded(group, api)

    cmp = group.add_parser(
        "compare",
        parents=[api],
        help="compare two experiments metric by metric (a CI gate)",
        description="Match the rows of two experiments by record and run iteration and "
        "print, per metric label, both aggregates and how many rows improved, regressed, "
        "stayed unchanged or are missing from one of them.",
        epilog="Exit status: 0 no regression in the labels given to --fail-on-regression "
        "(or none given), 1 one of them regressed (or the candidate has none of its "
        "metrics), 2 usage error (such as a label neither experiment has).",
    )
    cmp.add_argument("baseline", metavar="BASELINE_ID")
    cmp.add_argument("candidate", metavar="CANDIDATE_ID")
    cmp.add_argument(
        "--fail-on-regression",
        action="append",
        metavar="LABEL",
        help="exit 1 when any row regressed on this metric (repeat for more)",
    )
    cmp.add_argument(
        "--show",
        type=_count(0),
        default=5,
        metavar="N",
        help="regressed rows listed per metric (5)",
    )
    cmp.add_argument("--json", action="store_true", help="print the comparison as JSON")
    cmp.set_defaults(run=compare.experiments_compare)


def _definition(group: Any) -> None:
    """What an experiment is made with, by ``run`` or ``create`` (a joined run has its own)."""
    group.add_argument(
        "--config",
        type=config_option,
        metavar="JSON",
        help="the task's config: a JSON object or @FILE; stored with the experiment",
    )
    group.add_argument(
        "--dataset-version",
        type=_count(0),
        metavar="V",
        help="this version of the dataset (the current one, pinned)",
    )
    group.add_argument("--runs", type=_count(1), metavar="N", help="times each record is run (1)")
    group.add_argument(
        "--sample-size", type=_count(1), metavar="N", help="only the first N records (all)"
    )
    group.add_argument("--description")
    group.add_argument(
        "--tag", action="append", metavar="KEY:VALUE", help="a tag of every span (repeat)"
    )


def _sharded(group: Any, api: argparse.ArgumentParser) -> None:
    """``create`` and ``summarize``: the two ends of a sharded run."""
    new = group.add_parser(
        "create",
        parents=[api],
        help="make an experiment for shards to join; print its id",
        description="Make an experiment on a dataset (its version pinned) and print its id, "
        "for 'experiments run --experiment-id ID --shard I/N' in each worker and "
        "'experiments summarize ID' at the end: EXP=$(llmobs-async experiments create ...).",
    )
    new.add_argument("--project-id", required=True)
    new.add_argument("--dataset-id", required=True)
    new.add_argument("--name", required=True, help="the experiment's name")
    _definition(new)
    new.add_argument("--json", action="store_true", help="print the experiment as JSON")
    new.set_defaults(run=sharded.experiments_create)

    done = group.add_parser(
        "summarize",
        parents=[api],
        help="complete an experiment run by shards: check every row, push the summary",
        description="Check that every row of EXPERIMENT_ID is stored (every record of its "
        "dataset version, sample and runs), run the summary evaluators over them in record "
        "order, push their metrics and mark the experiment completed.",
        epilog="Exit status: 0 completed, 1 rows are missing (how many, and a few of them, are "
        "printed; nothing is pushed) or the summary could not be recorded, 2 usage error.",
    )
    done.add_argument("id", metavar="EXPERIMENT_ID")
    done.add_argument(
        "--summary-evaluator",
        action="append",
        metavar="MODULE:FUNCTION",
        help="a summary evaluator: fn(inputs, outputs, expected_outputs, "
        "evaluators_results) (repeat for more)",
    )
    done.add_argument(
        "--wait",
        type=_seconds(zero=True),
        default=30.0,
        metavar="SECONDS",
        help="while rows are missing, read them again for up to this long (30: the "
        "events list can lag the pushes by seconds)",
    )
    done.add_argument("--json", action="store_true", help="print the summary as JSON")
    done.set_defaults(run=sharded.experiments_summarize)
