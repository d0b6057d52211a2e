"""``client.datasets``: create, get, list, update, delete and versions of a project's datasets."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any, Unpack

from .. import _routes
from .._options import RequestOptions, without_body
from .._response import raw
from .._wire import jsonapi
from ..errors import ConflictError
from ..models import UNSET, Dataset, DatasetCreate, DatasetUpdate, DatasetVersion, JSONValue, Unset
from ..pagination import AsyncPaginator
from ._base import NO_BODY, Resource, filters, get_one, named_model, paginate, request_model

_read_create = jsonapi.request_reader(DatasetCreate, "datasets")
_read_update = jsonapi.request_reader(DatasetUpdate, "datasets")
_load = jsonapi.one(jsonapi.structure_dataset)
_load_page = jsonapi.page_of(jsonapi.structure_dataset)
_load_versions = jsonapi.many(jsonapi.structure_version)


class Datasets(Resource):
    """Datasets of a project: ``/api/v2/llm-obs/v1/{project_id}/datasets``."""

    __slots__ = ()

    @property
    def with_raw_response(self) -> DatasetsWithRawResponse:
        """These methods returning an :class:`~llmobs_async.APIResponse` of their result."""
        return DatasetsWithRawResponse(self)

    async def create(
        self,
        project_id: str,
        name: str | DatasetCreate | Mapping[str, Any],
        /,
        *,
        description: str | Unset = UNSET,
        metadata: Mapping[str, JSONValue] | Unset = UNSET,
        exist_ok: bool = False,
        **options: Unpack[RequestOptions],
    ) -> Dataset:
        """Create an empty dataset (version 0) in a project.

        Pass the name and fields, or a ready :class:`~llmobs_async.models.DatasetCreate`.
        A project holds one dataset of a name: the API answers 409 (``ConflictError``)
        when it is taken. With ``exist_ok=True`` the dataset of that name is returned
        instead, as it is (its description and metadata are not changed).
        """
        route = _routes.CREATE_DATASET.compile(project_id=project_id)
        fields = {"description": description, "metadata": metadata}
        body = named_model(name, fields, DatasetCreate, _read_create)
        payload = jsonapi.encode_model(body, "datasets")
        transport = self._via(options) if options else self._transport
        try:
            return await transport.request(route, _load, body=payload)
        except ConflictError:
            if not exist_ok:
                raise
            # filter[name] is an exact match; the loop guards against a server that is not.
            async for dataset in self.list(project_id, name=body.name, **without_body(options)):
                if dataset.name == body.name:
                    return dataset
            raise  # taken, yet not listed: deleted since, or not visible; the 409 says why

    async def get(
        self, project_id: str, dataset_id: str, **options: Unpack[RequestOptions]
    ) -> Dataset:
        """The dataset with this id; ``NotFoundError`` when there is none."""
        _routes.segment("dataset_id", dataset_id)
        route = _routes.LIST_DATASETS.compile(project_id=project_id)
        return await get_one(
            self.list(project_id, ids=[dataset_id], **options),
            "dataset",
            dataset_id,
            self._transport.origin + route.path,
        )

    def list(
        self,
        project_id: str,
        *,
        name: str | None = None,
        ids: Sequence[str] | None = None,
        cursor: str | None = None,
        page_size: int | None = None,
        **options: Unpack[RequestOptions],
    ) -> AsyncPaginator[Dataset]:
        """Every dataset of a project (newest first), or those with this ``name`` or ``ids``.

        Per-call ``options`` apply to every page.
        """
        return paginate(
            self._via(options, NO_BODY) if options else self._transport,
            _routes.LIST_DATASETS.compile(project_id=project_id),
            _load_page,
            filters(name=name, ids=ids),
            cursor=cursor,
            page_size=page_size,
        )

    async def update(
        self,
        project_id: str,
        dataset_id: str,
        body: DatasetUpdate | Mapping[str, Any] | None = None,
        /,
        *,
        name: str | Unset = UNSET,
        description: str | Unset = UNSET,
        metadata: Mapping[str, JSONValue] | Unset = UNSET,
        **options: Unpack[RequestOptions],
    ) -> Dataset:
        """Partially update a dataset's name, description or metadata."""
        route = _routes.UPDATE_DATASET.compile(project_id=project_id, dataset_id=dataset_id)
        update = request_model(
            body,
            {"name": name, "description": description, "metadata": metadata},
            DatasetUpdate,
            _read_update,
        )
        payload = jsonapi.encode_model(update, "datasets", nonempty=True)
        transport = self._via(options) if options else self._transport
        return await transport.request(route, _load, body=payload)

    async def delete(
        self,
        project_id: str,
        dataset_ids: str | Sequence[str],
        /,
        **options: Unpack[RequestOptions],
    ) -> None:
        """Delete one dataset of a project or several (one request)."""
        route = _routes.DELETE_DATASETS.compile(project_id=project_id)
        payload = jsonapi.encode_ids("datasets", "dataset_ids", dataset_ids)
        transport = self._via(options) if options else self._transport
        await transport.request(route, jsonapi.nothing, body=payload)

    async def versions(
        self, project_id: str, dataset_id: str, **options: Unpack[RequestOptions]
    ) -> builtins.list[DatasetVersion]:
        """Every version of a dataset (the API does not page this list)."""
        route = _routes.DATASET_VERSIONS.compile(project_id=project_id, dataset_id=dataset_id)
        transport = self._via(options, NO_BODY) if options else self._transport
        return await transport.request(route, _load_versions)


class DatasetsWithRawResponse:
    """``client.datasets.with_raw_response``: each call returns an ``APIResponse``."""

    __slots__ = ("create", "delete", "get", "update", "versions")

    def __init__(self, datasets: Datasets) -> None:
        self.create = raw(datasets, Datasets.create)
        self.get = raw(datasets, Datasets.get)
        self.update = raw(datasets, Datasets.update)
        self.delete = raw(datasets, Datasets.delete)
        self.versions = raw(datasets, Datasets.versions)
