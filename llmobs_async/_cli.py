"""The ``llmobs-async`` command line."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmobs-async",
        description="Update Datadog LLM Observability experiments, projects and dataset records.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "demo",
        help="run the client end to end against the built-in fake API (no account needed)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    args = _parser().parse_args(argv)
    if args.command == "demo":
        from ._demo import run_demo

        return asyncio.run(run_demo())
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
