"""Dataset records on the wire: the hot path, written out by hand.

A bulk job reads and writes records by the hundred thousand, so these
functions skip the generic converter where measurement showed it costs more
than the request (see each function). Everything else about the wire format
is in :mod:`llmobs_async._wire`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import attrs

from .. import _json
from .._json import encode_json
from ..errors import ValidationError
from ..models import NO_EXTRA, UNSET, Author, DatasetRecord, RecordCreate, RecordUpdate
from .jsonapi import (
    parse_datetime,
    request_reader,
    structure_author,
    structure_datetime,
    structure_int,
    structure_mapping,
    structure_str,
    unstructurer,
)

# --- reading ---------------------------------------------------------------------------

_RECORD_KNOWN = frozenset(a.name for a in attrs.fields(DatasetRecord) if a.name != "extra")


_new = object.__new__
# The slots' own setters: calling one costs a third less than object.__setattr__,
# which looks the name up first. The frozen class's __setattr__ is bypassed
# only here, while the instance is being built.
_slot_setters = {
    a.name: DatasetRecord.__dict__[a.name].__set__ for a in attrs.fields(DatasetRecord)
}
_set_id, _set_dataset_id = _slot_setters["id"], _slot_setters["dataset_id"]
_set_created_at, _set_updated_at = _slot_setters["created_at"], _slot_setters["updated_at"]
_set_input, _set_expected_output = _slot_setters["input"], _slot_setters["expected_output"]
_set_metadata, _set_tags = _slot_setters["metadata"], _slot_setters["tags"]
_set_canonical_id, _set_version = _slot_setters["canonical_id"], _slot_setters["version"]
_set_author, _set_deleted_at = _slot_setters["author"], _slot_setters["deleted_at"]
_set_extra = _slot_setters["extra"]


_AUTHORS: dict[Any, Author] = {}
"""Authors sent as ``{"id": ...}``, one frozen instance per id (at most 256 kept)."""


def _author_with_id(author_id: str) -> Author:
    author = _AUTHORS.get(author_id)
    if author is None:
        if len(_AUTHORS) >= 256:
            _AUTHORS.clear()
        author = _AUTHORS[author_id] = Author(id=author_id)
    return author


def _record_author(value: Any) -> Author:
    if type(value) is dict and len(value) == 1:
        author_id = value.get("id")
        if type(author_id) is str:
            return _author_with_id(author_id)
    return structure_author(value)


def _record_tags(value: Any) -> tuple[str, ...]:
    if type(value) is not list:
        raise TypeError(f"a record's tags must be a list, got {type(value).__name__}")
    return tuple(value)


def _optional_str(value: Any) -> str | None:
    return None if value is None else structure_str(value, str)


def _optional_datetime(value: Any) -> datetime | None:
    return None if value is None else structure_datetime(value, None)


_fromisoformat = datetime.fromisoformat


def _timestamp(value: Any) -> datetime | None:
    """A record's timestamp: tz-aware, a missing zone read as UTC (as ``parse_datetime``).

    Not through ``parse_datetime``'s cache: a list's records each have their
    own timestamps, and a cache miss (hashing, a tracked node the garbage
    collector then scans) costs about four times the parse itself.
    """
    if type(value) is str:
        try:
            parsed = _fromisoformat(value)
        except ValueError:  # more than 6 fractional digits on an older 3.11, or odd forms
            return parse_datetime(value)
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    return _optional_datetime(value)


def structure_record(obj: dict[str, Any]) -> DatasetRecord:
    """Structure one record: a flat object, or a JSON:API resource with ``attributes``.

    Written out by hand because a 1,000-record response runs it 1,000 times:
    it fills the frozen instance's slots through their own setters, about
    half the cost of the generated ``__init__`` (DatasetRecord has no
    validators to skip; tests round-trip every field). The common types are
    checked inline; the rest (null, numeric ids) go through the shared hooks.
    Same rules as the other models: only ``id`` is required, unknown
    attributes go to ``extra``, a resource's ``type`` is dropped.
    """
    fields = obj.get("attributes")
    if fields is None:
        fields = obj
    elif type(fields) is not dict:
        raise TypeError("a record's attributes are not an object")
    get = fields.get
    rid = obj["id"]
    dataset_id, created, updated = get("dataset_id"), get("created_at"), get("updated_at")
    metadata, tags, canonical_id = get("metadata"), get("tags"), get("canonical_id")
    version, author, deleted_at = get("version"), get("author"), get("deleted_at")
    record = _new(DatasetRecord)
    _set_id(record, rid if type(rid) is str else structure_str(rid, str))
    _set_dataset_id(record, dataset_id if type(dataset_id) is str else _optional_str(dataset_id))
    created_at: datetime | None
    if type(created) is str:  # _timestamp, inline: a call fewer per record
        try:
            created_at = _fromisoformat(created)
        except ValueError:
            created_at = parse_datetime(created)
        else:
            if created_at.tzinfo is None:
                created_at = created_at.replace(tzinfo=UTC)
    else:
        created_at = _optional_datetime(created)
    _set_created_at(record, created_at)
    # A record never updated has updated_at == created_at: one parse, one shared object.
    _set_updated_at(record, created_at if updated == created else _timestamp(updated))
    _set_input(record, get("input"))
    _set_expected_output(record, get("expected_output"))
    _set_metadata(record, metadata if type(metadata) is dict else structure_mapping(metadata, None))
    if type(tags) is list:
        _set_tags(record, tuple(tags))
    else:
        _set_tags(record, () if tags is None else _record_tags(tags))
    _set_canonical_id(
        record, canonical_id if type(canonical_id) is str else _optional_str(canonical_id)
    )
    _set_version(
        record, version if version is None or type(version) is int else structure_int(version)
    )
    if type(author) is dict and len(author) == 1:
        # Records mostly carry just their author's id: one shared instance per id.
        shared = _AUTHORS.get(author.get("id"))
        _set_author(record, shared if shared is not None else _record_author(author))
    else:
        _set_author(record, author if author is None else _record_author(author))
    _set_deleted_at(record, deleted_at if deleted_at is None else _optional_datetime(deleted_at))
    _set_extra(
        record, NO_EXTRA if _RECORD_KNOWN.issuperset(fields) else _unknown(fields, _RECORD_KNOWN)
    )
    return record


def _unknown(obj: dict[str, Any], known: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in known}


def load_records(body: bytes) -> list[DatasetRecord]:
    """Read a records response in any shape the API uses.

    ``data`` is a list of record resources (``{"id", "type", "attributes"}``,
    what the live API's ``batch_update`` and records list answer), of flat
    records, or of ``{"records": [...]}`` groups (the specification's
    mutation response); a single record or group is read as a list of one.
    """
    data = _json.loads(body)["data"]
    if isinstance(data, dict):
        data = [data]
    out: list[DatasetRecord] = []
    for item in data:
        if "records" in item:
            out.extend(structure_record(rec) for rec in item["records"])
        else:
            out.append(structure_record(item))
    return out


# --- writing ---------------------------------------------------------------------------

to_record_update = request_reader(RecordUpdate, "records")
to_record_create = request_reader(RecordCreate, "records")
_unstructure_record = unstructurer(RecordUpdate)

_RECORD_KEYS = frozenset(a.name for a in attrs.fields(RecordUpdate))


def record_wire(record: RecordUpdate | Mapping[str, Any]) -> Mapping[str, Any]:
    """The JSON object to send for one record update, validated.

    A plain dict that already has the wire form (a non-empty string ``id``,
    known keys, ``metadata`` a dict) is sent as given: rebuilding it through
    ``RecordUpdate`` would cost more than the request. The encoder still
    checks every value, and a dict holding ``UNSET`` (which the encoder
    refuses) is rebuilt by :func:`encode_record` / :func:`encode_records`, so
    that the field is left out as the model leaves it out. Anything else goes
    through the model's validation.
    """
    if type(record) is dict:
        rid = record.get("id")
        if (
            type(rid) is str
            and rid
            and _RECORD_KEYS.issuperset(record)
            and type(record.get("metadata", _NO_METADATA)) is dict
        ):
            return record
    return _unstructure_record(to_record_update(record))


_NO_METADATA: Final[dict[str, Any]] = {}


def _holds_unset(wire: Mapping[str, Any]) -> bool:
    return type(wire) is dict and UNSET in wire.values()


def _codec(
    wire_of: Callable[[Any], Mapping[str, Any]], rebuild: Callable[[Any], Mapping[str, Any]]
) -> tuple[Callable[[Any], bytes], Callable[[Sequence[Any]], bytes]]:
    """The one-record and many-record encoders of one kind of record."""

    def encode_one(record: Any) -> bytes:
        wire = wire_of(record)
        try:
            return encode_json(wire)
        except ValidationError:
            if not _holds_unset(wire):
                raise
        return encode_json(rebuild(wire))

    def encode_many(records: Sequence[Any]) -> bytes:
        try:
            wire = [wire_of(record) for record in records]
        except ValidationError:
            # Rare: find the first record at fault again, to name its index.
            for index, record in enumerate(records):
                try:
                    wire_of(record)
                except ValidationError as exc:
                    raise exc.prefixed(f"records[{index}]") from None
            raise
        try:
            return encode_json(wire)
        except ValidationError as exc:
            error = exc
        if not any(_holds_unset(w) for w in wire):
            raise error.prefixed("records") from None
        # Rare: a dict holding UNSET. Rebuild those through the model, then encode again.
        return encode_json([rebuild(w) if _holds_unset(w) else w for w in wire])

    return encode_one, encode_many


encode_record, encode_records = _codec(
    record_wire, lambda wire: _unstructure_record(to_record_update(wire))
)
"""Validate and encode one record update (many, as one JSON array; errors name ``records[i]``)."""

_NEW_RECORD_KEYS = frozenset(a.name for a in attrs.fields(RecordCreate))
_unstructure_new_record = unstructurer(RecordCreate)


def new_record_wire(record: RecordCreate | Mapping[str, Any]) -> Mapping[str, Any]:
    """The JSON object to send for one new record, validated (fast path as :func:`record_wire`)."""
    if type(record) is dict:
        rid = record.get("id", _NO_ID)
        if (
            "input" in record
            and "tags" not in record
            and (rid is _NO_ID or (type(rid) is str and rid))
            and _NEW_RECORD_KEYS.issuperset(record)
            and type(record.get("metadata", _NO_METADATA)) is dict
        ):
            return record
    return _unstructure_new_record(to_record_create(record))


_NO_ID: Final = object()

encode_new_record, encode_new_records = _codec(
    new_record_wire, lambda wire: _unstructure_new_record(to_record_create(wire))
)
"""Validate and encode one new record (many, as one JSON array)."""


def encode_record_id(record_id: Any) -> bytes:
    """Validate and encode one record id of a delete."""
    if type(record_id) is not str or not record_id.strip():
        raise ValidationError("id", f"must be a non-empty string; got {record_id!r}")
    return encode_json(record_id)


def records_body(joined: bytes | bytearray) -> bytes:
    """The records request body around ``joined``: encoded records, comma-separated."""
    return b'{"data":{"type":"records","attributes":{"records":[%s]}}}' % joined


RECORDS_BODY_OVERHEAD = len(records_body(b""))


_NULLABLE: Final = ("input", "expected_output")


def _update_item_wire(record: RecordUpdate | Mapping[str, Any]) -> Mapping[str, Any]:
    """:func:`record_wire`, refusing a ``null`` that a batch update would read as unchanged.

    There a ``null`` ``input`` or ``expected_output`` leaves the stored value
    unchanged (the live API's reading, which ddtrace relies on), where the
    records PATCH stores ``null``: such an update is refused rather than
    silently dropped.
    """
    wire = record_wire(record)
    for key in _NULLABLE:
        if key in wire and wire[key] is None:
            raise ValidationError(
                key,
                "is null, which a batch update reads as 'unchanged'; "
                "to store null use records.update (the records PATCH)",
            )
    return wire


encode_update_record, _ = _codec(
    _update_item_wire, lambda wire: _unstructure_record(to_record_update(wire))
)
"""Validate and encode one ``update_records`` item of a ``batch_update`` (see above)."""


def check_answer(body: bytes) -> None:
    """Refuse a bulk request's 2xx answer that is not the API's: ``{"data": [...]}``.

    A proxy's HTML page or an empty body answered 200 must not count the
    batch's records as applied.
    """
    doc = _json.loads(body)
    if type(doc) is not dict or type(doc.get("data")) is not list:
        raise TypeError("not an object whose data is a list")
