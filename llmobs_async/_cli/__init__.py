"""The ``llmobs-async`` command line: updates, bulk record updates, the fake API, the demo.

Exit codes: 0 everything applied, 1 something failed, 2 usage or configuration error.
Credentials come from DD_API_KEY and DD_APP_KEY only (never from arguments,
which end up in shell history), and are never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from .._client import LLMObsClient
from ..errors import LLMObsError, ValidationError
from ..models import UNSET, ExperimentStatus
from .output import print_json

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return value


def _parser() -> argparse.ArgumentParser:
    api = argparse.ArgumentParser(add_help=False)
    where = api.add_argument_group("where to send (keys come from DD_API_KEY and DD_APP_KEY)")
    where.add_argument("--site", help="Datadog site, e.g. datadoghq.eu (default: DD_SITE)")
    where.add_argument("--base-url", help="API base URL, overrides --site")
    where.add_argument(
        "--max-retries",
        type=int,
        default=5,
        help="retries of a request on 429, 5xx and connection errors (5)",
    )
    api.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="say more: every failed line, and the library's warnings (-vv: debug log)",
    )

    parser = argparse.ArgumentParser(
        prog="llmobs-async",
        description="Update Datadog LLM Observability experiments, projects and dataset records.",
        epilog="Exit status: 0 all applied, 1 some failed, 2 usage or configuration error.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    records = commands.add_parser("records", help="dataset records").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    upd = records.add_parser(
        "update",
        parents=[api],
        help="update records from a JSON Lines file, in batches",
        description="Update dataset records from FILE: one JSON object a line, each with "
        "an 'id' and any of 'input', 'expected_output', 'metadata'.",
    )
    upd.add_argument("file", metavar="FILE", help="JSON Lines file, or - for stdin")
    upd.add_argument("--project-id", required=True)
    upd.add_argument("--dataset-id", required=True)
    upd.add_argument("--batch-size", type=int, default=1000, help="records a request (1000)")
    upd.add_argument(
        "--failed-out",
        metavar="FILE",
        help="write every record not applied here (each marked with why), to re-run them",
    )
    upd.add_argument(
        "--start-line",
        "--resume-from",
        type=int,
        default=1,
        metavar="N",
        help="skip the lines before line N (what an interrupted run says to resume from)",
    )
    upd.add_argument(
        "--grace",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="on Ctrl-C, how long the batches in flight may finish (5)",
    )
    upd.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    experiments = commands.add_parser("experiments", help="experiments").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    exp = experiments.add_parser("update", parents=[api], help="update one experiment")
    exp.add_argument("id", metavar="EXPERIMENT_ID")
    exp.add_argument("--status", choices=[s.value for s in ExperimentStatus])
    exp.add_argument("--name")
    exp.add_argument("--description")
    exp.add_argument("--dataset-id")
    exp.add_argument("--error", help="why the experiment failed")
    exp.add_argument("--metadata", type=_json_object, help="a JSON object")

    projects = commands.add_parser("projects", help="projects").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    proj = projects.add_parser("update", parents=[api], help="update one project")
    proj.add_argument("id", metavar="PROJECT_ID")
    proj.add_argument("--name")
    proj.add_argument("--description")

    fake = commands.add_parser(
        "fake-server", help="run the fake LLM Observability API in the foreground"
    )
    fake.add_argument("--port", type=int, default=8126, help="port on 127.0.0.1 (8126)")
    fake.add_argument(
        "--records", type=int, default=1000, help="records in the seeded dataset (1000)"
    )

    demo = commands.add_parser(
        "demo", help="run the client end to end against the fake API (no account needed)"
    )
    demo.add_argument("--records", type=int, default=20_000, help="records to update (20000)")
    return parser


def _client(args: argparse.Namespace) -> LLMObsClient:
    # Checked here so the message names the variable, not a Python argument.
    _check_key("DD_API_KEY", os.environ.get("DD_API_KEY"), "API key")
    app_name = "DD_APP_KEY" if os.environ.get("DD_APP_KEY") else "DD_APPLICATION_KEY"
    _check_key("DD_APP_KEY", os.environ.get(app_name), "application key", name=app_name)
    return LLMObsClient(site=args.site, base_url=args.base_url, max_retries=args.max_retries)


def _check_key(field: str, value: str | None, what: str, *, name: str | None = None) -> None:
    if not value or not value.strip():
        raise ValidationError(field, f"is not set: export your Datadog {what}")
    if value != value.strip() or any(c in value for c in "\r\n\0"):
        # Typically a key pasted or read from a file with its newline.
        raise ValidationError(
            name or field, "has a line break, a NUL or whitespace around it (read from a file?)"
        )


# The library names its arguments; the command line speaks of options and variables.
_CLI_NAMES = {
    "api_key": "DD_API_KEY",
    "app_key": "DD_APP_KEY",
    "base_url": "--base-url",
    "site": "--site",
    "batch_size": "--batch-size",
    "max_retries": "--max-retries",
    "dataset_id": "--dataset-id",
    "project_id": "--project-id",
    "experiment_id": "EXPERIMENT_ID",
    "status": "--status",
    "name": "--name",
    "description": "--description",
    "error": "--error",
    "metadata": "--metadata",
}
_PYTHON_ARGUMENT = re.compile(r"\b(" + "|".join(_CLI_NAMES) + r")=")


def cli_message(exc: ValidationError) -> str:
    """A ValidationError in command-line terms: ``--base-url: ...``, not ``base_url: ...``."""
    head, sep, rest = exc.field.partition(".")
    field = _CLI_NAMES.get(head, head) + sep + rest
    reason = _PYTHON_ARGUMENT.sub(lambda m: _CLI_NAMES[m.group(1)], exc.reason)
    return f"{field}: {reason}" if field else reason


def _configure_logging(verbose: int) -> None:
    """The CLI owns its output: the library's log shows only under -v."""
    library = logging.getLogger("llmobs_async")
    library.propagate = False
    if not verbose:
        # A handler, even a null one, keeps logging's last-resort stderr printer away.
        library.addHandler(logging.NullHandler())
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("llmobs-async: %(message)s"))
    library.addHandler(handler)
    library.setLevel(logging.INFO if verbose == 1 else logging.DEBUG)


async def _experiments_update(args: argparse.Namespace) -> int:
    fields = {
        "status": args.status,
        "name": args.name,
        "description": args.description,
        "dataset_id": args.dataset_id,
        "error": args.error,
        "metadata": args.metadata,
    }
    async with _client(args) as client:
        experiment = await client.experiments.update(
            args.id, **{k: (UNSET if v is None else v) for k, v in fields.items()}
        )
    print_json(experiment)
    return EXIT_OK


async def _projects_update(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        project = await client.projects.update(
            args.id,
            name=UNSET if args.name is None else args.name,
            description=UNSET if args.description is None else args.description,
        )
    print_json(project)
    return EXIT_OK


async def _records_update(args: argparse.Namespace) -> int:
    from .records import records_update

    return await records_update(args, _client(args))


async def _fake_server(args: argparse.Namespace) -> int:
    from ..testing import FakeLLMObsServer

    async with FakeLLMObsServer(port=args.port) as fake:
        project_id = fake.add_project(name="local project")
        dataset_id = fake.add_dataset(project_id=project_id, records=args.records)
        experiment_id = fake.add_experiment(project_id=project_id, dataset_id=dataset_id)
        print(f"fake LLM Observability API on {fake.base_url} (Ctrl-C to stop)")
        print(f"  export DD_API_KEY={fake.api_key} DD_APP_KEY={fake.app_key}")
        print(f"  project {project_id}\n  dataset {dataset_id} (rec-0 .. rec-{args.records - 1})")
        print(f"  experiment {experiment_id}")
        print(
            f"  llmobs-async --help; e.g.: llmobs-async experiments update {experiment_id} "
            f"--status completed --base-url {fake.base_url}",
            flush=True,
        )
        await asyncio.Event().wait()
    return EXIT_OK  # pragma: no cover - runs until interrupted


async def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return await run_demo(records=args.records)


_COMMANDS: dict[
    tuple[str, str | None], Callable[[argparse.Namespace], Coroutine[Any, Any, int]]
] = {
    ("records", "update"): _records_update,
    ("experiments", "update"): _experiments_update,
    ("projects", "update"): _projects_update,
    ("fake-server", None): _fake_server,
    ("demo", None): _demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    args = _parser().parse_args(argv)
    command = _COMMANDS[(args.command, getattr(args, "action", None))]
    _configure_logging(getattr(args, "verbose", 0))
    try:
        return asyncio.run(command(args))
    except ValidationError as exc:
        print(f"llmobs-async: error: {cli_message(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except LLMObsError as exc:
        print(f"llmobs-async: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
