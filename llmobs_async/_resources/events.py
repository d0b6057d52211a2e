"""``client.experiments.events``: push and read an experiment's spans and evaluation metrics."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Final, Unpack

from .. import _json, _routes
from .._options import RequestOptions
from .._response import raw
from .._wire import jsonapi
from ..errors import ValidationError
from ..models import UNSET, ExperimentMetric, ExperimentSpan, SpanResult, Unset
from ..pagination import AsyncPaginator, EventsPage, Page
from ._base import NO_BODY, Resource, paginate

_read_metric = jsonapi.request_reader(ExperimentMetric, "experiments")
_read_span = jsonapi.request_reader(ExperimentSpan, "experiments")
_DAY_MS: Final = 24 * 3600 * 1000


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
        wire_metrics = [_metric(m, index, now) for index, m in enumerate(_seq("metrics", metrics))]
        wire_spans = []
        for index, span in enumerate(_seq("spans", spans)):
            try:
                wire_spans.append(jsonapi.attributes_of(_read_span(span)))
            except ValidationError as exc:
                raise exc.prefixed(f"spans[{index}]") from None
        attributes: dict[str, Any] = {"scope": "experiments", "metrics": wire_metrics}
        if wire_spans:
            attributes["spans"] = wire_spans
        if tags is not UNSET:
            attributes["tags"] = list(_seq("tags", tags))
        # "experiments", not the specification's "events": the live API refuses that.
        payload = jsonapi.envelope("experiments", _json.encode_json(attributes))
        transport = self._via(options) if options else self._transport
        await transport.request(route, jsonapi.nothing, body=payload)

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
    return jsonapi.attributes_of(model)
