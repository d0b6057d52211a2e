"""Experiment events for the bulk engine: spans and metrics pushed in batches.

An events push carries two arrays, ``spans`` and ``metrics``; each item is
marked with its kind (``S`` or ``M``, :func:`.batches.marked`) so that
:meth:`EventsOperation.body` can sort the joined items into their arrays,
and an error pointing at ``/data/attributes/metrics/3`` maps back to its item.
Re-sending a push whose answer was lost can store a metric twice; readers
(``experiments.rows``, ``compare``, ``resume``) keep one metric per span and
label, so a re-send is safe where it matters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, NamedTuple

import attrs

from .._json import loads
from .._wire import events as _wire_events
from ..errors import APIStatusError
from ..models import ExperimentMetric, ExperimentSpan
from .batches import marked, pointed_marked, walk_marked

if TYPE_CHECKING:
    from .._routes import Compiled

__all__ = ["EncodedEvent", "EventsOperation", "event_id"]

_SPAN: Final = ord("S")
_ARRAYS: Final = {"spans": _SPAN, "metrics": ord("M")}


class EncodedEvent(NamedTuple):
    """A span or metric its maker checked and encoded itself: sent as it is.

    The experiment runner makes its spans and metrics from fields it built
    (ids, times, tags) and values it checked (the task's output, each
    evaluator's result), so going through the request models again would
    only check them twice; this is what it streams into ``create_many``.
    """

    metric: bool
    """A metric, or a span."""
    id: str
    """Its id in reports: the span id, or ``span_id/label``."""
    json: bytes
    """Its JSON, as the API takes it."""

    def document(self) -> Any:
        """The span or metric as a dict."""
        return loads(self.json)


def _encode(item: Any) -> bytes:
    if type(item) is EncodedEvent:
        return marked(b"M" if item.metric else b"S", item.json)
    metric, encoded = _wire_events.encode_item(item)
    return marked(b"M" if metric else b"S", encoded)


def event_id(item: Any) -> str | None:
    """A span's ``span_id``, or a metric's ``span_id/label`` (``/label`` for a summary)."""
    if type(item) is EncodedEvent:
        return item.id
    if isinstance(item, ExperimentSpan):
        return item.span_id
    if isinstance(item, ExperimentMetric):
        return f"{item.span_id}/{item.label}"
    if isinstance(item, dict):
        span_id, label = item.get("span_id"), item.get("label")
        if isinstance(label, str):
            return f"{span_id if isinstance(span_id, str) else ''}/{label}"
        return span_id if isinstance(span_id, str) else None
    return None


def _load(body: bytes) -> object:
    # The API answers 202 with no body; a 2xx that holds something else than
    # JSON (a proxy's HTML page) is not the API's answer.
    return loads(body) if body.strip() else None


@attrs.define(kw_only=True)
class EventsOperation:
    """``POST .../experiments/{id}/events`` with spans and metrics in one body."""

    route: Compiled
    tags: bytes = b""
    """The push's own ``tags`` (a JSON array), sent with every batch."""
    version: None = None
    resend_unsure: bool = True
    body_overhead: int = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.body_overhead = len(self.body(b"")) + len(',"spans":[]')

    encode = staticmethod(_encode)
    item_id = staticmethod(event_id)
    load = staticmethod(_load)

    def body(self, joined: bytes | bytearray, new_version: bool = False) -> bytes:
        """The request body: the marked items of ``joined`` sorted into their arrays."""
        spans: list[bytes | bytearray] = []
        metrics: list[bytes | bytearray] = []
        for kind, start, end in walk_marked(joined):
            (spans if kind == _SPAN else metrics).append(joined[start:end])
        return _wire_events.push_body(b",".join(spans), b",".join(metrics), self.tags)

    def pointed_index(self, error: APIStatusError, joined: bytes | bytearray = b"") -> int | None:
        """The request index of the item an error points at (``.../metrics/2``)."""
        return pointed_marked(error, joined, _ARRAYS)
