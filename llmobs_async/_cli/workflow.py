"""The workflow's small commands: ``datasets list/create``, ``experiments list/get``.

Lists print one JSON object a line as each page arrives (JSON Lines); the
others print one indented JSON object, as the update commands do.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import ValidationError
from ..pagination import AsyncPaginator
from .common import EXIT_OK, given, make_client
from .output import print_json, print_jsonl


async def _print_all(paginator: AsyncPaginator[Any]) -> int:
    async for item in paginator:
        print_jsonl(item)
    return EXIT_OK


async def datasets_list(args: argparse.Namespace) -> int:
    """``datasets list``: the project's datasets (newest first), a JSON object a line."""
    async with make_client(args) as client:
        return await _print_all(
            client.datasets.list(args.project_id, name=args.name, page_size=args.page_size)
        )


async def datasets_create(args: argparse.Namespace) -> int:
    """``datasets create``: make an empty dataset (version 0) and print it."""
    async with make_client(args) as client:
        dataset = await client.datasets.create(
            args.project_id, args.name, **given(args, "description", "metadata")
        )
    print_json(dataset)
    return EXIT_OK


async def experiments_list(args: argparse.Namespace) -> int:
    """``experiments list``: a project's (or a dataset's) experiments, a JSON object a line."""
    if args.project_id is None and args.dataset_id is None:
        raise ValidationError("--project-id", "give --project-id, --dataset-id or both")
    async with make_client(args) as client:
        return await _print_all(
            client.experiments.list(
                project_id=args.project_id,
                dataset_id=args.dataset_id,
                name=args.name,
                page_size=args.page_size,
            )
        )


async def experiments_get(args: argparse.Namespace) -> int:
    """``experiments get``: one experiment by id (exit 1 with a 404 when there is none)."""
    async with make_client(args) as client:
        experiment = await client.experiments.get(args.id)
    print_json(experiment)
    return EXIT_OK
