"""Experiments and experiment events endpoints of the fake API."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from multidict import MultiMapping

from ._events import ExperimentEvents, check_events
from ._paging import encode_cursor, filter_bool, filter_values, page_doc, page_request
from ._wire import (
    ACCEPTED,
    EMPTY_OK,
    NO_CONTENT,
    Reply,
    attributes_of,
    bad_parameter,
    bad_request,
    check_fields,
    id_list,
    nonempty_str,
    not_found,
    now_iso,
    resource,
)

if TYPE_CHECKING:
    from ._store import FakeStore

A = "/data/attributes"
CREATE_FIELDS: dict[str, type] = {
    "name": str,
    "project_id": str,
    "dataset_id": str,
    "dataset_version": int,
    "description": str,
    "config": dict,
    "metadata": dict,
    "ensure_unique": bool,
    "parent_experiment_id": str,
    "run_count": int,
}


def experiment_doc(store: FakeStore, experiment_id: str) -> dict[str, Any]:
    """An experiment as the API answers it."""
    return resource("experiments", experiment_id, store.experiments[experiment_id])


def create_experiment(store: FakeStore, doc: Any) -> Reply:
    """``POST v1/experiments``.

    With ``ensure_unique`` (the default) the run's ``name`` becomes
    ``<name>-<epoch ms>`` and ``experiment`` keeps the name given, as live.
    """
    attributes = attributes_of(doc, "experiments")
    check_fields(attributes, CREATE_FIELDS)
    name = nonempty_str(attributes, "name")
    project_id = nonempty_str(attributes, "project_id")
    store.project(project_id)
    dataset_id = attributes.get("dataset_id")
    version = attributes.get("dataset_version")
    if dataset_id is not None:
        dataset = store.dataset(project_id, dataset_id)
        version = dataset.version if version is None else version
        if not 0 <= version <= dataset.version:
            raise bad_request("dataset_version does not exist", f"{A}/dataset_version")
        for made in dataset.versions:
            if made["version_number"] == version:
                made["last_used"] = now_iso()
    parent = attributes.get("parent_experiment_id")
    if parent is not None and parent not in store.experiments:
        raise not_found(f"experiment {parent} not found", f"{A}/parent_experiment_id")
    run_count = attributes.get("run_count", 1)
    if run_count < 1:
        raise bad_request("run_count must be at least 1", f"{A}/run_count")
    unique = attributes.get("ensure_unique", True)
    run_name = _unique_name(store, project_id, name) if unique else name
    eid = store.add_experiment(
        project_id=project_id,
        name=run_name,
        status=None,
        experiment=name,
        description=attributes.get("description", ""),
        dataset_version=version,
        config=attributes.get("config", {}),
        metadata=attributes.get("metadata", {}),
        run_count=run_count,
        parent_experiment_id=parent,
    )
    store.experiments[eid]["dataset_id"] = dataset_id
    return Reply(200, {"data": experiment_doc(store, eid)})


def _unique_name(store: FakeStore, project_id: str, name: str) -> str:
    taken = {e["name"] for e in store.experiments.values() if e.get("project_id") == project_id}
    stamp = int(time.time() * 1000)
    while f"{name}-{stamp}" in taken:  # two runs in one millisecond still get two names
        stamp += 1
    return f"{name}-{stamp}"


def list_experiments(store: FakeStore, query: MultiMapping[str]) -> Reply:
    """``GET v1/experiments``: needs ``filter[project_id]``, ``[dataset_id]`` or ``[id]``.

    The spec requires one of the first two; ddtrace gets an experiment with
    ``filter[id]`` alone, so the live API takes that too.
    """
    project_id = query.get("filter[project_id]")
    dataset_id = query.get("filter[dataset_id]")
    ids = set(filter_values(query, "filter[id]"))
    if not project_id and not dataset_id and not ids:
        detail = "filter[project_id] or filter[dataset_id] is required"
        raise bad_parameter("filter[project_id]", detail)
    parents = set(filter_values(query, "filter[parent_experiment_id]"))
    name, logical = query.get("filter[name]"), query.get("filter[experiment]")
    metadata = _metadata_filter(query.get("filter[metadata]"))
    deleted = filter_bool(query, "filter[is_deleted]") or False
    before, limit = page_request(query, "experiments", "experiments", clamp=True)
    shown = _shown(store)

    def keep(eid: str) -> bool:
        e = shown.get(eid)
        return (
            e is not None
            and bool(e.get("deleted_at")) == deleted
            and (not project_id or e.get("project_id") == project_id)
            and (not dataset_id or e.get("dataset_id") == dataset_id)
            and (not ids or eid in ids)
            and (not parents or e.get("parent_experiment_id") in parents)
            and (name is None or e.get("name") == name)
            and (logical is None or e.get("experiment") == logical)
            and (metadata is None or contains(e.get("metadata"), metadata))
        )

    found, next_seq = store.experiment_index.page(before, limit, keep)
    data = [resource("experiments", eid, shown[eid]) for eid in found]
    return Reply(200, page_doc(data, "experiments", next_seq))


def _shown(store: FakeStore) -> dict[str, dict[str, Any]]:
    """The experiments this read of the list shows: the lagging snapshot, or the store."""
    if store.experiment_list_lag is None:
        return store.experiments
    snapshot, reads = store.experiment_list_lag
    store.experiment_list_lag = (snapshot, reads - 1) if reads > 1 else None
    return snapshot


def _metadata_filter(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise bad_parameter("filter[metadata]", "filter[metadata] must be a JSON object")
    return value


def contains(have: Any, want: Any) -> bool:
    """JSON containment (as PostgreSQL's ``@>``): ``want`` is a part of ``have``."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(
            key in have and contains(have[key], value) for key, value in want.items()
        )
    if isinstance(want, list):
        return isinstance(have, list) and all(any(contains(h, w) for h in have) for w in want)
    return isinstance(have, bool) == isinstance(want, bool) and have == want


def update_experiment(store: FakeStore, experiment_id: str, doc: Any) -> Reply:
    """``PATCH v1/experiments/{id}``: 200 with an empty body, as live (or the resource)."""
    answer = store.update_experiment(experiment_id, doc)
    return Reply(200, answer) if store.experiment_patch_echo else EMPTY_OK


def delete_experiments(store: FakeStore, doc: Any) -> Reply:
    """``POST v1/experiments/delete``: soft delete (``deleted_at``); deleting again is a no-op."""
    attributes = attributes_of(doc, "experiments")
    check_fields(attributes, {"experiment_ids": list})
    ids = id_list(attributes, "experiment_ids")
    for index, eid in enumerate(ids):
        if eid not in store.experiments:
            raise not_found(f"experiment {eid} not found", f"{A}/experiment_ids/{index}")
    ts = now_iso()
    for eid in ids:
        stored = store.experiments[eid]
        if not stored.get("deleted_at"):
            stored.update(deleted_at=ts, updated_at=ts)
    return NO_CONTENT


# --- events --------------------------------------------------------------------------------------


def push_events(store: FakeStore, experiment_id: str, doc: Any) -> Reply:
    """``POST v1/experiments/{id}/events``: ``data.type`` must be ``experiments``; 202."""
    store.experiment(experiment_id)
    metrics, spans, tags = check_events(attributes_of(doc, "experiments"))
    events = store.events_of(experiment_id)
    for span in spans:
        events.add_span(span)
    for metric in metrics:
        events.add_metric(metric, tags)
    return ACCEPTED


def list_events(store: FakeStore, experiment_id: str, query: MultiMapping[str]) -> Reply:
    """``GET v3/experiments/{id}/events``: pages of spans; summary metrics on the first page."""
    store.experiment(experiment_id)
    scope = f"events/{experiment_id}"
    before, limit = page_request(query, scope, "events")
    shown = store.events
    if store.event_list_lag is not None:  # the live list is index-backed: it lags the pushes
        shown, reads = store.event_list_lag
        store.event_list_lag = (shown, reads - 1) if reads > 1 else None
    events = shown.get(experiment_id) or ExperimentEvents()
    spans, next_seq = events.page(before, limit)
    summary = events.summary_metrics() if before is None else []
    attributes = {"spans": spans, "summary_metrics": summary}
    data = {"id": experiment_id, "type": "experiment_events", "attributes": attributes}
    return Reply(
        200, {"data": data, "meta": {"after": encode_cursor(scope, next_seq) if next_seq else ""}}
    )
