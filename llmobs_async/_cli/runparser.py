"""The grammar of ``experiments run``, ``experiments resume`` and ``experiments compare``.

Kept apart from :mod:`.parser` (which calls :func:`add`) because the runner's
options are many. An option the user leaves out is ``None`` and is not
passed on, so the runner's own defaults apply and the resume line repeats
only what was typed.
"""

from __future__ import annotations

import argparse
from typing import Any

from . import compare, experiments
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


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0; got {text}")
    return value


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
        type=_positive_seconds,
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
        help="create an experiment and run a task and evaluators over a dataset",
        description="Create an experiment, run the task over every record of the dataset "
        "(--runs times each), score each output with the evaluators, push every span and "
        "metric, and print a summary. A task that fails after its retries is a row with an "
        "error, not a failed run. Ctrl-C marks the experiment interrupted and prints the "
        "'experiments resume' command that finishes it.",
        epilog="Exit status: 0 completed (task errors included: they are rows), 1 the "
        "experiment failed (a span or metric was not recorded, or the run could not "
        "finish), 2 usage error (nothing was sent), 130 interrupted.",
    )
    run.add_argument("--project-id", required=True)
    run.add_argument("--dataset-id", required=True)
    run.add_argument("--name", required=True, help="the experiment's name")
    _callables(run)
    data = run.add_argument_group("the experiment")
    data.add_argument(
        "--config",
        type=config_option,
        metavar="JSON",
        help="the task's config: a JSON object or @FILE; stored with the experiment",
    )
    data.add_argument(
        "--dataset-version",
        type=_count(0),
        metavar="V",
        help="this version of the dataset (current)",
    )
    data.add_argument("--runs", type=_count(1), metavar="N", help="times each record is run (1)")
    data.add_argument(
        "--sample-size", type=_count(1), metavar="N", help="only the first N records (all)"
    )
    data.add_argument("--description")
    data.add_argument(
        "--tag", action="append", metavar="KEY:VALUE", help="a tag of the experiment (repeat)"
    )
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
