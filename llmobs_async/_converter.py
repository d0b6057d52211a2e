"""The one cattrs converter: request models to JSON bytes, JSON documents to models.

Everything about the wire format lives here: the JSON:API envelope, UNSET
omission, timestamps, the forward-compatible reading of responses, and the
location of a value JSON cannot encode. It is configured once at import.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from . import _json
from ._json import encode_json
from .errors import ValidationError
from .models import (
    NO_EXTRA,
    UNSET,
    Author,
    DatasetRecord,
    Experiment,
    ExperimentStatus,
    ExperimentUpdate,
    Project,
    ProjectUpdate,
    RecordUpdate,
)

T = TypeVar("T")

converter = cattrs.Converter(detailed_validation=False)
"""The library's converter. Hooks are registered below, once."""

_EXTRA_KEY = "\x00extra"  # cannot collide with an API field name


def _identity(value: Any, _: Any = None) -> Any:
    return value


def _structure_datetime(value: Any, _: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if type(value) is not str:
        raise TypeError(f"expected a timestamp string, got {type(value).__name__}")
    return _parse_datetime(value)


@functools.lru_cache(maxsize=1024)
def _parse_datetime(value: str) -> datetime:
    # Cached: the records of one response mostly share their timestamps, and
    # a datetime is immutable, so sharing one object is safe.
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        # More than microsecond precision ("...00.123456789Z"): keep 6 digits.
        head, dot, tail = value.partition(".")
        if not dot:
            raise
        digits = len(tail) - len(tail.lstrip("0123456789"))
        parsed = datetime.fromisoformat(f"{head}.{tail[:6]}{tail[digits:]}")
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _structure_status(value: Any, _: Any) -> ExperimentStatus | str | None:
    if value is None:
        return None
    try:
        return ExperimentStatus(value)
    except ValueError:
        return str(value)  # a status newer than this library: keep it


def _structure_mapping(value: Any, _: Any) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"expected a JSON object, got {type(value).__name__}")
    return value


def _structure_optional_mapping(value: Any, _: Any) -> Mapping[str, Any] | None:
    return None if value is None else _structure_mapping(value, _)


def _structure_str(value: Any, _: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # a numeric id is still an id
    raise TypeError(f"expected a string, got {type(value).__name__}")


converter.register_structure_hook(datetime, _structure_datetime)
converter.register_structure_hook(str, _structure_str)


def _optional(hook: Callable[[Any, Any], T]) -> Callable[[Any, Any], T | None]:
    def structure(value: Any, type_: Any) -> T | None:
        return None if value is None else hook(value, type_)

    return structure


def _structure_int(value: Any, _: Any = None) -> int:
    return value if type(value) is int else int(value)


# One call per optional field instead of cattrs' Optional dispatch and then ours.
_OPTIONAL_HOOKS: dict[Any, Callable[[Any, Any], Any]] = {
    str | None: _optional(_structure_str),
    int | None: _optional(_structure_int),
    datetime | None: _optional(_structure_datetime),
}


def _response_hook(cls: type[T], **overrides: Any) -> Callable[[dict[str, Any]], T]:
    """Build a structure function for a flat response model that keeps unknown keys.

    Only fields without a default are required: in the models that is ``id``.
    """
    attrs.resolve_types(cls)  # type: ignore[type-var]  # the hooks below match on real types
    fields = attrs.fields(cls)  # type: ignore[arg-type]
    known = frozenset(a.name for a in fields if a.name != "extra")
    for a in fields:
        if a.name in overrides:
            continue
        if a.name in ("config", "metadata"):
            overrides[a.name] = override(struct_hook=_structure_mapping)
        elif a.name in ("input", "expected_output"):
            overrides[a.name] = override(struct_hook=_identity)
        elif a.type in _OPTIONAL_HOOKS:
            overrides[a.name] = override(struct_hook=_OPTIONAL_HOOKS[a.type])
    generated = make_dict_structure_fn(
        cls, converter, extra=override(rename=_EXTRA_KEY, struct_hook=_identity), **overrides
    )

    def structure(obj: dict[str, Any]) -> T:
        if not obj.keys() <= known:
            extra = _unknown(obj, known)
            obj = {k: v for k, v in obj.items() if k in known}
            obj[_EXTRA_KEY] = extra
        return generated(obj, cls)

    return structure


_author = _response_hook(Author)
converter.register_structure_hook(Author, lambda v, _: _author(v))
_OPTIONAL_HOOKS[Author | None] = _optional(lambda v, _: _author(v))
structure_experiment_attrs = _response_hook(
    Experiment,
    status=override(struct_hook=_structure_status),
    aggregate_data=override(struct_hook=_structure_optional_mapping),
)
structure_project_attrs = _response_hook(Project)
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
    return _author(value)


def _record_tags(value: Any) -> tuple[str, ...]:
    if type(value) is not list:
        raise TypeError(f"a record's tags must be a list, got {type(value).__name__}")
    return tuple(value)


def _optional_str(value: Any) -> str | None:
    return None if value is None else _structure_str(value, str)


def _optional_datetime(value: Any) -> datetime | None:
    return None if value is None else _structure_datetime(value, None)


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
    _set_id(record, rid if type(rid) is str else _structure_str(rid, str))
    _set_dataset_id(record, dataset_id if type(dataset_id) is str else _optional_str(dataset_id))
    _set_created_at(
        record, _parse_datetime(created) if type(created) is str else _optional_datetime(created)
    )
    _set_updated_at(
        record, _parse_datetime(updated) if type(updated) is str else _optional_datetime(updated)
    )
    _set_input(record, get("input"))
    _set_expected_output(record, get("expected_output"))
    _set_metadata(
        record, metadata if type(metadata) is dict else _structure_mapping(metadata, None)
    )
    _set_tags(record, () if tags is None else _record_tags(tags))
    _set_canonical_id(
        record, canonical_id if type(canonical_id) is str else _optional_str(canonical_id)
    )
    _set_version(
        record, version if version is None or type(version) is int else _structure_int(version)
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


converter.register_structure_hook(DatasetRecord, lambda v, _: structure_record(v))


def _flatten(doc: Any) -> dict[str, Any]:
    data = doc["data"]
    attributes = data.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise TypeError("data.attributes is not an object")
    flat = dict(attributes)
    flat["id"] = data["id"]
    return flat


def load_experiment(body: bytes, experiment_id: str | None = None) -> Experiment:
    """Read an experiment response document.

    The live API may answer an experiment PATCH with an empty 200: given the
    ``experiment_id`` that was sent, that reads as an experiment with only its id.
    """
    if experiment_id is not None and not body.strip():
        return Experiment(id=experiment_id)
    return structure_experiment_attrs(_flatten(_json.loads(body)))


def load_project(body: bytes) -> Project:
    """Read a project response document."""
    return structure_project_attrs(_flatten(_json.loads(body)))


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


# --- requests ---------------------------------------------------------------

_unstructure_experiment = make_dict_unstructure_fn(
    ExperimentUpdate,
    converter,
    _cattrs_omit_if_default=True,
    metadata=override(unstruct_hook=_identity),
    status=override(unstruct_hook=str),  # StrEnum member to plain str: the JSON value rule
)
_unstructure_project = make_dict_unstructure_fn(
    ProjectUpdate, converter, _cattrs_omit_if_default=True
)
_unstructure_record = make_dict_unstructure_fn(
    RecordUpdate,
    converter,
    _cattrs_omit_if_default=True,
    input=override(unstruct_hook=_identity),
    expected_output=override(unstruct_hook=_identity),
    metadata=override(unstruct_hook=_identity),
)
converter.register_unstructure_hook(ExperimentUpdate, _unstructure_experiment)
converter.register_unstructure_hook(ProjectUpdate, _unstructure_project)
converter.register_unstructure_hook(RecordUpdate, _unstructure_record)


def _request_hook(cls: type[T], resource_type: str) -> Callable[..., T]:
    """Structure a mapping (flat attributes, or a JSON:API envelope) into ``cls``."""
    names = tuple(a.name for a in attrs.fields(cls))  # type: ignore[arg-type]
    required = tuple(a.name for a in attrs.fields(cls) if a.default is attrs.NOTHING)  # type: ignore[arg-type]

    def structure(value: Any, _: Any = None) -> T:
        if isinstance(value, cls):
            return value
        if not isinstance(value, Mapping):
            raise ValidationError(
                "body", f"must be a {cls.__name__} or a mapping; got {type(value).__name__}"
            )
        if value.keys() == {"data"} and isinstance(value["data"], Mapping):
            value = _unwrap(value["data"], resource_type)
        for key in value:
            if key not in names:
                raise ValidationError(
                    str(key),
                    f"unknown field for {cls.__name__}; expected one of {', '.join(names)}",
                )
        for key in required:
            if key not in value:
                raise ValidationError(key, "is required")
        return cls(**value)

    converter.register_structure_hook(cls, structure)
    return structure


def _unwrap(data: Mapping[str, Any], resource_type: str) -> Mapping[str, Any]:
    if data.get("type", resource_type) != resource_type:
        raise ValidationError("data.type", f"must be {resource_type!r}; got {data['type']!r}")
    attributes = data.get("attributes", {})
    if not isinstance(attributes, Mapping):
        raise ValidationError("data.attributes", "must be a JSON object")
    return attributes


to_experiment_update = _request_hook(ExperimentUpdate, "experiments")
to_project_update = _request_hook(ProjectUpdate, "projects")
to_record_update = _request_hook(RecordUpdate, "records")


def _envelope(resource_type: str, attributes: bytes) -> bytes:
    return b'{"data":{"type":"%s","attributes":%s}}' % (resource_type.encode(), attributes)


def encode_update(update: ExperimentUpdate | ProjectUpdate, resource_type: str) -> bytes:
    """Encode a non-empty update as a JSON:API request body."""
    attributes = converter.unstructure(update)
    if not attributes:
        names = ", ".join(a.name for a in attrs.fields(type(update)))
        raise ValidationError("body", f"empty update: set at least one of {names}")
    return _envelope(resource_type, encode_json(attributes))


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


def encode_record(record: RecordUpdate | Mapping[str, Any]) -> bytes:
    """Validate and encode one record update as a JSON object."""
    wire = record_wire(record)
    try:
        return encode_json(wire)
    except ValidationError:
        if not _holds_unset(wire):
            raise
    return encode_json(_unstructure_record(to_record_update(wire)))


def encode_records(records: Sequence[RecordUpdate | Mapping[str, Any]]) -> bytes:
    """Validate and encode record updates as one JSON array (one encoder call).

    Errors name the record: ``records[3].input``.
    """
    wire = []
    for index, record in enumerate(records):
        try:
            wire.append(record_wire(record))
        except ValidationError as exc:
            raise exc.prefixed(f"records[{index}]") from None
    try:
        return encode_json(wire)
    except ValidationError as exc:
        error = exc
    if not any(_holds_unset(w) for w in wire):
        raise error.prefixed("records") from None
    # Rare: a dict holding UNSET. Rebuild those through the model, then encode again.
    return encode_records(
        [_unstructure_record(to_record_update(w)) if _holds_unset(w) else w for w in wire]
    )


def records_body(joined: bytes | bytearray) -> bytes:
    """The records request body around ``joined``: encoded records, comma-separated."""
    return b'{"data":{"type":"records","attributes":{"records":[%s]}}}' % joined


RECORDS_BODY_OVERHEAD = len(records_body(b""))
