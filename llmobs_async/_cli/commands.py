"""The single-call commands (``experiments update``, ``projects update``), the fake, the demo."""

from __future__ import annotations

import argparse
import asyncio
import os

from ..errors import ValidationError
from .common import EXIT_OK, given, make_client, quoted
from .output import print_json


async def experiments_update(args: argparse.Namespace) -> int:
    """``experiments update``: change the given fields of one experiment and print it."""
    fields = given(args, "status", "name", "description", "dataset_id", "error", "metadata")
    async with make_client(args) as client:
        experiment = await client.experiments.update(args.id, **fields)
    print_json(experiment)
    return EXIT_OK


async def projects_update(args: argparse.Namespace) -> int:
    """``projects update``: change the given fields of one project and print it."""
    async with make_client(args) as client:
        project = await client.projects.update(args.id, **given(args, "name", "description"))
    print_json(project)
    return EXIT_OK


async def fake_server(args: argparse.Namespace) -> int:
    """``fake-server``: the fake API in the foreground, seeded, until Ctrl-C."""
    from ..testing import Chaos, FakeLLMObsServer

    if not 0 <= args.port <= 65535:
        raise ValidationError("--port", f"must be 0 to 65535 (0: any free port); got {args.port}")
    rates = (args.error_rate, args.rate_limit_rate, args.drop_rate)
    if sum(rates) > 1.0:
        raise ValidationError(
            "--error-rate", "with --rate-limit-rate and --drop-rate, adds up to more than 1"
        )
    fake = FakeLLMObsServer(port=args.port, rate_limit=args.rate_limit, latency=args.latency)
    if any(rates):
        fake.chaos = Chaos(
            error_rate=args.error_rate,
            rate_limit_rate=args.rate_limit_rate,
            drop_rate=args.drop_rate,
            seed=args.seed,
        )
    try:
        await fake.start()
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        hint = " (a Datadog agent listens on 8126)" if args.port == 8126 else ""
        raise ValidationError(
            "--port",
            f"cannot listen on 127.0.0.1:{args.port}: {why}{hint}; --port 0 picks a free one",
        ) from None
    async with fake:
        project_id = fake.add_project(name="local project")
        dataset_id = fake.add_dataset(
            project_id=project_id, records=args.records, name="local dataset"
        )
        experiment_id = fake.add_experiment(project_id=project_id, dataset_id=dataset_id)
        last = f"rec-{args.records - 1}"
        print(
            f"fake LLM Observability API on {fake.base_url} (Ctrl-C to stop)\n"
            f"  project    {project_id}\n"
            f"  dataset    {dataset_id} ({args.records:,} records, rec-0 .. {last})\n"
            f"  experiment {experiment_id}\n"
            f"  faults     {_faults_line(args)}\n"
            "Point an app (this client, or ddtrace) or this command line at it, no code change:\n"
            f"  export DD_LLMOBS_OVERRIDE_ORIGIN={fake.base_url} "
            f"DD_API_KEY={fake.api_key} DD_APP_KEY={fake.app_key}\n"
            "then, e.g.:\n"
            f"  llmobs-async records list --project-id {quoted(project_id)} "
            f"--dataset-id {quoted(dataset_id)} | head -3\n"
            f"  llmobs-async experiments update {quoted(experiment_id)} --status completed",
            flush=True,
        )
        await asyncio.Event().wait()
    return EXIT_OK  # pragma: no cover - runs until interrupted


def _faults_line(args: argparse.Namespace) -> str:
    said = [
        f"{label} {value}"
        for label, value in (
            ("latency", f"{args.latency:g}s" if args.latency else ""),
            ("503", f"{args.error_rate:.1%}" if args.error_rate else ""),
            ("429", f"{args.rate_limit_rate:.1%}" if args.rate_limit_rate else ""),
            ("dropped", f"{args.drop_rate:.1%}" if args.drop_rate else ""),
            ("limit", "{}/{:g}s".format(*args.rate_limit) if args.rate_limit else ""),
        )
        if value
    ]
    if args.error_rate or args.rate_limit_rate or args.drop_rate:
        said.append(f"seed {args.seed}")
    return ", ".join(said) or "none"


async def demo(args: argparse.Namespace) -> int:
    """``demo``: the whole workflow against an in-process fake (see :mod:`.demo`)."""
    from .demo import run_demo

    return await run_demo(records=args.records)
