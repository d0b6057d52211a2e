"""The fake API's state: projects, datasets, experiments and events, by id.

Seeding (``add_*``), lookups that answer 404 the way the API does, and the
PATCH semantics of projects, experiments and records live here; the other
operations are in ``_datasets`` and ``_experiments``. Every method
validates the way the API does and raises :class:`ApiFault` (status plus
``errors`` array) when it would refuse.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs

from ._events import ExperimentEvents
from ._paging import SeqIndex
from ._records import RECORD_FIELDS, FakeDataset
from ._wire import (
    AUTHOR_ID,
    OMITTED_WHEN,
    ApiFault,
    answer_attributes,
    attributes_of,
    bad_request,
    check_fields,
    check_json,
    escape,
    not_found,
    now_iso,
    record_resource,
    resource,
)

__all__ = [
    "AUTHOR_ID",
    "OMITTED_WHEN",
    "STATUSES",
    "ApiFault",
    "FakeDataset",
    "FakeStore",
    "answer_attributes",
    "bad_request",
    "not_found",
    "now_iso",
    "record_resource",
]

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


@attrs.define
class FakeStore:
    """Projects, experiments and datasets of the fake API, by id."""

    projects: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    experiments: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    datasets: dict[str, FakeDataset] = attrs.field(factory=dict)
    events: dict[str, ExperimentEvents] = attrs.field(factory=dict)
    """Spans and metrics pushed to each experiment, by experiment id."""
    experiment_patch_echo: bool = False
    """Answer an experiment PATCH with the resource (200 with an empty body otherwise, as live)."""
    experiment_list_lag: tuple[dict[str, dict[str, Any]], int] | None = None
    """A lagging experiments list: the experiments it still shows, and for how many more reads."""
    event_list_lag: tuple[dict[str, ExperimentEvents], int] | None = None
    """A lagging events list: the events it still shows, and for how many more reads."""
    _seq: Iterator[int] = attrs.field(init=False, factory=lambda: itertools.count(1))
    project_index: SeqIndex[str] = attrs.field(init=False, factory=SeqIndex)
    dataset_index: dict[str, SeqIndex[str]] = attrs.field(init=False, factory=dict)
    experiment_index: SeqIndex[str] = attrs.field(init=False, factory=SeqIndex)

    def next_seq(self) -> int:
        """A sequence number larger than every one given before (creation order)."""
        return next(self._seq)

    # --- seeding -----------------------------------------------------------

    def add_project(
        self, *, id: str | None = None, name: str = "My LLM Project", description: str = ""
    ) -> str:
        """Create a project and return its id."""
        pid = id or str(uuid.uuid4())
        if pid not in self.projects:  # seeding an id again keeps its place in the list
            self.project_index.add(self.next_seq(), pid)
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
        name: str | None = None,
        description: str = "",
        metadata: Mapping[str, Any] | None = None,
    ) -> str:
        """Create a dataset in ``project_id`` and return its id.

        ``records`` is an iterable of record dicts or a count of records to
        generate with ids ``rec-0`` ... ``rec-{n-1}`` (one new version if any).
        ``name`` defaults to ``dataset-`` and the first 8 characters of the id.
        """
        if project_id not in self.projects:
            raise KeyError(f"unknown project {project_id!r}")
        did = id or str(uuid.uuid4())
        ts = now_iso()
        dataset = FakeDataset(id=did, project_id=project_id)
        dataset.attributes = {
            "author": {"id": AUTHOR_ID},
            "name": name or f"dataset-{did[:8]}",
            "description": description,
            "metadata": dict(metadata or {}),
            "dataset_type": "user",
            "created_at": ts,
            "updated_at": ts,
        }
        if did not in self.datasets:
            self.dataset_index.setdefault(project_id, SeqIndex()).add(self.next_seq(), did)
        self.datasets[did] = dataset
        if isinstance(records, int):
            records = ({"id": f"rec-{i}", "input": {"i": i}} for i in range(records))
        dataset.seed(records)
        return did

    def add_records(self, dataset_id: str, records: Iterable[Mapping[str, Any]]) -> None:
        """Add records to a dataset, as a new version if there are any.

        ``id`` defaults to a new UUID, ``input``/``expected_output`` to null,
        ``metadata`` to ``{}``, ``tags`` to ``[]``, ``canonical_id`` to a new
        UUID. A record with the id of an existing one replaces it.
        """
        self.datasets[dataset_id].seed(records)

    def add_experiment(
        self,
        *,
        project_id: str,
        dataset_id: str | None = None,
        id: str | None = None,
        name: str = "My Experiment v1",
        status: str | None = "running",
        **attributes: Any,
    ) -> str:
        """Create an experiment and return its id; ``attributes`` override the stored ones."""
        if project_id not in self.projects:
            raise KeyError(f"unknown project {project_id!r}")
        eid = id or str(uuid.uuid4())
        if eid not in self.experiments:
            self.experiment_index.add(self.next_seq(), eid)
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
            **attributes,
        }
        return eid

    # --- lookups: 404 as the API answers it --------------------------------------------------

    def project(self, project_id: str) -> dict[str, Any]:
        """The stored project, or 404."""
        stored = self.projects.get(project_id)
        if stored is None:
            raise not_found(f"project {project_id} not found")
        return stored

    def dataset(self, project_id: str, dataset_id: str) -> FakeDataset:
        """The live dataset of that project, or 404 (for the project first)."""
        self.project(project_id)
        dataset = self.datasets.get(dataset_id)
        if (
            dataset is None
            or dataset.project_id != project_id
            or dataset.attributes.get("deleted_at")
        ):
            raise not_found(f"dataset {dataset_id} not found")
        return dataset

    def experiment(self, experiment_id: str) -> dict[str, Any]:
        """The stored experiment that is not soft-deleted, or 404."""
        stored = self.experiments.get(experiment_id)
        if stored is None or stored.get("deleted_at"):
            raise not_found(f"experiment {experiment_id} not found")
        return stored

    def events_of(self, experiment_id: str) -> ExperimentEvents:
        """The events pushed to an experiment (an empty log at first)."""
        events = self.events.get(experiment_id)
        if events is None:
            events = self.events[experiment_id] = ExperimentEvents()
        return events

    # --- PATCH semantics ------------------------------------------------------

    def update_experiment(self, experiment_id: str, doc: Any) -> dict[str, Any]:
        """Apply an experiment PATCH body; return the resource document."""
        return _patch(self.experiments, experiment_id, doc, "experiments", EXPERIMENT_FIELDS)

    def update_project(self, project_id: str, doc: Any) -> dict[str, Any]:
        """Apply a project PATCH body; return the response document."""
        return _patch(self.projects, project_id, doc, "projects", PROJECT_FIELDS)

    def update_records(self, project_id: str, dataset_id: str, doc: Any) -> dict[str, Any]:
        """Apply a records PATCH body (all or nothing); return the response document.

        A field given is set, ``null`` included; a field absent is left as is.
        """
        dataset = self.dataset(project_id, dataset_id)
        attributes = attributes_of(doc, "records")
        for key in attributes:
            if key != "records":
                raise bad_request(f"unknown attribute {key!r}", f"/data/attributes/{escape(key)}")
        records = attributes.get("records")
        if not isinstance(records, list) or not records:
            raise bad_request("records must be a non-empty array", "/data/attributes/records")
        for index, rec in enumerate(records):
            _check_record(dataset, index, rec)
        ts = now_iso()
        version = dataset.bump()
        out = []
        for rec in records:
            stored = dataset.records[rec["id"]]
            values = {key: rec[key] for key in RECORD_FIELDS if key in rec}
            dataset.change(stored, {**values, "updated_at": ts})
            out.append(record_resource(stored, version=version))
        return {"data": out}


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
    attributes = attributes_of(doc, type_)
    check_fields(attributes, fields)
    if attributes.get("status", STATUSES[0]) not in STATUSES:
        raise bad_request(f"invalid status {attributes['status']!r}", "/data/attributes/status")
    stored.update(attributes)
    stored["updated_at"] = now_iso()
    return {"data": resource(type_, id, stored)}


def _check_record(dataset: FakeDataset, index: int, rec: Any) -> None:
    pointer = f"/data/attributes/records/{index}"
    if not isinstance(rec, dict):
        raise bad_request("record must be an object", pointer)
    rid = rec.get("id")
    if not isinstance(rid, str) or not rid:
        raise bad_request("Missing required attribute in body", f"{pointer}/id")
    for key in rec:
        if key != "id" and key not in RECORD_FIELDS:
            raise bad_request(f"unknown attribute {key!r}", f"{pointer}/{escape(key)}")
    if "metadata" in rec and not isinstance(rec["metadata"], dict):
        raise bad_request("metadata must be an object", f"{pointer}/metadata")
    for key in RECORD_FIELDS:
        if key in rec:
            check_json(rec[key], f"{pointer}/{key}")
    if rid not in dataset.records:
        raise not_found(f"record {rid} not found in dataset {dataset.id}")
