"""Resource namespaces: ``client.experiments``, ``client.projects``, ``client.records``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from . import _converter
from .errors import ValidationError
from .models import (
    UNSET,
    DatasetRecord,
    Experiment,
    ExperimentStatus,
    ExperimentUpdate,
    JSONValue,
    Project,
    ProjectUpdate,
    RecordUpdate,
    Unset,
)

if TYPE_CHECKING:
    from ._bulk import BulkResult, ProgressCallback, RecordSource
    from ._client import LLMObsClient

_PREFIX = "/api/v2/llm-obs/v1"
T = TypeVar("T")


def segment(name: str, value: object) -> str:
    """Percent-encode one path parameter, so an id can never reach another endpoint."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(name, f"must be a non-empty string; got {value!r}")
    if value in (".", ".."):
        raise ValidationError(name, f"{value!r} is not a valid id")
    try:
        return quote(value, safe="")
    except UnicodeEncodeError:
        raise ValidationError(
            name, "contains a lone surrogate, which is not valid UTF-8 (a badly decoded string?)"
        ) from None


def _body(body: Any, fields: dict[str, Any], model: type[T], structure: Callable[..., T]) -> T:
    given = {k: v for k, v in fields.items() if v is not UNSET}
    if body is None:
        return model(**given)  # keyword names are known good: no key checks needed
    if given:
        raise ValidationError(
            "body", f"pass a request model or keyword fields, not both (got {', '.join(given)})"
        )
    return structure(body)


class _Resource:
    __slots__ = ("_client",)

    def __init__(self, client: LLMObsClient) -> None:
        self._client = client


class Experiments(_Resource):
    """``PATCH /api/v2/llm-obs/v1/experiments/{experiment_id}``."""

    __slots__ = ()

    async def update(
        self,
        experiment_id: str,
        body: ExperimentUpdate | Mapping[str, Any] | None = None,
        /,
        *,
        name: str | Unset = UNSET,
        description: str | Unset = UNSET,
        dataset_id: str | Unset = UNSET,
        status: ExperimentStatus | str | Unset = UNSET,
        error: str | Unset = UNSET,
        metadata: Mapping[str, JSONValue] | Unset = UNSET,
    ) -> Experiment:
        """Partially update an experiment; fields not given are left unchanged.

        Pass either keyword fields or a ready :class:`~llmobs_async.models.ExperimentUpdate`
        (or a mapping of its fields) as ``body``. Raises ``ValidationError``
        before sending if a field is invalid or nothing is to be updated.
        The live API may answer with an empty body (it does for a status
        change): the result then has only ``id``, every other field ``None``.
        """
        path = f"{_PREFIX}/experiments/{segment('experiment_id', experiment_id)}"
        update = _body(
            body,
            {
                "name": name,
                "description": description,
                "dataset_id": dataset_id,
                "status": status,
                "error": error,
                "metadata": metadata,
            },
            ExperimentUpdate,
            _converter.to_experiment_update,
        )
        payload = _converter.encode_update(update, "experiments")
        return await self._client._request(
            "PATCH", path, payload, lambda body: _converter.load_experiment(body, experiment_id)
        )


class Projects(_Resource):
    """``PATCH /api/v2/llm-obs/v1/projects/{project_id}``."""

    __slots__ = ()

    async def update(
        self,
        project_id: str,
        body: ProjectUpdate | Mapping[str, Any] | None = None,
        /,
        *,
        name: str | Unset = UNSET,
        description: str | Unset = UNSET,
    ) -> Project:
        """Partially update a project; fields not given are left unchanged."""
        path = f"{_PREFIX}/projects/{segment('project_id', project_id)}"
        update = _body(
            body,
            {"name": name, "description": description},
            ProjectUpdate,
            _converter.to_project_update,
        )
        payload = _converter.encode_update(update, "projects")
        return await self._client._request("PATCH", path, payload, _converter.load_project)


def records_path(project_id: str, dataset_id: str) -> str:
    """Path of the records endpoint of one dataset."""
    return (
        f"{_PREFIX}/{segment('project_id', project_id)}"
        f"/datasets/{segment('dataset_id', dataset_id)}/records"
    )


class Records(_Resource):
    """``PATCH /api/v2/llm-obs/v1/{project_id}/datasets/{dataset_id}/records``."""

    __slots__ = ()

    async def update(
        self,
        project_id: str,
        dataset_id: str,
        records: Sequence[RecordUpdate | Mapping[str, Any]],
    ) -> list[DatasetRecord]:
        """Update records of a dataset in one request and return them as stored.

        Each item is a :class:`~llmobs_async.models.RecordUpdate` or a mapping
        with its fields (``id`` required). For more than a request's worth of
        records use :meth:`update_many`.
        """
        path = records_path(project_id, dataset_id)
        if isinstance(records, str | bytes | Mapping) or not isinstance(records, Sequence):
            raise ValidationError("records", "must be a sequence of records")
        if not records:
            raise ValidationError("records", "must not be empty")
        payload = _converter.records_body(_converter.encode_records(records)[1:-1])
        return await self._client._request("PATCH", path, payload, _converter.load_records)

    async def update_many(
        self,
        project_id: str,
        dataset_id: str,
        records: RecordSource,
        *,
        batch_size: int = 1000,
        max_batch_bytes: int = 5_000_000,
        on_progress: ProgressCallback | None = None,
    ) -> BulkResult:
        """Stream any number of record updates in batches; lose none.

        ``records`` is any iterable or async iterable of ``RecordUpdate`` or
        dicts; it is read lazily, so memory stays bounded by ``batch_size`` x
        the batches in flight (the client's ``max_concurrency``). Batches are
        cut at ``batch_size`` records or ``max_batch_bytes`` of JSON, whichever
        comes first; a 413 splits a batch in halves down to single records.
        Invalid records are reported as failures without being sent.

        Returns a :class:`~llmobs_async.BulkResult` where
        ``applied + sum(len(f.records) for f in failed) == submitted``;
        it does not raise for failed records (call ``raise_for_failures()``).
        ``on_progress`` gets a :class:`~llmobs_async.BulkProgress` after each batch.
        """
        from ._bulk import update_many

        return await update_many(
            self._client,
            records_path(project_id, dataset_id),
            records,
            batch_size=batch_size,
            max_batch_bytes=max_batch_bytes,
            on_progress=on_progress,
        )
