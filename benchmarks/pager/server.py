"""Loopback server of the pager benchmark: one large dataset, served in cursor pages.

Run as its own process: ``python benchmarks/pager/server.py --records N
--page-sizes 1000,5000 --warmup-records M``. It builds the records (see
``_pager_data``), encodes every page of every page size **before** it
announces ``PORT <n>``, and then only looks pages up: its CPU per request is
the same for every client, and small.

``GET /api/v2/llm-obs/v1/{project_id}/datasets/{dataset_id}/records`` with
``page[limit]`` (one of the page sizes, required: every client must ask for
the same pages) and ``page[cursor]`` (absent for the first page). The answer
is ``{"data": [record resources], "meta": {"after": <cursor or "">}}`` with
the live API's content type. The keys must be present; an unknown dataset,
page size or cursor gets a 4xx in the API's error shape.

With ``--spec-records N``, the datasets ``spec-<id>`` hold the first N
records of ``<id>`` in the specification's flat shape (what the official
client's models parse; the live API never sends it).

``GET /_stats`` gives the counters: pages and records served, and answers
that were not 200, so the runner can check each worker's traffic.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, see common.py

import orjson
from aiohttp import web
from common import serve

from pager.data import (
    DATASET_ID,
    PROJECT_ID,
    SPEC_PREFIX,
    WARMUP_DATASET_ID,
    encode_pages,
    make_records,
    spec_record,
)

PREFIX = "/api/v2/llm-obs/v1"
CONTENT_TYPE = "application/vnd.api+json"  # what the live API answers with
STATS: collections.Counter[str] = collections.Counter()
Pages = dict[tuple[str, int, str | None], tuple[bytes, int]]


def build_pages(datasets: dict[str, int], page_sizes: list[int]) -> Pages:
    """Every page body, keyed by (dataset, page size, cursor), with its record count."""
    pages: Pages = {}
    for dataset_id, count in datasets.items():
        served_id = dataset_id.removeprefix(SPEC_PREFIX)
        shape = spec_record if dataset_id.startswith(SPEC_PREFIX) else None
        records = [
            orjson.dumps(shape(record) if shape else record)
            for record in make_records(served_id, count)
        ]
        for size in page_sizes:
            for index, (cursor, body) in enumerate(encode_pages(dataset_id, records, size)):
                in_page = min(size, count - index * size)
                pages[(dataset_id, size, cursor)] = (body, in_page)
    return pages


def _error(status: int, detail: str) -> web.Response:
    STATS["non_200"] += 1
    body = orjson.dumps({"errors": [{"status": str(status), "title": "Bad", "detail": detail}]})
    return web.Response(body=body, status=status, content_type=CONTENT_TYPE)


def make_app(pages: Pages) -> web.Application:
    """The application: the records list and the counters."""

    async def list_records(request: web.Request) -> web.Response:
        if not request.headers.get("DD-API-KEY") or not request.headers.get("DD-APPLICATION-KEY"):
            return _error(403, "missing DD-API-KEY or DD-APPLICATION-KEY")
        if request.match_info["project_id"] != PROJECT_ID:
            return _error(404, "project not found")
        query = request.query
        try:
            size = int(query["page[limit]"])
        except (KeyError, ValueError):
            return _error(400, "page[limit] is required by this benchmark server")
        key = (request.match_info["dataset_id"], size, query.get("page[cursor]"))
        found = pages.get(key)
        if found is None:
            return _error(400, f"no such page: {key!r}")
        body, count = found
        STATS["pages"] += 1
        STATS["records"] += count
        return web.Response(body=body, content_type=CONTENT_TYPE)

    async def stats(_: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(dict(STATS)), content_type="application/json")

    app = web.Application()
    app.router.add_get(PREFIX + "/{project_id}/datasets/{dataset_id}/records", list_records)
    app.router.add_get("/_stats", stats)
    return app


def main(argv: list[str] | None = None) -> None:
    """Build the pages, then serve them until terminated."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, required=True)
    parser.add_argument("--page-sizes", required=True, help="comma-separated, e.g. 1000,5000")
    parser.add_argument("--warmup-records", type=int, default=0)
    parser.add_argument("--spec-records", type=int, default=0, help="also in the spec's shape")
    args = parser.parse_args(argv)
    datasets: dict[str, Any] = {DATASET_ID: args.records}
    if args.warmup_records:
        datasets[WARMUP_DATASET_ID] = args.warmup_records
    if args.spec_records:
        datasets[SPEC_PREFIX + DATASET_ID] = args.spec_records
        datasets[SPEC_PREFIX + WARMUP_DATASET_ID] = min(args.spec_records, args.warmup_records)
    pages = build_pages(datasets, [int(size) for size in args.page_sizes.split(",")])
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(make_app(pages)))


if __name__ == "__main__":
    sys.exit(main())
