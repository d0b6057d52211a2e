"""One pager measurement in a fresh process: ``python _pager_worker.py '<json spec>'``.

The spec names the client, the server URL, the page size, the dataset's
record count and the warm-up dataset's (0: no warm-up). The worker opens the
client, pulls the whole warm-up dataset (not measured: connection, imports,
first-use caches; its records have other ids and timestamps, so nothing it
caches helps the timed pull), collects garbage, then measures process CPU
time (``time.process_time``: user plus system, all threads) and wall time
over one full pull of the dataset. Every client appends each record's id to
a list as it goes, the same work for all; after the clock stops the ids are
checked: every expected id, exactly once. Prints one JSON line (with
``"error"`` on any failure, then exit 1).
"""

from __future__ import annotations

import gc
import resource
import sys
import time
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, see common.py

from common import worker_main

from pager.data import DATASET_ID, PROJECT_ID, SPEC_PREFIX, WARMUP_DATASET_ID, expected_ids

PREFIX = "/api/v2/llm-obs/v1"
Pull = Callable[[str, list[str]], Awaitable[dict[str, Any]]]
"""``pull(dataset_id, ids)``: read every page, append each record's id; return notes."""


async def floor(
    url: str, page_size: int, body: Callable[[Pull], Awaitable[Any]], lean: bool = False
) -> Any:
    """Plain aiohttp and ``orjson.loads`` per page, following ``meta.after``; no models.

    The plain loop holds a page's document until the next one replaces it, so
    two pages are alive while the next is decoded; ``lean`` frees each page
    before asking for the next, as llmobs_async's paginator does.
    """
    import aiohttp
    import orjson
    from yarl import URL

    headers = {"DD-API-KEY": "k", "DD-APPLICATION-KEY": "a", "Accept": "application/json"}

    async def pull(dataset_id: str, ids: list[str]) -> dict[str, Any]:
        first = f"{url}{PREFIX}/{PROJECT_ID}/datasets/{dataset_id}/records?page[limit]={page_size}"
        target, append = first, ids.append
        while True:
            async with session.get(URL(target, encoded=True)) as response:
                data = await response.read()
                if response.status != 200:
                    raise RuntimeError(f"GET answered {response.status}: {data[:200]!r}")
            document = orjson.loads(data)
            for item in document["data"]:
                append(item["id"])
            after = document["meta"]["after"]
            if lean:
                del document, data
            if not after:
                return {}
            target = f"{first}&page[cursor]={quote(after, safe='')}"

    async with aiohttp.ClientSession(headers=headers) as session:
        return await body(pull), f"aiohttp {aiohttp.__version__}, orjson {orjson.__version__}"


async def llmobs(url: str, page_size: int, body: Callable[[Pull], Awaitable[Any]]) -> Any:
    """This project's client with its defaults: ``async for`` over ``client.records.list``."""
    import llmobs_async

    async def pull(dataset_id: str, ids: list[str]) -> dict[str, Any]:
        append, record = ids.append, None
        async for record in records.list(PROJECT_ID, dataset_id, page_size=page_size):
            append(record.id)
        # The last record read: its timestamps must be tz-aware datetimes.
        created = getattr(record, "created_at", None)
        if getattr(created, "tzinfo", None) is None:
            raise RuntimeError(f"created_at is not a tz-aware datetime: {created!r}")
        return {"item_types": [type(record).__name__], "created_at_type": type(created).__name__}

    async with llmobs_async.LLMObsClient(api_key="k", app_key="a", base_url=url) as client:
        records = client.records
        result = await body(pull)
    return result, f"llmobs_async {llmobs_async.__version__}"


async def official(
    url: str, page_size: int, body: Callable[[Pull], Awaitable[Any]], prefix: str = ""
) -> Any:
    """``datadog-api-client`` async, ``list_llm_obs_dataset_records`` page after page.

    With ``prefix`` ``"spec-"`` it reads the same records in the spec's flat shape.
    """
    from datadog_api_client import AsyncApiClient, Configuration
    from datadog_api_client import version as dd_version
    from datadog_api_client.v2.api.agent_observability_api import AgentObservabilityApi

    configuration = Configuration(host=url, api_key={"apiKeyAuth": "k", "appKeyAuth": "a"})
    # Without the "v2." prefix: in 2.62.0 "v2.<op>" stores the flag, then raises KeyError.
    configuration.unstable_operations["list_llm_obs_dataset_records"] = True
    warnings.filterwarnings("ignore", "Using unstable operation", UserWarning)

    async def pull(dataset_id: str, ids: list[str]) -> dict[str, Any]:
        append, kinds, item = ids.append, set(), None
        kwargs: dict[str, Any] = {"page_limit": page_size}
        dataset_id = prefix + dataset_id
        while True:
            response = await api.list_llm_obs_dataset_records(PROJECT_ID, dataset_id, **kwargs)
            data = response.data
            kinds.add(type(data[0]).__name__ if data else "")
            for item in data:
                append(item.id)
            after = getattr(response.meta, "after", None)
            if not after:
                break
            kwargs["page_cursor"] = after
        # What a user gets: the generated model, or raw dicts (UnparsedObject).
        attributes = getattr(item, "attributes", None)
        created = attributes.get("created_at") if isinstance(attributes, dict) else None
        if created is None:
            created = getattr(item, "created_at", None)
        return {"item_types": sorted(kinds), "created_at_type": type(created).__name__}

    async with AsyncApiClient(configuration) as api_client:
        api = AgentObservabilityApi(api_client)
        result = await body(pull)
    return result, f"datadog-api-client {dd_version.__version__}"


async def floor_lean(url: str, page_size: int, body: Callable[[Pull], Awaitable[Any]]) -> Any:
    """The floor holding one page at a time."""
    return await floor(url, page_size, body, lean=True)


async def official_spec(url: str, page_size: int, body: Callable[[Pull], Awaitable[Any]]) -> Any:
    """The official client on the spec's flat shape: what its models cost when they parse."""
    return await official(url, page_size, body, prefix=SPEC_PREFIX)


CLIENTS = {
    "floor": floor,
    "floor_lean": floor_lean,
    "llmobs_async": llmobs,
    "official": official,
    "official_spec": official_spec,
}


async def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Warm up, then time one full pull; check the ids afterwards."""

    async def body(pull: Pull) -> dict[str, Any]:
        if spec["warmup_records"]:
            warm: list[str] = []
            await pull(WARMUP_DATASET_ID, warm)
            _check_ids(warm, WARMUP_DATASET_ID, spec["warmup_records"], "warm-up")
        ids: list[str] = []
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        gc.collect()
        cpu, wall = time.process_time(), time.perf_counter()
        notes = await pull(DATASET_ID, ids)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
        _check_ids(ids, DATASET_ID, spec["records"], "pull")
        return {
            **notes,
            "cpu_s": cpu,
            "wall_s": wall,
            "records": len(ids),
            "rss_growth_kib": rss_growth,
        }

    result, version = await CLIENTS[spec["client"]](spec["url"], spec["page_size"], body)
    return {**result, "version": version}


def _check_ids(ids: list[str], dataset_id: str, count: int, what: str) -> None:
    unique = set(ids)
    if len(ids) != count or len(unique) != count or unique != expected_ids(dataset_id, count):
        missing = len(expected_ids(dataset_id, count) - unique)
        raise RuntimeError(
            f"{what}: {len(ids)} records received, {len(unique)} distinct ids, "
            f"{missing} of the {count} expected missing"
        )


def main(argv: list[str]) -> int:
    """Run the spec given as the first argument; print one JSON line."""
    return worker_main(measure, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
