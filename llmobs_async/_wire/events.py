"""Experiment events on the wire: one span or metric checked and encoded, and the push body.

Shared by ``experiments.events.create`` (one request) and ``create_many``
(the bulk engine), so both refuse the same items with the same field names.
A metric's ``timestamp_ms`` must be within 24 hours of now: the live API
refuses the whole push otherwise (``timestamp_within_24hr``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Final

from .._json import encode_json
from ..errors import ValidationError
from ..models import ExperimentMetric, ExperimentSpan
from . import jsonapi

__all__ = ["DAY_MS", "encode_item", "encode_metric", "encode_span", "is_metric", "push_body"]

DAY_MS: Final = 24 * 3600 * 1000
_read_metric = jsonapi.request_reader(ExperimentMetric, "experiments")
_read_span = jsonapi.request_reader(ExperimentSpan, "experiments")


def metric_attributes(metric: Any, now_ms: float | None = None) -> dict[str, Any]:
    """A metric (model or mapping) checked, as its wire attributes."""
    model = _read_metric(metric)
    now = time.time() * 1000 if now_ms is None else now_ms
    if abs(model.timestamp_ms - now) > DAY_MS:
        raise ValidationError(
            "timestamp_ms",
            "must be within 24 hours of now (epoch milliseconds); the API refuses older or later",
        )
    return jsonapi.attributes_of(model)


def span_attributes(span: Any) -> dict[str, Any]:
    """A span (model or mapping) checked, as its wire attributes."""
    return jsonapi.attributes_of(_read_span(span))


def encode_metric(metric: Any) -> bytes:
    """One metric checked and encoded as JSON."""
    return encode_json(metric_attributes(metric))


def encode_span(span: Any) -> bytes:
    """One span checked and encoded as JSON."""
    return encode_json(span_attributes(span))


def is_metric(item: Any) -> bool:
    """A metric or a span? A mapping with a ``label`` is a metric: spans have none."""
    if isinstance(item, ExperimentMetric):
        return True
    if isinstance(item, ExperimentSpan):
        return False
    if isinstance(item, Mapping):
        return "label" in item
    raise ValidationError("", "must be an ExperimentSpan, an ExperimentMetric or a mapping")


def encode_item(item: Any) -> tuple[bool, bytes]:
    """``(is_metric, JSON)`` of one span or metric."""
    metric = is_metric(item)
    return metric, encode_metric(item) if metric else encode_span(item)


def push_body(spans: bytes | bytearray, metrics: bytes | bytearray, tags: bytes = b"") -> bytes:
    """The push's body around comma-joined encoded spans and metrics.

    ``"experiments"``, not the specification's ``"events"``: the live API
    refuses that type. ``tags`` is the encoded JSON array of push tags, if any.
    """
    parts = [b'{"data":{"type":"experiments","attributes":{"scope":"experiments","metrics":[']
    parts.append(bytes(metrics))
    parts.append(b"]")
    if spans:
        parts.append(b',"spans":[%s]' % spans)
    if tags:
        parts.append(b',"tags":%s' % tags)
    parts.append(b"}}}")
    return b"".join(parts)
