"""JSON encoding and decoding, in one place so the codec can be swapped and measured."""

from __future__ import annotations

import json
from typing import Any

_encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_decoder = json.JSONDecoder()


def dumps(value: Any) -> bytes:
    """Encode ``value`` as compact UTF-8 JSON; NaN and infinities are errors."""
    return _encoder.encode(value).encode()


def loads(data: bytes | str) -> Any:
    """Decode a JSON document."""
    return _decoder.decode(data.decode() if isinstance(data, bytes) else data)
