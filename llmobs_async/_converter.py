"""The one cattrs converter: request models to JSON bytes, JSON documents to models.

Everything about the wire format lives here: the JSON:API envelope, UNSET
omission, timestamps, the forward-compatible reading of responses, and the
location of a value JSON cannot encode. It is configured once at import.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from . import _json
from ._json import encode_json
from .errors import ValidationError
from .models import (
    NO_EXTRA,
    UNSET,
    DatasetRecord,
    Experiment,
    ExperimentAuthor,
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


# One call per optional field instead of cattrs' Optional dispatch and then ours.
_OPTIONAL_HOOKS: dict[Any, Callable[[Any, Any], Any]] = {
    str | None: _optional(_structure_str),
    int | None: _optional(lambda v, _: v if type(v) is int else int(v)),
    datetime | None: _optional(_structure_datetime),
}


def _response_hook(cls: type[T], **overrides: Any) -> Callable[[dict[str, Any]], T]:
    """Build a structure function for a flat response model that keeps unknown keys."""
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


_author = _response_hook(ExperimentAuthor)
converter.register_structure_hook(ExperimentAuthor, lambda v, _: _author(v))
structure_experiment_attrs = _response_hook(
    Experiment,
    status=override(struct_hook=_structure_status),
    aggregate_data=override(struct_hook=_structure_optional_mapping),
)
structure_project_attrs = _response_hook(Project)
_RECORD_KNOWN = frozenset(a.name for a in attrs.fields(DatasetRecord) if a.name != "extra")


_new = object.__new__
_set = object.__setattr__


def structure_record(obj: dict[str, Any]) -> DatasetRecord:
    """Structure one record of a records response.

    Written out by hand because a 1,000-record response runs it 1,000 times:
    it fills the frozen instance's slots directly, which costs a third less
    than the generated ``__init__`` (DatasetRecord has no validators to skip;
    tests round-trip every field). Same rules as the other hooks: unknown keys
    go to ``extra``, a missing or null required field raises.
    """
    rid, dataset_id = obj["id"], obj["dataset_id"]
    created, updated = obj["created_at"], obj["updated_at"]
    metadata = obj.get("metadata")
    record = _new(DatasetRecord)
    _set(record, "id", rid if type(rid) is str else _structure_str(rid, str))
    _set(
        record,
        "dataset_id",
        dataset_id if type(dataset_id) is str else _structure_str(dataset_id, str),
    )
    _set(
        record,
        "created_at",
        _parse_datetime(created) if type(created) is str else _structure_datetime(created, None),
    )
    _set(
        record,
        "updated_at",
        _parse_datetime(updated) if type(updated) is str else _structure_datetime(updated, None),
    )
    _set(record, "input", obj.get("input"))
    _set(record, "expected_output", obj.get("expected_output"))
    _set(
        record,
        "metadata",
        metadata if type(metadata) is dict else _structure_mapping(metadata, None),
    )
    _set(
        record,
        "extra",
        NO_EXTRA if obj.keys() <= _RECORD_KNOWN else _unknown(obj, _RECORD_KNOWN),
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


def load_experiment(body: bytes) -> Experiment:
    """Read an experiment response document."""
    return structure_experiment_attrs(_flatten(_json.loads(body)))


def load_project(body: bytes) -> Project:
    """Read a project response document."""
    return structure_project_attrs(_flatten(_json.loads(body)))


def load_records(body: bytes) -> list[DatasetRecord]:
    """Read a records response: ``{"data": [{"records": [...]}, ...]}``.

    Also accepts ``data`` as a bare list of records, and JSON:API resource
    objects, since the reference page describes ``data`` as the records.
    """
    data = _json.loads(body)["data"]
    if isinstance(data, dict):
        data = [data]
    out: list[DatasetRecord] = []
    for item in data:
        if "records" in item:
            out.extend(structure_record(rec) for rec in item["records"])
        elif "attributes" in item:
            out.append(structure_record(_flatten({"data": item})))
        else:
            out.append(structure_record(item))
    return out


# --- requests ---------------------------------------------------------------

_unstructure_experiment = make_dict_unstructure_fn(
    ExperimentUpdate,
    converter,
    _cattrs_omit_if_default=True,
    metadata=override(unstruct_hook=_identity),
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
    checks every value. Anything else goes through the model's validation.
    """
    if type(record) is dict:
        rid = record.get("id")
        if (
            type(rid) is str
            and rid
            and record.keys() <= _RECORD_KEYS
            and type(record.get("metadata", {})) is dict
            and UNSET not in record.values()
        ):
            return record
    return _unstructure_record(to_record_update(record))


def encode_record(record: RecordUpdate | Mapping[str, Any]) -> bytes:
    """Validate and encode one record update as a JSON object."""
    return encode_json(record_wire(record))


def records_body(joined: bytes | bytearray) -> bytes:
    """The records request body around ``joined``: encoded records, comma-separated."""
    return b'{"data":{"type":"records","attributes":{"records":[%s]}}}' % joined


RECORDS_BODY_OVERHEAD = len(records_body(b""))
