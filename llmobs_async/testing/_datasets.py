"""Projects, datasets and records endpoints of the fake API (all but the PATCHes)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from multidict import MultiMapping

from ._paging import filter_values, page_doc, page_request
from ._records import FakeDataset, apply_update, check_ids, check_insert, check_update, insert
from ._wire import (
    NO_CONTENT,
    ApiFault,
    Reply,
    attributes_of,
    bad_parameter,
    bad_request,
    check_fields,
    conflict,
    id_list,
    nonempty_str,
    not_found,
    now_iso,
    record_resource,
    resource,
    string_list,
)

if TYPE_CHECKING:
    from ._store import FakeStore

A = "/data/attributes"
DATASET_FIELDS = {"name": str, "description": str, "metadata": dict}
LIST_OR_NULL = (list, type(None))
BATCH_FIELDS: dict[str, type | tuple[type, ...]] = {
    "insert_records": LIST_OR_NULL,
    "update_records": LIST_OR_NULL,
    "delete_records": LIST_OR_NULL,
    "create_new_version": bool,
    "deduplicate": bool,
    "tags": LIST_OR_NULL,
}
VERSION_DETAIL = "invalid version: version is greater than the current version or negative"
"""The live API's words for a ``filter[version]`` it does not have."""


# --- projects ------------------------------------------------------------------------------------


def project_doc(store: FakeStore, project_id: str) -> dict[str, Any]:
    """A project as the API answers it."""
    return resource("projects", project_id, store.projects[project_id])


def create_project(store: FakeStore, doc: Any) -> Reply:
    """``POST v1/projects``: get or create, by name (the existing project on a name clash)."""
    attributes = attributes_of(doc, "projects")
    check_fields(attributes, {"name": str, "description": str})
    name = nonempty_str(attributes, "name")
    for pid, stored in store.projects.items():
        if stored["name"] == name:
            return Reply(200, {"data": project_doc(store, pid)})
    pid = store.add_project(name=name, description=attributes.get("description", ""))
    return Reply(200, {"data": project_doc(store, pid)})


def list_projects(store: FakeStore, query: MultiMapping[str]) -> Reply:
    """``GET v1/projects`` with ``filter[id]`` (repeatable) and ``filter[name]``."""
    ids = set(filter_values(query, "filter[id]"))
    name = query.get("filter[name]")
    before, limit = page_request(query, "projects", "projects")

    def keep(pid: str) -> bool:
        stored = store.projects.get(pid)
        if stored is None:
            return False
        return (not ids or pid in ids) and (name is None or stored["name"] == name)

    found, next_seq = store.project_index.page(before, limit, keep)
    return Reply(200, page_doc([project_doc(store, pid) for pid in found], "projects", next_seq))


def delete_projects(store: FakeStore, doc: Any) -> Reply:
    """``POST v1/projects/delete``: all named projects, or none if one is unknown."""
    attributes = attributes_of(doc, "projects")
    check_fields(attributes, {"project_ids": list})
    ids = id_list(attributes, "project_ids")
    for index, pid in enumerate(ids):
        if pid not in store.projects:
            raise not_found(f"project {pid} not found", f"{A}/project_ids/{index}")
    for pid in dict.fromkeys(ids):
        del store.projects[pid]
    return NO_CONTENT


# --- datasets ------------------------------------------------------------------------------------


def dataset_doc(dataset: FakeDataset) -> dict[str, Any]:
    """A dataset as the API answers it (empty ``description`` and ``metadata`` left out)."""
    attributes = {
        **dataset.attributes,
        "current_version": dataset.version,
        "project_id": dataset.project_id,
    }
    return resource("datasets", dataset.id, attributes, kind="dataset")


def create_dataset(store: FakeStore, project_id: str, doc: Any) -> Reply:
    """``POST v1/{project_id}/datasets``: 409 when the project has a dataset of that name."""
    store.project(project_id)
    attributes = attributes_of(doc, "datasets")
    check_fields(attributes, DATASET_FIELDS)
    name = nonempty_str(attributes, "name")
    _check_name_free(store, project_id, name, None)
    did = store.add_dataset(
        project_id=project_id,
        name=name,
        description=attributes.get("description", ""),
        metadata=attributes.get("metadata"),
    )
    return Reply(200, {"data": dataset_doc(store.datasets[did])})


def list_datasets(store: FakeStore, project_id: str, query: MultiMapping[str]) -> Reply:
    """``GET v1/{project_id}/datasets`` with ``filter[name]`` and ``filter[id]`` (repeatable)."""
    store.project(project_id)
    ids = set(filter_values(query, "filter[id]"))
    name = query.get("filter[name]")
    scope = f"datasets/{project_id}"
    before, limit = page_request(query, scope, "datasets")

    def keep(did: str) -> bool:
        dataset = store.datasets.get(did)
        if dataset is None or dataset.project_id != project_id:
            return False
        attributes = dataset.attributes
        if attributes.get("deleted_at") or (ids and did not in ids):
            return False
        return name is None or attributes.get("name") == name

    index = store.dataset_index.get(project_id)
    found, next_seq = index.page(before, limit, keep) if index else ([], None)
    return Reply(200, page_doc([dataset_doc(store.datasets[d]) for d in found], scope, next_seq))


def update_dataset(store: FakeStore, project_id: str, dataset_id: str, doc: Any) -> Reply:
    """``PATCH v1/{project_id}/datasets/{dataset_id}``: fields given are set, others kept."""
    dataset = store.dataset(project_id, dataset_id)
    attributes = attributes_of(doc, "datasets")
    check_fields(attributes, DATASET_FIELDS)
    if "name" in attributes:
        name = nonempty_str(attributes, "name")
        _check_name_free(store, project_id, name, dataset_id)
    dataset.attributes.update(attributes, updated_at=now_iso())
    return Reply(200, {"data": dataset_doc(dataset)})


def delete_datasets(store: FakeStore, project_id: str, doc: Any) -> Reply:
    """``POST v1/{project_id}/datasets/delete``: soft delete, then 404 for them everywhere."""
    store.project(project_id)
    attributes = attributes_of(doc, "datasets")
    check_fields(attributes, {"dataset_ids": list})
    ids = id_list(attributes, "dataset_ids")
    for index, did in enumerate(ids):
        try:
            store.dataset(project_id, did)
        except ApiFault:
            raise not_found(f"dataset {did} not found", f"{A}/dataset_ids/{index}") from None
    ts = now_iso()
    for did in ids:
        store.datasets[did].attributes.update(deleted_at=ts, updated_at=ts)
    return NO_CONTENT


def dataset_versions(store: FakeStore, project_id: str, dataset_id: str) -> Reply:
    """``GET .../versions``: every version made, newest first, unpaginated."""
    dataset = store.dataset(project_id, dataset_id)
    data = [
        resource(
            "dataset_version",
            version["id"],
            {
                "dataset_id": dataset_id,
                "last_used": version["last_used"],
                "version_number": version["version_number"],
            },
        )
        for version in reversed(dataset.versions)
    ]
    return Reply(200, {"data": data})


def _check_name_free(store: FakeStore, project_id: str, name: str, own_id: str | None) -> None:
    for dataset in store.datasets.values():
        if (
            dataset.project_id == project_id
            and dataset.id != own_id
            and not dataset.attributes.get("deleted_at")
            and dataset.attributes.get("name") == name
        ):
            detail = f"a dataset named {name!r} already exists in project {project_id}"
            raise conflict(detail, f"{A}/name")


# --- records -------------------------------------------------------------------------------------


def list_records(
    store: FakeStore, project_id: str, dataset_id: str, query: MultiMapping[str]
) -> Reply:
    """``GET .../records`` at ``filter[version]`` (default: current), with all ``filter[tags]``."""
    dataset = store.dataset(project_id, dataset_id)
    version = dataset.version
    text = query.get("filter[version]")
    if text is not None:
        try:
            version = int(text)
        except ValueError:
            raise bad_parameter("filter[version]", VERSION_DETAIL) from None
        if not 0 <= version <= dataset.version:
            raise bad_parameter("filter[version]", VERSION_DETAIL)
    tags = filter_values(query, "filter[tags]")
    scope = f"records/{dataset_id}"
    before, limit = page_request(query, scope, "records")
    data, next_seq = dataset.page(version, tags, before, limit)
    return Reply(200, page_doc(data, scope, next_seq))


def create_records(store: FakeStore, project_id: str, dataset_id: str, doc: Any) -> Reply:
    """``POST .../records``: append records as a new version; ids are generated when absent."""
    dataset = store.dataset(project_id, dataset_id)
    attributes = attributes_of(doc, "records")
    check_fields(attributes, {"records": list, "deduplicate": bool})
    records = attributes.get("records")
    if not isinstance(records, list) or not records:
        raise bad_request("records must be a non-empty array", f"{A}/records")
    for index, rec in enumerate(records):
        check_insert(rec, f"{A}/records/{index}")
    deduplicate = attributes.get("deduplicate", True)
    stored = insert(dataset, records, dataset.version + 1, deduplicate=deduplicate)
    if stored:
        dataset.bump()
    return Reply(200, {"data": [record_resource(s, version=dataset.version) for s in stored]})


def delete_records(store: FakeStore, project_id: str, dataset_id: str, doc: Any) -> Reply:
    """``POST .../records/delete``: all named records as a new version, or none."""
    dataset = store.dataset(project_id, dataset_id)
    attributes = attributes_of(doc, "records")
    check_fields(attributes, {"record_ids": list})
    ids = check_ids(dataset, id_list(attributes, "record_ids"), f"{A}/record_ids")
    version = dataset.bump()
    for rid in ids:
        dataset.remove(rid, version)
    return NO_CONTENT


def batch_update(store: FakeStore, project_id: str, dataset_id: str, doc: Any) -> Reply:
    """``POST .../batch_update``: inserts, updates and deletes at once, all or nothing.

    One new version when ``create_new_version`` (the default) and anything
    changed; otherwise the changes land in the current version.
    """
    dataset = store.dataset(project_id, dataset_id)
    attributes = attributes_of(doc, "datasets", id=dataset_id)
    check_fields(attributes, BATCH_FIELDS)
    inserts = attributes.get("insert_records") or []
    updates = attributes.get("update_records") or []
    tags = string_list(attributes.get("tags") or [], f"{A}/tags")
    for index, rec in enumerate(inserts):
        check_insert(rec, f"{A}/insert_records/{index}")
    for index, rec in enumerate(updates):
        check_update(dataset, rec, f"{A}/update_records/{index}")
    deletes = check_ids(dataset, attributes.get("delete_records") or [], f"{A}/delete_records")
    new_version = attributes.get("create_new_version", True)
    version = dataset.version + 1 if new_version else dataset.version
    deduplicate = attributes.get("deduplicate", True)
    inserted = insert(dataset, inserts, version, deduplicate=deduplicate, tags=tags)
    ts = now_iso()
    updated = [apply_update(dataset, rec, ts) for rec in updates]
    for rid in deletes:
        if rid in dataset.records:
            dataset.remove(rid, version)
    if new_version and (inserted or updated or deletes):
        dataset.bump()
    changed = [*inserted, *updated]
    return Reply(200, {"data": [record_resource(s, version=dataset.version) for s in changed]})
