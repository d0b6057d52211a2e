"""The ``errors`` array of an error answer, read from whatever the API or a proxy sent."""

from __future__ import annotations

import json
from typing import Any

from .errors import ErrorItem, ErrorSource


def parse_errors(body: bytes) -> list[ErrorItem]:
    """Parse the ``errors`` array from any shape the API (or a proxy) sends; never raises.

    Handles JSON:API objects, bare strings, an empty body and non-JSON (HTML) bodies.
    """
    if not body or not body.strip():
        return []
    try:
        # The standard library, not orjson: error bodies may be anything, and
        # its RecursionError on absurd nesting is caught below.
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return [ErrorItem(detail=_snippet(body))]
    raw = doc.get("errors") if isinstance(doc, dict) else None
    if raw is None:
        return [ErrorItem(detail=_snippet(body))] if not isinstance(doc, dict) else []
    if not isinstance(raw, list):
        raw = [raw]
    return [_error_item(entry) for entry in raw]


def _error_item(entry: Any) -> ErrorItem:
    if not isinstance(entry, dict):
        return ErrorItem(detail=str(entry))
    source = entry.get("source")
    meta = entry.get("meta")
    status = entry.get("status")
    return ErrorItem(
        title=_str_or_none(entry.get("title")),
        detail=_str_or_none(entry.get("detail")),
        status=None if status is None else str(status),
        source=ErrorSource(
            pointer=_str_or_none(source.get("pointer")),
            parameter=_str_or_none(source.get("parameter")),
            header=_str_or_none(source.get("header")),
        )
        if isinstance(source, dict)
        else None,
        meta=meta if isinstance(meta, dict) else None,
    )


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _snippet(body: bytes, limit: int = 200) -> str:
    text = body[:65536].decode("utf-8", "replace")
    if "<" in text and ">" in text:
        # An HTML page from a proxy or load balancer: keep its title, if any.
        lower = text.lower()
        start, end = lower.find("<title>"), lower.find("</title>")
        text = text[start + 7 : end] if 0 <= start < end else "non-JSON (HTML) response body"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
