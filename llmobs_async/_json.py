"""JSON encoding and decoding, and the one rule for what may be sent.

The rule: **only plain JSON data is sent.** Objects are dicts (or any other
Mapping) with ``str`` keys; arrays are lists or tuples; scalars are ``str``,
``int`` (within 64 bits), ``float`` (finite), ``bool`` and ``None``, as those
exact types. Everything else is refused with a ValidationError naming the
field: datetimes, UUIDs, Enum members (IntEnum and StrEnum too), dataclasses,
Decimals, bytes, sets, NaN and infinities, and subclasses of the scalar and
array types (a numpy scalar, a namedtuple). Nothing is converted silently:
the caller decides how a datetime or a UUID is written.

orjson is the codec: about 4x faster than the standard library at encoding
records and 2x at decoding responses (see benchmarks/). Left to itself it
would convert datetimes, UUIDs, Enums and dataclasses and write NaN as null,
so :func:`encode_json` closes each of those doors (see :func:`_plain`).
"""

from __future__ import annotations

import gc
import math
from collections.abc import Mapping
from typing import Any, Final

import orjson

from .errors import ValidationError

loads = orjson.loads
"""Decode a JSON document (bytes or str)."""

# Datetimes, dataclasses and subclasses of str, int, dict and list go to
# _default (which refuses them) instead of being converted.
_OPTIONS: Final = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def _default(value: Any) -> Any:
    if isinstance(value, Mapping):  # e.g. MappingProxyType: encode as an object
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def encode_json(value: Any) -> bytes:
    """Encode plain JSON data as compact UTF-8, or raise ValidationError naming the bad field."""
    try:
        encoded = orjson.dumps(value, default=_default, option=_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError
        encoded = b""
    else:
        # orjson writes NaN and infinities as null, so only output holding a
        # null can hide one: the walk runs for those documents alone. (rfind:
        # on CPython 3.11 the backward search is twice as fast as ``in`` here.)
        if _plain(value, len(encoded)) and (
            encoded.rfind(b"null") < 0 or not has_non_finite(value)
        ):
            return encoded
    found = _find_unencodable(value, "", 0)
    if found is None:
        if encoded:  # plain after all (a Mapping other than dict): _plain cannot tell
            return encoded
        raise ValidationError("body", "cannot be encoded as JSON")
    field, reason = found
    raise ValidationError(field or "body", reason)


_MAX_LEVELS: Final = 256  # deeper than orjson's nesting limit (254)


def _plain(value: Any, budget: int) -> bool:
    """True if ``value`` surely holds no UUID or Enum member (which orjson encodes).

    Checking the type of every value in Python would cost twice the
    encoding (about 22 µs per 100 records); this asks the garbage collector
    for the referents of each level instead, in C (about 8 µs). Plain data
    ends: strings and numbers refer to nothing, containers to their items
    (a dict with str keys to its values). An instance of a class defined in
    Python (a UUID, an Enum member) also refers to its class, and a class to
    its ``__mro__``, which holds the class again: the walk never ends, and
    stops at a bound instead. Plain data stays within both bounds: no deeper
    than orjson's limit, and no more values than bytes in its encoding.
    ``False`` only means "look closer": the exact walk decides.
    """
    get_referents = gc.get_referents
    level = get_referents(value)
    depth = 0
    while level:
        budget -= len(level)
        depth += 1
        if budget < 0 or depth > _MAX_LEVELS:
            return False
        level = get_referents(*level)
    return True


def has_non_finite(value: Any) -> bool:
    """True if ``value`` holds a NaN or an infinity anywhere."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, Mapping):
        return any(has_non_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(has_non_finite(v) for v in value)
    return False


_MAX_DEPTH = 254  # orjson's nesting limit; also stops the walk on a cycle
_PLAIN_TYPES = "plain JSON data (dict, list, tuple, str, int, float, bool, None)"
_HINTS: Final = {
    "datetime": "send value.isoformat()",
    "date": "send value.isoformat()",
    "time": "send value.isoformat()",
    "UUID": "send str(value)",
    "Decimal": "send str(value) or float(value)",
    "bytes": "decode it, or send base64 text",
}


def _find_unencodable(value: Any, path: str, depth: int) -> tuple[str, str] | None:
    """The exact walk: where ``value`` breaks the rule, and why; ``None`` if nowhere."""
    if depth > _MAX_DEPTH:
        return (path, f"is nested deeper than {_MAX_DEPTH} levels (or contains itself)")
    kind = type(value)
    if value is None or kind is bool:
        return None
    if kind is str:
        try:
            value.encode()
        except UnicodeEncodeError:
            return (path, "contains a lone surrogate, which is not valid UTF-8")
        return None
    if kind is int:
        if -(2**63) <= value < 2**64:
            return None
        return (path, "integer is outside the 64-bit range JSON parsers accept")
    if kind is float:
        return None if math.isfinite(value) else (path, f"{value!r} is not valid JSON")
    if isinstance(value, Mapping):
        for key, item in value.items():
            if type(key) is not str:
                return (path, f"object keys must be strings; got {key!r}")
            if not key.isascii() and _find_unencodable(key, path, depth) is not None:
                return (path, "has an object key with a lone surrogate, which is not valid UTF-8")
            found = _find_unencodable(item, f"{path}.{key}" if path else key, depth + 1)
            if found:
                return found
        return None
    if kind is list or kind is tuple:
        for index, item in enumerate(value):
            found = _find_unencodable(item, f"{path}[{index}]", depth + 1)
            if found:
                return found
        return None
    return (path, _refusal(value))


def _refusal(value: Any) -> str:
    import enum

    name = type(value).__name__
    if isinstance(value, enum.Enum):
        return f"{name}.{value.name} is an Enum member, not {_PLAIN_TYPES}: send its .value"
    hint = _HINTS.get(name)
    return f"{name} is not {_PLAIN_TYPES}" + (f": {hint}" if hint else "")
