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
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final, Literal, TypeAlias

import attrs

from .errors import ValidationError

__all__ = [
    "UNSET",
    "Author",
    "DatasetRecord",
    "Experiment",
    "ExperimentAuthor",
    "ExperimentStatus",
    "ExperimentUpdate",
    "JSONValue",
    "Project",
    "ProjectUpdate",
    "RecordUpdate",
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


_STATUS_VALUES = ", ".join(s.value for s in ExperimentStatus)


def _to_status(value: object) -> object:
    if value is UNSET or isinstance(value, ExperimentStatus):
        return value
    if isinstance(value, str):
        try:
            return ExperimentStatus(value)
        except ValueError:
            pass
    raise ValidationError("status", f"must be one of {_STATUS_VALUES}; got {value!r}")


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
