"""What every resource of the fake API shares: errors, answers, body checks.

Objects are kept as plain JSON-ready dicts of all their attributes, empty
ones included, so tests can read any of them. Answers are written the way
the live API writes them: empty fields left out (see :data:`OMITTED_WHEN`),
an ``author`` on everything, timestamps with microseconds and a ``Z``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import attrs
import orjson

AUTHOR_ID = "00000000-0000-4000-8000-00000000a0a0"
"""Id of the user the fake says created everything (``author: {"id": ...}``)."""
OMITTED_WHEN: dict[str, dict[str, tuple[Any, ...]]] = {
    "projects": {"description": ("", None), "deleted_at": (None,)},
    "experiments": {
        "description": ("", None),
        "error": (None,),
        "status": (None,),
        "dataset_id": (None,),
        "dataset_version": (None,),
        "parent_experiment_id": (None,),
        "dataset_name": (None,),
        "deleted_at": (None,),
        "aggregate_data": (None,),
    },
    "datasets": {  # records: their resource type is "datasets" too
        "expected_output": (None,),
        "metadata": ({}, None),
        "tags": ([], None),
        "deleted_at": (None,),
    },
    "dataset": {"description": ("", None), "metadata": ({}, None), "deleted_at": (None,)},
    "dataset_version": {"last_used": (None,)},
    "events": {
        "tags": ([], None),
        "meta": ({}, None),
        "metrics": ({}, None),
        "eval_metrics": ([], None),
        "parent_id": (None, ""),
    },
}
"""By kind (a record's is ``datasets``, a dataset's ``dataset``): the attributes
the live API leaves out of its answers, and the values for which it does."""
MAX_LIST = 10_000
"""Most ids a bulk delete or an id filter accepts."""


class ApiFault(Exception):
    """An error answer: HTTP status and the JSON:API ``errors`` array."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        pointer: str | None = None,
        *,
        parameter: str | None = None,
    ) -> None:
        super().__init__(detail)
        item: dict[str, Any] = {"status": str(status), "title": title, "detail": detail}
        if pointer is not None:
            item["source"] = {"pointer": pointer}
        elif parameter is not None:
            item["source"] = {"parameter": parameter}
        self.status = status
        self.body: dict[str, Any] = {"errors": [item]}


def bad_request(detail: str, pointer: str | None = None) -> ApiFault:
    """A 400 like the API's, with a JSON pointer into the request."""
    return ApiFault(400, "Bad Request", detail, pointer)


def bad_parameter(parameter: str, detail: str) -> ApiFault:
    """A 400 naming the query parameter at fault (``source.parameter``)."""
    return ApiFault(400, "Bad Request", detail, parameter=parameter)


def not_found(detail: str, pointer: str | None = None) -> ApiFault:
    """A 404 like the API's."""
    return ApiFault(404, "Not Found", detail, pointer)


def conflict(detail: str, pointer: str | None = None) -> ApiFault:
    """A 409 like the API's."""
    return ApiFault(409, "Conflict", detail, pointer)


@attrs.frozen
class Reply:
    """A successful answer: status and JSON document (``None``: no body)."""

    status: int = 200
    doc: Any = None
    content_type: str = "application/json"
    """Another type (an event stream) takes ``doc`` as the body's text."""

    def encode(self) -> bytes:
        """The body as bytes: orjson when it can, the stdlib for what orjson refuses."""
        if self.doc is None:
            return b""
        if self.content_type != "application/json":
            return str(self.doc).encode()
        try:
            return orjson.dumps(self.doc)
        except TypeError:  # orjson.JSONEncodeError: huge ints, lone surrogates
            return json.dumps(self.doc).encode()


NO_CONTENT = Reply(204)
ACCEPTED = Reply(202)
EMPTY_OK = Reply(200)


def now_iso() -> str:
    """The current time as the API writes it: ``2026-03-26T20:01:34.051443Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def answer_attributes(kind: str, attributes: Mapping[str, Any]) -> dict[str, Any]:
    """``attributes`` as the live API answers them: without the empty ones."""
    omitted = OMITTED_WHEN[kind]
    return {
        key: value
        for key, value in attributes.items()
        if key not in omitted or value not in omitted[key]
    }


def resource(type_: str, id: str, attributes: Mapping[str, Any], kind: str = "") -> dict[str, Any]:
    """A JSON:API resource with the empty attributes of ``kind`` (default: ``type_``) left out."""
    return {"id": id, "type": type_, "attributes": answer_attributes(kind or type_, attributes)}


_RECORD_OMITTED = OMITTED_WHEN["datasets"]


def record_resource(stored: Mapping[str, Any], *, version: int | None = None) -> dict[str, Any]:
    """A stored record as the live API answers it: a ``datasets`` resource.

    Answers to a change carry the new dataset ``version``; listings do not.
    """
    # One pass over the stored dict: this runs 100,000 times for a large pull.
    attributes = {
        key: value
        for key, value in stored.items()
        if key != "id" and (key not in _RECORD_OMITTED or value not in _RECORD_OMITTED[key])
    }
    if version is not None:
        attributes["version"] = version
    return {"id": stored["id"], "type": "datasets", "attributes": attributes}


# --- body checks ---------------------------------------------------------------------------------


def attributes_of(doc: Any, type_: str, *, id: str | None = None) -> dict[str, Any]:
    """``data.attributes`` of a JSON:API request body, after checking ``data.type`` (and ``id``)."""
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, dict):
        raise bad_request("Missing required attribute in body", "/data")
    if data.get("type") != type_:
        raise bad_request(f"type must be {type_!r}", "/data/type")
    if id is not None and data.get("id") != id:
        raise bad_request(f"id must be {id!r}, the id in the path", "/data/id")
    attributes = data.get("attributes")
    if not isinstance(attributes, dict):
        raise bad_request("Missing required attribute in body", "/data/attributes")
    return attributes


def check_fields(
    attributes: Mapping[str, Any], fields: Mapping[str, type | tuple[type, ...]], base: str = ""
) -> None:
    """Refuse unknown keys and values of the wrong type (``bool`` is no ``int``)."""
    base = base or "/data/attributes"
    for key, value in attributes.items():
        expected = fields.get(key)
        pointer = f"{base}/{escape(key)}"
        if expected is None:
            raise bad_request(f"unknown attribute {key!r}", pointer)
        kinds = expected if isinstance(expected, tuple) else (expected,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join(t.__name__ for t in kinds)
            raise bad_request(f"{key} must be a {names}", pointer)
        if isinstance(value, dict | list):
            check_json(value, pointer)


def required(attributes: Mapping[str, Any], key: str, base: str = "/data/attributes") -> Any:
    """``attributes[key]``, or the API's 400 when it is missing."""
    if key not in attributes:
        raise bad_request("Missing required attribute in body", f"{base}/{escape(key)}")
    return attributes[key]


def nonempty_str(attributes: Mapping[str, Any], key: str, base: str = "/data/attributes") -> str:
    """A required, non-empty string attribute."""
    value = required(attributes, key, base)
    if not isinstance(value, str) or not value:
        raise bad_request(f"{key} must be a non-empty string", f"{base}/{escape(key)}")
    return value


def id_list(attributes: Mapping[str, Any], key: str) -> list[str]:
    """A required, non-empty array of non-empty id strings (``project_ids`` and the like)."""
    pointer = f"/data/attributes/{key}"
    ids = required(attributes, key)
    if not isinstance(ids, list) or not ids:
        raise bad_request(f"{key} must be a non-empty array", pointer)
    if len(ids) > MAX_LIST:
        raise bad_request(f"{key} holds more than {MAX_LIST} ids", pointer)
    for index, item in enumerate(ids):
        if not isinstance(item, str) or not item:
            raise bad_request("id must be a non-empty string", f"{pointer}/{index}")
    return ids


def string_list(value: Any, pointer: str) -> list[str]:
    """An array of strings (tags), or the API's 400."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise bad_request("must be an array of strings", pointer)
    return value


def escape(key: str) -> str:
    """Escape a key for a JSON pointer (RFC 6901)."""
    return str(key).replace("~", "~0").replace("/", "~1")


def check_json(value: Any, pointer: str) -> None:
    """Refuse what JSON cannot carry (NaN, infinities), pointing at it."""
    if isinstance(value, float) and not math.isfinite(value):
        raise bad_request("not a valid JSON number", pointer)
    if isinstance(value, dict):
        for key, item in value.items():
            check_json(item, f"{pointer}/{escape(key)}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_json(item, f"{pointer}/{index}")
