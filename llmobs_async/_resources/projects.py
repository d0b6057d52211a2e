"""``client.projects``: create (get-or-create by name), get, list, update, delete."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Unpack

from .. import _routes
from .._options import RequestOptions
from .._response import raw
from .._wire import jsonapi
from ..models import UNSET, Project, ProjectCreate, ProjectUpdate, Unset
from ..pagination import AsyncPaginator
from ._base import NO_BODY, Resource, filters, get_one, named_model, paginate, update_payload

_read_create = jsonapi.request_reader(ProjectCreate, "projects")
_read_update = jsonapi.request_reader(ProjectUpdate, "projects")
_load = jsonapi.one(jsonapi.structure_project)
_load_page = jsonapi.page_of(jsonapi.structure_project)


class Projects(Resource):
    """Projects of the organization: ``/api/v2/llm-obs/v1/projects``."""

    __slots__ = ()

    @property
    def with_raw_response(self) -> ProjectsWithRawResponse:
        """These methods returning an :class:`~llmobs_async.APIResponse` of their result."""
        return ProjectsWithRawResponse(self)

    async def create(
        self,
        name: str | ProjectCreate | Mapping[str, Any],
        /,
        *,
        description: str | Unset = UNSET,
        **options: Unpack[RequestOptions],
    ) -> Project:
        """Create a project, or return the existing one of that name (the API's get-or-create).

        Pass the name and fields, or a ready :class:`~llmobs_async.models.ProjectCreate`.
        """
        body = named_model(name, {"description": description}, ProjectCreate, _read_create)
        payload = jsonapi.encode_model(body, "projects")
        transport = self._via(options) if options else self._transport
        return await transport.request(_routes.CREATE_PROJECT.compile(), _load, body=payload)

    async def get(self, project_id: str, **options: Unpack[RequestOptions]) -> Project:
        """The project with this id; ``NotFoundError`` when there is none."""
        _routes.segment("project_id", project_id)
        route = _routes.LIST_PROJECTS.compile()
        return await get_one(
            self.list(ids=[project_id], **options),
            "project",
            project_id,
            self._transport.origin + route.path,
        )

    def list(
        self,
        *,
        name: str | None = None,
        ids: Sequence[str] | None = None,
        cursor: str | None = None,
        page_size: int | None = None,
        **options: Unpack[RequestOptions],
    ) -> AsyncPaginator[Project]:
        """Every project (newest first), or those with this ``name`` or these ``ids``; lazily.

        Per-call ``options`` apply to every page.
        """
        return paginate(
            self._via(options, NO_BODY) if options else self._transport,
            _routes.LIST_PROJECTS.compile(),
            _load_page,
            filters(name=name, ids=ids),
            cursor=cursor,
            page_size=page_size,
        )

    async def update(
        self,
        project_id: str,
        body: ProjectUpdate | Mapping[str, Any] | None = None,
        /,
        *,
        name: str | Unset = UNSET,
        description: str | Unset = UNSET,
        **options: Unpack[RequestOptions],
    ) -> Project:
        """Partially update a project; fields not given are left unchanged."""
        route = _routes.UPDATE_PROJECT.compile(project_id=project_id)
        fields = {"name": name, "description": description}
        payload = update_payload(
            body, fields, {"name": str, "description": str}, ProjectUpdate, _read_update, "projects"
        )
        transport = self._via(options) if options else self._transport
        return await transport.request(route, _load, body=payload)

    async def delete(
        self, project_ids: str | Sequence[str], /, **options: Unpack[RequestOptions]
    ) -> None:
        """Delete one project or several (one request)."""
        payload = jsonapi.encode_ids("projects", "project_ids", project_ids)
        transport = self._via(options) if options else self._transport
        await transport.request(_routes.DELETE_PROJECTS.compile(), jsonapi.nothing, body=payload)


class ProjectsWithRawResponse:
    """``client.projects.with_raw_response``: each call returns an ``APIResponse``."""

    __slots__ = ("create", "delete", "get", "update")

    def __init__(self, projects: Projects) -> None:
        self.create = raw(projects, Projects.create)
        self.get = raw(projects, Projects.get)
        self.update = raw(projects, Projects.update)
        self.delete = raw(projects, Projects.delete)
