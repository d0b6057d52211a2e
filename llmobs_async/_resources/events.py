"""``client.experiments.events``: push and read an experiment's spans and evaluation metrics."""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeAlias, Unpack

from .. import _json, _routes
from .._bulk.engine import BulkJob
from .._bulk.events import EventsOperation
from .._bulk.operations import check_batch_options, check_source
from .._bulk.results import BulkResult, ProgressCallback
from .._options import RequestOptions
from .._response import raw
from .._wire import events as _wire_events
from .._wire import jsonapi
from ..errors import ValidationError
from ..models import UNSET, ExperimentMetric, ExperimentSpan, SpanResult, Unset
from ..pagination import AsyncPaginator, EventsPage, Page
from ._base import NO_BODY, Resource, paginate

EventSource: TypeAlias = (
    Iterable[ExperimentSpan | ExperimentMetric | Mapping[str, Any]]
    | AsyncIterable[ExperimentSpan | ExperimentMetric | Mapping[str, Any]]
)
"""What ``events.create_many`` takes: spans and metrics, plain or async, and ``FLUSH``."""


def _load_events_page(body: bytes) -> Page[SpanResult]:
    # The documented shape, or a typed error: a page read as "no spans" when
    # it is something else would end a pull as if the experiment were empty.
    doc = _json.loads(body)
    data = doc["data"]
    if not isinstance(data, dict):
        raise TypeError(f"data is not an object but {jsonapi.json_type(data)}")
    attributes = data["attributes"]
    if not isinstance(attributes, dict):
        raise TypeError(f"data.attributes is not an object but {jsonapi.json_type(attributes)}")
    spans = jsonapi.json_list(attributes, "spans", required=True)
    summary = jsonapi.json_list(attributes, "summary_metrics", required=False)
    return EventsPage(
        items=[jsonapi.structure_span(span) for span in spans],
        next_cursor=jsonapi.next_cursor(doc),
        summary_metrics=tuple(jsonapi.structure_metric(m) for m in summary),
    )


class Events(Resource):
    """An experiment's results: ``.../experiments/{experiment_id}/events``."""

    __slots__ = ()

    @property
    def with_raw_response(self) -> EventsWithRawResponse:
        """``create`` returning an :class:`~llmobs_async.APIResponse` (``None`` as its result)."""
        return EventsWithRawResponse(self)

    async def create(
        self,
        experiment_id: str,
        *,
        metrics: Sequence[ExperimentMetric | Mapping[str, Any]] = (),
        spans: Sequence[ExperimentSpan | Mapping[str, Any]] = (),
        tags: Sequence[str] | Unset = UNSET,
        **options: Unpack[RequestOptions],
    ) -> None:
        """Push spans and evaluation metrics of an experiment (the API answers 202).

        Each metric's ``timestamp_ms`` must be within 24 hours of now: the
        API refuses the push otherwise, so the client refuses it before sending.
        """
        route = _routes.CREATE_EVENTS.compile(experiment_id=experiment_id)
        if not metrics and not spans:
            raise ValidationError("metrics", "give at least one metric or span")
        now = time.time() * 1000
        wire_metrics = [
            _item("metrics", index, _wire_events.metric_attributes, m, now)
            for index, m in enumerate(_seq("metrics", metrics))
        ]
        wire_spans = [
            _item("spans", index, _wire_events.span_attributes, span)
            for index, span in enumerate(_seq("spans", spans))
        ]
        attributes: dict[str, Any] = {"scope": "experiments", "metrics": wire_metrics}
        if wire_spans:
            attributes["spans"] = wire_spans
        if tags is not UNSET:
            attributes["tags"] = list(_seq("tags", tags))
        # "experiments", not the specification's "events": the live API refuses that.
        payload = jsonapi.envelope("experiments", _json.encode_json(attributes))
        transport = self._via(options) if options else self._transport
        await transport.request(route, jsonapi.nothing, body=payload)

    async def create_many(
        self,
        experiment_id: str,
        items: EventSource,
        *,
        tags: Sequence[str] | Unset = UNSET,
        batch_size: int = 1000,
        max_batch_bytes: int = 4_000_000,
        on_progress: ProgressCallback | None = None,
        **options: Unpack[RequestOptions],
    ) -> BulkResult:
        """Push any number of spans and metrics, streamed in batches: a bulk job.

        ``items`` is an iterable or async iterable of
        :class:`~llmobs_async.models.ExperimentSpan` and
        :class:`~llmobs_async.models.ExperimentMetric` (or mappings of their
        fields: one with a ``label`` is a metric). A batch is cut at
        ``batch_size`` items or ``max_batch_bytes`` of JSON, or when the input
        yields :data:`~llmobs_async.FLUSH`. As in every bulk job, a bad item is
        reported (with its field) and not sent, an item the API refuses is
        isolated from its batch, and the :class:`~llmobs_async.BulkResult`
        accounts for every item; ``record_ids`` are span ids, and
        ``span_id/label`` for metrics. A push whose answer was lost is sent
        again, which can store a metric twice: the readers of an experiment
        (``rows``, ``compare``, ``resume``) keep one metric per span and label.
        """
        route = _routes.CREATE_EVENTS.compile(experiment_id=experiment_id)
        wire_tags = b"" if tags is UNSET else _json.encode_json(list(_seq("tags", tags)))
        check_batch_options(batch_size, max_batch_bytes)
        check_source(items, "items")
        job = BulkJob(
            self._via(options) if options else self._transport,
            EventsOperation(route=route, tags=wire_tags),
            batch_size=batch_size,
            max_batch_bytes=max_batch_bytes,
            on_progress=on_progress,
            name="events.create_many",
            field="items",
        )
        return await job.run(items)

    def list(
        self,
        experiment_id: str,
        *,
        cursor: str | None = None,
        page_size: int | None = None,
        **options: Unpack[RequestOptions],
    ) -> AsyncPaginator[SpanResult]:
        """Every span of an experiment with its metrics; ``.pages()`` gives :class:`EventsPage`."""
        return paginate(
            self._via(options, NO_BODY) if options else self._transport,
            _routes.LIST_EVENTS.compile(experiment_id=experiment_id),
            _load_events_page,
            [],
            cursor=cursor,
            page_size=page_size,
        )


class EventsWithRawResponse:
    """``client.experiments.events.with_raw_response``: ``create`` returns an ``APIResponse``."""

    __slots__ = ("create",)

    def __init__(self, events: Events) -> None:
        self.create = raw(events, Events.create)


def _seq(field: str, value: Any) -> Sequence[Any]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence):
        raise ValidationError(field, "must be a list")
    return value


def _item(field: str, index: int, read: Callable[..., dict[str, Any]], *args: Any) -> Any:
    try:
        return read(*args)
    except ValidationError as exc:
        raise exc.prefixed(f"{field}[{index}]") from None
