"""JSON encoding and decoding, in one place so the codec can be swapped and measured.

orjson is the codec: about 4x faster than the standard library at encoding
records and 2x at decoding responses (see benchmarks/). It is also strict
where the standard library is lenient: non-string keys, unsupported types and
lone surrogates raise instead of being coerced. Its one leniency, writing NaN
and infinities as ``null``, is closed below.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson

loads = orjson.loads
"""Decode a JSON document (bytes or str)."""


def _default(value: Any) -> Any:
    if isinstance(value, Mapping):  # e.g. MappingProxyType: encode as an object
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def dumps(value: Any) -> bytes:
    """Encode ``value`` as compact UTF-8 JSON; NaN and infinities are errors."""
    encoded = orjson.dumps(value, default=_default)
    # orjson writes NaN and infinities as null, so only output holding a null
    # can hide one: the walk runs for those documents alone.
    if b"null" in encoded and has_non_finite(value):
        raise ValueError("NaN and infinities are not valid JSON")
    return encoded


def has_non_finite(value: Any) -> bool:
    """True if ``value`` holds a NaN or an infinity anywhere."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, Mapping):
        return any(has_non_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(has_non_finite(v) for v in value)
    return False
