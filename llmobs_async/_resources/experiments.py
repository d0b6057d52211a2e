"""``client.experiments`` (create, get, list, update, delete) and ``client.experiments.events``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal, overload

import attrs

from .. import _json, _routes, _wire
from .._transport import Transport
from .._wire_fast import structure_experiment
from ..errors import LLMObsError, NotFoundError, ReadBackError, ValidationError
from ..models import (
    UNSET,
    Experiment,
    ExperimentCreate,
    ExperimentMetric,
    ExperimentSpan,
    ExperimentStatus,
    ExperimentUpdate,
    JSONValue,
    SpanResult,
    Unset,
)
from ..pagination import AsyncPaginator, EventsPage, Page
from ._base import Resource, filters, get_one, paginate, request_model, update_payload

_read_create = _wire.request_reader(ExperimentCreate, "experiments")
_read_update = _wire.request_reader(ExperimentUpdate, "experiments")
_UPDATE_KINDS: Final = {
    "name": str,
    "description": str,
    "dataset_id": str,
    "status": ExperimentStatus,
    "error": str,
    "metadata": dict,
}
_read_metric = _wire.request_reader(ExperimentMetric, "experiments")
_read_span = _wire.request_reader(ExperimentSpan, "experiments")
_load = _wire.one(structure_experiment)
_load_page = _wire.page_of(structure_experiment)
_DAY_MS: Final = 24 * 3600 * 1000
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
        payload = _wire.encode_model(body, "experiments")
        return await self._transport.request(
            _routes.CREATE_EXPERIMENT.compile(), _load, body=payload
        )

    async def get(self, experiment_id: str) -> Experiment:
        """The experiment with this id; ``NotFoundError`` when there is none."""
        _routes.segment("experiment_id", experiment_id)
        route = _routes.LIST_EXPERIMENTS.compile()
        return await get_one(
            self.list(ids=[experiment_id]),
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
    ) -> AsyncPaginator[Experiment]:
        """Experiments of a project or a dataset (or these ``ids``), newest first; lazily.

        ``name`` is a run's exact name, ``experiment`` the logical name its
        runs share, ``metadata`` matches experiments whose metadata contains
        it, and ``deleted=True`` lists only deleted ones.
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
            self._transport,
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
        updated = await self._transport.request(route, _load_update, body=payload)
        if updated is not None or not read_back:
            return updated
        # The fields were checked before sending; the model is built only to compare.
        written = request_model(body, fields, ExperimentUpdate, _read_update)
        return await self._read_back(experiment_id, written)

    async def _read_back(self, experiment_id: str, written: ExperimentUpdate) -> Experiment:
        """The experiment once the list shows ``written``; ReadBackError otherwise."""
        read: Experiment | None = None
        unit = self._transport.retry.initial
        for wait in (*READ_BACK_WAITS, None):
            try:
                read = await self.get(experiment_id)
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

    async def delete(self, experiment_ids: str | Sequence[str], /) -> None:
        """Delete one experiment or several (one request)."""
        payload = _wire.encode_ids("experiments", "experiment_ids", experiment_ids)
        await self._transport.request(
            _routes.DELETE_EXPERIMENTS.compile(), _wire.nothing, body=payload
        )


def _load_events_page(body: bytes) -> Page[SpanResult]:
    # The documented shape, or a typed error: a page read as "no spans" when
    # it is something else would end a pull as if the experiment were empty.
    doc = _json.loads(body)
    data = doc["data"]
    if not isinstance(data, dict):
        raise TypeError(f"data is not an object but {_wire.json_type(data)}")
    attributes = data["attributes"]
    if not isinstance(attributes, dict):
        raise TypeError(f"data.attributes is not an object but {_wire.json_type(attributes)}")
    spans = _wire.json_list(attributes, "spans", required=True)
    summary = _wire.json_list(attributes, "summary_metrics", required=False)
    return EventsPage(
        items=[_wire.structure_span(span) for span in spans],
        next_cursor=_wire.next_cursor(doc),
        summary_metrics=tuple(_wire.structure_metric(m) for m in summary),
    )


class Events(Resource):
    """An experiment's results: ``.../experiments/{experiment_id}/events``."""

    __slots__ = ()

    async def create(
        self,
        experiment_id: str,
        *,
        metrics: Sequence[ExperimentMetric | Mapping[str, Any]] = (),
        spans: Sequence[ExperimentSpan | Mapping[str, Any]] = (),
        tags: Sequence[str] | Unset = UNSET,
    ) -> None:
        """Push spans and evaluation metrics of an experiment (the API answers 202).

        Each metric's ``timestamp_ms`` must be within 24 hours of now: the
        API refuses the push otherwise, so the client refuses it before sending.
        """
        route = _routes.CREATE_EVENTS.compile(experiment_id=experiment_id)
        if not metrics and not spans:
            raise ValidationError("metrics", "give at least one metric or span")
        now = time.time() * 1000
        wire_metrics = [_metric(m, index, now) for index, m in enumerate(_seq("metrics", metrics))]
        wire_spans = []
        for index, span in enumerate(_seq("spans", spans)):
            try:
                wire_spans.append(_wire.attributes_of(_read_span(span)))
            except ValidationError as exc:
                raise exc.prefixed(f"spans[{index}]") from None
        attributes: dict[str, Any] = {"scope": "experiments", "metrics": wire_metrics}
        if wire_spans:
            attributes["spans"] = wire_spans
        if tags is not UNSET:
            attributes["tags"] = list(_seq("tags", tags))
        # "experiments", not the specification's "events": the live API refuses that.
        payload = _wire.envelope("experiments", _json.encode_json(attributes))
        await self._transport.request(route, _wire.nothing, body=payload)

    def list(
        self, experiment_id: str, *, cursor: str | None = None, page_size: int | None = None
    ) -> AsyncPaginator[SpanResult]:
        """Every span of an experiment with its metrics; ``.pages()`` gives :class:`EventsPage`."""
        return paginate(
            self._transport,
            _routes.LIST_EVENTS.compile(experiment_id=experiment_id),
            _load_events_page,
            [],
            cursor=cursor,
            page_size=page_size,
        )


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


def _seq(field: str, value: Any) -> Sequence[Any]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence):
        raise ValidationError(field, "must be a list")
    return value


def _metric(metric: Any, index: int, now_ms: float) -> dict[str, Any]:
    try:
        model = _read_metric(metric)
    except ValidationError as exc:
        raise exc.prefixed(f"metrics[{index}]") from None
    if abs(model.timestamp_ms - now_ms) > _DAY_MS:
        raise ValidationError(
            f"metrics[{index}].timestamp_ms",
            "must be within 24 hours of now (epoch milliseconds); the API refuses older or later",
        )
    return _wire.attributes_of(model)
