"""The command line's grammar: every command, its options, and the function that runs it.

Each command's parser sets ``run`` (the coroutine function to call with the
parsed arguments) and may set ``cli_names`` (how library field names are
spelled in its messages, where they differ from :data:`.common.CLI_NAMES`).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..models import ExperimentStatus
from . import commands, csvin, pull, records, runparser, workflow


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return value


def _number(low: float, high: float, what: str) -> Any:
    """An argparse type: a number from ``low`` to ``high``, named ``what`` in the refusal."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {what}; got {text}")
        return value

    return parse


_fraction = _number(0.0, 1.0, "a fraction from 0 to 1")
_seconds = _number(0.0, 60.0, "0 to 60 seconds")


def _per(text: str) -> tuple[int, float]:
    count, slash, period = text.partition("/")
    try:
        limit, seconds = int(count), float(period)
    except ValueError:
        limit, seconds = 0, 0.0
    if not slash or limit < 1 or not 0.0 < seconds <= 3600.0:
        raise argparse.ArgumentTypeError(f"must be REQUESTS/SECONDS, e.g. 600/60; got {text!r}")
    return limit, seconds


def _api_options() -> argparse.ArgumentParser:
    api = argparse.ArgumentParser(add_help=False)
    where = api.add_argument_group(
        "where to send (keys come from DD_API_KEY and DD_APP_KEY; with neither --site nor "
        "--base-url, DD_LLMOBS_OVERRIDE_ORIGIN, then DD_SITE)"
    )
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
    return api


def _group(commands_: Any, name: str, help_: str) -> Any:
    return commands_.add_parser(name, help=help_).add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )


def _bulk(parser: argparse.ArgumentParser) -> None:
    """The options of a command that streams a JSON Lines file through the bulk engine."""
    parser.add_argument("file", metavar="FILE", help="JSON Lines file, or - for stdin")
    parser.add_argument("--project-id", required=True)
    parser.add_argument("--dataset-id", required=True)
    parser.add_argument("--batch-size", type=int, default=1000, help="records a request (1000)")
    parser.add_argument(
        "--failed-out",
        metavar="FILE",
        help="write every record not applied here (each marked with why), to re-run them",
    )
    parser.add_argument(
        "--start-line",
        "--resume-from",
        type=int,
        default=1,
        metavar="N",
        help="skip the lines before line N (what an interrupted run says to resume from)",
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="on Ctrl-C, how long the batches in flight may finish (5)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _page_size(parser: argparse.ArgumentParser, default: str = "the API's") -> None:
    parser.add_argument(
        "--page-size", type=int, metavar="N", help=f"items a page, 1 to 5000 ({default})"
    )


def _records(commands_: Any, api: argparse.ArgumentParser) -> None:
    group = _group(commands_, "records", "dataset records")
    upd = group.add_parser(
        "update",
        parents=[api],
        help="update records from a JSON Lines file, in batches",
        description="Update dataset records from FILE: one JSON object a line, each with "
        "an 'id' and any of 'input', 'expected_output', 'metadata'.",
    )
    _bulk(upd)
    upd.set_defaults(run=records.records_update)

    new = group.add_parser(
        "create",
        parents=[api],
        help="add records from a JSON Lines or CSV file, as one new dataset version",
        description="Add records to a dataset from FILE: one JSON object a line, each with "
        "'input' and any of 'expected_output', 'metadata', 'id', 'tags'. What 'records list' "
        "writes is accepted as is: the fields the API assigns (created_at, version, ...) are "
        "dropped. Or a CSV file with a header row: each row a record, --input-columns "
        "and the other column options say which columns make which field. The whole run "
        "makes one new dataset version.",
    )
    _bulk(new)
    csvin.add_options(new)
    new.add_argument(
        "--no-deduplicate",
        dest="deduplicate",
        action="store_false",
        help="add records even when one with the same input and expected output exists "
        "(by default the API skips them, so a re-run adds nothing twice)",
    )
    new.set_defaults(run=records.records_create)

    ls = group.add_parser(
        "list",
        parents=[api],
        help="write every record of a dataset as JSON Lines (resumable)",
        description="Write every record of a dataset, one JSON object a line, page by page. "
        "On an error or Ctrl-C only whole pages are written, and the command says the "
        "--cursor to resume from.",
    )
    ls.add_argument("--project-id", required=True)
    ls.add_argument("--dataset-id", required=True)
    ls.add_argument("--version", type=int, metavar="V", help="this dataset version (current)")
    _page_size(ls)
    ls.add_argument("--cursor", metavar="C", help="resume from here (what a stopped run says)")
    ls.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    ls.add_argument(
        "--append", action="store_true", help="add to the end of -o FILE (to resume a pull)"
    )
    ls.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    ls.set_defaults(run=pull.records_list)


def _datasets(commands_: Any, api: argparse.ArgumentParser) -> None:
    group = _group(commands_, "datasets", "datasets of a project")
    ls = group.add_parser(
        "list", parents=[api], help="the project's datasets, one JSON object a line"
    )
    ls.add_argument("--project-id", required=True)
    ls.add_argument("--name", help="only the dataset of this exact name")
    _page_size(ls)
    ls.set_defaults(run=workflow.datasets_list)

    new = group.add_parser("create", parents=[api], help="create an empty dataset and print it")
    new.add_argument("name", metavar="NAME")
    new.add_argument("--project-id", required=True)
    new.add_argument("--description")
    new.add_argument("--metadata", type=_json_object, help="a JSON object")
    new.set_defaults(run=workflow.datasets_create, cli_names={"name": "NAME"})


def _experiments(commands_: Any, api: argparse.ArgumentParser) -> None:
    group = _group(commands_, "experiments", "experiments")
    upd = group.add_parser("update", parents=[api], help="update one experiment")
    upd.add_argument("id", metavar="EXPERIMENT_ID")
    upd.add_argument("--status", choices=[s.value for s in ExperimentStatus])
    upd.add_argument("--name")
    upd.add_argument("--description")
    upd.add_argument("--dataset-id")
    upd.add_argument("--error", help="why the experiment failed")
    upd.add_argument("--metadata", type=_json_object, help="a JSON object")
    upd.set_defaults(run=commands.experiments_update)

    ls = group.add_parser(
        "list", parents=[api], help="a project's experiments, one JSON object a line"
    )
    ls.add_argument("--project-id", help="experiments of this project")
    ls.add_argument("--dataset-id", help="experiments on this dataset")
    ls.add_argument("--name", help="only the runs of this exact name")
    _page_size(ls)
    ls.set_defaults(run=workflow.experiments_list)

    get = group.add_parser("get", parents=[api], help="one experiment, as JSON")
    get.add_argument("id", metavar="EXPERIMENT_ID")
    get.set_defaults(run=workflow.experiments_get)
    runparser.add(group, api)


def build() -> argparse.ArgumentParser:
    """The ``llmobs-async`` argument parser."""
    api = _api_options()
    parser = argparse.ArgumentParser(
        prog="llmobs-async",
        description="Work with Datadog LLM Observability projects, datasets, records and "
        "experiments from the shell: JSON Lines in and out.",
        epilog="Exit status: 0 all applied, 1 some failed, 2 usage or configuration error, "
        "130 interrupted (the command says how to resume).",
    )
    commands_ = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _datasets(commands_, api)
    _records(commands_, api)
    _experiments(commands_, api)

    projects = _group(commands_, "projects", "projects")
    proj = projects.add_parser("update", parents=[api], help="update one project")
    proj.add_argument("id", metavar="PROJECT_ID")
    proj.add_argument("--name")
    proj.add_argument("--description")
    proj.set_defaults(run=commands.projects_update)

    fake = commands_.add_parser(
        "fake-server", help="run the fake LLM Observability API in the foreground"
    )
    fake.add_argument("--port", type=int, default=8126, help="port on 127.0.0.1 (8126; 0: any)")
    fake.add_argument(
        "--records", type=int, default=1000, help="records in the seeded dataset (1000)"
    )
    faults = fake.add_argument_group("faults (none by default; random ones come from --seed)")
    faults.add_argument("--latency", type=_seconds, default=0.0, help="seconds per request (0)")
    faults.add_argument(
        "--error-rate", type=_fraction, default=0.0, help="fraction answered 503 (0)"
    )
    faults.add_argument(
        "--rate-limit-rate", type=_fraction, default=0.0, help="fraction answered 429 (0)"
    )
    faults.add_argument(
        "--drop-rate", type=_fraction, default=0.0, help="fraction of connections dropped (0)"
    )
    faults.add_argument("--seed", type=int, default=0, help="seed of the random faults (0)")
    faults.add_argument(
        "--rate-limit",
        type=_per,
        metavar="N/SECONDS",
        help="enforce a fixed-window limit, answering 429 beyond it, e.g. 600/60",
    )
    fake.set_defaults(run=commands.fake_server)

    demo = commands_.add_parser(
        "demo", help="run the whole workflow against the fake API, faults and all (no account)"
    )
    demo.add_argument("--records", type=int, default=20_000, help="records in the dataset (20000)")
    demo.set_defaults(run=commands.demo)
    return parser
