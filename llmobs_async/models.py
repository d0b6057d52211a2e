"""Request and response models of the LLM Observability API.

All models are frozen, slotted, keyword-only attrs classes. Request models
(``*Update``) validate on construction and raise
:class:`~llmobs_async.errors.ValidationError` naming the field.

Response models are flat (no JSON:API envelope) and read the way the live API
answers, not the way its specification describes it: only ``id`` is required.
The API leaves out empty fields, so any other field may be missing or null:
it reads as ``None``, except the collections, which read as empty (``config``
and ``metadata`` as ``{}``, a record's ``tags`` as ``()``). Unknown fields
land in ``extra``, an unknown experiment status is kept as a string.

A request field left at :data:`UNSET` is absent from the JSON body; ``None``
is sent as JSON ``null`` where the API allows it (``input`` and
``expected_output`` of a record).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final, Literal, TypeAlias

import attrs

from ._changemodels import RecordDelete, TagOperations
from .errors import ValidationError

__all__ = [
    "UNSET",
    "Assessment",
    "Author",
    "Dataset",
    "DatasetCreate",
    "DatasetRecord",
    "DatasetUpdate",
    "DatasetVersion",
    "EvalMetric",
    "Experiment",
    "ExperimentAuthor",
    "ExperimentCreate",
    "ExperimentMetric",
    "ExperimentSpan",
    "ExperimentStatus",
    "ExperimentUpdate",
    "JSONValue",
    "MetricSource",
    "MetricType",
    "Project",
    "ProjectCreate",
    "ProjectUpdate",
    "RecordCreate",
    "RecordDelete",
    "RecordUpdate",
    "SpanResult",
    "SpanStatus",
    "TagOperations",
    "Unset",
]


class Unset(enum.Enum):
    """Type of :data:`UNSET`: the field is absent from the request body."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> Literal[False]:
        return False


UNSET: Final = Unset.UNSET
"""Leave this field unchanged: it is omitted from the PATCH body."""

NO_EXTRA: Final[Mapping[str, Any]] = MappingProxyType({})
"""``extra`` of a response without unknown fields: one shared, read-only, empty mapping."""

JSONValue: TypeAlias = Any
"""Any value JSON can encode: str, int, float (finite), bool, None, list, dict."""


class ExperimentStatus(enum.StrEnum):
    """Execution status of an experiment."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class MetricType(enum.StrEnum):
    """Kind of an experiment metric; says which ``*_value`` field holds its value."""

    SCORE = "score"
    CATEGORICAL = "categorical"
    BOOLEAN = "boolean"
    JSON = "json"


class MetricSource(enum.StrEnum):
    """What an experiment metric is about: one span (``custom``) or the whole experiment."""

    CUSTOM = "custom"
    SUMMARY = "summary"


class Assessment(enum.StrEnum):
    """Verdict of an evaluation metric."""

    PASS = "pass"
    FAIL = "fail"


class SpanStatus(enum.StrEnum):
    """Outcome of an experiment span."""

    OK = "ok"
    ERROR = "error"


def _enum(cls: type[enum.StrEnum], field: str, *, optional: bool = False) -> Any:
    """An attrs converter to a member of ``cls``; ValidationError naming ``field`` otherwise."""
    values = ", ".join(m.value for m in cls)

    def convert(value: object) -> object:
        if isinstance(value, cls) or (optional and value is UNSET):
            return value
        if isinstance(value, str):
            try:
                return cls(value)
            except ValueError:
                pass
        raise ValidationError(field, f"must be one of {values}; got {value!r}")

    return convert


_STATUS = _enum(ExperimentStatus, "status", optional=True)
_METRIC_TYPE = _enum(MetricType, "metric_type")
_ASSESSMENT = _enum(Assessment, "assessment", optional=True)
_METRIC_SOURCE = _enum(MetricSource, "metric_source", optional=True)
_SPAN_STATUS = _enum(SpanStatus, "status")


# Named functions: attrs' mypy plugin accepts nothing else as a converter.
def _to_status(value: object) -> Any:
    return _STATUS(value)


def _to_metric_type(value: object) -> Any:
    return _METRIC_TYPE(value)


def _to_assessment(value: object) -> Any:
    return _ASSESSMENT(value)


def _to_span_status(value: object) -> Any:
    return _SPAN_STATUS(value)


def _to_metric_source(value: object) -> Any:
    return _METRIC_SOURCE(value)


def _str(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        raise ValidationError(attribute.name, f"must be a string; got {type(value).__name__}")


def _optional_str(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not UNSET and not isinstance(value, str):
        raise ValidationError(
            attribute.name,
            f"must be a string (or UNSET to leave it unchanged); got {type(value).__name__}",
        )


def _optional_mapping(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is UNSET:
        return
    if not isinstance(value, Mapping):
        raise ValidationError(
            attribute.name, f"must be a JSON object (a mapping); got {type(value).__name__}"
        )
    for key in value:
        if not isinstance(key, str):
            raise ValidationError(attribute.name, f"keys must be strings; got {key!r}")


def _record_id(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ValidationError("id", f"must be a non-empty string; got {value!r}")


def _name(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(attribute.name, f"must be a non-empty string; got {value!r}")


def _optional_name(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not UNSET:
        _name(instance, attribute, value)


def _int(minimum: int) -> Any:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is UNSET:
            return
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValidationError(attribute.name, f"must be an integer >= {minimum}; got {value!r}")

    return check


def _optional_bool(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not UNSET and not isinstance(value, bool):
        raise ValidationError(attribute.name, f"must be true or false; got {value!r}")


def _tags(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is UNSET:
        return
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
        raise ValidationError(attribute.name, "must be a list of strings")
    for index, tag in enumerate(value):
        if not isinstance(tag, str):
            raise ValidationError(f"{attribute.name}[{index}]", f"must be a string; got {tag!r}")


def _optional_float(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is UNSET:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ValidationError(attribute.name, f"must be a number; got {value!r}")


def _json_value(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, list):
        return
    if value is not UNSET and not isinstance(value, Mapping):
        raise ValidationError(
            attribute.name, f"must be a JSON object or array; got {type(value).__name__}"
        )
    _optional_mapping(instance, attribute, value)


def _metric_error(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return  # ddtrace sends "error": null for a metric without one
    _optional_mapping(instance, attribute, value)
    if isinstance(value, Mapping):
        for key in ("message", "type", "stack"):
            if value.get(key) is not None and not isinstance(value[key], str):
                raise ValidationError(f"error.{key}", f"must be a string; got {value[key]!r}")


def _to_tuple(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value


# --- projects -------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ProjectCreate:
    """Body of ``POST /api/v2/llm-obs/v1/projects`` (get-or-create by name)."""

    name: str = attrs.field(validator=_name)
    description: str | Unset = attrs.field(default=UNSET, validator=_optional_str)


# --- datasets -------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class DatasetCreate:
    """Body of ``POST /api/v2/llm-obs/v1/{project_id}/datasets``."""

    name: str = attrs.field(validator=_name)
    description: str | Unset = attrs.field(default=UNSET, validator=_optional_str)
    metadata: Mapping[str, JSONValue] | Unset = attrs.field(
        default=UNSET, validator=_optional_mapping
    )


@attrs.frozen(kw_only=True)
class DatasetUpdate:
    """Body of ``PATCH /api/v2/llm-obs/v1/{project_id}/datasets/{dataset_id}``."""

    name: str | Unset = attrs.field(default=UNSET, validator=_optional_name)
    description: str | Unset = attrs.field(default=UNSET, validator=_optional_str)
    metadata: Mapping[str, JSONValue] | Unset = attrs.field(
        default=UNSET, validator=_optional_mapping
    )


@attrs.frozen(kw_only=True)
class RecordCreate:
    """One new record of a dataset.

    ``input`` is required (any JSON value); ``id`` is your own id for the
    record (the API makes one when it is left out).
    """

    input: JSONValue
    expected_output: JSONValue | Unset = UNSET
    metadata: Mapping[str, JSONValue] | Unset = attrs.field(
        default=UNSET, validator=_optional_mapping
    )
    id: str | Unset = attrs.field(default=UNSET, validator=_optional_name)
    tags: Sequence[str] | Unset = attrs.field(default=UNSET, converter=_to_tuple, validator=_tags)


# --- experiments ----------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ExperimentCreate:
    """Body of ``POST /api/v2/llm-obs/v1/experiments``.

    With ``ensure_unique`` (the API's default) the API appends a timestamp to
    ``name`` and keeps the given name in the experiment's ``experiment`` field.
    """

    name: str = attrs.field(validator=_name)
    project_id: str = attrs.field(validator=_name)
    dataset_id: str | Unset = attrs.field(default=UNSET, validator=_optional_name)
    dataset_version: int | Unset = attrs.field(default=UNSET, validator=_int(0))
    description: str | Unset = attrs.field(default=UNSET, validator=_optional_str)
    config: Mapping[str, JSONValue] | Unset = attrs.field(
        default=UNSET, validator=_optional_mapping
    )
    metadata: Mapping[str, JSONValue] | Unset = attrs.field(
        default=UNSET, validator=_optional_mapping
    )
    ensure_unique: bool | Unset = attrs.field(default=UNSET, validator=_optional_bool)
    parent_experiment_id: str | Unset = attrs.field(default=UNSET, validator=_optional_name)
    run_count: int | Unset = attrs.field(default=UNSET, validator=_int(1))


_METRIC_VALUE: Final = {
    MetricType.SCORE: "score_value",
    MetricType.CATEGORICAL: "categorical_value",
    MetricType.BOOLEAN: "boolean_value",
    MetricType.JSON: "json_value",
}


@attrs.frozen(kw_only=True)
class ExperimentMetric:
    """One evaluation metric pushed with ``experiments.events.create``.

    The value goes in the field its ``metric_type`` names (``score_value`` for
    ``score`` ...). ``timestamp_ms`` (epoch milliseconds) must be within 24
    hours of now when sent: the API refuses it otherwise, and so does the client.

    A metric is about one span (``metric_source="custom"``) or, with
    ``metric_source="summary"``, ``span_id=""`` and ``trace_id=""``, about the
    whole experiment: the shapes ddtrace pushes. A metric whose ``metric_source``
    is left out may have ``span_id=""`` too (the API reads it as a summary).
    """

    span_id: str = attrs.field(validator=_str)
    """The span the metric is about; ``""`` for a summary metric of the whole experiment."""
    label: str = attrs.field(validator=_name)
    metric_type: MetricType = attrs.field(converter=_to_metric_type)
    timestamp_ms: int = attrs.field(validator=_int(0))
    metric_source: MetricSource | Unset = attrs.field(default=UNSET, converter=_to_metric_source)
    """``custom`` (a metric of one span, needs a ``span_id``) or ``summary``."""
    trace_id: str | Unset = attrs.field(default=UNSET, validator=_optional_str)
    """The trace of the span; ``""`` for a summary metric."""
    experiment_id: str | Unset = attrs.field(default=UNSET, validator=_optional_name)
    status: str | Unset = attrs.field(default=UNSET, validator=_optional_str)
    """The evaluator's outcome as ddtrace 4 sends it: ``"OK"`` or ``"ERROR"``."""
    eval_source_type: str | Unset = attrs.field(default=UNSET, validator=_optional_str)
    """Who computed the metric (ddtrace sends ``"managed"`` for a Datadog-run evaluator)."""
    score_value: float | Unset = attrs.field(default=UNSET, validator=_optional_float)
    categorical_value: str | Unset = attrs.field(default=UNSET, validator=_optional_str)
    boolean_value: bool | Unset = attrs.field(default=UNSET, validator=_optional_bool)
    json_value: Mapping[str, JSONValue] | list[JSONValue] | Unset = attrs.field(
        default=UNSET, validator=_json_value
    )
    assessment: Assessment | Unset = attrs.field(default=UNSET, converter=_to_assessment)
    reasoning: str | Unset = attrs.field(default=UNSET, validator=_optional_str)
    error: Mapping[str, JSONValue] | Unset | None = attrs.field(
        default=UNSET, validator=_metric_error
    )
    """``{"message", "type", "stack"}`` when the evaluation itself failed; ``None``
    (sent as ``null``, as ddtrace does) or UNSET when it did not."""
    metadata: Mapping[str, JSONValue] | Unset = attrs.field(
        default=UNSET, validator=_optional_mapping
    )
    tags: Sequence[str] | Unset = attrs.field(default=UNSET, converter=_to_tuple, validator=_tags)

    def __attrs_post_init__(self) -> None:
        if self.metric_source is MetricSource.CUSTOM and not self.span_id:
            raise ValidationError(
                "span_id", 'must be non-empty for a custom metric (only a summary has "")'
            )
        field = _METRIC_VALUE[self.metric_type]
        if getattr(self, field) is UNSET and (self.error is UNSET or self.error is None):
            raise ValidationError(field, f"is required for a {self.metric_type.value} metric")


@attrs.frozen(kw_only=True)
class ExperimentSpan:
    """One span (a task run on a record) pushed with ``experiments.events.create``.

    ``start_ns`` is epoch nanoseconds and ``duration`` nanoseconds; ``meta``
    holds ``input``, ``output``, ``expected_output`` and ``error``. The tag
    ``dataset_record_id:<id>`` links the span to its record: the events list
    answers it as the span's ``dataset_record_id``.
    """

    span_id: str = attrs.field(validator=_name)
    trace_id: str = attrs.field(validator=_name)
    name: str = attrs.field(validator=_name)
    project_id: str = attrs.field(validator=_name)
    dataset_id: str = attrs.field(validator=_name)
    start_ns: int = attrs.field(validator=_int(0))
    duration: int = attrs.field(validator=_int(1))
    """Nanoseconds, at least 1: the API refuses a span whose duration is 0."""
    status: SpanStatus = attrs.field(converter=_to_span_status)
    tags: Sequence[str] | Unset = attrs.field(default=UNSET, converter=_to_tuple, validator=_tags)
    meta: Mapping[str, JSONValue] | Unset = attrs.field(default=UNSET, validator=_optional_mapping)


@attrs.frozen(kw_only=True)
class ExperimentUpdate:
    """Body of ``PATCH /api/v2/llm-obs/v1/experiments/{experiment_id}``."""

    name: str | Unset = attrs.field(default=UNSET, validator=_optional_str)
    description: str | Unset = attrs.field(default=UNSET, validator=_optional_str)
    dataset_id: str | Unset = attrs.field(default=UNSET, validator=_optional_str)
    status: ExperimentStatus | Unset = attrs.field(default=UNSET, converter=_to_status)
    error: str | Unset = attrs.field(default=UNSET, validator=_optional_str)
    metadata: Mapping[str, JSONValue] | Unset = attrs.field(
        default=UNSET, validator=_optional_mapping
    )


@attrs.frozen(kw_only=True)
class ProjectUpdate:
    """Body of ``PATCH /api/v2/llm-obs/v1/projects/{project_id}``."""

    name: str | Unset = attrs.field(default=UNSET, validator=_optional_str)
    description: str | Unset = attrs.field(default=UNSET, validator=_optional_str)


@attrs.frozen(kw_only=True)
class RecordUpdate:
    """One record of ``PATCH .../{project_id}/datasets/{dataset_id}/records``.

    ``input`` and ``expected_output`` take any JSON value, including ``None``
    (sent as ``null``); leave them :data:`UNSET` to keep the stored value.
    """

    # Required without a default, so type checkers catch a missing id; a dict
    # without one is refused with a ValidationError naming records[i].id.
    id: str = attrs.field(validator=_record_id)
    input: JSONValue | Unset = UNSET
    expected_output: JSONValue | Unset = UNSET
    metadata: Mapping[str, JSONValue] | Unset = attrs.field(
        default=UNSET, validator=_optional_mapping
    )


@attrs.frozen(kw_only=True)
class Author:
    """The user who created a project, an experiment or a record.

    The API sends only ``id`` unless user data is asked for (``include[user_data]``).
    """

    id: str | None = None
    name: str | None = None
    email: str | None = None
    handle: str | None = None
    icon: str | None = None
    extra: Mapping[str, Any] = attrs.field(default=NO_EXTRA, repr=False)
    """Fields the API sent that this version of the library does not know."""


ExperimentAuthor: TypeAlias = Author
"""Former name of :class:`Author`, kept as an alias."""


@attrs.frozen(kw_only=True)
class Experiment:
    """An LLM Observability experiment, as returned by the API.

    Only ``id`` is always present; see the module docstring for missing fields.
    """

    id: str
    name: str | None = None
    """The run name (with ``ensure_unique``, the API appends a timestamp to it)."""
    description: str | None = None
    project_id: str | None = None
    dataset_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    config: Mapping[str, Any] = attrs.field(factory=dict)
    """``{}`` when the API leaves it out or sends null."""
    metadata: Mapping[str, Any] = attrs.field(factory=dict)
    """``{}`` when the API leaves it out or sends null."""
    status: ExperimentStatus | str | None = None
    """An :class:`ExperimentStatus`, or the raw string for a status this version does not know."""
    error: str | None = None
    experiment: str | None = None
    """The logical experiment name shared by its runs."""
    parent_experiment_id: str | None = None
    dataset_name: str | None = None
    dataset_version: int | None = None
    run_count: int | None = None
    deleted_at: datetime | None = None
    author: Author | None = None
    aggregate_data: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = attrs.field(default=NO_EXTRA, repr=False)
    """Fields the API sent that this version of the library does not know."""


@attrs.frozen(kw_only=True)
class Project:
    """An LLM Observability project, as returned by the API.

    Only ``id`` is always present: the API leaves out an empty ``description``.
    """

    id: str
    name: str | None = None
    description: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    author: Author | None = None
    extra: Mapping[str, Any] = attrs.field(default=NO_EXTRA, repr=False)
    """Fields the API sent that this version of the library does not know."""


@attrs.frozen(kw_only=True)
class DatasetRecord:
    """A dataset record, as returned by the API.

    Read from either shape the API uses: a flat object, or a JSON:API resource
    (``{"id", "type", "attributes": {...}}``, what the live API sends). Only
    ``id`` is always present: the API leaves out an empty ``expected_output``,
    ``metadata`` or ``tags``.
    """

    id: str
    dataset_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    input: JSONValue = None
    expected_output: JSONValue = None
    metadata: Mapping[str, Any] = attrs.field(factory=dict)
    """``{}`` when the API leaves it out or sends null."""
    tags: tuple[str, ...] = ()
    """The record's tags (``"key:value"`` strings); ``()`` when it has none."""
    canonical_id: str | None = None
    """The API's own id for the record (``id`` may be one the user chose)."""
    version: int | None = None
    """The dataset version this change created (in answers to a mutation)."""
    author: Author | None = None
    deleted_at: datetime | None = None
    extra: Mapping[str, Any] = attrs.field(default=NO_EXTRA, repr=False)
    """Fields the API sent that this version of the library does not know."""


@attrs.frozen(kw_only=True)
class Dataset:
    """A dataset of a project, as returned by the API. Only ``id`` is always present."""

    id: str
    name: str | None = None
    description: str | None = None
    project_id: str | None = None
    current_version: int | None = None
    """The latest version; every change to the records makes a new one."""
    metadata: Mapping[str, Any] = attrs.field(factory=dict)
    """``{}`` when the API leaves it out or sends null."""
    dataset_type: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    deleted_at: datetime | None = None
    author: Author | None = None
    extra: Mapping[str, Any] = attrs.field(default=NO_EXTRA, repr=False)
    """Fields the API sent that this version of the library does not know."""


@attrs.frozen(kw_only=True)
class DatasetVersion:
    """One version of a dataset."""

    id: str
    dataset_id: str | None = None
    version_number: int | None = None
    last_used: datetime | None = None
    """When an experiment last ran on this version, if one has."""
    extra: Mapping[str, Any] = attrs.field(default=NO_EXTRA, repr=False)
    """Fields the API sent that this version of the library does not know."""


@attrs.frozen(kw_only=True)
class EvalMetric:
    """An evaluation metric as the events list returns it (every field optional)."""

    id: str | None = None
    span_id: str | None = None
    trace_id: str | None = None
    label: str | None = None
    metric_type: str | None = None
    metric_source: str | None = None
    """``"custom"`` for a metric on a span, ``"summary"`` for one on the whole experiment."""
    eval_source_type: str | None = None
    status: str | None = None
    """The evaluator's outcome (``"OK"``, ``"ERROR"``) where the push said it."""
    timestamp_ms: int | None = None
    score_value: float | None = None
    categorical_value: str | None = None
    boolean_value: bool | None = None
    json_value: Any = None
    assessment: str | None = None
    reasoning: str | None = None
    metadata: Mapping[str, Any] = attrs.field(factory=dict)
    tags: tuple[str, ...] = ()
    extra: Mapping[str, Any] = attrs.field(default=NO_EXTRA, repr=False)
    """Fields the API sent that this version of the library does not know."""


@attrs.frozen(kw_only=True)
class SpanResult:
    """A span of an experiment with its evaluation metrics, from ``experiments.events.list``."""

    id: str | None = None
    span_id: str | None = None
    trace_id: str | None = None
    parent_id: str | None = None
    name: str | None = None
    start_ns: int | None = None
    duration: float | None = None
    status: str | None = None
    tags: tuple[str, ...] = ()
    meta: Mapping[str, Any] = attrs.field(factory=dict)
    metrics: Mapping[str, Any] = attrs.field(factory=dict)
    dataset_record_id: str | None = None
    eval_metrics: tuple[EvalMetric, ...] = ()
    extra: Mapping[str, Any] = attrs.field(default=NO_EXTRA, repr=False)
    """Fields the API sent that this version of the library does not know."""
