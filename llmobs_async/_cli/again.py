"""A run that joins an experiment: what it may be given, and the lines it prints to type next.

:func:`check_join` refuses, before any request, a run given both a new
experiment and ``--experiment-id`` (or neither, or ``--shard`` alone).

An interrupted or failed run prints the ``experiments resume`` line that
finishes it; a run that joined an experiment (``--experiment-id``, a shard)
prints its own ``experiments run --experiment-id ID [--shard I/N]`` line,
which skips the rows done. A shard that ended well prints the
``experiments summarize`` line that completes the experiment. Each line
carries every option it needs (the task, evaluators, where to send).
"""

from __future__ import annotations

import argparse

from ..errors import ValidationError
from .common import quoted

__all__ = ["check_join", "format_shard", "resume_command", "summarize_command"]

_HOW_OPTIONS = (
    ("--concurrency", "concurrency"),
    ("--max-task-retries", "max_task_retries"),
    ("--task-timeout", "task_timeout"),
)


def format_shard(shard: tuple[int, int]) -> str:
    """``(3, 8)`` as typed: ``3/8``."""
    return f"{shard[0]}/{shard[1]}"


def _where(args: argparse.Namespace) -> list[str]:
    words = []
    if args.site is not None:
        words += ["--site", args.site]
    if args.base_url is not None:
        words += ["--base-url", args.base_url]
    if args.max_retries != 5:
        words += ["--max-retries", str(args.max_retries)]
    return words


def resume_command(args: argparse.Namespace, experiment_id: str) -> str:
    """The line that finishes this run, every needed option in it.

    ``experiments resume ID``; for a run that joined an experiment, the same
    ``experiments run --experiment-id ID [--shard I/N]`` again.
    """
    shard = getattr(args, "shard", None)
    if getattr(args, "experiment_id", None) is not None:
        words = ["llmobs-async", "experiments", "run", "--experiment-id", experiment_id]
        if shard is not None:
            words += ["--shard", format_shard(shard)]
    else:
        words = ["llmobs-async", "experiments", "resume", experiment_id]
    words += ["--task", args.task]
    for spec in args.evaluator or ():
        words += ["--evaluator", spec]
    for spec in args.summary_evaluator or ():
        words += ["--summary-evaluator", spec]
    for option, name in _HOW_OPTIONS:
        value = getattr(args, name)
        if value is not None:
            words += [option, f"{value:g}" if isinstance(value, float) else str(value)]
    words += _where(args)
    words += [flag for flag, on in (("--json", args.json), ("--progress", args.progress)) if on]
    return " ".join(quoted(word) for word in words)


def summarize_command(args: argparse.Namespace, experiment_id: str) -> str:
    """The ``experiments summarize`` line that completes a sharded experiment."""
    words = ["llmobs-async", "experiments", "summarize", experiment_id, *_where(args)]
    return " ".join(quoted(word) for word in words)


def check_join(args: argparse.Namespace, made_with: tuple[str, ...]) -> None:
    """A new experiment (--project-id, --dataset-id, --name) or one to join; never both.

    ``made_with``: the options (as argument names) that describe a new
    experiment, refused with ``--experiment-id``.
    """
    new = {"--project-id": args.project_id, "--dataset-id": args.dataset_id, "--name": args.name}
    if args.experiment_id is None:
        if args.shard is not None:
            raise ValidationError(
                "--shard",
                "a sharded run joins an experiment made beforehand: make it with "
                "'experiments create' and pass --experiment-id",
            )
        for option, value in new.items():
            if value is None:
                raise ValidationError(
                    option,
                    "is required (or --experiment-id, to join an experiment made with "
                    "'experiments create')",
                )
        return
    given = [option for option, value in new.items() if value is not None]
    given += [
        f"--{n.replace('_', '-')}" for n in (*made_with, "tag") if getattr(args, n) is not None
    ]
    if args.shard is not None and args.summary_evaluator:
        raise ValidationError(
            "--summary-evaluator",
            "not with --shard: a shard sees only its rows: pass them to 'experiments summarize'",
        )
    if given:
        raise ValidationError(
            given[0],
            "not with --experiment-id: the experiment was made with its dataset, version, "
            "config, runs, sample size and tags ('experiments create')",
        )
