"""The experiment read on every ``experiments.update``, built without the generic converter.

The reader cattrs generates for :class:`Experiment` gathers the fields into a
dict, calls a hook per field and then the frozen class's ``__init__``, which
sets each field through ``object.__setattr__``: about as much CPU as the rest
of the client's work on a small update. This one applies the same hooks
(inline for the common types) and fills the instance's slots through their
own setters, as :func:`llmobs_async._wire.records.structure_record` does.
Same rules as :func:`llmobs_async._wire.jsonapi.response_hook`: only ``id`` is
required, an absent field takes its default, unknown keys go to ``extra``;
tests compare both readers on every field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import attrs

from ..models import NO_EXTRA, Author, Experiment
from . import jsonapi

_new = object.__new__
_set = {a.name: Experiment.__dict__[a.name].__set__ for a in attrs.fields(Experiment)}
_KNOWN: Final = frozenset(a.name for a in attrs.fields(Experiment) if a.name != "extra")
_STRINGS: Final = (
    "name",
    "description",
    "project_id",
    "dataset_id",
    "error",
    "experiment",
    "parent_experiment_id",
    "dataset_name",
)
_STRING_SETTERS: Final = tuple((name, _set[name]) for name in _STRINGS)
_set_id, _set_extra = _set["id"], _set["extra"]
_set_created_at, _set_updated_at = _set["created_at"], _set["updated_at"]
_set_config, _set_metadata, _set_status = _set["config"], _set["metadata"], _set["status"]
_set_dataset_version, _set_run_count = _set["dataset_version"], _set["run_count"]
_set_deleted_at, _set_author = _set["deleted_at"], _set["author"]
_set_aggregate_data = _set["aggregate_data"]
_optional_str = jsonapi._HOOKS[str | None]
_optional_int = jsonapi._HOOKS[int | None]
_optional_datetime = jsonapi._HOOKS[datetime | None]
_optional_author = jsonapi._HOOKS[Author | None]
_optional_mapping = jsonapi._optional(jsonapi.structure_mapping)
_status = jsonapi._structure_status
_mapping = jsonapi.structure_mapping
_structure_id = jsonapi.structure_str


def structure_experiment(obj: dict[str, Any]) -> Experiment:
    """An :class:`Experiment` from its flat object (as ``jsonapi.structure_experiment``)."""
    get = obj.get
    record: Experiment = _new(Experiment)
    for name, setter in _STRING_SETTERS:
        value = get(name)
        setter(record, value if value is None or type(value) is str else _optional_str(value, None))
    created, updated = get("created_at"), get("updated_at")
    created_at = None if created is None else _optional_datetime(created, None)
    _set_created_at(record, created_at)
    _set_updated_at(
        record,
        created_at if updated == created else _optional_datetime(updated, None),
    )
    config, metadata = get("config"), get("metadata")
    _set_config(record, config if type(config) is dict else _mapping(config, None))
    _set_metadata(record, metadata if type(metadata) is dict else _mapping(metadata, None))
    _set_status(record, _status(get("status"), None))
    version, runs = get("dataset_version"), get("run_count")
    _set_dataset_version(record, version if version is None else _optional_int(version, None))
    _set_run_count(record, runs if runs is None else _optional_int(runs, None))
    _set_deleted_at(record, _optional_datetime(get("deleted_at"), None))
    _set_author(record, _optional_author(get("author"), None))
    _set_aggregate_data(record, _optional_mapping(get("aggregate_data"), None))
    _set_id(record, _structure_id(obj["id"], str))
    _set_extra(
        record,
        NO_EXTRA if _KNOWN.issuperset(obj) else {k: v for k, v in obj.items() if k not in _KNOWN},
    )
    return record
