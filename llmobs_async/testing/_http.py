"""HTTP details of the fake server: bodies in and out, recorded requests, redaction."""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import web

from .._ratelimit.gate import key_fingerprint
from ._faults import RecordedRequest
from ._wire import ApiFault

REDACTED = "<redacted>"
BODILESS = frozenset({"GET", "HEAD", "DELETE"})
"""Methods whose body is ignored (and whose Content-Type is not checked)."""
RECORD_ROUTES = ("/records", "/records/delete", "/batch_update")
"""Ends of the paths that change records (what ``reject_record`` watches)."""
RECORD_LISTS = ("records", "insert_records", "update_records")
ID_LISTS = ("record_ids", "delete_records")


def raw_response(status: int, body: bytes, headers: Mapping[str, str]) -> web.Response:
    """A response with ``body`` as is; JSON unless ``headers`` say otherwise."""
    response = web.Response(status=status, body=body, headers=headers)
    if not any(key.lower() == "content-type" for key in headers):
        response.content_type = "application/json"
    return response


def decode_body(body: bytes) -> Any:
    """A request body as JSON, or the API's 400."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass  # the stdlib takes what orjson refuses (NaN, huge ints): checks then point at it
    try:
        return json.loads(body)
    except ValueError:
        raise ApiFault(400, "Bad Request", "request body is not valid JSON") from None


def recorded(request: web.Request, body: bytes) -> RecordedRequest:
    """The record of a request, keys redacted."""
    query: dict[str, list[str]] = {}
    for key, value in request.query.items():
        query.setdefault(key, []).append(value)
    return RecordedRequest(
        method=request.method,
        path=request.raw_path,
        headers=redact(request.headers),
        api_key_fingerprint=_fingerprint(request.headers.get("DD-API-KEY")),
        body=body,
        query=query,
    )


def record_ids(body: bytes) -> set[str]:
    """Every record id a records request names (empty when the body is not one)."""
    try:
        attributes = json.loads(body)["data"]["attributes"]
        ids = {
            r["id"]
            for key in RECORD_LISTS
            for r in attributes.get(key) or ()
            if isinstance(r, dict) and isinstance(r.get("id"), str)
        }
        ids.update(i for key in ID_LISTS for i in attributes.get(key) or () if isinstance(i, str))
        return ids
    except (ValueError, KeyError, TypeError, AttributeError):
        return set()


def _fingerprint(api_key: str | None) -> str | None:
    return None if api_key is None else key_fingerprint(api_key)


def redact(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` with the key values replaced."""
    secret = {"dd-api-key", "dd-application-key"}
    return {k: (REDACTED if k.lower() in secret else v) for k, v in headers.items()}


def status_title(status: int) -> str:
    """The reason phrase of ``status`` ("Error" for unknown statuses)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
