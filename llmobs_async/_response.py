"""The raw response of a call, with its typed result: ``resource.with_raw_response.method(...)``."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Concatenate, Generic, ParamSpec, Protocol, TypeVar

from multidict import CIMultiDictProxy

from ._options import CallTransport, Recorder
from ._ratelimit.headers import parse_rate_limit
from ._transport import Transport
from .errors import RateLimitInfo

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R", bound="_Resource")

REQUEST_ID_HEADER = "X-Request-Id"


class _Resource(Protocol):
    _transport: Transport

    def __init__(self, transport: Transport, /) -> None: ...


class APIResponse(Generic[T]):
    """A call's typed result together with the HTTP answer it came from.

    Returned by ``client.<resource>.with_raw_response.<method>(...)``, e.g.
    ``raw = await client.experiments.with_raw_response.update(eid, status="running")``.
    The answer is the final attempt's of the call's request (after retries);
    for a call that makes more than one request (``get`` on a list, an
    update read back) it is the first request's: the one the call is named
    for. ``headers`` are the response's (never the request's: no key is
    in them). A call that fails raises as it would without
    ``with_raw_response``; the exception carries the status and headers.
    """

    __slots__ = ("elapsed", "headers", "parsed", "retries", "status")

    def __init__(
        self,
        *,
        parsed: T,
        status: int,
        headers: CIMultiDictProxy[str],
        retries: int,
        elapsed: float,
    ) -> None:
        self.parsed = parsed
        """The typed result, as the method without ``with_raw_response`` returns it."""
        self.status = status
        """The HTTP status of the final attempt, e.g. 200."""
        self.headers = headers
        """The response's headers (case-insensitive, read-only)."""
        self.retries = retries
        """How many times the request was sent again after a failed attempt."""
        self.elapsed = elapsed
        """Seconds from the first attempt to the final answer, retries and waits included."""

    def parse(self) -> T:
        """The typed result (the same object as :attr:`parsed`)."""
        return self.parsed

    @property
    def request_id(self) -> str | None:
        """The ``X-Request-Id`` header, if the server sent one (Datadog documents none)."""
        return self.headers.get(REQUEST_ID_HEADER)

    @property
    def rate_limit(self) -> RateLimitInfo | None:
        """The response's ``X-RateLimit-*`` headers, parsed; ``None`` if it had none."""
        return parse_rate_limit(self.headers)

    def __repr__(self) -> str:
        return (
            f"APIResponse(status={self.status}, retries={self.retries}, "
            f"elapsed={self.elapsed:.3f}, request_id={self.request_id!r}, "
            f"parsed={self.parsed!r})"
        )


def raw(
    resource: R, method: Callable[Concatenate[R, P], Awaitable[T]]
) -> Callable[P, Awaitable[APIResponse[T]]]:
    """``method`` of ``resource``, returning an :class:`APIResponse` of its result."""

    @functools.wraps(method)
    async def call(*args: P.args, **kwargs: P.kwargs) -> APIResponse[T]:
        recorder = Recorder()
        transport = CallTransport.copy(resource._transport)
        transport.recorder = recorder
        parsed = await method(type(resource)(transport), *args, **kwargs)
        return APIResponse(
            parsed=parsed,
            status=recorder.status,
            headers=recorder.headers,
            retries=recorder.retries,
            elapsed=recorder.elapsed,
        )

    return call
