"""A dataset's records: versions, listing at a version, and every kind of record change.

Versions are kept cheap: each record remembers the version that created it
and the one that deleted it, and its content is always the current one. A
listing at version ``v`` shows the records that existed at ``v``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
import orjson

from ._paging import SeqIndex
from ._wire import (
    AUTHOR_ID,
    bad_request,
    check_json,
    escape,
    not_found,
    now_iso,
    record_resource,
    required,
    string_list,
)

RECORD_FIELDS = ("input", "expected_output", "metadata")
INSERT_KEYS = frozenset({*RECORD_FIELDS, "id", "tags", "tag_operations"})
UPDATE_KEYS = frozenset({*RECORD_FIELDS, "id", "tag_operations"})


@attrs.define(eq=False)
class _Entry:
    stored: dict[str, Any]
    created: int
    deleted: int | None = None


@attrs.define
class FakeDataset:
    """A dataset: its project, its attributes, its versions and its records."""

    id: str
    project_id: str
    records: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    """The records of the current version, by id, as attribute dicts."""
    version: int = 0
    """The current version (``current_version``): each change to the records makes a new one."""
    attributes: dict[str, Any] = attrs.field(factory=dict)
    """``name``, ``description``, ``metadata``, timestamps and the like, as stored."""
    versions: list[dict[str, Any]] = attrs.field(factory=list)
    """One dict per version made: ``id``, ``version_number``, ``created_at``, ``last_used``."""
    _entries: SeqIndex[_Entry] = attrs.field(init=False, factory=SeqIndex)
    _live: dict[str, _Entry] = attrs.field(init=False, factory=dict)
    _next_seq: int = attrs.field(init=False, default=0)
    _deletions: int = attrs.field(init=False, default=0)
    _by_content: dict[bytes, str] | None = attrs.field(init=False, default=None)

    def bump(self) -> int:
        """Make a new version and return its number."""
        self.version += 1
        self.versions.append(
            {
                "id": str(uuid.uuid4()),
                "version_number": self.version,
                "created_at": now_iso(),
                "last_used": None,
            }
        )
        return self.version

    def seed(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Add records as one new version (none if ``records`` is empty); ids are optional."""
        ts, version = now_iso(), 0
        for rec in records:
            version = version or self.bump()
            self.put(rec, ts, version)

    def put(
        self, rec: Mapping[str, Any], ts: str, version: int, *, upsert: bool = False
    ) -> dict[str, Any]:
        """Store ``rec`` as a record of ``version``: a new one, or over the live one of its id.

        ``upsert`` keeps the replaced record's ``canonical_id`` and ``created_at``.
        """
        rid = rec.get("id") or str(uuid.uuid4())
        stored = {
            "id": rid,
            "author": {"id": AUTHOR_ID},
            "canonical_id": rec.get("canonical_id") or str(uuid.uuid4()),
            "dataset_id": self.id,
            "input": rec.get("input"),
            "expected_output": rec.get("expected_output"),
            "metadata": dict(rec.get("metadata") or {}),
            "tags": list(rec.get("tags") or ()),
            "created_at": ts,
            "updated_at": ts,
        }
        live = self._live.get(rid)
        if live is None:
            self._next_seq += 1
            entry = _Entry(stored, version)
            self._entries.add(self._next_seq, entry)
            self._live[rid] = entry
            self.records[rid] = stored
        else:  # the same dict, so views handed out earlier stay current
            old = live.stored
            self._unindex(old)
            if upsert:
                stored.update(canonical_id=old["canonical_id"], created_at=old["created_at"])
            old.clear()
            old.update(stored)
            stored = old
        self._index(stored)
        return stored

    def remove(self, rid: str, version: int) -> None:
        """Delete the live record ``rid`` as of ``version``."""
        entry = self._live.pop(rid)
        entry.deleted = version
        del self.records[rid]
        self._unindex(entry.stored)
        self._deletions += 1

    def change(self, stored: dict[str, Any], values: Mapping[str, Any]) -> None:
        """Set ``values`` on a live record (keeping the duplicate index right)."""
        self._unindex(stored)
        stored.update(values)
        self._index(stored)

    def page(
        self, version: int, tags: Sequence[str], before: int | None, limit: int
    ) -> tuple[list[dict[str, Any]], int | None]:
        """A page of the records of ``version`` carrying every tag in ``tags``, as resources."""
        if version == self.version and not tags and not self._deletions:
            keep = None  # every entry is live: the page is a slice
        else:
            wanted = set(tags)

            def keep(entry: _Entry) -> bool:
                deleted = entry.deleted
                if entry.created > version or (deleted is not None and deleted <= version):
                    return False
                return not wanted or wanted.issubset(entry.stored.get("tags") or ())

        entries, next_seq = self._entries.page(before, limit, keep)
        return [record_resource(entry.stored) for entry in entries], next_seq

    # --- deduplication: an index of live content, built on first use --------------------------

    def duplicate_of(self, rec: Mapping[str, Any]) -> str | None:
        """The id of a live record with the same ``input`` and ``expected_output``, if any."""
        if self._by_content is None:
            self._by_content = {}
            for stored in self.records.values():
                self._by_content.setdefault(content_key(stored), stored["id"])
        key = content_key(rec)
        rid = self._by_content.get(key)
        found = None if rid is None else self.records.get(rid)
        if rid is not None and found is not None and content_key(found) == key:
            return rid
        # A test changed the stored dict behind our back: forget the stale entry.
        self._by_content.pop(key, None)
        return None

    def _index(self, stored: Mapping[str, Any]) -> None:
        if self._by_content is not None:
            self._by_content.setdefault(content_key(stored), stored["id"])

    def _unindex(self, stored: Mapping[str, Any]) -> None:
        if self._by_content is not None:
            key = content_key(stored)
            if self._by_content.get(key) == stored["id"]:
                del self._by_content[key]


def content_key(rec: Mapping[str, Any]) -> bytes:
    """What deduplication compares: ``input`` and ``expected_output``."""
    pair = [rec.get("input"), rec.get("expected_output")]
    try:
        return orjson.dumps(pair, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # what orjson refuses (huge ints, non-string keys) seeded by a test
        try:
            return json.dumps(pair, sort_keys=True).encode()
        except (TypeError, ValueError):
            return repr(pair).encode()


# --- changes, as the endpoints make them ---------------------------------------------------------


def insert(
    dataset: FakeDataset,
    records: Sequence[Mapping[str, Any]],
    version: int,
    *,
    deduplicate: bool,
    tags: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Store checked insert items as records of ``version``; return the stored dicts.

    With ``deduplicate``, an item with the content of a live record is skipped
    (and left out of the answer) unless it names another id.
    """
    ts, out = now_iso(), []
    for rec in records:
        if deduplicate:
            duplicate = dataset.duplicate_of(rec)
            if duplicate is not None and rec.get("id") in (None, duplicate):
                continue
        given = rec.get("tags") or ()
        if rec.get("tag_operations"):  # insert items take them too (API-REFERENCE 2.3)
            given = tag_result(given, rec["tag_operations"])
        if given or tags:  # the live API answers tags sorted
            rec = {**rec, "tags": sorted({*given, *tags})}
        out.append(dataset.put(rec, ts, version, upsert=True))
    return out


def apply_update(dataset: FakeDataset, rec: Mapping[str, Any], ts: str) -> dict[str, Any]:
    """Apply a checked ``batch_update`` update item: a null field is left unchanged (as live)."""
    stored = dataset.records[rec["id"]]
    values: dict[str, Any] = {
        key: (dict(rec[key]) if key == "metadata" else rec[key])
        for key in RECORD_FIELDS
        if rec.get(key) is not None
    }
    operations = rec.get("tag_operations")
    if operations:
        values["tags"] = tag_result(stored.get("tags") or (), operations)
    values["updated_at"] = ts
    dataset.change(stored, values)
    return stored


def tag_result(tags: Sequence[str], operations: Mapping[str, Any]) -> list[str]:
    """``tags`` after checked ``tag_operations``: remove, add, then ``set`` (overriding both).

    Sorted, as the live API answers tags.
    """
    out = [t for t in tags if t not in operations.get("remove", ())]
    out += [t for t in operations.get("add", ()) if t not in out]
    if "set" in operations:
        out = list(operations["set"])
    return sorted(set(out))


# --- checks: 400 with a pointer to the item at fault, 404 for unknown ids --------------------


def check_insert(rec: Any, pointer: str) -> None:
    """Check one item to insert (``records`` of a create, ``insert_records`` of a batch)."""
    if not isinstance(rec, dict):
        raise bad_request("record must be an object", pointer)
    for key in rec:
        if key not in INSERT_KEYS:
            raise bad_request(f"unknown attribute {key!r}", f"{pointer}/{escape(key)}")
    required(rec, "input", pointer)
    rid = rec.get("id")
    if rid is not None and (not isinstance(rid, str) or not rid):
        raise bad_request("id must be a non-empty string", f"{pointer}/id")
    if rec.get("tags") is not None:
        string_list(rec["tags"], f"{pointer}/tags")
    _check_content(rec, pointer)


def check_update(dataset: FakeDataset, rec: Any, pointer: str) -> None:
    """Check one ``update_records`` item of a batch; its record must exist."""
    if not isinstance(rec, dict):
        raise bad_request("record must be an object", pointer)
    for key in rec:
        if key not in UPDATE_KEYS:
            raise bad_request(f"unknown attribute {key!r}", f"{pointer}/{escape(key)}")
    rid = rec.get("id")
    if not isinstance(rid, str) or not rid:
        raise bad_request("Missing required attribute in body", f"{pointer}/id")
    _check_content(rec, pointer)
    if rid not in dataset.records:
        raise not_found(f"record {rid} not found in dataset {dataset.id}", f"{pointer}/id")


def check_ids(dataset: FakeDataset, ids: Any, pointer: str) -> list[str]:
    """Check ids of records to delete: an array of strings naming live records."""
    if not isinstance(ids, list):
        raise bad_request("must be an array of record ids", pointer)
    for index, rid in enumerate(ids):
        if not isinstance(rid, str) or not rid:
            raise bad_request("id must be a non-empty string", f"{pointer}/{index}")
        if rid not in dataset.records:
            detail = f"record {rid} not found in dataset {dataset.id}"
            raise not_found(detail, f"{pointer}/{index}")
    return list(dict.fromkeys(ids))


def _check_content(rec: Mapping[str, Any], pointer: str) -> None:
    if rec.get("metadata") is not None and not isinstance(rec["metadata"], dict):
        raise bad_request("metadata must be an object", f"{pointer}/metadata")
    operations = rec.get("tag_operations")
    if operations is not None:
        where = f"{pointer}/tag_operations"
        if not isinstance(operations, dict):
            raise bad_request("tag_operations must be an object", where)
        for key, value in operations.items():
            if key not in ("add", "remove", "set"):
                raise bad_request(f"unknown attribute {key!r}", f"{where}/{escape(key)}")
            string_list(value, f"{where}/{key}")
    for key in RECORD_FIELDS:
        if key in rec:
            check_json(rec[key], f"{pointer}/{key}")
