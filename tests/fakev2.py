"""Raw-HTTP helpers for the v0.2 tests of the fake server: one call, a whole pull, bodies."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import aiohttp
import attrs

from llmobs_async.testing import FakeLLMObsServer

V1, V3 = "/api/v2/llm-obs/v1", "/api/v2/llm-obs/v3"
KEYS = {"DD-API-KEY": "fake-api-key", "DD-APPLICATION-KEY": "fake-app-key"}
A = "/data/attributes"
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
Params = Sequence[tuple[str, str]] | dict[str, str] | None


def doc(type_: str, attributes: dict[str, Any], id: str | None = None) -> dict[str, Any]:
    """A JSON:API request body."""
    data: dict[str, Any] = {"type": type_, "attributes": attributes}
    if id is not None:
        data["id"] = id
    return {"data": data}


@attrs.frozen
class Answer:
    """Status, decoded body (``None`` when empty) and raw bytes of an answer."""

    status: int
    body: Any
    raw: bytes

    @property
    def error(self) -> dict[str, Any]:
        """The one error of an error answer."""
        [error] = self.body["errors"]
        assert error["status"] == str(self.status)
        return error

    @property
    def pointer(self) -> str:
        """``source.pointer`` of the error."""
        return self.error["source"]["pointer"]

    @property
    def parameter(self) -> str:
        """``source.parameter`` of the error."""
        return self.error["source"]["parameter"]


@attrs.frozen
class Api:
    """A raw aiohttp session on a fake server, with the right keys."""

    fake: FakeLLMObsServer
    http: aiohttp.ClientSession

    async def call(self, method: str, path: str, body: Any = None, params: Params = None) -> Answer:
        headers = dict(KEYS)
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        url = self.fake.base_url + path
        async with self.http.request(method, url, data=data, params=params, headers=headers) as r:
            raw = await r.read()
            return Answer(r.status, json.loads(raw) if raw else None, raw)

    async def get(self, path: str, params: Params = None) -> Answer:
        return await self.call("GET", path, params=params)

    async def post(self, path: str, body: Any) -> Answer:
        return await self.call("POST", path, body)

    async def patch(self, path: str, body: Any) -> Answer:
        return await self.call("PATCH", path, body)

    async def ok(self, method: str, path: str, body: Any = None, params: Params = None) -> Any:
        """The body of a call that must succeed."""
        answer = await self.call(method, path, body, params)
        assert 200 <= answer.status < 300, (answer.status, answer.body)
        return answer.body

    async def pull(
        self, path: str, params: Params = None, cursor: str = ""
    ) -> tuple[list[Any], int]:
        """Every item of a list from ``cursor`` on, page after page; and the number of pages."""
        items, pages = [], 0
        while True:
            query = list(params.items() if isinstance(params, dict) else params or [])
            if cursor:
                query.append(("page[cursor]", cursor))
            page = await self.ok("GET", path, params=query)
            pages += 1
            items += page["data"]
            assert not cursor or page["meta"]["after"] != cursor, "the same cursor twice"
            cursor = page["meta"]["after"]
            if cursor == "":
                return items, pages

    # --- shortcuts ---------------------------------------------------------------------------

    async def project(self, name: str = "evals", **attributes: Any) -> str:
        body = await self.ok(
            "POST", f"{V1}/projects", doc("projects", {"name": name, **attributes})
        )
        return body["data"]["id"]

    async def dataset(self, project_id: str, name: str = "qa", **attributes: Any) -> str:
        path, body = f"{V1}/{project_id}/datasets", doc("datasets", {"name": name, **attributes})
        return (await self.ok("POST", path, body))["data"]["id"]


def records_path(project_id: str, dataset_id: str, tail: str = "/records") -> str:
    return f"{V1}/{project_id}/datasets/{dataset_id}{tail}"


def ids(items: list[Any]) -> list[str]:
    return [item["id"] for item in items]
