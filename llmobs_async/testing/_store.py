"""The fake API's state and its PATCH semantics, independent of HTTP.

Objects are kept as plain JSON-ready dicts of all their attributes, empty
ones included, so tests can read any of them. Answers are written the way
the live API writes them: empty fields left out (see :data:`OMITTED_WHEN`),
an ``author`` on everything, records as JSON:API resources of type
``datasets`` with ``tags``, ``canonical_id`` and the dataset ``version``.
Every method validates the way the API does and raises :class:`ApiFault`
(status plus ``errors`` array) when it would refuse.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import attrs

STATUSES = ("running", "completed", "failed", "interrupted")
EXPERIMENT_FIELDS = {
    "name": str,
    "description": str,
    "dataset_id": str,
    "status": str,
    "error": str,
    "metadata": dict,
}
PROJECT_FIELDS = {"name": str, "description": str}
RECORD_FIELDS = ("input", "expected_output", "metadata")
AUTHOR_ID = "00000000-0000-4000-8000-00000000a0a0"
"""Id of the user the fake says created everything (``author: {"id": ...}``)."""
OMITTED_WHEN: dict[str, dict[str, tuple[Any, ...]]] = {
    "projects": {"description": ("", None)},
    "experiments": {
        "description": ("", None),
        "error": (None,),
        "parent_experiment_id": (None,),
        "dataset_name": (None,),
        "deleted_at": (None,),
        "aggregate_data": (None,),
    },
    "datasets": {
        "expected_output": (None,),
        "metadata": ({}, None),
        "tags": ([], None),
        "deleted_at": (None,),
    },
}
"""By resource type (a record's is ``datasets``): the attributes the live API
leaves out of its answers, and the values for which it does."""


class ApiFault(Exception):
    """An error answer: HTTP status and the JSON:API ``errors`` array."""

    def __init__(self, status: int, title: str, detail: str, pointer: str | None = None) -> None:
        super().__init__(detail)
        item: dict[str, Any] = {"status": str(status), "title": title, "detail": detail}
        if pointer is not None:
            item["source"] = {"pointer": pointer}
        self.status = status
        self.body: dict[str, Any] = {"errors": [item]}


def bad_request(detail: str, pointer: str | None = None) -> ApiFault:
    """A 400 like the API's, with a JSON pointer into the request."""
    return ApiFault(400, "Bad Request", detail, pointer)


def not_found(detail: str) -> ApiFault:
    """A 404 like the API's."""
    return ApiFault(404, "Not Found", detail)


def now_iso() -> str:
    """The current time as the API writes it."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@attrs.define
class FakeDataset:
    """A dataset: its project and its records by id."""

    id: str
    project_id: str
    records: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    version: int = 0
    """The current version: each change to the records creates a new one."""


@attrs.define
class FakeStore:
    """Projects, experiments and datasets of the fake API, by id."""

    projects: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    experiments: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    datasets: dict[str, FakeDataset] = attrs.field(factory=dict)

    # --- seeding -----------------------------------------------------------

    def add_project(
        self, *, id: str | None = None, name: str = "My LLM Project", description: str = ""
    ) -> str:
        """Create a project and return its id."""
        pid = id or str(uuid.uuid4())
        ts = now_iso()
        self.projects[pid] = {
            "author": {"id": AUTHOR_ID},
            "name": name,
            "description": description,
            "created_at": ts,
            "updated_at": ts,
        }
        return pid

    def add_dataset(
        self,
        *,
        project_id: str,
        id: str | None = None,
        records: Iterable[Mapping[str, Any]] | int = (),
    ) -> str:
        """Create a dataset in ``project_id`` and return its id.

        ``records`` is an iterable of record dicts (``id`` required) or a
        count of records to generate with ids ``rec-0`` ... ``rec-{n-1}``.
        """
        if project_id not in self.projects:
            raise KeyError(f"unknown project {project_id!r}")
        did = id or str(uuid.uuid4())
        self.datasets[did] = FakeDataset(id=did, project_id=project_id)
        if isinstance(records, int):
            records = ({"id": f"rec-{i}", "input": {"i": i}} for i in range(records))
        self.add_records(did, records)
        return did

    def add_records(self, dataset_id: str, records: Iterable[Mapping[str, Any]]) -> None:
        """Add records to a dataset, as a new version if there are any.

        Each record needs an ``id``; ``input``/``expected_output`` default to
        null, ``metadata`` to ``{}``, ``tags`` to ``[]``, ``canonical_id`` to
        a new UUID.
        """
        dataset = self.datasets[dataset_id]
        ts = now_iso()
        added = False
        for rec in records:
            added = True
            dataset.records[rec["id"]] = {
                "id": rec["id"],
                "author": {"id": AUTHOR_ID},
                "canonical_id": rec.get("canonical_id") or str(uuid.uuid4()),
                "dataset_id": dataset_id,
                "input": rec.get("input"),
                "expected_output": rec.get("expected_output"),
                "metadata": dict(rec.get("metadata") or {}),
                "tags": list(rec.get("tags") or ()),
                "created_at": ts,
                "updated_at": ts,
            }
        if added:
            dataset.version += 1

    def add_experiment(
        self,
        *,
        project_id: str,
        dataset_id: str | None = None,
        id: str | None = None,
        name: str = "My Experiment v1",
        status: str = "running",
    ) -> str:
        """Create an experiment and return its id."""
        if project_id not in self.projects:
            raise KeyError(f"unknown project {project_id!r}")
        eid = id or str(uuid.uuid4())
        ts = now_iso()
        self.experiments[eid] = {
            "author": {"id": AUTHOR_ID},
            "name": name,
            "description": "",
            "project_id": project_id,
            "dataset_id": dataset_id or str(uuid.uuid4()),
            "dataset_version": 1,
            "config": {},
            "metadata": {},
            "status": status,
            "experiment": "my-pipeline",
            "run_count": 1,
            "error": None,
            "created_at": ts,
            "updated_at": ts,
        }
        return eid

    # --- PATCH semantics ------------------------------------------------------

    def update_experiment(self, experiment_id: str, doc: Any) -> dict[str, Any]:
        """Apply an experiment PATCH body; return the response document."""
        return _patch(self.experiments, experiment_id, doc, "experiments", EXPERIMENT_FIELDS)

    def update_project(self, project_id: str, doc: Any) -> dict[str, Any]:
        """Apply a project PATCH body; return the response document."""
        return _patch(self.projects, project_id, doc, "projects", PROJECT_FIELDS)

    def update_records(self, project_id: str, dataset_id: str, doc: Any) -> dict[str, Any]:
        """Apply a records PATCH body (all or nothing); return the response document."""
        if project_id not in self.projects:
            raise not_found(f"project {project_id} not found")
        dataset = self.datasets.get(dataset_id)
        if dataset is None or dataset.project_id != project_id:
            raise not_found(f"dataset {dataset_id} not found")
        attributes = _attributes(doc, "records")
        for key in attributes:
            if key != "records":
                raise bad_request(f"unknown attribute {key!r}", f"/data/attributes/{_escape(key)}")
        records = attributes.get("records")
        if not isinstance(records, list) or not records:
            raise bad_request("records must be a non-empty array", "/data/attributes/records")
        for index, rec in enumerate(records):
            _check_record(dataset, index, rec)
        ts = now_iso()
        dataset.version += 1
        out = []
        for rec in records:
            stored = dataset.records[rec["id"]]
            for key in RECORD_FIELDS:
                if key in rec:
                    stored[key] = rec[key]
            stored["updated_at"] = ts
            out.append(record_resource(stored, version=dataset.version))
        return {"data": out}


def answer_attributes(kind: str, attributes: Mapping[str, Any]) -> dict[str, Any]:
    """``attributes`` as the live API answers them: without the empty ones."""
    omitted = OMITTED_WHEN[kind]
    return {
        key: value
        for key, value in attributes.items()
        if key not in omitted or not any(value == empty for empty in omitted[key])
    }


def record_resource(stored: Mapping[str, Any], *, version: int | None = None) -> dict[str, Any]:
    """A stored record as the live API answers it: a ``datasets`` resource.

    Answers to a change carry the new dataset ``version``; listings do not.
    """
    attributes = answer_attributes("datasets", {k: v for k, v in stored.items() if k != "id"})
    if version is not None:
        attributes["version"] = version
    return {"id": stored["id"], "type": "datasets", "attributes": attributes}


def _patch(
    table: dict[str, dict[str, Any]],
    id: str,
    doc: Any,
    type_: str,
    fields: Mapping[str, type],
) -> dict[str, Any]:
    stored = table.get(id)
    if stored is None:
        raise not_found(f"{type_[:-1]} {id} not found")
    attributes = _attributes(doc, type_)
    _check_fields(attributes, fields)
    if attributes.get("status", STATUSES[0]) not in STATUSES:
        raise bad_request(f"invalid status {attributes['status']!r}", "/data/attributes/status")
    stored.update(attributes)
    stored["updated_at"] = now_iso()
    return {"data": {"id": id, "type": type_, "attributes": answer_attributes(type_, stored)}}


def _attributes(doc: Any, type_: str) -> dict[str, Any]:
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, dict):
        raise bad_request("Missing required attribute in body", "/data")
    if data.get("type") != type_:
        raise bad_request(f"type must be {type_!r}", "/data/type")
    attributes = data.get("attributes")
    if not isinstance(attributes, dict):
        raise bad_request("Missing required attribute in body", "/data/attributes")
    return attributes


def _check_fields(attributes: dict[str, Any], fields: Mapping[str, type]) -> None:
    for key, value in attributes.items():
        expected = fields.get(key)
        pointer = f"/data/attributes/{_escape(key)}"
        if expected is None:
            raise bad_request(f"unknown attribute {key!r}", pointer)
        if not isinstance(value, expected):
            raise bad_request(f"{key} must be a {expected.__name__}", pointer)
        if expected is dict:
            _check_json(value, pointer)


def _check_record(dataset: FakeDataset, index: int, rec: Any) -> None:
    pointer = f"/data/attributes/records/{index}"
    if not isinstance(rec, dict):
        raise bad_request("record must be an object", pointer)
    rid = rec.get("id")
    if not isinstance(rid, str) or not rid:
        raise bad_request("Missing required attribute in body", f"{pointer}/id")
    for key in rec:
        if key != "id" and key not in RECORD_FIELDS:
            raise bad_request(f"unknown attribute {key!r}", f"{pointer}/{_escape(key)}")
    if "metadata" in rec and not isinstance(rec["metadata"], dict):
        raise bad_request("metadata must be an object", f"{pointer}/metadata")
    for key in RECORD_FIELDS:
        if key in rec:
            _check_json(rec[key], f"{pointer}/{key}")
    if rid not in dataset.records:
        raise not_found(f"record {rid} not found in dataset {dataset.id}")


def _escape(key: str) -> str:
    """Escape a key for a JSON pointer (RFC 6901)."""
    return str(key).replace("~", "~0").replace("/", "~1")


def _check_json(value: Any, pointer: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise bad_request("not a valid JSON number", pointer)
    if isinstance(value, dict):
        for key, item in value.items():
            _check_json(item, f"{pointer}/{_escape(key)}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(item, f"{pointer}/{index}")
