"""Reading ``X-RateLimit-*`` and ``Retry-After``: once, and the same way everywhere.

Datadog sends ``X-RateLimit-Reset`` as seconds from the answer (not an epoch
timestamp); an LLM provider's 429 (for a task's rate limiter) says its wait in
``retry-after-ms`` or ``Retry-After``. Anything negative, non-finite or
unparsable counts as absent, and an HTTP date without a zone is UTC.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from ..errors import RateLimitInfo


def parse_rate_limit(headers: Mapping[str, str]) -> RateLimitInfo | None:
    """The rate-limit headers of an answer, or ``None`` if it has none."""
    limit = headers.get("X-RateLimit-Limit")
    period = headers.get("X-RateLimit-Period")
    remaining = headers.get("X-RateLimit-Remaining")
    reset = headers.get("X-RateLimit-Reset")
    if limit is None and period is None and remaining is None and reset is None:
        return None
    return RateLimitInfo(
        limit=_to_int(limit),
        period=_to_float(period),
        remaining=_to_int(remaining),
        reset=_to_float(reset),
        name=headers.get("X-RateLimit-Name"),
    )


def server_wait(headers: Mapping[str, str], info: RateLimitInfo | None) -> float | None:
    """The wait a 429 asks for: ``X-RateLimit-Reset`` first, then ``Retry-After``."""
    if info is not None and info.reset is not None:
        return info.reset
    return retry_after_seconds(headers.get("Retry-After"))


def retry_after_seconds(value: str | None) -> float | None:
    """Parse ``Retry-After``: delta seconds or an HTTP date; ``None`` if absent or bad."""
    if value is None:
        return None
    seconds = _to_float(value)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def wait_from(retry_after: float | None, headers: Mapping[str, str] | None) -> float:
    """Seconds to pause: ``retry-after-ms``, ``retry-after``, ``retry_after``, else 1."""
    if headers is not None:
        lower = {str(k).lower(): str(v) for k, v in headers.items()}
        ms = retry_after_seconds(lower.get("retry-after-ms"))
        if ms is not None:
            return ms / 1000
        seconds = retry_after_seconds(lower.get("retry-after"))
        if seconds is not None:
            return seconds
    return 1.0 if retry_after is None else float(retry_after)


def _to_int(value: str | None) -> int | None:
    try:
        number = None if value is None else int(value.strip())
    except ValueError:
        return None
    return number if number is not None and number >= 0 else None


def _to_float(value: str | None) -> float | None:
    """A finite, non-negative number of seconds, or ``None``."""
    try:
        number = None if value is None else float(value.strip())
    except ValueError:
        return None
    return number if number is not None and 0 <= number < math.inf else None
