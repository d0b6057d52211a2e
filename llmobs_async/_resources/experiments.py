"""``client.experiments`` (create, get, list, update, delete) and ``client.experiments.events``."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal, Unpack, overload

import attrs

from .. import _json, _routes
from .._options import RequestOptions, without_body
from .._response import raw
from .._transport import Transport
from .._wire import jsonapi
from .._wire.experiments import structure_experiment
from ..errors import LLMObsError, NotFoundError, ReadBackError, ValidationError
from ..models import (
    UNSET,
    Experiment,
    ExperimentCreate,
    ExperimentStatus,
    ExperimentUpdate,
    JSONValue,
    Unset,
)
from ..pagination import AsyncPaginator
from ._base import NO_BODY, Resource, filters, get_one, paginate, request_model, update_payload
from .events import Events

_read_create = jsonapi.request_reader(ExperimentCreate, "experiments")
_read_update = jsonapi.request_reader(ExperimentUpdate, "experiments")
_UPDATE_KINDS: Final = {
    "name": str,
    "description": str,
    "dataset_id": str,
    "status": ExperimentStatus,
    "error": str,
    "metadata": dict,
}
_load = jsonapi.one(structure_experiment)
_load_page = jsonapi.page_of(structure_experiment)
READ_BACK_WAITS: Final = (0.1, 0.2, 0.4, 0.8, 1.6)
"""The waits between the reads of an update's read-back while the list lags the write, in
units of the client's first retry backoff (0.5 s): 0.05 s to 0.8 s, 1.55 s in all."""


def _load_update(body: bytes) -> Experiment | None:
    # The live API answers a PATCH with an empty 200: the caller reads it back.
    return _load(body) if body.strip() else None


class Experiments(Resource):
    """Experiments: ``/api/v2/llm-obs/v1/experiments``; their results under ``.events``."""

    __slots__ = ("events",)

    def __init__(self, transport: Transport) -> None:
        super().__init__(transport)
        self.events = Events(transport)
        """Push and read an experiment's spans and evaluation metrics."""

    @property
    def with_raw_response(self) -> ExperimentsWithRawResponse:
        """These methods returning an :class:`~llmobs_async.APIResponse` of their result."""
        return ExperimentsWithRawResponse(self)

    async def create(
        self,
        project_id: str | ExperimentCreate | Mapping[str, Any],
        dataset_id: str | Unset = UNSET,
        name: str | Unset = UNSET,
        /,
        *,
        dataset_version: int | Unset = UNSET,
        description: str | Unset = UNSET,
        config: Mapping[str, JSONValue] | Unset = UNSET,
        metadata: Mapping[str, JSONValue] | Unset = UNSET,
        ensure_unique: bool | Unset = UNSET,
        parent_experiment_id: str | Unset = UNSET,
        run_count: int | Unset = UNSET,
        **options: Unpack[RequestOptions],
    ) -> Experiment:
        """Create an experiment (a run) on a dataset of a project.

        ``create(project_id, dataset_id, "run-42", dataset_version=3)``, or
        ``create(models.ExperimentCreate(...))``. With ``ensure_unique`` (the
        API's default) the API appends a timestamp to the run's ``name`` and
        keeps the given one in ``experiment``.
        """
        fields: dict[str, Any] = {
            "dataset_version": dataset_version,
            "description": description,
            "config": config,
            "metadata": metadata,
            "ensure_unique": ensure_unique,
            "parent_experiment_id": parent_experiment_id,
            "run_count": run_count,
        }
        if isinstance(project_id, str):
            if name is UNSET:
                raise ValidationError("name", "is required")
            body = ExperimentCreate(
                project_id=project_id,
                dataset_id=dataset_id,
                name=name,
                **fields,
            )
        else:
            if dataset_id is not UNSET or name is not UNSET:
                raise ValidationError("body", "pass a request model or positional fields, not both")
            body = request_model(project_id, fields, ExperimentCreate, _read_create)
        payload = jsonapi.encode_model(body, "experiments")
        transport = self._via(options) if options else self._transport
        return await transport.request(_routes.CREATE_EXPERIMENT.compile(), _load, body=payload)

    async def get(self, experiment_id: str, **options: Unpack[RequestOptions]) -> Experiment:
        """The experiment with this id; ``NotFoundError`` when there is none."""
        _routes.segment("experiment_id", experiment_id)
        route = _routes.LIST_EXPERIMENTS.compile()
        return await get_one(
            self.list(ids=[experiment_id], **options),
            "experiment",
            experiment_id,
            self._transport.origin + route.path,
        )

    def list(
        self,
        *,
        project_id: str | None = None,
        dataset_id: str | None = None,
        ids: Sequence[str] | None = None,
        name: str | None = None,
        experiment: str | None = None,
        metadata: Mapping[str, JSONValue] | None = None,
        deleted: bool = False,
        cursor: str | None = None,
        page_size: int | None = None,
        **options: Unpack[RequestOptions],
    ) -> AsyncPaginator[Experiment]:
        """Experiments of a project or a dataset (or these ``ids``), newest first; lazily.

        ``name`` is a run's exact name, ``experiment`` the logical name its
        runs share, ``metadata`` matches experiments whose metadata contains
        it, and ``deleted=True`` lists only deleted ones. Per-call ``options``
        apply to every page.
        """
        if project_id is None and dataset_id is None and ids is None:
            raise ValidationError("project_id", "give project_id, dataset_id or ids")
        query = filters(
            project_id=project_id, dataset_id=dataset_id, ids=ids, name=name, experiment=experiment
        )
        if metadata is not None:
            if not isinstance(metadata, Mapping):
                raise ValidationError("metadata", "must be a JSON object (a mapping)")
            try:
                encoded = _json.encode_json(dict(metadata))
            except ValidationError as exc:
                if exc.field == "body":  # the object itself, not a value in it
                    raise ValidationError("metadata", exc.reason) from None
                raise exc.prefixed("metadata") from None
            query.append(("filter[metadata]", encoded.decode()))
        if deleted:
            query.append(("filter[is_deleted]", "true"))
        return paginate(
            self._via(options, NO_BODY) if options else self._transport,
            _routes.LIST_EXPERIMENTS.compile(),
            _load_page,
            query,
            cursor=cursor,
            page_size=page_size,
        )

    @overload
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
        read_back: Literal[True] = True,
        **options: Unpack[RequestOptions],
    ) -> Experiment: ...

    @overload
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
        read_back: bool,
        **options: Unpack[RequestOptions],
    ) -> Experiment | None: ...

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
        read_back: bool = True,
        **options: Unpack[RequestOptions],
    ) -> Experiment | None:
        """Partially update an experiment; fields not given are left unchanged.

        Pass either keyword fields or a ready :class:`~llmobs_async.models.ExperimentUpdate`
        (or a mapping of its fields) as ``body``. The live API answers with an
        empty 200; the experiment is then read back (one more request) so the
        result is the experiment as stored. While the list lags the write (it
        leaves the experiment out, or shows other values than those written)
        the read is retried briefly (6 reads in 1.55 s, see :data:`READ_BACK_WAITS`).
        If the read fails or keeps lagging, :class:`~llmobs_async.errors.ReadBackError`
        says that the write **was applied** and carries what was written.

        ``read_back=False`` skips the read (one request instead of two, for a
        hot path): the result is the experiment if the API's answer carried
        it, else ``None``. Returning normally always means the write landed.
        Per-call ``options`` apply to the read too (``extra_body`` only to the write).
        """
        route = _routes.UPDATE_EXPERIMENT.compile(experiment_id=experiment_id)
        fields = {
            "name": name,
            "description": description,
            "dataset_id": dataset_id,
            "status": status,
            "error": error,
            "metadata": metadata,
        }
        payload = update_payload(
            body, fields, _UPDATE_KINDS, ExperimentUpdate, _read_update, "experiments"
        )
        transport = self._via(options) if options else self._transport
        updated = await transport.request(route, _load_update, body=payload)
        if updated is not None or not read_back:
            return updated
        # The fields were checked before sending; the model is built only to compare.
        written = request_model(body, fields, ExperimentUpdate, _read_update)
        return await self._read_back(experiment_id, written, without_body(options))

    async def _read_back(
        self, experiment_id: str, written: ExperimentUpdate, options: RequestOptions
    ) -> Experiment:
        """The experiment once the list shows ``written``; ReadBackError otherwise."""
        read: Experiment | None = None
        unit = self._transport.retry.initial
        for wait in (*READ_BACK_WAITS, None):
            try:
                read = await self.get(experiment_id, **options)
            except NotFoundError:
                pass  # the list lags the write (or the experiment was deleted since)
            except LLMObsError as exc:
                raise ReadBackError(
                    f"experiment {experiment_id} was updated ({_fields(written)}), but reading "
                    f"it back failed: {exc}",
                    experiment_id=experiment_id,
                    written=written,
                ) from exc
            else:
                if not _differs(written, read):
                    return read
            if wait is not None:
                await asyncio.sleep(wait * unit)
        reads = len(READ_BACK_WAITS) + 1
        shows = (
            "left it out"
            if read is None
            else f"showed other values for {', '.join(_differs(written, read))}"
        )
        raise ReadBackError(
            f"experiment {experiment_id} was updated ({_fields(written)}), but {reads} reads "
            f"of the list in {sum(READ_BACK_WAITS) * unit:.2g}s {shows} (a lagging list, or "
            "another writer in between)",
            experiment_id=experiment_id,
            written=written,
            read=read,
        )

    async def delete(
        self, experiment_ids: str | Sequence[str], /, **options: Unpack[RequestOptions]
    ) -> None:
        """Delete one experiment or several (one request)."""
        payload = jsonapi.encode_ids("experiments", "experiment_ids", experiment_ids)
        transport = self._via(options) if options else self._transport
        await transport.request(_routes.DELETE_EXPERIMENTS.compile(), jsonapi.nothing, body=payload)


class ExperimentsWithRawResponse:
    """``client.experiments.with_raw_response``: each call returns an ``APIResponse``.

    ``update``'s answer is the write's (the PATCH), not its read-back's.
    """

    __slots__ = ("create", "delete", "get", "update")

    def __init__(self, experiments: Experiments) -> None:
        self.create = raw(experiments, Experiments.create)
        self.get = raw(experiments, Experiments.get)
        self.update = raw(experiments, Experiments.update)
        self.delete = raw(experiments, Experiments.delete)


def _fields(written: ExperimentUpdate) -> str:
    return ", ".join(k for k, v in attrs.asdict(written, recurse=False).items() if v is not UNSET)


def _differs(written: ExperimentUpdate, read: Experiment) -> list[str]:
    """The fields written that ``read`` shows with another value: the list lags the write.

    A field the answer leaves out says nothing either way (the live API leaves out
    empty fields, and its answers have not always carried ``status`` or ``error``), so
    only a value that is there and differs counts; waiting on an absent field would
    fail every update against a server that never sends it.
    """
    differ = []
    for key, value in attrs.asdict(written, recurse=False).items():
        if value is UNSET:
            continue
        have = getattr(read, key)
        if have is None or (key == "metadata" and not have):
            continue
        if key == "metadata":  # compared as JSON (a tuple written reads back as a list)
            wanted = _json.loads(_json.encode_json(dict(value)))
            same = all(k in have and have[k] == v for k, v in wanted.items())
        elif key == "status":
            same = str(getattr(have, "value", have)) == value.value
        else:
            same = have == (value or "")
        if not same:
            differ.append(key)
    return differ
