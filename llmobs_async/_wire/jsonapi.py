"""The wire format: JSON:API envelopes, request bodies, responses to models, error bodies.

One cattrs converter, configured once at import. Responses are read
forward-compatibly (only ``id`` is required, unknown fields go to
``extra``); requests are validated before anything is sent. The hot path of
dataset records is hand-written, in :mod:`llmobs_async._wire.records`; error
bodies are read in :mod:`llmobs_async._errorbody`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from .. import _json
from .._json import encode_json
from ..errors import ValidationError
from ..models import (
    Author,
    Dataset,
    DatasetVersion,
    EvalMetric,
    Experiment,
    ExperimentStatus,
    Project,
    SpanResult,
)
from ..pagination import Page

T = TypeVar("T")

converter = cattrs.Converter(detailed_validation=False)
"""The library's converter. Hooks are registered below, once."""

EXTRA_KEY: Final = "extra"
"""Where ``response_hook`` hands the unknown fields to cattrs.

A plain name: cattrs puts it into the source of the function it generates, and
before cattrs 26.2 a NUL byte there fails at import. An API field of the same
name cannot collide with it: it is not a model field, so it goes into the
mapping under this key, never in its place.
"""


def identity(value: Any, _: Any = None) -> Any:
    """A hook that keeps the value as the JSON decoder made it."""
    return value


# --- reading values --------------------------------------------------------------------


def structure_datetime(value: Any, _: Any = None) -> datetime:
    """A timestamp string (or datetime) as a timezone-aware datetime; no zone means UTC."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if type(value) is not str:
        raise TypeError(f"expected a timestamp string, got {type(value).__name__}")
    return parse_datetime(value)


@functools.lru_cache(maxsize=1024)
def parse_datetime(value: str) -> datetime:
    """Parse an ISO timestamp, nanoseconds included (cut to microseconds)."""
    # Cached: the records of one response mostly share their timestamps, and
    # a datetime is immutable, so sharing one object is safe.
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        head, dot, tail = value.partition(".")
        if not dot:
            raise
        digits = len(tail) - len(tail.lstrip("0123456789"))
        parsed = datetime.fromisoformat(f"{head}.{tail[:6]}{tail[digits:]}")
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def structure_str(value: Any, _: Any = None) -> str:
    """A string; a numeric id is read as its string."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"expected a string, got {type(value).__name__}")


def structure_int(value: Any, _: Any = None) -> int:
    """An integer (or a string or float that holds one)."""
    return value if type(value) is int else int(value)


def structure_mapping(value: Any, _: Any = None) -> Mapping[str, Any]:
    """A JSON object; null or absent reads as ``{}``."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"expected a JSON object, got {type(value).__name__}")
    return value


def structure_tags(value: Any, _: Any = None) -> tuple[str, ...]:
    """A list of tags as a tuple; null reads as ``()``."""
    if value is None:
        return ()
    if type(value) is not list:
        raise TypeError(f"tags must be a list, got {type(value).__name__}")
    return tuple(value)


def _structure_status(value: Any, _: Any) -> ExperimentStatus | str | None:
    if value is None:
        return None
    try:
        return ExperimentStatus(value)
    except ValueError:
        return str(value)  # a status newer than this library: keep it


def _optional(hook: Callable[[Any, Any], T]) -> Callable[[Any, Any], T | None]:
    def structure(value: Any, type_: Any) -> T | None:
        return None if value is None else hook(value, type_)

    return structure


def _float(value: Any, _: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    return float(value)


def _bool(value: Any, _: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {type(value).__name__}")
    return value


converter.register_structure_hook(str, structure_str)  # the required ``id`` fields

# One call per field instead of cattrs' Optional dispatch and then ours.
_HOOKS: dict[Any, Callable[[Any, Any], Any]] = {
    str | None: _optional(structure_str),
    int | None: _optional(structure_int),
    float | None: _optional(_float),
    bool | None: _optional(_bool),
    datetime | None: _optional(structure_datetime),
    Mapping[str, Any]: structure_mapping,
    tuple[str, ...]: structure_tags,
    Any: identity,
}


def response_hook(cls: type[T], **overrides: Any) -> Callable[[dict[str, Any]], T]:
    """Build the reader of a flat response model that keeps unknown keys in ``extra``.

    Only fields without a default are required: in the models that is ``id``.
    """
    attrs.resolve_types(cls)  # type: ignore[type-var]  # the hooks below match on real types
    fields = attrs.fields(cls)  # type: ignore[arg-type]
    known = frozenset(a.name for a in fields if a.name != "extra")
    for a in fields:
        if a.name not in overrides and a.name != "extra" and a.type in _HOOKS:
            overrides[a.name] = override(struct_hook=_HOOKS[a.type])
    generated = make_dict_structure_fn(
        cls, converter, extra=override(rename=EXTRA_KEY, struct_hook=identity), **overrides
    )

    def structure(obj: dict[str, Any]) -> T:
        if not obj.keys() <= known:
            extra = {k: v for k, v in obj.items() if k not in known}
            obj = {k: v for k, v in obj.items() if k in known}
            obj[EXTRA_KEY] = extra
        return generated(obj, cls)

    return structure


structure_author = response_hook(Author)
_HOOKS[Author | None] = _optional(lambda v, _: structure_author(v))
structure_experiment = response_hook(
    Experiment,
    status=override(struct_hook=_structure_status),
    aggregate_data=override(struct_hook=_optional(structure_mapping)),
)
structure_project = response_hook(Project)
structure_dataset = response_hook(Dataset)
structure_version = response_hook(DatasetVersion)
structure_metric = response_hook(EvalMetric)
structure_span = response_hook(
    SpanResult,
    eval_metrics=override(
        struct_hook=lambda v, _: () if v is None else tuple(structure_metric(m) for m in v)
    ),
)


# --- reading documents -----------------------------------------------------------------


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for messages about a body's shape."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def json_list(obj: Mapping[str, Any], key: str, *, required: bool) -> list[Any]:
    """``obj[key]`` as a list: ``null`` (and, unless ``required``, absent) reads as empty.

    Anything else raises ``TypeError``, which the transport turns into
    ``APIResponseValidationError``: a list read as empty loses what it held.
    """
    if key not in obj and required:
        raise TypeError(f"{key} is missing")
    value = obj.get(key)
    if value is None:
        return []
    if type(value) is not list:
        raise TypeError(f"{key} is not a list but {json_type(value)}")
    return value


def flatten(resource: Any) -> dict[str, Any]:
    """A JSON:API resource ``{"id", "type", "attributes"}`` as one flat object."""
    if not isinstance(resource, dict):
        raise TypeError(f"data is not an object but {json_type(resource)}")
    attributes = resource.get("attributes")
    if not isinstance(attributes, dict):
        # Never read as a resource with every field at its default.
        raise TypeError(f"data.attributes is not an object but {json_type(attributes)}")
    flat = dict(attributes)
    flat["id"] = resource["id"]
    return flat


def one(structure: Callable[[dict[str, Any]], T]) -> Callable[[bytes], T]:
    """The loader of a document holding one resource in ``data``."""

    def load(body: bytes) -> T:
        return structure(flatten(_json.loads(body)["data"]))

    return load


def many(structure: Callable[[dict[str, Any]], T]) -> Callable[[bytes], list[T]]:
    """The loader of a document holding a list of resources in ``data``."""

    def load(body: bytes) -> list[T]:
        data = _json.loads(body)["data"]
        if isinstance(data, dict):
            data = [data]
        return [structure(flatten(item)) for item in data]

    return load


def next_cursor(doc: Mapping[str, Any]) -> str | None:
    """``meta.after``, or ``None`` where the list ends (missing, null or ``""``)."""
    meta = doc.get("meta")
    if meta is None:
        return None
    if not isinstance(meta, dict):
        # Not "the last page": that would end a pull early without a word.
        raise TypeError(f"meta is not an object but {json_type(meta)}")
    after = meta.get("after")
    if after is None or after == "":
        return None
    if not isinstance(after, str):
        raise TypeError(f"meta.after must be a string, got {type(after).__name__}")
    return after


def page_of(structure: Callable[[dict[str, Any]], T]) -> Callable[[bytes], Page[T]]:
    """The loader of one page of a list of resources."""

    def load(body: bytes) -> Page[T]:
        doc = _json.loads(body)
        data = doc["data"]
        if not isinstance(data, list):
            raise TypeError("data is not a list")
        return Page(items=[structure(flatten(item)) for item in data], next_cursor=next_cursor(doc))

    return load


def nothing(body: bytes) -> None:
    """The loader of an answer whose body is not needed (a 202, a 204, a bulk batch)."""
    return None


# --- writing requests ------------------------------------------------------------------


def envelope(resource_type: str, attributes: bytes, resource_id: str | None = None) -> bytes:
    """``{"data":{"type":...,["id":...,]"attributes":...}}`` around encoded attributes."""
    if resource_id is None:
        return b'{"data":{"type":"%s","attributes":%s}}' % (resource_type.encode(), attributes)
    return b'{"data":{"type":"%s","id":%s,"attributes":%s}}' % (
        resource_type.encode(),
        encode_json(resource_id),
        attributes,
    )


def request_reader(cls: type[T], resource_type: str) -> Callable[[Any], T]:
    """Read a request model from itself, or a mapping of its fields (or its JSON:API envelope)."""
    names = tuple(a.name for a in attrs.fields(cls))  # type: ignore[arg-type]
    required = tuple(a.name for a in attrs.fields(cls) if a.default is attrs.NOTHING)  # type: ignore[arg-type]

    def structure(value: Any) -> T:
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

    return structure


def _unwrap(data: Mapping[str, Any], resource_type: str) -> Mapping[str, Any]:
    if data.get("type", resource_type) != resource_type:
        raise ValidationError("data.type", f"must be {resource_type!r}; got {data['type']!r}")
    attributes = data.get("attributes", {})
    if not isinstance(attributes, Mapping):
        raise ValidationError("data.attributes", "must be a JSON object")
    return attributes


_UNSTRUCTURERS: dict[type[Any], Callable[[Any], dict[str, Any]]] = {}


def unstructurer(cls: type[Any]) -> Callable[[Any], dict[str, Any]]:
    """The model-to-dict function of a request model: UNSET fields left out, values as given."""
    found = _UNSTRUCTURERS.get(cls)
    if found is not None:
        return found
    # Fields with a converter (enums, tags) go out as plain JSON; the rest as given.
    plain = {
        a.name: override(unstruct_hook=_plain if a.converter is not None else identity)
        for a in attrs.fields(cls)
    }
    options: dict[str, Any] = {"_cattrs_omit_if_default": True, **plain}
    made: Callable[[Any], dict[str, Any]] = make_dict_unstructure_fn(cls, converter, **options)
    _UNSTRUCTURERS[cls] = made
    return made


def _plain(value: Any) -> Any:
    # An enum member as its plain value (the JSON value rule refuses anything
    # but plain JSON), a tuple of tags as a list.
    if isinstance(value, str):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def attributes_of(model: Any, *, nonempty: bool = False) -> dict[str, Any]:
    """A request model's fields that are set; an empty update raises ``ValidationError``."""
    attributes = unstructurer(type(model))(model)
    if nonempty and not attributes:
        names = ", ".join(a.name for a in attrs.fields(type(model)))
        raise ValidationError("body", f"empty update: set at least one of {names}")
    return attributes


def encode_model(model: Any, resource_type: str, *, nonempty: bool = False) -> bytes:
    """A request model as a JSON:API request body."""
    return envelope(resource_type, encode_json(attributes_of(model, nonempty=nonempty)))


def encode_ids(resource_type: str, field: str, ids: Sequence[str] | str) -> bytes:
    """The body of a bulk delete: ``{"data":{"type":...,"attributes":{field: [ids]}}}``."""
    if isinstance(ids, str):
        ids = [ids]
    if not isinstance(ids, Sequence) or not ids:
        raise ValidationError(field, "must be an id or a non-empty sequence of ids")
    for index, value in enumerate(ids):
        if not isinstance(value, str) or not value.strip():
            raise ValidationError(f"{field}[{index}]", f"must be a non-empty string; got {value!r}")
    return envelope(resource_type, encode_json({field: list(ids)}))
