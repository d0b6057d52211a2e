"""Loopback HTTP server for the benchmark: canned LLM Observability API answers.

Run as its own process (``python benchmarks/server.py``). It binds 127.0.0.1 on
a free port and prints ``PORT <n>`` as its first line. Its CPU is not part of
any measurement, but it is kept quick (orjson, no access log).

Besides the three ``PATCH`` endpoints it serves ``batch_update`` (what
``update_many`` sends: ``update_records``), the dataset list a bulk job reads
its dataset's ``current_version`` from, and ``GET /_stats``: requests
handled per route and answers that were not 200, so the runner can check that
every request of a worker really arrived and was answered 200.
"""

from __future__ import annotations

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

PREFIX = "/api/v2/llm-obs/v1"
STAMP = "2024-01-15T10:30:00Z"
AUTHOR = {"id": "00000000-0000-4000-8000-0000000000aa"}
JSON = "application/json"
STATS: collections.Counter[str] = collections.Counter()


def _reply(route: str, document: Any, status: int = 200) -> web.Response:
    STATS[route] += 1
    if status != 200:
        STATS["non_200"] += 1
    return web.Response(body=orjson.dumps(document), status=status, content_type=JSON)


async def _attributes(request: web.Request, kind: str) -> dict[str, Any] | web.Response:
    """Check the keys and the JSON:API envelope; return the attributes or a 4xx."""
    if not request.headers.get("DD-API-KEY") or not request.headers.get("DD-APPLICATION-KEY"):
        return _reply(kind, {"errors": ["missing DD-API-KEY or DD-APPLICATION-KEY"]}, 403)
    try:
        data = orjson.loads(await request.read())["data"]
        if data["type"] != kind or not isinstance(data["attributes"], dict):
            raise ValueError(f"data.type must be {kind!r}")
    except (ValueError, KeyError, TypeError) as exc:
        return _reply(kind, {"errors": [f"bad request body: {exc}"]}, 400)
    attributes: dict[str, Any] = data["attributes"]
    return attributes


async def update_experiment(request: web.Request) -> web.Response:
    """``PATCH /experiments/{experiment_id}``: echo the update into a full experiment."""
    attributes = await _attributes(request, "experiments")
    if isinstance(attributes, web.Response):
        return attributes
    experiment = {
        "name": attributes.get("name", "bench-experiment"),
        "description": attributes.get("description", ""),
        "project_id": "proj-1",
        "dataset_id": attributes.get("dataset_id", "ds-1"),
        "config": {},
        "metadata": attributes.get("metadata") or {},
        "status": attributes.get("status", "running"),
        "created_at": STAMP,
        "updated_at": STAMP,
        "dataset_version": 1,
        "run_count": 1,
        "experiment": "my-pipeline",
        "error": None,
    }
    resource = {"id": request.match_info["experiment_id"], "type": "experiments"}
    return _reply("experiments", {"data": {**resource, "attributes": experiment}})


async def update_project(request: web.Request) -> web.Response:
    """``PATCH /projects/{project_id}``: echo the update into a full project."""
    attributes = await _attributes(request, "projects")
    if isinstance(attributes, web.Response):
        return attributes
    project = {
        "name": attributes.get("name", "bench-project"),
        "description": attributes.get("description", ""),
        "created_at": STAMP,
        "updated_at": STAMP,
    }
    resource = {"id": request.match_info["project_id"], "type": "projects"}
    return _reply("projects", {"data": {**resource, "attributes": project}})


async def update_records(request: web.Request) -> web.Response:
    """``PATCH /{project_id}/datasets/{dataset_id}/records``: echo every record as stored."""
    return await _echo_records(request, "records", "records")


async def batch_update(request: web.Request) -> web.Response:
    """``POST .../batch_update`` with ``update_records``: echo every record as stored."""
    return await _echo_records(request, "datasets", "update_records")


async def _echo_records(request: web.Request, kind: str, field: str) -> web.Response:
    attributes = await _attributes(request, kind)
    if isinstance(attributes, web.Response):
        return attributes
    records = attributes.get(field)
    if not isinstance(records, list) or not records or not all("id" in r for r in records):
        return _reply("records", {"errors": [f"{field} must be a non-empty list with ids"]}, 400)
    STATS["records_received"] += len(records)
    return _reply("records", {"data": record_resources(records, request.match_info["dataset_id"])})


async def list_datasets(request: web.Request) -> web.Response:
    """``GET /{project_id}/datasets?filter[id]=...``: that dataset, at version 1."""
    dataset_id = request.query.get("filter[id]", "bench-dataset")
    attributes = {"name": "bench", "current_version": 1, "created_at": STAMP, "updated_at": STAMP}
    document = {"data": [{"id": dataset_id, "type": "datasets", "attributes": attributes}]}
    return _reply("datasets", {**document, "meta": {"after": ""}})


def record_resources(records: list[dict[str, Any]], dataset_id: str) -> list[dict[str, Any]]:
    """Updated records as the live API answers them: JSON:API resources, empty fields left out."""
    stored = []
    for index, record in enumerate(records):
        attributes = {
            "author": AUTHOR,
            "canonical_id": f"00000000-0000-4000-8000-{index:012d}",
            "created_at": STAMP,
            "dataset_id": dataset_id,
            "input": record.get("input"),
            "updated_at": STAMP,
            "version": 2,
        }
        for key in ("expected_output", "metadata", "tags"):
            if record.get(key) not in (None, {}, []):
                attributes[key] = record[key]
        stored.append({"id": record["id"], "type": "datasets", "attributes": attributes})
    return stored


async def stats(_: web.Request) -> web.Response:
    """``GET /_stats``: counters since the server started."""
    return web.Response(body=orjson.dumps(dict(STATS)), content_type=JSON)


def make_app() -> web.Application:
    """Build the aiohttp application with the benchmark routes."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_patch(PREFIX + "/experiments/{experiment_id}", update_experiment)
    app.router.add_patch(PREFIX + "/projects/{project_id}", update_project)
    app.router.add_patch(PREFIX + "/{project_id}/datasets/{dataset_id}/records", update_records)
    app.router.add_post(PREFIX + "/{project_id}/datasets/{dataset_id}/batch_update", batch_update)
    app.router.add_get(PREFIX + "/{project_id}/datasets", list_datasets)
    app.router.add_get("/_stats", stats)
    return app


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(make_app()))
